"""stocks.txt parsing: normalisation, validation, duplicates and file:line errors."""

from __future__ import annotations

import logging

import pytest

from bma_models.data.universe import (
    UniverseError,
    load_universe_file,
    normalize_ticker,
    parse_universe,
    read_universe_text,
)
from bma_models.errors import DataError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AAPL", "AAPL"),
        (" msft ", "MSFT"),
        ("BRK.B", "BRK.B"),
        ("brk-b", "BRK.B"),
        ("BF/B", "BF.B"),
        ("GOOGL", "GOOGL"),
        ("DM0001", "DM0001"),
        ("DM10000", "DM10000"),
        ("FOO BAR", None),
        ("1ABC", None),
        ("TOOLONGX", None),
        ("BRK.", None),
        ("$AAPL", None),
        ("", None),
    ],
)
def test_normalize_ticker_accepts_symbols_and_class_suffixes_only(raw, expected):
    assert normalize_ticker(raw) == expected


def test_parse_universe_handles_comments_blanks_case_and_rejects_with_file_line():
    text = "# header\n\naapl\nMSFT  # inline comment\n   \nFOO BAR\nbrk.b\n"
    tickers, rejected = parse_universe(text, "stocks.txt")
    assert tickers == ["AAPL", "MSFT", "BRK.B"]
    assert [str(r) for r in rejected] == ["stocks.txt:6: 'FOO BAR' is not a valid ticker"]
    assert rejected[0].line == 6


def test_duplicates_are_dropped_with_a_warning_naming_both_lines(caplog):
    with caplog.at_level(logging.WARNING, logger="bma_models.data.universe"):
        parsed = read_universe_text("AAPL\nMSFT\naapl\nBRK-B\nBRK.B\n", "stocks.txt")
    assert parsed.tickers == ["AAPL", "MSFT", "BRK.B"]
    assert [str(d) for d in parsed.duplicates] == [
        "stocks.txt:3: duplicate 'AAPL' (first listed on line 1); dropped",
        "stocks.txt:5: duplicate 'BRK.B' (first listed on line 4); dropped",
    ]
    assert "stocks.txt:3: duplicate 'AAPL'" in caplog.text


def test_load_universe_file_is_strict_by_default(tmp_path):
    path = tmp_path / "stocks.txt"
    path.write_text("AAPL\n\nMSFT\n# c\nFOO BAR\n", encoding="utf-8")
    with pytest.raises(UniverseError, match=r"stocks.txt:5: 'FOO BAR' is not a valid ticker"):
        load_universe_file(path)
    assert issubclass(UniverseError, DataError)
    assert load_universe_file(path, strict=False) == ["AAPL", "MSFT"]


def test_load_universe_file_tolerates_bom_and_rejects_empty_or_missing(tmp_path):
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffAAPL\r\nmsft\r\n".encode())
    assert load_universe_file(bom) == ["AAPL", "MSFT"]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n", encoding="utf-8")
    with pytest.raises(UniverseError, match="no tickers"):
        load_universe_file(empty)
    with pytest.raises(UniverseError, match="not found"):
        load_universe_file(tmp_path / "missing.txt")


def test_repository_stocks_txt_is_a_valid_default_universe(repo_root):
    tickers = load_universe_file(repo_root / "stocks.txt")
    assert 45 <= len(tickers) <= 60
    assert "BRK.B" in tickers and "AAPL" in tickers
    assert len(set(tickers)) == len(tickers)
