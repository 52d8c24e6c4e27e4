"""The generic typed-dataclass builder shared by the research and trader sections."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

import pytest

from bma_models.errors import SettingsError
from bma_models.schema import FieldError, Section, build, flatten, setting, to_dict


@dataclasses.dataclass(frozen=True)
class Inner(Section):
    ratio: float = setting(0.5, ge=0.0, le=1.0)
    when: dt.time = setting(dt.time(9, 30))


@dataclasses.dataclass(frozen=True)
class Outer(Section):
    count: int = setting(3, gt=0)
    name: Literal["a", "b"] = setting("a")
    flag: bool = setting(False)
    day: dt.date | None = setting(None)
    limit: int | None = setting(None, ge=1)
    names: tuple[str, ...] = setting(("x",))
    extra: Mapping[str, Any] = setting(default_factory=dict)
    inner: Inner = setting(default_factory=Inner)

    def check(self) -> None:
        if self.limit is not None and self.limit < self.count:
            raise FieldError(("limit", "count"), "limit must be >= count")


def _where(source: str):
    return lambda key: source


def test_build_converts_parsed_yaml_into_frozen_typed_values():
    obj = build(Outer, {"count": 4, "day": "2024-01-02", "names": ["p", "q"],
                        "extra": {"k": [1, {"z": 2}]}, "inner": {"ratio": 1, "when": "10:15"}})
    assert obj.day == dt.date(2024, 1, 2)
    assert obj.names == ("p", "q")
    assert obj.inner == Inner(ratio=1.0, when=dt.time(10, 15))
    assert isinstance(obj.inner.ratio, float)
    assert obj.extra["k"][1]["z"] == 2
    with pytest.raises(TypeError):
        obj.extra["k2"] = 1  # read-only mapping
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.count = 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cuont": 1}, "f.yaml: s.cuont is not a known key"),
        ({"count": True}, "f.yaml: s.count = True is not an integer"),
        ({"count": 1.5}, "f.yaml: s.count = 1.5 is not an integer"),
        ({"count": 0}, "f.yaml: s.count = 0 is out of range (0, inf)"),
        ({"name": "c"}, "f.yaml: s.name = 'c' is not one of a|b"),
        ({"flag": "yes"}, "f.yaml: s.flag = 'yes' is not a boolean"),
        ({"day": "2024-13-01"}, "f.yaml: s.day = '2024-13-01' is not an ISO date"),
        ({"limit": 0}, "f.yaml: s.limit = 0 is out of range [1, inf)"),
        ({"limit": 2}, "f.yaml: s.limit, s.count: limit must be >= count"),
        ({"names": "p"}, "f.yaml: s.names = 'p' is not"),
        ({"inner": {"ratio": float("nan")}}, "f.yaml: s.inner.ratio = nan is not a finite"),
        ({"inner": {"ratio": 1.7}}, "f.yaml: s.inner.ratio = 1.7 is out of range [0, 1]"),
        ({"inner": {"when": 570}}, "f.yaml: s.inner.when = 570 is not a time HH:MM"),
        ({"inner": 3}, "f.yaml: s.inner = 3 must be a mapping of keys"),
        ({"extra": {"k": {1, 2}}}, "f.yaml: s.extra.k = {1, 2} must be a string, number"),
    ],
)
def test_build_errors_name_source_and_dotted_key(data, message):
    with pytest.raises(SettingsError) as info:
        build(Outer, data, prefix="s", source_of=_where("f.yaml"))
    assert str(info.value).startswith(message)


def test_direct_construction_is_validated_like_a_file():
    with pytest.raises(FieldError, match=r"ratio = 2.0 is out of range \[0, 1\]"):
        Inner(ratio=2.0)
    with pytest.raises(FieldError, match="names = \\['p'\\] is not a list"):
        Outer(names=["p"])


def test_to_dict_round_trips_through_build():
    obj = build(Outer, {"day": "2024-01-02", "names": ["p"], "extra": {"k": [1]}})
    assert build(Outer, to_dict(obj)) == obj
    assert to_dict(obj)["inner"]["when"] == "09:30"


def test_flatten_keeps_empty_mappings_as_leaves():
    assert flatten({"a": {"b": 1, "c": {}}, "d": [1]}) == {"a.b": 1, "a.c": {}, "d": [1]}
