"""The trading universe: the watchlist table of the app database, and choosing the source.

Two sources form the universe (config key ``universe_source``):

* ``"stocks_file"`` -- the ``stocks.txt`` file (config key ``stocks_file``), parsed
  strictly by :func:`bma_models.data.universe.load_universe_file`;
* ``"watchlist"`` -- the ``watchlist`` table of the app database
  (:mod:`autotrader.appdb`), which the GUI edits through :class:`Watchlist`.

Symbols are validated and normalised the same way everywhere (``brk-b`` ->
``BRK.B``), so the file, the table and the bars agree.
"""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bma_models.data.universe import (
    RejectedLine,
    UniverseError,
    load_universe_file,
    normalize_ticker,
    read_text_file,
    read_universe_text,
)

logger = logging.getLogger(__name__)

__all__ = ["ImportReport", "UNIVERSE_SOURCES", "UniverseError", "Watchlist", "configured_universe",
           "resolve_universe"]

UNIVERSE_SOURCES: tuple[str, ...] = ("stocks_file", "watchlist")
_TICKER_COLUMNS = ("ticker", "symbol", "tickers", "symbols")


@dataclass
class ImportReport:
    """Outcome of :meth:`Watchlist.import_file`.

    Attributes
    ----------
    source : str
        The file imported.
    added : list of str
        Tickers newly inserted.
    already_present : list of str
        Valid tickers that were already on the watchlist (left unchanged).
    rejected : list of RejectedLine
        Invalid lines, ``str()`` gives ``file:line: 'X' is not a valid ticker``.
    duplicates : list of str
        ``file:line`` messages for tickers listed twice in the file.
    """

    source: str
    added: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    rejected: list[RejectedLine] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the GUI status bar."""
        return (
            f"{self.source}: {len(self.added)} added, {len(self.already_present)} already "
            f"present, {len(self.rejected)} rejected, {len(self.duplicates)} duplicates"
        )


class Watchlist:
    """The ``watchlist`` table (ticker, note, added_at) of the app database.

    Parameters
    ----------
    conn : sqlite3.Connection
        An open connection from :func:`autotrader.appdb.connect` (schema created).

    Every write runs in one transaction (``with conn``), so a failed
    :meth:`replace` leaves the previous list intact.

    Examples
    --------
    >>> from autotrader import appdb
    >>> watchlist = Watchlist(appdb.connect(":memory:"))
    >>> watchlist.add("brk-b", note="class B")
    'BRK.B'
    >>> watchlist.replace(["MSFT", "AAPL"])
    >>> watchlist.tickers()
    ['AAPL', 'MSFT']
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __repr__(self) -> str:
        return f"Watchlist({len(self.tickers())} tickers)"

    def tickers(self) -> list[str]:
        """All tickers, sorted."""
        rows = self.conn.execute("SELECT ticker FROM watchlist ORDER BY ticker").fetchall()
        return [row[0] for row in rows]

    def entries(self) -> list[tuple[str, str, str]]:
        """``(ticker, note, added_at)`` rows, sorted by ticker (for the GUI table)."""
        return self.conn.execute(
            "SELECT ticker, note, added_at FROM watchlist ORDER BY ticker"
        ).fetchall()

    def add(self, ticker: str, note: str = "") -> str:
        """Insert a ticker (or update its note if present) and return its normalised form.

        Raises
        ------
        UniverseError
            If ``ticker`` is not a valid symbol.
        """
        symbol = _valid(ticker)
        with self.conn:
            self.conn.execute(
                "INSERT INTO watchlist (ticker, note) VALUES (?, ?) "
                "ON CONFLICT(ticker) DO UPDATE SET note = excluded.note",
                (symbol, note),
            )
        logger.info("watchlist: added %s", symbol)
        return symbol

    def remove(self, ticker: str) -> bool:
        """Delete a ticker; True if it was on the list."""
        symbol = normalize_ticker(ticker) or str(ticker).strip().upper()
        with self.conn:
            cursor = self.conn.execute("DELETE FROM watchlist WHERE ticker = ?", (symbol,))
        removed = cursor.rowcount > 0
        logger.info("watchlist: remove %s -> %s", symbol, "removed" if removed else "absent")
        return removed

    def replace(self, tickers: list[str]) -> None:
        """Make the watchlist exactly ``tickers`` (notes of kept tickers survive).

        Raises
        ------
        UniverseError
            If any ticker is invalid; nothing is changed then.
        """
        symbols = list(dict.fromkeys(_valid(t) for t in tickers))
        with self.conn:
            marks = ",".join("?" * len(symbols))
            self.conn.execute(f"DELETE FROM watchlist WHERE ticker NOT IN ({marks})", symbols)
            self.conn.executemany(
                "INSERT OR IGNORE INTO watchlist (ticker) VALUES (?)", [(s,) for s in symbols]
            )
        logger.info("watchlist: replaced with %d tickers", len(symbols))

    def import_file(self, path: str | Path) -> ImportReport:
        """Add the tickers of a ``stocks.txt``-style file or of a CSV with a ticker column.

        A ``.csv`` file is read by header (``ticker``/``symbol`` column, any case);
        anything else is read as a ``stocks.txt`` file. Invalid lines are reported,
        not fatal: the valid tickers are added.

        Raises
        ------
        UniverseError
            If the file cannot be read or a CSV has no ticker/symbol column.
        """
        file_path = Path(path)
        text = read_text_file(file_path)
        if file_path.suffix.lower() == ".csv":
            tickers, rejected, duplicates = _parse_ticker_csv(text, file_path.name)
        else:
            parsed = read_universe_text(text, file_path.name)
            tickers, rejected = parsed.tickers, parsed.rejected
            duplicates = [str(d) for d in parsed.duplicates]
        report = ImportReport(source=str(file_path), rejected=rejected, duplicates=duplicates)
        present = set(self.tickers())
        report.already_present = [t for t in tickers if t in present]
        report.added = [t for t in tickers if t not in present]
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO watchlist (ticker) VALUES (?)", [(t,) for t in report.added]
            )
        for line in rejected:
            logger.warning("watchlist import: %s", line)
        logger.info("watchlist import: %s", report.summary())
        return report


