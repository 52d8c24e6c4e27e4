"""The factor registry: how each factor family is computed; the factor set selects them.

A *family* is one factor function with its column-name template, category and
parameter names (``momentum``, windowed); a :class:`FactorSpec` is one output
column of a family (``mom_20``). :data:`FAMILIES` lists the families. Which
families run, with which windows, is the factor set's choice: the packaged
``bma_models/factors/alphas_config.yaml`` (:data:`PACKAGED_ALPHAS_CONFIG`) is
the one list of default factors (:data:`FACTORS`, :data:`DEFAULT_FACTOR_SET`);
a user copy in the config directory replaces it. A factor set cannot name a
family that is not registered here.
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
    """A factor function with its column-name template, category and parameter names.

    The family says *how* to compute a factor; which families run, with which
    windows and fixed parameters, is the factor set's choice
    (``alphas_config.yaml``): the registry holds no second, hard-coded list.
    """

    name: str
    function: Callable[..., np.ndarray]
    column: str
    category: str
    formula: str
    windowed: bool = False
    fixed: tuple[str, ...] = ()

    def specs(
        self, windows: tuple[int, ...] | None = None, fixed: Mapping[str, int] | None = None
    ) -> list[FactorSpec]:
        """One spec per window (one spec in total for window-less families).

        Raises
        ------
        SettingsError
            When a windowed family gets no windows or a fixed parameter is missing.
        """
        bound = dict(fixed or {})
        missing = [k for k in self.fixed if k not in bound]
        if missing:
            raise SettingsError(f"factors.{self.name}: missing parameters {missing}")
        if not self.windowed:
            combos = [bound]
        elif windows:
            combos = [{"window": w, **bound} for w in windows]
        else:
            raise SettingsError(f"factors.{self.name}.windows: a windowed family needs "
                                "at least one window")
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
            "close / mean(close, {window}) - 1", windowed=True),
    _family("volatility", library.volatility, "vol_{window}", "volatility",
            "std(1-session returns, {window}, ddof=1)", windowed=True),
    _family("rsi", library.rsi, "rsi_{window}", "reversion",
            "100 * mean(gain, {window}) / (mean(gain) + mean(loss))", windowed=True),
    _family("high_low_position", library.high_low_position, "hl_pos_{window}", "reversion",
            "(close - min(low, {window})) / (max(high, {window}) - min(low, {window}))",
            windowed=True),
    _family("momentum", library.momentum, "mom_{window}", "momentum",
            "close(t) / close(t-{window}) - 1", windowed=True),
    _family("momentum_skip", library.momentum_skip, "mom_{window}_skip{skip}", "momentum",
            "close(t-{skip}) / close(t-{window}) - 1", windowed=True, fixed=("skip",)),
    _family("reversal", library.reversal, "reversal_{window}", "reversion",
            "-(close(t) / close(t-{window}) - 1)", windowed=True),
    _family("volume_trend", library.volume_trend, "volume_trend_{window}", "liquidity",
            "mean(volume, {short}) / mean(volume, {window}) - 1", windowed=True,
            fixed=("short",)),
    _family("average_dollar_volume", library.average_dollar_volume, "adv_{window}",
            "liquidity", "log(1 + mean(close * volume, {window}))", windowed=True),
    _family("amihud", library.amihud, "amihud_{window}", "liquidity",
            "mean(|return| / (close * volume), {window}) * 1e6", windowed=True),
    _family("atr_ratio", library.atr_ratio, "atr_ratio_{window}", "volatility",
            "mean(true range, {window}) / close", windowed=True),
    _family("overnight_gap", library.overnight_gap, "overnight_gap", "reversion",
            "open(t) / close(t-1) - 1"),
    _family("intraday_range", library.intraday_range, "intraday_range", "volatility",
            "(high - low) / close"),
    _family("close_location", library.close_location, "clv", "reversion",
            "((close - low) - (high - close)) / (high - low); 0 if high == low"),
    _family("vwap_distance", library.vwap_distance, "vwap_distance", "reversion",
            "close / vwap - 1"),
    _family("turnover", library.turnover, "turnover_{window}", "liquidity",
            "mean(volume, {window}) / shares outstanding", windowed=True),
]))

#: The packaged default factor set: the one list of default factors (a user copy in the
#: config directory replaces it, see :func:`load_factor_set`).
PACKAGED_ALPHAS_CONFIG: Path = Path(__file__).with_name("alphas_config.yaml")


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
    allowed = {"enabled"} | set(family.fixed) | ({"windows"} if family.windowed else set())
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
    """Build the factor specs of an ``alphas_config`` mapping.

    Parameters
    ----------
    mapping : mapping
        ``{"version": 1, "factors": {family: {"enabled": bool, "windows": [int, ...],
        <fixed parameter>: int}}}``. The mapping is the whole factor set: a
        family it does not list is not computed; ``enabled: false`` switches a
        listed family off; a windowed family needs ``windows`` and every fixed
        parameter of its family (``skip``, ``short``).

    Returns
    -------
    dict of str to FactorSpec
        Keyed by column name, in registry order.

    Raises
    ------
    SettingsError
        On an unknown family or key (named ``factors.<family>.<key>``), a missing
        or non-positive window, or an empty selection.

    Examples
    --------
    >>> specs = factor_specs_from_config({"factors": {"momentum": {"windows": [3]},
    ...                                               "overnight_gap": {}}})
    >>> list(specs)
    ['mom_3', 'overnight_gap']
    """
    if not isinstance(mapping, Mapping):
        raise SettingsError(f"alphas config must be a mapping, got {type(mapping).__name__}")
    unknown_top = sorted(set(mapping) - {"factors", "version"})
    if unknown_top:
        raise SettingsError(f"alphas config: unknown top-level keys {unknown_top}")
    if mapping.get("version", 1) != 1:
        raise SettingsError(f"alphas config: version must be 1, got {mapping['version']!r}")
    entries = mapping.get("factors") or {}
    if not isinstance(entries, Mapping):
        raise SettingsError("alphas config: 'factors' must be a mapping of family -> settings")
    unknown = sorted(set(entries) - set(FAMILIES))
    if unknown:
        raise SettingsError(f"alphas config: unknown factor families "
                            f"{['factors.' + str(n) for n in unknown]}; "
                            f"registered: {sorted(FAMILIES)}")
    specs: dict[str, FactorSpec] = {}
    for name in FAMILIES:
        if name not in entries:
            continue
        for spec in _family_specs(name, entries[name]):
            if spec.name in specs:
                raise SettingsError(f"alphas config: column {spec.name} defined twice")
            specs[spec.name] = spec
    if not specs:
        raise SettingsError("alphas config selects no factor")
    return specs


@dataclass(frozen=True)
class FactorSet:
    """The factors of a run and the file they came from.

    Attributes
    ----------
    specs : mapping of str to FactorSpec
        Keyed by column name, in registry order.
    source : str
        The ``alphas_config.yaml`` read (recorded in the run's manifest).
    """

    specs: Mapping[str, FactorSpec]
    source: str

    def to_config(self) -> dict:
        """Return the ``alphas_config`` mapping that rebuilds exactly these specs.

        Examples
        --------
        >>> fs = FactorSet(factor_specs_from_config({"factors": {"rsi": {"windows": [9]}}}), "x")
        >>> fs.to_config()
        {'version': 1, 'factors': {'rsi': {'windows': [9]}}}
        """
        families: dict[str, dict] = {}
        for spec in self.specs.values():
            entry = families.setdefault(spec.family, {})
            params = dict(spec.params)
            window = params.pop("window", None)
            if window is not None:
                entry.setdefault("windows", []).append(window)
            entry.update(params)
        return {"version": 1, "factors": families}


def load_factor_set(path: str | Path) -> FactorSet:
    """Read an ``alphas_config.yaml`` file into a :class:`FactorSet`.

    Raises
    ------
    SettingsError
        If the file cannot be read or parsed, or its content is invalid; the
        message starts with the file's path and names the key.
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
    return FactorSet(MappingProxyType(specs), str(path))


def load_alphas_config(path: str | Path) -> dict[str, FactorSpec]:
    """Return the specs of :func:`load_factor_set` (``{column: FactorSpec}``)."""
    return dict(load_factor_set(path).specs)


#: The packaged default factor set (:data:`PACKAGED_ALPHAS_CONFIG`).
DEFAULT_FACTOR_SET: FactorSet = load_factor_set(PACKAGED_ALPHAS_CONFIG)
#: Every default factor column, keyed by name: the specs of :data:`DEFAULT_FACTOR_SET`.
FACTORS: Mapping[str, FactorSpec] = DEFAULT_FACTOR_SET.specs
