"""The factor registry: the single source of truth for the factor list.

A *family* is one factor function with its category and default windows
(``momentum`` with windows 5, 10, 20, 60); a :class:`FactorSpec` is one output
column of a family (``mom_20``). :data:`FAMILIES` lists the families,
:data:`FACTORS` every default column. ``config/alphas_config.yaml`` can only
select families, change their windows and fixed parameters, or disable them; it
cannot name a factor that is not registered here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from bma_models.errors import SettingsError
from bma_models.factors import library
from bma_models.panel.frames import Panel

logger = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = ("momentum", "reversion", "volatility", "liquidity", "quality")


@dataclass(frozen=True)
class FactorSpec:
    """One factor column: a registered function with bound parameters.

    Attributes
    ----------
    name : str
        Column name, e.g. ``mom_60_skip5``.
    function : callable
        ``function(panel, **params) -> ndarray`` of shape (n_dates, n_tickers).
    params : mapping
        Keyword parameters bound to the function (``window``, ``skip``...).
    description : str
        Formula in words, used by the factor table of docs/research-pipeline.md and reports.
    category : str
        One of :data:`CATEGORIES`; the regime weighting groups factors by it.
    family : str
        Registry family the spec came from.
    lookback : int or None
        Upper bound on the sessions before ``t`` that the value at ``t`` reads
        (registered factors: ``window + 1``); None means unknown, and the engine
        then gives the function the whole history.
    """

    name: str
    function: Callable[..., np.ndarray]
    params: Mapping[str, int] = field(default_factory=dict)
    description: str = ""
    category: str = "momentum"
    family: str = ""
    lookback: int | None = None

    def compute(self, panel: Panel) -> np.ndarray:
        """Evaluate the factor on a panel."""
        return self.function(panel, **self.params)


@dataclass(frozen=True)
class FactorFamily:
    """A factor function with its column-name template, category and defaults."""

    name: str
    function: Callable[..., np.ndarray]
    column: str
    category: str
    formula: str
    windows: tuple[int, ...] | None = None
    fixed: Mapping[str, int] = field(default_factory=dict)

    def specs(
        self, windows: tuple[int, ...] | None = None, fixed: Mapping[str, int] | None = None
    ) -> list[FactorSpec]:
        """One spec per window (one spec in total for window-less families)."""
        bound = {**self.fixed, **(fixed or {})}
        if self.windows is None:
            combos = [dict(bound)]
        else:
            combos = [{"window": w, **bound} for w in (windows or self.windows)]
        return [
            FactorSpec(
                name=self.column.format(**params),
                function=self.function,
                params=MappingProxyType(params),
                description=self.formula.format(**params),
                category=self.category,
                family=self.name,
                # every registered function reads at most `window` sessions back
                # plus one for the previous close (returns, gaps, true range)
                lookback=params.get("window", 0) + 1,
            )
            for params in combos
        ]


def _family(*args, **kwargs) -> tuple[str, FactorFamily]:
    family = FactorFamily(*args, **kwargs)
    return family.name, family


FAMILIES: Mapping[str, FactorFamily] = MappingProxyType(dict([
    _family("ma_ratio", library.ma_ratio, "ma_ratio_{window}", "momentum",
            "close / mean(close, {window}) - 1", (5, 10, 20, 60)),
    _family("volatility", library.volatility, "vol_{window}", "volatility",
            "std(1-session returns, {window}, ddof=1)", (5, 20, 60)),
    _family("rsi", library.rsi, "rsi_{window}", "reversion",
            "100 * mean(gain, {window}) / (mean(gain) + mean(loss))", (14,)),
    _family("high_low_position", library.high_low_position, "hl_pos_{window}", "reversion",
            "(close - min(low, {window})) / (max(high, {window}) - min(low, {window}))",
            (20, 60)),
    _family("momentum", library.momentum, "mom_{window}", "momentum",
            "close(t) / close(t-{window}) - 1", (5, 10, 20, 60)),
    _family("momentum_skip", library.momentum_skip, "mom_{window}_skip{skip}", "momentum",
            "close(t-{skip}) / close(t-{window}) - 1", (20, 60), {"skip": 5}),
    _family("reversal", library.reversal, "reversal_{window}", "reversion",
            "-(close(t) / close(t-{window}) - 1)", (1,)),
    _family("volume_trend", library.volume_trend, "volume_trend_{window}", "liquidity",
            "mean(volume, {short}) / mean(volume, {window}) - 1", (20,), {"short": 5}),
    _family("average_dollar_volume", library.average_dollar_volume, "adv_{window}",
            "liquidity", "log(1 + mean(close * volume, {window}))", (20, 60)),
    _family("amihud", library.amihud, "amihud_{window}", "liquidity",
            "mean(|return| / (close * volume), {window}) * 1e6", (20,)),
    _family("atr_ratio", library.atr_ratio, "atr_ratio_{window}", "volatility",
            "mean(true range, {window}) / close", (14,)),
    _family("overnight_gap", library.overnight_gap, "overnight_gap", "reversion",
            "open(t) / close(t-1) - 1"),
    _family("intraday_range", library.intraday_range, "intraday_range", "volatility",
            "(high - low) / close"),
    _family("close_location", library.close_location, "clv", "reversion",
            "((close - low) - (high - close)) / (high - low); 0 if high == low"),
    _family("vwap_distance", library.vwap_distance, "vwap_distance", "reversion",
            "close / vwap - 1"),
    _family("turnover", library.turnover, "turnover_{window}", "liquidity",
            "mean(volume, {window}) / shares outstanding", (20,)),
]))

FACTORS: Mapping[str, FactorSpec] = MappingProxyType(
    {spec.name: spec for family in FAMILIES.values() for spec in family.specs()}
)


def _positive_ints(value, where: str) -> tuple[int, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                            for v in items):
        raise SettingsError(f"{where} must be a positive integer or a non-empty list of them,"
                            f" got {value!r}")
    return tuple(items)


def _family_specs(name: str, entry) -> list[FactorSpec]:
    family = FAMILIES[name]
    entry = {} if entry is None else entry
    if not isinstance(entry, Mapping):
        raise SettingsError(f"factors.{name} must be a mapping, got {type(entry).__name__}")
    allowed = {"enabled"} | set(family.fixed) | ({"windows"} if family.windows else set())
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SettingsError(f"factors.{name}: unknown keys {unknown}; allowed {sorted(allowed)}")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SettingsError(f"factors.{name}.enabled must be true or false, got {enabled!r}")
    if not enabled:
        return []
    windows = None
    if "windows" in entry:
        windows = _positive_ints(entry["windows"], f"factors.{name}.windows")
    fixed = {k: _positive_ints(entry[k], f"factors.{name}.{k}")[0]
             for k in family.fixed if k in entry}
    specs = family.specs(windows, fixed)
    _check_params(name, specs)
    return specs


def _check_params(name: str, specs: list[FactorSpec]) -> None:
    for spec in specs:
        params = dict(spec.params)
        for smaller in ("skip", "short"):
            if smaller in params and params[smaller] >= params["window"]:
                raise SettingsError(
                    f"factors.{name}: {smaller}={params[smaller]} must be smaller than "
                    f"window={params['window']}"
                )


def factor_specs_from_config(mapping: Mapping) -> dict[str, FactorSpec]:
    """Build the factor specs selected by an ``alphas_config`` mapping.

    Parameters
    ----------
    mapping : mapping
        ``{"factors": {family: {"enabled": bool, "windows": [int, ...], ...}}}``.
        Families that the mapping does not mention keep their registry defaults;
        ``enabled: false`` removes a family; ``windows`` replaces its windows;
        fixed parameters (``skip``, ``short``) may be overridden by name.

    Returns
    -------
    dict of str to FactorSpec
        Keyed by column name, in registry order.

    Raises
    ------
    SettingsError
        On an unknown family or key, a non-positive window, or duplicate columns.

    Examples
    --------
    >>> specs = factor_specs_from_config({"factors": {"momentum": {"windows": [3]}}})
    >>> "mom_3" in specs and "mom_20" not in specs and "ma_ratio_20" in specs
    True
    """
    if not isinstance(mapping, Mapping):
        raise SettingsError(f"alphas config must be a mapping, got {type(mapping).__name__}")
    unknown_top = sorted(set(mapping) - {"factors", "version"})
    if unknown_top:
        raise SettingsError(f"alphas config: unknown top-level keys {unknown_top}")
    entries = mapping.get("factors") or {}
    if not isinstance(entries, Mapping):
        raise SettingsError("alphas config: 'factors' must be a mapping of family -> settings")
    unknown = sorted(set(entries) - set(FAMILIES))
    if unknown:
        raise SettingsError(f"alphas config: unknown factor families {unknown}; "
                            f"registered: {sorted(FAMILIES)}")
    specs: dict[str, FactorSpec] = {}
    for name in FAMILIES:
        for spec in _family_specs(name, entries.get(name)):
            if spec.name in specs:
                raise SettingsError(f"alphas config: column {spec.name} defined twice")
            specs[spec.name] = spec
    if not specs:
        raise SettingsError("alphas config disables every factor")
    return specs


def load_alphas_config(path: str | Path) -> dict[str, FactorSpec]:
    """Read an ``alphas_config.yaml`` file and return :func:`factor_specs_from_config` of it.

    Raises
    ------
    SettingsError
        If the file cannot be read or parsed, or its content is invalid.
    """
    import yaml

    path = Path(path)
    try:
        mapping = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SettingsError(f"cannot read alphas config {path}: {e}") from e
    try:
        specs = factor_specs_from_config(mapping)
    except SettingsError as e:
        raise SettingsError(f"{path}: {e}") from e
    logger.info("loaded %d factor specs from %s", len(specs), path)
    return specs