def resolve_universe(
    source: Literal["stocks_file", "watchlist"],
    *,
    stocks_file: str | Path = "stocks.txt",
    conn: sqlite3.Connection | None = None,
) -> list[str]:
    """Return the tickers of the configured universe source.

    Parameters
    ----------
    source : {"stocks_file", "watchlist"}
        Config key ``universe_source``.
    stocks_file : str or Path, default "stocks.txt"
        Config key ``stocks_file``; read strictly (an invalid line raises).
    conn : sqlite3.Connection, optional
        App database, required for ``"watchlist"``.

    Why no silent fallback from an empty watchlist to ``stocks.txt``: trading a
    universe the user did not choose is worse than refusing to start; the error
    tells them which source is empty.

    Raises
    ------
    UniverseError
        Unknown source, missing connection, empty watchlist, or an invalid file.
    """
    if source == "stocks_file":
        return load_universe_file(stocks_file)
    if source == "watchlist":
        if conn is None:
            raise UniverseError("universe_source 'watchlist' needs the app database connection")
        tickers = Watchlist(conn).tickers()
        if not tickers:
            raise UniverseError(
                "the watchlist is empty: add tickers in the GUI or set universe_source to "
                "'stocks_file'"
            )
        return tickers
    raise UniverseError(f"unknown universe source {source!r}; expected one of {UNIVERSE_SOURCES}")


def configured_universe(source: Literal["stocks_file", "watchlist"], stocks_file: str | Path,
                        db_path: str | Path | None) -> list[str]:
    """Return the tickers of ``app.universe_source``: ``app.stocks_file`` or the DB watchlist.

    ``db_path`` is the app database (``workstation.db``), opened only for the
    watchlist; None with ``watchlist`` is the error of :func:`resolve_universe`.
    """
    if source != "watchlist" or db_path is None:
        return resolve_universe(source, stocks_file=stocks_file)
    from autotrader import appdb

    conn = appdb.connect(db_path)
    try:
        return resolve_universe(source, conn=conn)
    finally:
        conn.close()


def _valid(ticker: str) -> str:
    symbol = normalize_ticker(ticker)
    if symbol is None:
        raise UniverseError(f"{str(ticker).strip()!r} is not a valid ticker")
    return symbol


def _parse_ticker_csv(text: str, name: str):
    rows = list(csv.reader(io.StringIO(text)))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    column = next((header.index(c) for c in _TICKER_COLUMNS if c in header), None)
    if column is None:
        found = rows[0] if rows else []
        raise UniverseError(f"{name}:1: no ticker/symbol column in header {found}")
    tickers: list[str] = []
    first_seen: dict[str, int] = {}
    rejected: list[RejectedLine] = []
    duplicates: list[str] = []
    for number, row in enumerate(rows[1:], start=2):
        cell = row[column].strip() if column < len(row) else ""
        if not cell:
            if any(c.strip() for c in row):
                rejected.append(RejectedLine(name, number, "", "empty ticker"))
            continue
        symbol = normalize_ticker(cell)
        if symbol is None:
            rejected.append(RejectedLine(name, number, cell, f"{cell!r} is not a valid ticker"))
        elif symbol in first_seen:
            duplicates.append(f"{name}:{number}: duplicate {symbol!r} (first listed on line "
                              f"{first_seen[symbol]}); dropped")
        else:
            first_seen[symbol] = number
            tickers.append(symbol)
    return tickers, rejected, duplicates
