"""Readers during reloads see the old or the new config, never a mix."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from autotrader.config import ConfigStore


def _write_pair(path: Path, n: int) -> None:
    # Atomic replace: the test exercises the store's swap, not torn file reads.
    tmp = path.with_name(f".{path.name}.{n}.tmp")
    tmp.write_text(json.dumps({"orders": {"daily_order_limit": 2 * n,
                                          "per_cycle_order_limit": n}}))
    os.replace(tmp, path)


def test_readers_never_see_a_half_applied_reload(tmp_path):
    _write_pair(tmp_path / "config.json", 1)
    store = ConfigStore(tmp_path, interval_s=0.0)  # every get() may trigger a reload
    stop = threading.Event()
    mixes: list[tuple[int, int]] = []
    values_seen: set[int] = set()

    def reader() -> None:
        while not stop.is_set():
            orders = store.get().orders
            if orders.daily_order_limit != 2 * orders.per_cycle_order_limit:
                mixes.append((orders.daily_order_limit, orders.per_cycle_order_limit))
            values_seen.add(orders.per_cycle_order_limit)
            time.sleep(0)  # yield the GIL so the writers make progress

    def overrider() -> None:
        # A second writer path: runtime overrides of both keys, swapped as one object.
        for n in range(200, 230):
            store.set_override("orders", {"daily_order_limit": 2 * n,
                                          "per_cycle_order_limit": n})
        store.clear_override("orders")

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    for n in range(2, 60):
        _write_pair(tmp_path / "config.json", n)
        store.reload()
    override_thread = threading.Thread(target=overrider)
    override_thread.start()
    override_thread.join()
    stop.set()
    for thread in readers:
        thread.join()

    assert mixes == []
    assert store.stats.swaps > 50
    assert len(values_seen) > 1  # readers really observed successive configs
    assert store.get().orders.per_cycle_order_limit == 59
