"""US stock contract qualification with a primary-exchange fallback chain and a cache.

Why contract details instead of ``qualifyContracts``: ib_async 2.x returns
``None`` for an unknown or ambiguous contract where ib_insync 0.9.86 logged and
returned fewer contracts (older versions raised); ``reqContractDetails``
answers the same way in both (a list, empty on error 200) and also carries the
``minTick`` every order price is rounded to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from autotrader.domain.errors import BrokerError

logger = logging.getLogger(__name__)

#: Exchanges tried as ``primaryExchange`` when SMART alone fails or is ambiguous.
FALLBACK_EXCHANGES = ("NASDAQ", "NYSE", "ARCA", "AMEX")


@dataclass(frozen=True)
class Resolved:
    """A qualified contract, its minimum tick and how it was found."""

    contract: Any
    min_tick: float
    attempts: tuple[str, ...] = field(default=())


class ContractBook:
    """Qualify ``Stock(symbol, "SMART", "USD")`` once per symbol and cache the answer.

    Parameters
    ----------
    lib : the IB library module (``Stock`` comes from it).
    details : ``contract -> list[ContractDetails]`` (the adapter passes
        ``ib.reqContractDetails``).
    """

    def __init__(self, lib: Any, details: Any) -> None:
        self.lib = lib
        self.details = details
        self._cache: dict[str, Resolved] = {}

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._cache

    def resolve(self, symbol: str, primary_exchange: str | None = None) -> Resolved:
        """Qualify ``symbol`` into one contract; raise :class:`BrokerError` when none fits.

        Tries the hint (if any), then plain SMART, then each exchange of
        :data:`FALLBACK_EXCHANGES`; the first attempt with exactly one match
        wins. The attempts are kept on the result (``attempts``) and logged.
        """
        if symbol in self._cache:
            return self._cache[symbol]
        hints: list[str | None] = [primary_exchange] if primary_exchange else []
        hints += [None] + [x for x in FALLBACK_EXCHANGES if x != primary_exchange]
        attempts: list[str] = []
        for hint in hints:
            found = self._details(symbol, hint)
            attempts.append(f"{hint or 'SMART'}:{len(found)}")
            if len(found) == 1:
                resolved = self._resolved(found[0], tuple(attempts))
                if len(attempts) > 1:
                    logger.warning("contract %s qualified after fallback %s", symbol, attempts)
                self._cache[symbol] = resolved
                return resolved
        raise BrokerError(f"contract {symbol} could not be qualified (tried "
                          f"{', '.join(attempts)}: matches per attempt)")

    def _details(self, symbol: str, hint: str | None) -> list[Any]:
        stock = self.lib.Stock(symbol, "SMART", "USD")
        if hint:
            stock.primaryExchange = hint
        try:
            found = self.details(stock) or []
        except (ConnectionError, TimeoutError) as e:
            raise BrokerError(f"contract details for {symbol} failed: {e}") from e
        return [d for d in found if d.contract.secType in ("STK", "")]

    def _resolved(self, details: Any, attempts: tuple[str, ...]) -> Resolved:
        contract = details.contract
        contract.exchange = "SMART"
        tick = float(details.minTick or 0.01)
        return Resolved(contract, tick if tick > 0 else 0.01, attempts)
