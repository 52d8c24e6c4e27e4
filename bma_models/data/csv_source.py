"""Import daily bars (and optional sector data) from CSV or Parquet files.

Bars file columns (case, spaces and ``-``/``_`` are ignored when matching names):

=========  ==========================================================
column     accepted names
=========  ==========================================================
date       date, day, datetime, timestamp, time, trade_date
ticker     ticker, symbol, name, sym, code
open       open, o, open_price
high       high, h, high_price
low        low, l, low_price
close      close, c, close_price, last
volume     volume, vol, v
vwap       vwap, vw, average_price, avg_price (optional)
adj_close  adj_close, "Adj Close", adjclose, adjusted_close (optional)
=========  ==========================================================

Files may be ``.csv``, ``.csv.gz`` (gzip-compressed CSV) or ``.parquet``.

Adjusted close. When the file has an adjusted-close column, the bars are put on
a total-return basis: with ``f = adj_close / close`` per row, open, high, low,
close and vwap are multiplied by ``f`` and the volume divided by it (dollar
volume is unchanged), so a dividend or a split never looks like a crash. The
rule is recorded in the load report's notes (and hence in the run's
``data_notes``). An empty, unreadable or non-positive ``adj_close`` drops the
row (rule ``bad_adj_close``): keeping it unadjusted would put a jump into the
series. Without the column nothing changes.

Sectors file: ``ticker`` (ticker, symbol), ``sector`` (sector, gics_sector,
sector_name), optional ``market_cap`` (market_cap, "Market Cap", marketcap,
mkt_cap, market_capitalization) and ``shares_outstanding`` (shares_outstanding,
shares, "Shares Outstanding"). Amounts may carry ``$``, thousands separators and a
K/M/B/T suffix (``"2.9T"``).

Bad-row rules (each dropped row is counted under the *first* rule it breaks, so
``rows_read = rows_kept + dropped``); the :class:`LoadReport` gives the count and
up to five ``file:line`` examples per rule (line numbers of the CSV, header =
line 1; for Parquet, ``file:row N`` counting rows from 1):

* ``missing_value`` -- date, ticker, a price or volume is empty: dropped.
* ``bad_date`` -- the date cannot be parsed: dropped.
* ``bad_ticker`` -- not a valid symbol (see :mod:`bma_models.data.universe`): dropped.
* ``bad_number`` -- a price or the volume is not a number: dropped.
* ``non_positive_price`` -- open, high, low or close <= 0: dropped.
* ``negative_volume`` -- volume < 0: dropped (zero volume is kept).
* ``high_below_low`` -- high < low: dropped.
* ``ohlc_inconsistent`` -- open or close outside [low, high] (relative tolerance
  1e-6): dropped.
* ``non_session_date`` -- not an NYSE session (weekend, holiday): dropped.
* ``bad_adj_close`` -- the adjusted close (when the column exists) is empty, not a
  number or <= 0: dropped.
* ``duplicate`` -- (date, ticker) seen again: the *last* row is kept, earlier ones
  dropped (why the last: vendors append corrections).
* ``vwap_filled`` -- vwap empty, non-positive or outside [low, high]: replaced by
  ``(high + low + close) / 3``; the row is kept. A missing vwap *column* is
  filled the same way and noted once.
* ``gap`` -- NYSE sessions missing between a ticker's first and last bar:
  reported (count of missing ticker-sessions), never filled.

A missing required column raises :class:`~bma_models.errors.DataError` naming the
file and the column; so does a file in which every row is bad.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pyarrow_compute

from bma_models.data import calendar
from bma_models.data.protocol import MarketData, normalize_bars, normalize_reference
from bma_models.data.universe import normalize_ticker
from bma_models.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["BAR_ALIASES", "CsvSource", "LoadReport", "RULES", "load_bars_file",
           "load_reference_file"]

BAR_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "day", "datetime", "timestamp", "time", "trade_date"),
    "ticker": ("ticker", "symbol", "name", "sym", "code"),
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price", "last"),
    "volume": ("volume", "vol", "v"),
    "vwap": ("vwap", "vw", "average_price", "avg_price"),
    "adj_close": ("adj_close", "adjclose", "adjusted_close", "adj_close_price"),
}
REFERENCE_ALIASES: dict[str, tuple[str, ...]] = {
    "ticker": ("ticker", "symbol"),
    "sector": ("sector", "gics_sector", "sector_name"),
    "market_cap": ("market_cap", "marketcap", "mkt_cap", "market_capitalization"),
    "shares_outstanding": ("shares_outstanding", "shares", "sharesoutstanding"),
}
RULES: dict[str, str] = {
    "missing_value": "a required field is empty; row dropped",
    "bad_date": "date cannot be parsed; row dropped",
    "bad_ticker": "not a valid ticker symbol; row dropped",
    "bad_number": "a price or the volume is not a number; row dropped",
    "non_positive_price": "open/high/low/close <= 0; row dropped",
    "negative_volume": "volume < 0; row dropped",
    "high_below_low": "high < low; row dropped",
    "ohlc_inconsistent": "open or close outside [low, high]; row dropped",
    "non_session_date": "not an NYSE session; row dropped",
    "bad_adj_close": "adjusted close empty, not a number or <= 0; row dropped",
    "duplicate": "(date, ticker) repeated; last row kept, earlier dropped",
    "vwap_filled": "vwap empty/invalid; replaced by (high+low+close)/3, row kept",
    "gap": "NYSE sessions missing inside a ticker's range; reported, not filled",
    "bad_amount": "market cap / shares not a number; set to NaN",
}
_DROP_RULES = tuple(r for r in RULES if r not in ("vwap_filled", "gap", "bad_amount"))
_PRICES = ("open", "high", "low", "close")
_TOLERANCE = 1e-6
_MAX_EXAMPLES = 5


@dataclass
class RuleCount:
    """How often one rule fired and up to five examples (``file:line: detail``)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    """What happened to every row of an imported file.

    Attributes
    ----------
    path : str
        The file (or directory) read.
    rows_read, rows_kept : int
        Data rows seen and rows in the returned frame.
    issues : dict of str to RuleCount
        Per rule of :data:`RULES` that fired: count and examples.
    notes : list of str
        File-level remarks (vwap column absent, calendar coverage, alias used).
    """

    path: str
    rows_read: int = 0
    rows_kept: int = 0
    issues: dict[str, RuleCount] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, rule: str, count: int, examples: list[str]) -> None:
        """Record ``count`` more occurrences of ``rule`` (examples capped at five)."""
        if count <= 0:
            return
        entry = self.issues.setdefault(rule, RuleCount())
        entry.count += int(count)
        room = _MAX_EXAMPLES - len(entry.examples)
        entry.examples.extend(examples[: max(room, 0)])

    @property
    def counts(self) -> dict[str, int]:
        """Rows affected per rule."""
        return {rule: entry.count for rule, entry in self.issues.items()}

    @property
    def rows_dropped(self) -> int:
        """Rows removed (every rule counts except ``vwap_filled``, ``gap`` and ``bad_amount``)."""
        return sum(self.issues[r].count for r in _DROP_RULES if r in self.issues)

    def lines(self) -> list[str]:
        """Human-readable summary, one line per note and per rule (with examples)."""
        out = [f"{self.path}: {self.rows_read} rows read, {self.rows_kept} kept, "
               f"{self.rows_dropped} dropped"]
        out.extend(self.notes)
        for rule, entry in self.issues.items():
            shown = "; ".join(entry.examples)
            out.append(f"{rule} ({RULES[rule]}): {entry.count}" + (f", e.g. {shown}" if shown
                                                                    else ""))
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def load_bars_file(
    path: str | Path, default_ticker: str | None = None
) -> tuple[pd.DataFrame, LoadReport]:
    """Read a bars file (.csv or .parquet) and apply the documented bad-row rules.

    Parameters
    ----------
    path : str or Path
        The file. Column names are matched through :data:`BAR_ALIASES`.
    default_ticker : str, optional
        Ticker for a file without a ticker column (e.g. ``AAPL.csv`` in a directory).

    Returns
    -------
    bars : DataFrame
        Protocol bars (see :mod:`bma_models.data.protocol`).
    report : LoadReport
        Counts and ``file:line`` examples per rule.

    Raises
    ------
    DataError
        If the file cannot be read, a required column is missing, or no row survives.
    """
    file_path = Path(path)
    report = LoadReport(path=str(file_path))
    raw = _read_bars_table(file_path, default_ticker, report)
    bars = _validate_bars(raw, [file_path], report)
    if bars.empty:
        raise DataError(f"{file_path}: no valid rows. " + " | ".join(report.lines()[1:]))
    _report_gaps(bars, report)
    report.rows_kept = len(bars)
    logger.info("loaded %s: %d/%d rows kept", file_path, report.rows_kept, report.rows_read)
    return bars, report


