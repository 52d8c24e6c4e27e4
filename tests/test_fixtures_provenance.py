"""Every recorded payload in ``tests/fixtures`` has its provenance line in the folder's README."""

from __future__ import annotations

from pathlib import Path

DOCS = {"README.md", "LICENSES.md"}


def _payloads(fixtures_dir: Path) -> list[Path]:
    return sorted(p for p in fixtures_dir.rglob("*") if p.is_file() and p.name not in DOCS)


def _is_documented(relative: Path, readme: str) -> bool:
    """The README names the top folder and the file by some trailing part of its path."""
    parts = relative.parts
    named = any(f"`{'/'.join(parts[i:])}`" in readme for i in range(1, len(parts)))
    return f"`{parts[0]}/" in readme and named


def test_every_fixture_file_is_listed_with_its_source(fixtures_dir: Path) -> None:
    readme = (fixtures_dir / "README.md").read_text(encoding="utf-8")
    payloads = _payloads(fixtures_dir)
    undocumented = [str(p.relative_to(fixtures_dir)) for p in payloads
                    if not _is_documented(p.relative_to(fixtures_dir), readme)]
    assert len(payloads) >= 6 and undocumented == []


def test_an_unlisted_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "ib_tws").mkdir()
    (tmp_path / "ib_tws" / "listed.json").write_text("{}")
    (tmp_path / "ib_tws" / "stray.json").write_text("{}")
    readme = "## `ib_tws/`\n| `listed.json` | source |\n"
    documented = [_is_documented(p.relative_to(tmp_path), readme) for p in _payloads(tmp_path)]
    assert documented == [True, False]
