"""Ticker symbols and the ``stocks.txt`` universe format (pure parsing, no I/O beyond reading).

Format of a universe file::

    # Large US names (comments start with '#', also after a ticker)
    AAPL
    msft          # case is normalised -> MSFT
    BRK.B         # class shares: BRK.B, BF-B and BF/B are all stored as BRK.B / BF.B

    NVDA          # blank lines are ignored

Rules: one ticker per line; surrounding whitespace and ``#`` comments are
ignored; symbols are upper-cased; a duplicate is dropped with a warning naming
both lines; a line that is not a valid symbol is rejected with a
``file:line: 'TEXT' is not a valid ticker`` message.

A valid symbol is a letter followed by up to six letters or digits, optionally
followed by a share-class suffix of one or two letters after ``.``, ``-`` or
``/`` (``BRK.B``, ``BF-B``, ``RDS/A``). Why normalise the separator to ``.``:
data vendors disagree (Polygon writes ``BRK.B``, Yahoo ``BRK-B``, some CSVs
``BRK/B``); the data protocol uses the dot, so a universe written either way
matches the bars.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import NamedTuple

from bma_models.errors import DataError

logger = logging.getLogger(__name__)

TICKER_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,6}(?:\.[A-Z]{1,2})?$")
_CLASS_SEPARATOR = re.compile(r"[-/]")


class UniverseError(DataError):
    """A universe file or watchlist entry is invalid; the message names file and line."""


class RejectedLine(NamedTuple):
    """A universe line that is not a valid ticker."""

    source: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


class DuplicateLine(NamedTuple):
    """A ticker listed again; the later line is dropped."""

    source: str
    line: int
    ticker: str
    first_line: int

    def __str__(self) -> str:
        return (
            f"{self.source}:{self.line}: duplicate {self.ticker!r} "
            f"(first listed on line {self.first_line}); dropped"
        )


class UniverseParse(NamedTuple):
    """Full outcome of parsing a universe text."""

    tickers: list[str]
    rejected: list[RejectedLine]
    duplicates: list[DuplicateLine]


def normalize_ticker(text: str) -> str | None:
    """Return the protocol form of a symbol (upper case, ``.`` class separator), or None.

    Examples
    --------
    >>> normalize_ticker(" brk-b ")
    'BRK.B'
    >>> normalize_ticker("FOO BAR") is None
    True
    """
    candidate = _CLASS_SEPARATOR.sub(".", str(text).strip().upper())
    return candidate if TICKER_PATTERN.match(candidate) else None


def read_universe_text(text: str, source_name: str = "<text>") -> UniverseParse:
    """Parse universe text into tickers (first-seen order), rejected lines and duplicates.

    Duplicates are logged at WARNING level; rejected lines are only returned
    (callers decide whether they are fatal, see :func:`load_universe_file`).
    """
    tickers: list[str] = []
    first_seen: dict[str, int] = {}
    rejected: list[RejectedLine] = []
    duplicates: list[DuplicateLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        content = raw.split("#", 1)[0].strip()
        if not content:
            continue
        ticker = normalize_ticker(content)
        if ticker is None:
            reason = f"{content!r} is not a valid ticker"
            rejected.append(RejectedLine(source_name, number, content, reason))
            continue
        if ticker in first_seen:
            duplicate = DuplicateLine(source_name, number, ticker, first_seen[ticker])
            logger.warning("%s", duplicate)
            duplicates.append(duplicate)
            continue
        first_seen[ticker] = number
        tickers.append(ticker)
    return UniverseParse(tickers, rejected, duplicates)


def parse_universe(
    text: str, source_name: str = "<text>"
) -> tuple[list[str], list[RejectedLine]]:
    r"""Parse universe text into ``(tickers, rejected)``.

    Parameters
    ----------
    text : str
        Contents in the ``stocks.txt`` format (see the module docstring).
    source_name : str
        File name used in messages (``stocks.txt:12: ...``).

    Returns
    -------
    tickers : list of str
        Valid, normalised, de-duplicated tickers in first-seen order.
    rejected : list of RejectedLine
        Invalid lines; ``str(line)`` is ``"stocks.txt:12: 'FOO BAR' is not a valid ticker"``.

    Examples
    --------
    >>> tickers, rejected = parse_universe("aapl\n# note\nBRK.B\nFOO BAR\n", "stocks.txt")
    >>> tickers
    ['AAPL', 'BRK.B']
    >>> print(rejected[0])
    stocks.txt:4: 'FOO BAR' is not a valid ticker
    """
    parsed = read_universe_text(text, source_name)
    return parsed.tickers, parsed.rejected


def read_text_file(path: str | Path) -> str:
    """Read a UTF-8 text file (a byte-order mark is tolerated) or raise UniverseError."""
    file_path = Path(path)
    try:
        return file_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise UniverseError(f"universe file not found: {file_path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise UniverseError(f"cannot read universe file {file_path}: {e}") from e


def load_universe_file(path: str | Path, strict: bool = True) -> list[str]:
    """Load a ``stocks.txt``-style file.

    Parameters
    ----------
    path : str or Path
        The universe file.
    strict : bool, default True
        If True any invalid line raises; if False invalid lines are logged at
        WARNING level and skipped.

    Why strict by default: a typo in the universe silently shrinks what the
    research and the trader see; failing loudly with ``file:line`` is cheaper
    than discovering a missing name in a report.

    Raises
    ------
    UniverseError
        If the file cannot be read, has invalid lines (``strict``), or lists no ticker.
    """
    file_path = Path(path)
    parsed = read_universe_text(read_text_file(file_path), file_path.name)
    if parsed.rejected:
        message = "; ".join(str(line) for line in parsed.rejected[:10])
        if len(parsed.rejected) > 10:
            message += f"; ... {len(parsed.rejected) - 10} more"
        if strict:
            raise UniverseError(message)
        logger.warning("skipping invalid universe lines: %s", message)
    if not parsed.tickers:
        raise UniverseError(f"{file_path.name}: no tickers found in {file_path}")
    logger.info("loaded %d tickers from %s", len(parsed.tickers), file_path)
    return parsed.tickers
