"""The trader's book on disk: ``<state>/book.json`` after every cycle, read back by research.

Writers and readers of the state directory (``$BMA_STATE_DIR`` or ``./state``):

* :func:`write_book` - the runner, after every cycle: the account, its
  positions at the cycle's prices, the plan it traded and the cycle's outcome
  per symbol (:class:`~autotrader.engine.plan_status.BookSnapshot`), written
  atomically (temporary file + ``os.replace``), so a reader never sees half a
  file. It is the IB positions snapshot research reads without connecting.
* :func:`read_book` - ``autotrader status`` and research.
* :func:`read_status` - the plan-versus-book document of the last cycle
  (``autotrader status`` prints it, the GUI's Trading tab shows it).
* :func:`read_paper_account` - research: the paper account's positions and cash,
  read-only from ``paper_broker.db`` (the exact book; the broker's price feed
  is not needed, research values the shares at its own closes).
* :func:`holdings_from_state`, :func:`holdings_from_file`,
  :func:`resolve_holdings` - ``bma run --holdings auto|state|none|FILE``.

Every reader is read-only and raises :class:`BookError` naming the file.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from autotrader.domain.errors import TraderError
from autotrader.engine.plan_status import BookPosition, BookSnapshot, Outcome, plan_vs_book
from bma_models.portfolio import Holdings

logger = logging.getLogger(__name__)

__all__ = ["BOOK_FILE", "PAPER_FILE", "BookError", "holdings_from_file", "holdings_from_state",
           "read_book", "read_paper_account", "read_status", "resolve_holdings", "write_book"]

BOOK_FILE = "book.json"
PAPER_FILE = "paper_broker.db"
#: ``--holdings`` values that are not a file name
HOLDINGS_MODES = ("auto", "state", "none")
_FORMAT = 1


class BookError(TraderError):
    """A book file (state snapshot, paper account, holdings CSV) is missing or malformed."""


def write_book(path: str | Path, snapshot: BookSnapshot) -> Path:
    """Write ``snapshot`` to ``path`` atomically (JSON)."""
    path = Path(path)
    document = _clean({"format": _FORMAT, **dataclasses.asdict(snapshot)})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".book-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, allow_nan=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _clean(value: Any) -> Any:
    # NaN (an unpriced name) is written as null: the file stays strict JSON
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_book(path: str | Path) -> BookSnapshot:
    """Read the book snapshot in ``path``.

    Raises
    ------
    BookError
        Missing file, not JSON, or a missing/bad field (named with the file).
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise BookError(f"{path}: no book snapshot (it is written after every "
                        "`autotrader run` cycle)") from e
    except (OSError, json.JSONDecodeError) as e:
        raise BookError(f"{path} is not readable JSON: {e}") from e
    try:
        positions = tuple(BookPosition(str(p["symbol"]), int(p["quantity"]), _float(p["price"]),
                                       _float(p["avg_cost"])) for p in document["positions"])
        outcomes = {str(s): Outcome(**o) for s, o in document.get("outcomes", {}).items()}
        return BookSnapshot(
            as_of=str(document["as_of"]), broker=str(document["broker"]),
            run_id=str(document["run_id"]), equity=_float(document["equity"]),
            cash=_float(document["cash"]), positions=positions,
            planned={str(k): float(v) for k, v in document.get("planned", {}).items()},
            prices={str(k): _float(v) for k, v in document.get("prices", {}).items()},
            outcomes=outcomes, lot=int(document.get("lot", 1)),
            tolerance_usd=_float(document.get("tolerance_usd", 0.0)),
            targets={str(k): float(v) for k, v in document.get("targets", {}).items()},
            run_last_date=str(document.get("run_last_date") or ""),
            run_age_sessions=_optional_int(document.get("run_age_sessions")),
            run_beats_baselines=_optional_bool(document.get("run_beats_baselines")),
            run_beaten_by=tuple(str(r) for r in document.get("run_beaten_by") or ()))
    except (KeyError, TypeError, ValueError) as e:
        raise BookError(f"{path}: bad book snapshot ({type(e).__name__}: {e})") from e