def load_reference_file(path: str | Path) -> tuple[pd.DataFrame, LoadReport]:
    """Read a sectors file (ticker, sector, optional market_cap, shares_outstanding).

    Invalid tickers are dropped, duplicate tickers keep the last row, unreadable
    amounts become NaN -- each reported with ``file:line`` examples.
    """
    file_path = Path(path)
    report = LoadReport(path=str(file_path))
    table = _read_table(file_path)
    columns = _match_columns(table, REFERENCE_ALIASES, file_path, ("ticker",), report)
    where = _Locator([file_path], np.zeros(len(table), dtype=int),
                     _line_numbers(file_path, len(table)))
    report.rows_read = len(table)
    tickers = table[columns["ticker"]].astype("str").map(normalize_ticker)
    bad = tickers.isna().to_numpy()
    report.add("bad_ticker", int(bad.sum()), _examples(where, bad, table[columns["ticker"]]))
    out = pd.DataFrame({"ticker": tickers})
    out["sector"] = table[columns["sector"]].astype("str").str.strip() if "sector" in columns \
        else None
    for name in ("market_cap", "shares_outstanding"):
        if name not in columns:
            out[name] = np.nan
            continue
        values = parse_amounts(table[columns[name]])
        text = table[columns[name]].astype("str").str.strip()
        unreadable = values.isna().to_numpy() & (text != "").to_numpy() & ~bad
        report.add("bad_amount", int(unreadable.sum()), _examples(where, unreadable, text))
        out[name] = values
    out = out.loc[~bad]
    dup = out.duplicated("ticker", keep="last").to_numpy()
    report.add("duplicate", int(dup.sum()), _examples(where.subset(~bad), dup, out["ticker"]))
    out = out.loc[~dup]
    if out.empty:
        raise DataError(f"{file_path}: no valid rows in the sectors file")
    report.rows_kept = len(out)
    return normalize_reference(out, out["ticker"].tolist()), report


