"""Per-cycle price snapshots: live, else delayed (market data type 3), else the previous close.

The fallback chain is explicit and recorded: ``MarketData.modes`` says which
source priced each symbol in the last snapshot and ``fallbacks`` counts them
over the session; a warning names every symbol that left the live path.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from autotrader.broker._ib_translate import NO_DELAYED_DATA_CODES, NO_LIVE_DATA_CODES
from autotrader.domain.records import Quote

logger = logging.getLogger(__name__)

PrevClose = Callable[[str], "float | None"]

LIVE, DELAYED, PREV_CLOSE = "live", "delayed", "prev_close"


def _num(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) and number > 0 else math.nan


class MarketData:
    """Snapshot quotes through ``request(contracts) -> tickers`` with the fallback chain.

    Parameters
    ----------
    request : the adapter passes ``ib.reqTickers`` (a snapshot per contract).
    set_data_type : ``ib.reqMarketDataType``; 3 asks for delayed data where live
        is not permitted (permitted symbols stay live).
    use_delayed : ``connection.use_delayed_if_no_realtime``.
    prev_close : last resort, ``symbol -> price or None`` (Polygon previous close).
    """

    def __init__(self, request: Callable[..., list[Any]], set_data_type: Callable[[int], Any],
                 use_delayed: bool = True, prev_close: PrevClose | None = None) -> None:
        self.request = request
        self.set_data_type = set_data_type
        self.use_delayed = use_delayed
        self.prev_close = prev_close
        self.delayed = False
        self.modes: dict[str, str] = {}
        self.fallbacks: Counter[str] = Counter()
        self._codes: dict[str, set[int]] = {}

    def note_error(self, symbol: str, code: int) -> None:
        """Record a market-data error code for ``symbol`` (called from the error handler)."""
        self._codes.setdefault(symbol, set()).add(code)

    def resubscribe(self) -> None:
        """Restore the session's market-data type after a reconnect or a 1101 notice."""
        if self.delayed:
            self.set_data_type(3)
            logger.info("market data type 3 (delayed) re-requested")

    def snapshot(self, contracts: dict[str, Any]) -> dict[str, Quote]:
        """Quotes for ``{symbol: contract}``; symbols no source could price are absent."""
        self._codes = {}
        quotes = self._ask(contracts, LIVE if not self.delayed else DELAYED)
        missing = {s: c for s, c in contracts.items() if s not in quotes}
        refused = {s for s in missing if self._codes.get(s, set()) & NO_LIVE_DATA_CODES}
        if refused and self.use_delayed and not self.delayed:
            logger.warning("no live market data permission for %s: switching to delayed "
                           "data (type 3)", sorted(refused))
            self.set_data_type(3)
            self.delayed = True
            self._codes = {}
            quotes.update(self._ask({s: missing[s] for s in refused}, DELAYED))
        for symbol in sorted(set(contracts) - set(quotes)):
            quote = self._from_prev_close(symbol)
            if quote is not None:
                quotes[symbol] = quote
        return quotes

    def _ask(self, contracts: dict[str, Any], mode: str) -> dict[str, Quote]:
        if not contracts:
            return {}
        try:
            tickers = self.request(*contracts.values())
        except (TimeoutError, ConnectionError) as e:
            logger.warning("market data snapshot failed (%s): %s", mode, e)
            return {}
        quotes: dict[str, Quote] = {}
        for ticker in tickers:
            symbol = ticker.contract.symbol
            last, close = _num(ticker.last), _num(ticker.close)
            bid, ask = _num(ticker.bid), _num(ticker.ask)
            if math.isnan(last) and not math.isnan(bid) and not math.isnan(ask):
                last = (bid + ask) / 2.0
            if math.isnan(last) and math.isnan(close):
                continue
            data_type = getattr(ticker, "marketDataType", 1)
            used = DELAYED if data_type in (3, 4) else LIVE
            quotes[symbol] = Quote(symbol, last=last, prev_close=close, bid=bid, ask=ask,
                                   time=getattr(ticker, "time", None))
            self._record(symbol, used)
        return quotes

    def _from_prev_close(self, symbol: str) -> Quote | None:
        codes = self._codes.get(symbol, set())
        reason = ("delayed data not enabled" if codes & NO_DELAYED_DATA_CODES
                  else f"no IB price (codes {sorted(codes)})")
        price = self.prev_close(symbol) if self.prev_close is not None else None
        if price is None or not price > 0:
            logger.warning("no price for %s: %s and no previous close", symbol, reason)
            self.modes.pop(symbol, None)
            return None
        logger.warning("%s priced from the previous close %.4f: %s", symbol, price, reason)
        self._record(symbol, PREV_CLOSE)
        return Quote(symbol, last=math.nan, prev_close=float(price))

    def _record(self, symbol: str, mode: str) -> None:
        self.modes[symbol] = mode
        if mode != LIVE:
            self.fallbacks[mode] += 1