def read_status(state_dir: str | Path) -> dict[str, Any]:
    """Return the plan versus the book after the last cycle (``plan_vs_book`` of ``book.json``).

    Raises
    ------
    BookError
        No snapshot yet (no cycle ran with this state directory) or a bad one.
    """
    return plan_vs_book(read_book(Path(state_dir) / BOOK_FILE))


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"expected true, false or null, not {value!r}")


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def read_paper_account(path: str | Path) -> tuple[dict[str, tuple[int, float]], float]:
    """``({symbol: (quantity, avg_cost)}, cash)`` of the paper account, opened read-only.

    Raises
    ------
    BookError
        The file is missing or is not a paper account.
    """
    path = Path(path)
    if not path.is_file():
        raise BookError(f"{path}: no paper account")
    try:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=10.0)
        try:
            rows = conn.execute("SELECT symbol, quantity, avg_cost FROM positions "
                                "WHERE quantity > 0 ORDER BY symbol").fetchall()
            cash_row = conn.execute("SELECT amount FROM cash WHERE id = 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise BookError(f"{path}: not a readable paper account ({e})") from e
    if cash_row is None:
        raise BookError(f"{path}: the paper account has no cash row")
    return {s: (int(q), float(c)) for s, q, c in rows}, float(cash_row[0])


def holdings_from_state(state_dir: str | Path) -> Holdings | None:
    """Read the trader's current book from its state directory (None when it has none).

    ``book.json`` says which broker traded last. For the paper broker the paper
    account itself is read (exact, whatever happened after the last cycle);
    for IB the snapshot of the last cycle is used (research never connects).
    Without ``book.json`` an existing paper account is read.
    """
    state = Path(state_dir)
    book_path, paper_path = state / BOOK_FILE, state / PAPER_FILE
    book = read_book(book_path) if book_path.is_file() else None
    if (book is None or book.broker == "paper") and paper_path.is_file():
        positions, cash = read_paper_account(paper_path)
        own = dict(book.prices) if book is not None else {}
        logger.info("book: paper account %s (%d positions, cash %.2f)", paper_path,
                    len(positions), cash)
        return Holdings.from_quantities(
            {s: q for s, (q, _) in positions.items()}, cash,
            source=f"paper account {paper_path}",
            prices={s: own.get(s, cost) for s, (_, cost) in positions.items()})
    if book is None:
        return None
    logger.info("book: %s snapshot %s as of %s (%d positions)", book.broker, book_path,
                book.as_of, len(book.positions))
    return Holdings.from_quantities(
        {p.symbol: p.quantity for p in book.positions}, book.cash,
        source=f"{book.broker} snapshot {book_path} as of {book.as_of}",
        prices={p.symbol: p.price for p in book.positions}, as_of=book.as_of)


def holdings_from_file(path: str | Path) -> Holdings:
    """Read a holdings CSV: ``ticker`` and ``quantity`` (shares) or ``weight`` (of equity).

    With quantities, an optional row ``CASH`` gives the cash in USD (the equity
    is then cash + holdings at the run's closes; without it the equity is
    ``research.portfolio.capital``). Weights need no cash row.

    Raises
    ------
    BookError
        Missing file or column, a bad number, a duplicate ticker (file and line named).
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = [f.strip().lower() for f in reader.fieldnames or []]
            kind = "quantity" if "quantity" in fields else "weight" if "weight" in fields else None
            if "ticker" not in fields or kind is None:
                raise BookError(f"{path} line 1: needs a 'ticker' column and a 'quantity' or "
                                f"'weight' column, found {reader.fieldnames}")
            values = _holdings_rows(reader, path, kind)
    except OSError as e:
        raise BookError(f"{path}: cannot be read ({e})") from e
    cash = values.pop("CASH", None)
    if kind == "weight":
        if cash is not None:
            raise BookError(f"{path}: a CASH row needs quantities, not weights")
        return Holdings.from_weights(values, source=f"file {path}")
    return Holdings.from_quantities(values, cash, source=f"file {path}")


def _holdings_rows(reader: csv.DictReader, path: Path, kind: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line, raw in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        ticker = row.get("ticker", "").upper()
        if not ticker:
            raise BookError(f"{path} line {line}: empty ticker")
        if ticker in values:
            raise BookError(f"{path} line {line}: {ticker} appears twice")
        try:
            value = float(row.get(kind, ""))
        except ValueError as e:
            raise BookError(f"{path} line {line}: {kind} {row.get(kind)!r} is not a number") \
                from e
        if not math.isfinite(value) or (value < 0 and ticker != "CASH"):
            raise BookError(f"{path} line {line}: {kind} {value} must be a finite number >= 0 "
                            "(long-only book)")
        values[ticker] = value
    return values


def resolve_holdings(spec: str | None, state_dir: str | Path) -> Holdings | None:
    """Resolve ``--holdings`` into the book the plan starts from (None: cash).

    ``spec`` is ``auto`` (the default: the trader's state if it has a book,
    else cash), ``state`` (the trader's state, an error without one), ``none``
    (cash) or the path of a CSV file (:func:`holdings_from_file`).
    """
    spec = (spec or "auto").strip()
    if spec == "none":
        logger.info("book: none (--holdings none): the plan starts from cash")
        return None
    if spec in ("auto", "state"):
        holdings = holdings_from_state(state_dir)
        if holdings is None:
            if spec == "state":
                raise BookError(f"--holdings state: no {BOOK_FILE} or {PAPER_FILE} in "
                                f"{Path(state_dir)} (run `autotrader run` first, or pass "
                                "--state-dir)")
            logger.info("book: no trader state in %s: the plan starts from cash", state_dir)
        return holdings
    return holdings_from_file(spec)