def parse_amounts(values: pd.Series) -> pd.Series:
    """Numbers like ``1234``, ``"$1,234.5"``, ``"2.9T"``, ``"850M"`` as float (NaN if unreadable).

    Examples
    --------
    >>> parse_amounts(pd.Series(["$2.9T", "850M", "1,200", "n/a"])).tolist()
    [2900000000000.0, 850000000.0, 1200.0, nan]
    """
    text = values.astype("str").str.strip().str.replace(r"[$,\s]", "", regex=True).str.upper()
    parts = text.str.extract(r"^([-+]?\d*\.?\d+(?:E[-+]?\d+)?)([KMBT]?)$")
    number = pd.to_numeric(parts[0], errors="coerce")
    scale = parts[1].map({"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12})
    return (number * scale.astype("float64")).astype("float64")


class CsvSource:
    """Bars from a CSV/Parquet file (or a directory of them) as a ``DataSource``.

    Parameters
    ----------
    data_path : str or Path
        A bars file, or a directory whose ``*.csv``/``*.parquet`` files are read
        (a file without a ticker column takes its stem as the ticker).
    sectors_path : str or Path, optional
        A sectors file for the reference data.

    Notes
    -----
    Files are read on the first ``load`` and kept; ``report`` then holds the
    :class:`LoadReport`, and every ``MarketData`` it returns carries the report
    lines in ``notes``.
    """

    name = "csv"

    def __init__(self, data_path, sectors_path=None):
        self.data_path = data_path
        self.sectors_path = sectors_path
        self.report: LoadReport | None = None
        self._bars: pd.DataFrame | None = None
        self._reference: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return f"CsvSource(data_path={self.data_path!r}, sectors_path={self.sectors_path!r})"

    def load(self, tickers=None, start=None, end=None) -> MarketData:
        """Return bars within ``[start, end]`` for ``tickers`` (None: every ticker in the file)."""
        bars, reference, report = self._read_once()
        notes = list(report.lines())
        keep = np.ones(len(bars), dtype=bool)
        if tickers is not None:
            wanted = {normalize_ticker(t) or str(t) for t in tickers}
            missing = sorted(wanted - set(bars["ticker"].unique()))
            if missing:
                logger.warning("%s: no bars for %d requested tickers: %s", self.data_path,
                               len(missing), missing[:20])
                notes.append(f"no bars for {len(missing)} requested tickers: {missing[:20]}")
            keep &= bars["ticker"].isin(wanted).to_numpy()
        if start is not None:
            keep &= (bars["date"] >= pd.Timestamp(start)).to_numpy()
        if end is not None:
            keep &= (bars["date"] <= pd.Timestamp(end)).to_numpy()
        if not keep.any():
            raise DataError(f"{self.data_path}: no bars for the requested tickers and dates "
                            f"({start} .. {end})")
        selected = bars.loc[keep].reset_index(drop=True)
        names = sorted(selected["ticker"].unique().tolist())
        return MarketData(
            bars=selected,
            reference=normalize_reference(reference, names),
            source="csv",
            is_demo=False,
            notes=tuple(notes),
        )

    def _read_once(self):
        if self._bars is None:
            path = Path(self.data_path)
            if path.is_dir():
                self._bars, self.report = _load_directory(path)
            else:
                self._bars, self.report = load_bars_file(path)
            if self.sectors_path is not None:
                self._reference, sector_report = load_reference_file(self.sectors_path)
                self.report.notes.extend(sector_report.lines())
            else:
                self._reference = pd.DataFrame(columns=["ticker"])
        return self._bars, self._reference, self.report


#: File name endings read as bars tables, and how (pandas infers gzip from ``.gz``).
_KINDS: tuple[tuple[str, str], ...] = (
    (".csv.gz", "csv"), (".csv", "csv"), (".txt", "csv"), (".parquet", "parquet"))


def _file_kind(path: Path) -> tuple[str, str] | None:
    """Return ``(ending, "csv" | "parquet")`` of a supported file name, else None."""
    name = path.name.lower()
    return next(((end, kind) for end, kind in _KINDS if name.endswith(end)), None)


def _ticker_of(path: Path) -> str:
    """Return a per-ticker file's ticker: its name without the table ending (``AAPL.csv.gz``)."""
    kind = _file_kind(path)
    return path.name[: -len(kind[0])] if kind else path.stem


def _load_directory(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    files = sorted(p for p in path.iterdir()
                   if (_file_kind(p) or ("", ""))[0] in (".csv", ".csv.gz", ".parquet"))
    if not files:
        raise DataError(f"{path}: no .csv, .csv.gz or .parquet files in the directory")
    report = LoadReport(path=str(path))
    raws = [_read_bars_table(f, _ticker_of(f), report) for f in files]
    for index, raw in enumerate(raws):
        raw["_source"] = index
    bars = _validate_bars(pd.concat(raws, ignore_index=True), files, report)
    if bars.empty:
        raise DataError(f"{path}: no valid rows. " + " | ".join(report.lines()[1:]))
    _report_gaps(bars, report)
    report.rows_kept = len(bars)
    return bars, report


def _read_table(path: Path) -> pd.DataFrame:
    kind = _file_kind(path)
    try:
        if kind is not None and kind[1] == "parquet":
            return pd.read_parquet(path)
        if kind is not None:
            # strings, no NA guessing, blank lines kept: row k is CSV line k + 2
            # (a .csv.gz is decompressed on the fly: pandas infers gzip from the name)
            return pd.read_csv(path, dtype="str", keep_default_na=False, skip_blank_lines=False)
    except FileNotFoundError as e:
        raise DataError(f"bars file not found: {path}") from e
    except (OSError, ValueError, ImportError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    raise DataError(f"{path}: unsupported file type {path.suffix.lower()!r} "
                    "(use .csv, .csv.gz or .parquet)")


def _is_parquet(path: Path) -> bool:
    return (_file_kind(path) or ("", ""))[1] == "parquet"


def _line_numbers(path: Path, n_rows: int) -> np.ndarray:
    # CSV: header is line 1 (assumes no quoted field spans lines); Parquet: rows from 1
    offset = 1 if _is_parquet(path) else 2
    return np.arange(n_rows) + offset


class _Locator:
    # "file:line" (CSV) or "file:row N" (Parquet) for row i, formatted only when an example
    # is reported, so a million-row file does not build a million strings
    def __init__(self, paths: list[Path], source_codes: np.ndarray, lines: np.ndarray):
        self.labels = [
            (p.name, "row " if _is_parquet(p) else "") for p in paths
        ]
        self.source_codes = source_codes
        self.lines = lines

    def __getitem__(self, i: int) -> str:
        name, prefix = self.labels[int(self.source_codes[i])]
        return f"{name}:{prefix}{int(self.lines[i])}"

    def subset(self, mask: np.ndarray) -> _Locator:
        out = _Locator([], self.source_codes[mask], self.lines[mask])
        out.labels = self.labels
        return out


def _canonical(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _match_columns(table, aliases, path, required, report) -> dict[str, str]:
    by_key: dict[str, str] = {}
    for column in table.columns:
        by_key.setdefault(_canonical(column), column)
    found: dict[str, str] = {}
    for target, names in aliases.items():
        for alias in names:
            if alias in by_key and by_key[alias] not in found.values():
                found[target] = by_key[alias]
                if _canonical(by_key[alias]) != target:
                    report.notes.append(f"column {by_key[alias]!r} read as {target!r}")
                break
    for target in required:
        if target not in found:
            raise DataError(
                f"{path}: missing required column {target!r} "
                f"(accepted names: {', '.join(aliases[target])}); found {list(table.columns)}"
            )
    return found


def _read_bars_table(path: Path, default_ticker: str | None, report: LoadReport) -> pd.DataFrame:
    table = _read_table(path)
    required: tuple[str, ...] = ("date", "open", "high", "low", "close", "volume")
    if default_ticker is None:
        required = ("ticker", *required)
    columns = _match_columns(table, BAR_ALIASES, path, required, report)
    raw = pd.DataFrame({target: table[source] for target, source in columns.items()})
    if "ticker" not in raw.columns:
        raw["ticker"] = default_ticker
    if "vwap" not in raw.columns:
        report.notes.append(f"{path.name}: no vwap column; vwap = (high+low+close)/3 for all rows")
        raw["vwap"] = np.nan
    raw["_vwap_absent"] = "vwap" not in columns
    if "adj_close" not in raw.columns:
        raw["adj_close"] = np.nan
    raw["_adj_absent"] = "adj_close" not in columns
    raw["_line"] = _line_numbers(path, len(raw))
    raw["_source"] = 0
    # blank CSV lines are not data rows
    blank = np.logical_and.reduce([_is_empty(raw[c]) for c in BAR_ALIASES if c in columns])
    if blank.any():
        report.notes.append(f"{path.name}: {int(blank.sum())} blank lines ignored")
    return raw.loc[~blank].reset_index(drop=True)


def _is_empty(values: pd.Series) -> np.ndarray:
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        return (values.isna() | (values.astype("str").str.strip() == "")).to_numpy()
    return values.isna().to_numpy()


def _examples(where: _Locator, mask: np.ndarray, detail) -> list[str]:
    picked = np.flatnonzero(mask)[:_MAX_EXAMPLES]
    if isinstance(detail, pd.Series):
        return [f"{where[i]}: {detail.iloc[i]!r}" for i in picked]
    return [f"{where[i]}: {detail(i)}" for i in picked]


def _validate_bars(raw: pd.DataFrame, sources: list[Path], report: LoadReport) -> pd.DataFrame:
    report.rows_read += len(raw)
    where = _Locator(sources, raw["_source"].to_numpy(), raw["_line"].to_numpy())
    alive = np.ones(len(raw), dtype=bool)

    def drop(rule: str, bad: np.ndarray, detail) -> None:
        nonlocal alive
        hit = bad & alive
        report.add(rule, int(hit.sum()), _examples(where, hit, detail))
        alive &= ~hit

    required = ("date", "ticker", *_PRICES, "volume")
    empty = np.logical_or.reduce([_is_empty(raw[c]) for c in required])
    drop("missing_value", empty, lambda i: "empty field(s) " + ", ".join(
        c for c in required if _is_empty(raw[c].iloc[[i]])[0]))
    dates = _parse_dates(raw["date"], report)
    drop("bad_date", dates.isna().to_numpy(), raw["date"])
    tickers = _normalize_tickers(raw["ticker"])
    drop("bad_ticker", tickers.isna().to_numpy(), raw["ticker"])
    numbers = {c: _to_number(raw[c]) for c in (*_PRICES, "volume")}
    unreadable = np.logical_or.reduce([np.isnan(numbers[c]) for c in numbers])
    drop("bad_number", unreadable, lambda i: ", ".join(
        f"{c}={raw[c].iloc[i]!r}" for c in numbers if np.isnan(numbers[c][i])))
    o, h, low, c = (numbers[k] for k in _PRICES)
    with np.errstate(invalid="ignore"):
        drop("non_positive_price", np.minimum.reduce([o, h, low, c]) <= 0,
             lambda i: f"open={o[i]} high={h[i]} low={low[i]} close={c[i]}")
        drop("negative_volume", numbers["volume"] < 0, lambda i: f"volume={numbers['volume'][i]}")
        drop("high_below_low", h < low, lambda i: f"high={h[i]} < low={low[i]}")
        tol = _TOLERANCE * h
        outside = (np.maximum(o, c) > h + tol) | (np.minimum(o, c) < low - tol)
        drop("ohlc_inconsistent", outside,
             lambda i: f"open={o[i]} close={c[i]} outside [{low[i]}, {h[i]}]")
    drop("non_session_date", _non_session(dates, report), lambda i: str(dates.iloc[i].date()))
    factor = _adjustment_factor(raw, c, drop)
    bars = pd.DataFrame({"date": dates, "ticker": tickers, **numbers})
    bars["vwap"] = _vwap(raw, h, low, c, alive, where, report)
    absent = raw["_adj_absent"].to_numpy(dtype=bool)
    if absent.any() and not absent.all():
        report.notes.append(f"{int(absent.sum())} rows come from files without an adjusted "
                            "close: left unadjusted")
    if not absent.all():
        bars = _total_return_basis(bars.loc[alive], factor[alive], report)
    else:
        bars = bars.loc[alive]
    dup = bars.duplicated(["date", "ticker"], keep="last").to_numpy()
    kept = where.subset(alive)
    report.add("duplicate", int(dup.sum()), _examples(kept, dup, lambda i: (
        f"{bars['ticker'].iloc[i]} {bars['date'].iloc[i].date()} (a later row is kept)")))
    return normalize_bars(bars.loc[~dup])


def _adjustment_factor(raw: pd.DataFrame, close: np.ndarray, drop) -> np.ndarray:
    """``adj_close / close`` per row (1 where the file has no adjusted close).

    Rows whose file has the column but whose value is empty, unreadable or
    <= 0 are dropped through ``drop`` (rule ``bad_adj_close``).
    """
    absent = raw["_adj_absent"].to_numpy(dtype=bool)
    if absent.all():
        return np.ones(len(raw))
    adj = _to_number(raw["adj_close"])
    with np.errstate(invalid="ignore"):
        bad = ~absent & ~(adj > 0)
    drop("bad_adj_close", bad, raw["adj_close"])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(absent | bad, 1.0, adj / close)


def _total_return_basis(bars: pd.DataFrame, factor: np.ndarray, report: LoadReport
                        ) -> pd.DataFrame:
    """Scale prices by ``factor`` and volume by its inverse; the rule goes into the notes."""
    bars = bars.copy()
    for column in (*_PRICES, "vwap"):
        bars[column] = bars[column].to_numpy() * factor
    bars["volume"] = bars["volume"].to_numpy() / factor
    changed = int(np.sum(np.abs(factor - 1.0) > 1e-12))
    report.notes.append(
        "adjusted close used: open, high, low, close and vwap x (adj_close / close), volume / "
        f"(adj_close / close), so dividends and splits are not price moves ({changed} of "
        f"{len(bars)} rows changed; factor range "
        f"{factor.min() if len(factor) else 1.0:.6g}..{factor.max() if len(factor) else 1.0:.6g})")
    return bars


def _parse_dates(values: pd.Series, report: LoadReport) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values
    else:
        text = values.astype("str").str.strip()
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
        retry = parsed.isna() & (text != "")
        if retry.any():
            # not ISO 8601: parse element-wise (slower), US month-first like "01/02/2024"
            second = pd.to_datetime(text[retry], errors="coerce", format="mixed")
            if second.notna().any():
                report.notes.append(f"{int(second.notna().sum())} dates not in ISO format "
                                    "were parsed month-first (e.g. 01/02/2024 = Jan 2)")
                parsed = parsed.astype(second.dtype)
                parsed.loc[retry] = second
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(calendar.NEW_YORK).dt.tz_localize(None)
    return parsed.dt.normalize().astype("datetime64[ns]")


def _normalize_tickers(values: pd.Series) -> pd.Series:
    text = values.astype("str")
    mapping = {v: normalize_ticker(v) for v in text.unique()}
    return text.map(mapping)


def _to_number(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64").to_numpy()
    try:
        # one Arrow cast of the whole column: ~0.1 s per million strings against ~1.8 s for
        # to_numeric; it parses exactly what to_numeric parses or fails, and any value it
        # cannot parse (blank, stray spaces, "1,000") sends the column down the forgiving path
        parsed = pyarrow_compute.cast(pyarrow.array(values, type=pyarrow.string()),
                                      pyarrow.float64())
        return parsed.to_numpy(zero_copy_only=False).astype("float64", copy=False)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError, pyarrow.ArrowNotImplementedError):
        return pd.to_numeric(values.astype("str").str.strip(), errors="coerce").astype(
            "float64").to_numpy()


def _non_session(dates: pd.Series, report: LoadReport) -> np.ndarray:
    valid = dates.dropna()
    if valid.empty:
        return np.zeros(len(dates), dtype=bool)
    grid = calendar.sessions(valid.min(), valid.max())
    first = grid[0] if len(grid) else valid.max() + pd.Timedelta(days=1)
    checked = (dates >= first).to_numpy()
    if (~checked & dates.notna().to_numpy()).any():
        report.notes.append(f"dates before {first.date()} are outside the NYSE calendar's "
                            "range: not checked against it")
    return checked & ~dates.isin(grid).to_numpy()


def _vwap(raw, high, low, close, alive, where, report) -> np.ndarray:
    # rows from a file without a vwap column were noted once in _read_bars_table
    fallback = (high + low + close) / 3.0
    absent = raw["_vwap_absent"].to_numpy(dtype=bool)
    if absent.all():
        return fallback
    vwap = _to_number(raw["vwap"])
    with np.errstate(invalid="ignore"):
        tol = _TOLERANCE * high
        invalid = np.isnan(vwap) | (vwap <= 0) | (vwap > high + tol) | (vwap < low - tol)
    hit = invalid & alive & ~absent
    report.add("vwap_filled", int(hit.sum()), _examples(where, hit, raw["vwap"]))
    return np.where(invalid, fallback, vwap)


def _report_gaps(bars: pd.DataFrame, report: LoadReport) -> None:
    grid = calendar.sessions(bars["date"].min(), bars["date"].max())
    if len(grid) == 0:
        return
    position = grid.get_indexer(bars["date"])
    frame = pd.DataFrame({"ticker": bars["ticker"], "date": bars["date"], "pos": position})
    frame = frame.loc[frame["pos"] >= 0].sort_values(["ticker", "pos"], kind="stable")
    step = frame.groupby("ticker", sort=False)["pos"].diff().to_numpy()
    missing = np.nan_to_num(step, nan=1.0) - 1.0
    gaps = frame.loc[missing > 0]
    sizes = missing[missing > 0].astype(int)
    examples = [
        f"{row.ticker}: {size} session(s) missing, "
        f"{grid[row.pos - size].date()}..{grid[row.pos - 1].date()}"
        for row, size in zip(gaps.head(_MAX_EXAMPLES).itertuples(index=False), sizes)
    ]
    report.add("gap", int(sizes.sum()), examples)
