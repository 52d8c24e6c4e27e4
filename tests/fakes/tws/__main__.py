"""Run the fake TWS for a local demo: ``python -m tests.fakes.tws --port 7497``."""

from __future__ import annotations

import argparse
import logging
import random
import threading

from .gateway import FakeGateway
from .model import DEFAULT_PRICES

logger = logging.getLogger("tests.fakes.tws")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.tws", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7497, help="0 picks a free port")
    parser.add_argument("--account", action="append", help="managed account (repeatable)")
    parser.add_argument("--cash", type=float, default=100_000.0)
    parser.add_argument("--delayed", action="store_true", help="no live market data permission")
    parser.add_argument(
        "--walk", type=float, default=0.0, metavar="SECONDS",
        help="move prices by a seeded random walk every SECONDS (0 = static prices)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=42, help="random-walk seed")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def _random_walk(gateway: FakeGateway, every: float, seed: int, stop: threading.Event) -> None:
    rng = random.Random(seed)
    prices = dict(DEFAULT_PRICES)
    while not stop.wait(every):
        for symbol, last in prices.items():
            last = max(1.0, round(last * (1 + rng.gauss(0.0, 0.001)), 2))
            prices[symbol] = last
            gateway.set_price(symbol, last=last, bid=round(last - 0.01, 2),
                              ask=round(last + 0.01, 2))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Start the gateway and serve until Ctrl+C."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    gateway = FakeGateway(
        host=args.host,
        port=args.port,
        accounts=args.account or ["DU1234567"],
        cash=args.cash,
        live_permission=not args.delayed,
    )
    gateway.start()
    logger.info("fake TWS (server version %s) on %s:%s - Ctrl+C to stop",
                gateway.server_version, gateway.host, gateway.port)  # fmt: skip
    stop = threading.Event()
    if args.walk > 0:
        threading.Thread(
            target=_random_walk, args=(gateway, args.walk, args.seed, stop), daemon=True
        ).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        stop.set()
        gateway.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
