"""Benchmark: download 500 tickers x 5 years of daily bars from the fake Polygon server.

The server runs in its own process (so its JSON encoding does not compete with the client
for the GIL) and answers every request after a fixed latency (50 ms). The same BarStore
downloads the universe twice into empty caches: sequentially (``max_concurrency=1``, the
baseline) and with a bounded thread pool. Prints one JSON line with the speedup, the
requests made, and the concurrent throughput as a fraction of the ideal
(``concurrency / latency`` requests per second).

Run: ``python -m benchmarks.polygon_download [--tickers 500] [--concurrency 16]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

from bma_models.data import calendar
from polygon import BarStore, PolygonClient

API_KEY = "benchmark-key"
START, END = "2020-01-01", "2024-12-31"


def _serve(ready: mp.Queue, stop: mp.Event, latency_s: float) -> None:
    from tests.fakes.polygon_server import FakePolygonServer

    with FakePolygonServer(api_key=API_KEY, history_start="2019-12-02", last_session=END,
                           latency_s=latency_s, cache_responses=True) as server:
        ready.put(server.base_url)
        stop.wait()


def _download(base_url: str, tickers: list[str], cache: Path, concurrency: int) -> tuple:
    client = PolygonClient(base_url=base_url, api_key=API_KEY, max_concurrency=concurrency,
                           timeout_s=30.0)
    store = BarStore(client, cache, calendar=calendar, max_concurrency=concurrency)
    began, cpu = time.perf_counter(), time.process_time()
    report = store.refresh(tickers, START, END)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    client.close()
    return elapsed, cpu, report.requests, store.read_bars()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    tickers = [f"T{i:04d}" for i in range(args.tickers)]
    latency = args.latency_ms / 1000.0
    context = mp.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(ready, stop, latency), daemon=True)
    server.start()
    try:
        base_url = ready.get(timeout=120)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            # warm the fake's response cache so neither timed run pays its encoding cost
            _download(base_url, tickers, root / "warm", args.concurrency)
            seq_s, seq_cpu, seq_requests, seq_bars = _download(base_url, tickers, root / "seq", 1)
            con_s, con_cpu, con_requests, con_bars = _download(base_url, tickers, root / "con",
                                                               args.concurrency)
    finally:
        stop.set()
        server.join(timeout=10)
    ideal_rps = args.concurrency / latency
    throughput = con_requests / con_s
    print(json.dumps({
        "name": "polygon_download",
        "ours_s": round(con_s, 3),
        "baseline_s": round(seq_s, 3),
        "speedup": round(seq_s / con_s, 2),
        "equal": bool(seq_bars.equals(con_bars)) and len(con_bars) > 0,
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "tickers": args.tickers,
        "sessions": int(con_bars["date"].nunique()),
        "bars": len(con_bars),
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "requests_sequential": seq_requests,
        "requests_concurrent": con_requests,
        "throughput_rps": round(throughput, 1),
        "ideal_rps": round(ideal_rps, 1),
        "fraction_of_ideal": round(throughput / ideal_rps, 3),
        "sequential_fraction_of_ideal": round((seq_requests / seq_s) / (1 / latency), 3),
        # client CPU (all threads) per request: the ceiling of a GIL-bound client is 1 / this
        "client_cpu_ms_per_request": round(1000 * con_cpu / con_requests, 1),
        "client_cpu_s_sequential": round(seq_cpu, 2),
        "client_cpu_s_concurrent": round(con_cpu, 2),
    }))


if __name__ == "__main__":
    main()
