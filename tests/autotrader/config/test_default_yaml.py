"""The packaged default.yaml documents every key, with the code's default values."""

from __future__ import annotations

import re

import yaml

from autotrader.config import Settings
from autotrader.config._sources import packaged_defaults_path
from bma_models.schema import build, flatten, to_dict


def _default_yaml(repo_root):
    return packaged_defaults_path()


def test_default_yaml_values_equal_the_code_defaults(repo_root):
    data = yaml.safe_load(_default_yaml(repo_root).read_text(encoding="utf-8"))
    assert build(Settings, data, source_of=lambda key: "default.yaml") == Settings()


def test_default_yaml_lists_every_key(repo_root):
    data = yaml.safe_load(_default_yaml(repo_root).read_text(encoding="utf-8"))
    assert set(flatten(data)) == set(flatten(to_dict(Settings())))


def test_every_key_line_has_a_comment(repo_root):
    lines = _default_yaml(repo_root).read_text(encoding="utf-8").splitlines()
    key_line = re.compile(r"^\s*[a-z_]+:")
    undocumented = []
    for i, line in enumerate(lines):
        if not key_line.match(line) or "#" in line:
            continue
        body = line.split(":", 1)[1].strip()
        is_section = body == "" and not lines[i + 1].lstrip().startswith("-")
        if not is_section:
            undocumented.append(line)
    assert undocumented == []
