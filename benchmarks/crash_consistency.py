"""Benchmark: crash consistency of ``autotrader run --broker ib`` under kill -9 and gateway drops.

Every run has its own fake gateway (``tests/fakes/tws``, in this process, so its book
survives the trader as TWS's does) and its own state directory:

1. The trader runs a few cycles (``--loop``; limit or bracket entries, chosen per run)
   through the test-only entry ``tests/autotrader/crash_entry.py`` and is killed with
   SIGKILL: at a runner checkpoint (``after-journal`` or ``after-place``, the k-th
   time) or from outside at a random instant. Meanwhile a chaos thread fills working
   entries partially or fully at random moments (entries never fill by themselves
   here, so some are still working and partially filled at the kill), drops the
   client sockets at random moments (refusing reconnects for a while) and opens IB
   connectivity gaps (1100 ... 1102) during which fills are not pushed.
2. Chaos stops; the trader is restarted once (``--once``, the plain CLI); in some
   runs its first connection is dropped during the start-up sync. It must exit 0.
3. The gateway's orders and executions are compared with the journal.

Detectors, summed over the runs: ``duplicate_order_refs`` (an orderRef on more than
one gateway order), ``duplicate_intents`` (a symbol bought by more than one entry
order), ``lost_fills`` (a gateway execution missing from the journal),
``orphan_orders`` (a gateway order the journal does not know), ``state_mismatches``
(journal status or filled quantity different from the gateway's, an order still
untransmitted after the restart, a journal fill the gateway never made) and
``failed_restarts``. ``reconnect_s`` is the time from a socket drop to the trader's
next API handshake at the gateway (p50/p90/max); while the gateway refuses (up to
0.6 s after a drop) an attempt costs the connect timeout (2 s here), as with real
TWS, so it is dominated by that timeout.

A self-test runs first: on the snapshot of a clean run every detector reads 0, and
each fires on a deliberately injected duplicate, orphan, lost fill, duplicate intent
and state mismatch; the benchmark stops if one does not.

Baseline: the same restart after a clean stop (no kill, no socket drops), measured in
the same invocation. ``ours_s``/``baseline_s`` are the mean wall times of the restart
(connect, session check, reconcile, resume, one cycle) after a kill and after a clean
stop; ``equal`` is true when every detector is 0 in both sets.

Run: ``python -m benchmarks.crash_consistency [--runs 200] [--seed 7]``; prints one
JSON line. Needs the repository checkout (the fake gateway lives in ``tests/``).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.autotrader.crash_entry import command, environment
from tests.fakes.tws import FakeGateway, FillPolicy, OrderRecord, ScriptError
from tests.fakes.tws.model import Execution

logger = logging.getLogger("benchmarks.crash_consistency")

CLIENT_ID = 7
SIM_TIME = "2026-03-02T15:30:00+00:00"  # Monday 10:30 New York, a regular session
RESTART_SIM_TIME = "2026-03-02T15:31:00+00:00"
RECOMMENDATIONS = """rank,ticker,sector,score,expected_return,weight,last_close,adv,atr
1,AAPL,Tech,0.95,0.020,0.04,190.00,50000000,3.0
2,MSFT,Tech,0.90,0.015,0.04,410.00,80000000,6.0
3,IBM,Industrials,0.80,0.012,0.04,170.00,20000000,2.5
4,XOM,Energy,0.70,0.010,0.04,110.00,20000000,1.6
"""
DETECTORS = ("duplicate_order_refs", "duplicate_intents", "lost_fills", "orphan_orders",
             "state_mismatches")
_WORKING = frozenset({"PreSubmitted", "Submitted"})
_JOURNAL_WORKING = frozenset({"Submitted", "PartiallyFilled", "Inactive", "PendingCancel"})
_JOURNAL_ENDED = frozenset({"Cancelled", "Rejected"})


@dataclass(frozen=True)
class Scenario:
    """One run: how the trader dies and what the market and the gateway do meanwhile."""

    seed: int
    kill: str | None  # "after-journal:2", "after-place:1", "timer:1.7" or None (clean stop)
    order_type: str  # limit | bracket
    chaos: bool = True
    drops: bool = True
    drop_restart_sync: bool = False


@dataclass(frozen=True)
class Snapshot:
    """What the gateway and the journal hold after a run (plain data for the detectors)."""

    orders: tuple[OrderRecord, ...]
    executions: tuple[Execution, ...]
    intents: tuple[tuple, ...]  # order_ref, symbol, side, state, filled_qty, transmitted_at
    fills: tuple[tuple[str, str, int], ...]  # exec_id, order_ref, qty


@dataclass
class RunResult:
    """Outcome of one run."""

    killed: bool
    restart_ok: bool
    restart_s: float
    reconnects: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    log_dir: str = ""


# -- detectors (pure) ----------------------------------------------------------------------
def detect(snapshot: Snapshot) -> dict[str, int]:
    """Count each kind of inconsistency between the gateway and the journal."""
    orders = [o for o in snapshot.orders if o.status != "Held"]
    journal = {row[0]: row for row in snapshot.intents}
    journal_fills = {exec_id: (ref, qty) for exec_id, ref, qty in snapshot.fills}
    refs = Counter(o.order_ref for o in orders)
    buys = Counter(o.contract.symbol for o in orders if o.action == "BUY")
    counts = {
        "duplicate_order_refs": sum(1 for n in refs.values() if n > 1),
        "duplicate_intents": sum(1 for n in buys.values() if n > 1),
        "lost_fills": sum(1 for e in snapshot.executions if e.exec_id not in journal_fills),
        "orphan_orders": sum(1 for ref in refs if ref not in journal),
        "state_mismatches": _state_mismatches(orders, snapshot.executions, journal,
                                              journal_fills),
    }
    return counts


def _state_mismatches(orders: list[OrderRecord], executions: tuple[Execution, ...],
                      journal: dict[str, tuple], journal_fills: dict[str, tuple]) -> int:
    at_gateway = {o.order_ref: o for o in orders}
    made = {e.exec_id for e in executions}
    bad = sum(1 for exec_id in journal_fills if exec_id not in made)  # invented fills
    for ref, (_, _, _, state, filled, transmitted) in journal.items():
        order = at_gateway.get(ref)
        if order is None:
            bad += state not in _JOURNAL_ENDED  # working, filled or untransmitted: unknown
            continue
        if transmitted is None or int(order.filled) != filled:
            bad += 1
        elif order.status == "Filled":
            bad += state != "Filled"
        elif order.status in _WORKING:
            bad += state not in _JOURNAL_WORKING
        else:  # Cancelled / Inactive at the gateway
            bad += state not in _JOURNAL_ENDED and state != "Filled"
    return bad


def self_test(clean: Snapshot) -> dict[str, int]:
    """Each detector on ``clean`` with one injected fault of its kind (all must be > 0)."""
    if any(detect(clean).values()):
        raise RuntimeError(f"self-test: the clean snapshot is not clean: {detect(clean)}")
    if not clean.orders or not clean.fills:
        raise RuntimeError("self-test: the clean run has no order or no fill to tamper with")
    entry = next(o for o in clean.orders if o.action == "BUY")
    copy = replace(entry, order_id=entry.order_id + 10_000, perm_id=entry.perm_id + 10_000)
    second_buy = replace(copy, order_ref=entry.order_ref + "-again")
    orphan = replace(copy, order_ref="orphan-ref", action="SELL")
    ref, state = clean.intents[0][0], clean.intents[0][3]
    flipped = tuple((*row[:3], "Cancelled" if state != "Cancelled" else "Filled", *row[4:])
                    if row[0] == ref else row for row in clean.intents)
    injected = {
        "duplicate_order_refs": replace(clean, orders=(*clean.orders, copy)),
        "orphan_orders": replace(clean, orders=(*clean.orders, orphan)),
        "lost_fills": replace(clean, fills=clean.fills[1:]),
        "duplicate_intents": replace(clean, intents=(*clean.intents, (
            second_buy.order_ref, entry.contract.symbol, "BUY", "Submitted", 0, "t")),
            orders=(*clean.orders, second_buy)),
        "state_mismatches": replace(clean, intents=flipped),
    }
    fired = {name: detect(snapshot)[name] for name, snapshot in injected.items()}
    if not all(fired.values()):
        raise RuntimeError(f"self-test: a detector did not fire: {fired}")
    return fired


# -- one run -------------------------------------------------------------------------------
class Chaos(threading.Thread):
    """Random partial/full fills of working entries, socket drops and IB connectivity gaps."""

    def __init__(self, gateway: FakeGateway, rng: random.Random, drops: bool) -> None:
        super().__init__(name="chaos", daemon=True)
        self.gateway, self.rng, self.drops = gateway, rng, drops
        self.stop_event = threading.Event()
        self.drop_times: list[float] = []

    def run(self) -> None:
        while not self.stop_event.wait(self.rng.uniform(0.05, 0.35)):
            try:
                self._step()
            except ScriptError as e:  # an order finished between snapshot and fill
                logger.debug("chaos step skipped: %s", e)

    def _step(self) -> None:
        roll = self.rng.random()
        if self.drops and roll < 0.06 and len(self.drop_times) < 3:
            self.drop_times.append(time.monotonic())
            self.gateway.disconnect_clients(refuse_for=self.rng.uniform(0.0, 0.6))
        elif self.drops and roll < 0.09:
            self.gateway.lose_ib_connectivity()
            self._fill()
            self.stop_event.wait(self.rng.uniform(0.1, 0.5))
            self.gateway.restore_ib_connectivity(self.rng.choice((1101, 1102)))
        elif roll < 0.55:
            self._fill()

    def _fill(self) -> None:
        entries = [o for o in self.gateway.orders() if o.is_live and o.action == "BUY"]
        if entries:
            order = self.rng.choice(entries)
            qty = self.rng.randint(1, int(order.remaining))
            self.gateway.fill(order.order_id, qty=qty, price=order.lmt_price,
                              client_id=order.client_id)

    def finish(self) -> None:
        self.stop_event.set()
        self.join(10.0)
        self.gateway.restore_ib_connectivity(1102)  # never leave the link down


def _workspace(root: Path, gateway: FakeGateway, order_type: str) -> tuple[Path, Path, Path]:
    run_dir = root / "result" / "20260301-run"
    run_dir.mkdir(parents=True)
    (run_dir / "recommendations.csv").write_text(RECOMMENDATIONS, encoding="utf-8")
    (run_dir / "manifest.json").write_text(json.dumps(
        {"run": {"source": "polygon"}, "data": {"last_date": "2026-02-27"}}))  # 0 sessions old
    config = root / "config"
    config.mkdir()
    (config / "connection.json").write_text(json.dumps({"connection": {
        "port": gateway.port, "client_id": CLIENT_ID, "connect_timeout_s": 2.0,
        "connect_attempts": 8, "reconnect_base_delay_s": 0.1, "reconnect_max_delay_s": 1.0}}))
    (config / "risk_config.json").write_text(json.dumps(  # every name passes the signal gate
        {"execution": {"order_type": order_type}, "signals": {"acceptance_threshold": 0.0}}))
    return run_dir, config, root / "state"


def _trader_args(run_dir: Path, config: Path, state: Path, loop: bool) -> list[str]:
    mode = ["--loop", "--interval", "0.4", "--max-cycles", "5"] if loop else ["--once"]
    return ["run", "--broker", "ib", *mode, "--run-dir", str(run_dir), "--state-dir",
            str(state), "--config-dir", str(config), "--sim-time",
            SIM_TIME if loop else RESTART_SIM_TIME, "--log-level", "INFO"]


def _run_trader(args: list[str], kill: str | None, log: Path,
                cwd: Path) -> tuple[int, float]:
    checkpoint = kill if kill and not kill.startswith("timer:") else None
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(command(args, checkpoint), env=environment(), cwd=cwd,
                                stdout=out, stderr=subprocess.STDOUT)
        timeout = float(kill.split(":")[1]) if kill and kill.startswith("timer:") else 120.0
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
    return proc.returncode, time.perf_counter() - started


def _reconnect_times(gateway: FakeGateway, drops: list[float], ended: float) -> list[float]:
    connected = [t for t, cid, event in gateway.connection_log()
                 if cid == CLIENT_ID and event == "connected"]
    out = []
    for dropped in drops:
        later = [t for t in connected if t > dropped]
        if later and later[0] <= ended:  # reconnected before it was killed
            out.append(later[0] - dropped)
    return out


def snapshot(gateway: FakeGateway, state: Path) -> Snapshot:
    """Read the gateway's book and the journal (read-only)."""
    with sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True) as conn:
        intents = tuple(conn.execute("SELECT order_ref, symbol, side, state, filled_qty, "
                                     "transmitted_at FROM intents"))
        fills = tuple(conn.execute("SELECT exec_id, order_ref, qty FROM fills"))
    return Snapshot(tuple(gateway.orders()), tuple(gateway.executions()), intents, fills)


def run_once(scenario: Scenario, root: Path) -> tuple[RunResult, Snapshot | None]:
    """Kill (or stop) the trader, restart it once, compare the gateway with the journal."""
    rng = random.Random(scenario.seed)
    gateway = FakeGateway(fill_policy=FillPolicy(marketable_limits=False)).start()
    try:
        run_dir, config, state = _workspace(root, gateway, scenario.order_type)
        chaos = Chaos(gateway, rng, scenario.drops)
        if scenario.chaos:
            chaos.start()
        code, _ = _run_trader(_trader_args(run_dir, config, state, loop=True), scenario.kill,
                              root / "trader.log", root)
        ended = time.monotonic()
        if scenario.chaos:
            chaos.finish()
        if scenario.drop_restart_sync:
            gateway.drop_during_sync(connections=1)
        restart_code, restart_s = _run_trader(_trader_args(run_dir, config, state, loop=False),
                                              None, root / "restart.log", root)
        result = RunResult(killed=code == -signal.SIGKILL, restart_ok=restart_code == 0,
                           restart_s=restart_s,
                           reconnects=_reconnect_times(gateway, chaos.drop_times, ended))
        if not (state / "journal.db").exists():
            result.counts = dict.fromkeys(DETECTORS, 0)
            return result, None
        snap = snapshot(gateway, state)
        result.counts = detect(snap)
        return result, snap
    finally:
        gateway.stop()


# -- the benchmark -------------------------------------------------------------------------
def plan(runs: int, seed: int) -> list[Scenario]:
    """``runs`` kill scenarios: checkpoint kills and timer kills, limit and bracket entries."""
    rng = random.Random(seed)
    out = []
    for i in range(runs):
        kind = rng.random()
        if kind < 0.35:
            kill = f"after-journal:{rng.randint(1, 4)}"
        elif kind < 0.7:
            kill = f"after-place:{rng.randint(1, 4)}"
        else:
            kill = f"timer:{rng.uniform(0.8, 3.0):.2f}"
        out.append(Scenario(seed * 100_003 + i, kill, rng.choice(("limit", "bracket")),
                            drop_restart_sync=rng.random() < 0.25))
    return out


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "max": None, "n": 0}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"p50": round(statistics.median(ordered), 3), "p90": round(p90, 3),
            "max": round(ordered[-1], 3), "n": len(ordered)}


def _run_set(scenarios: list[Scenario], work: Path, keep: Path | None) -> list[RunResult]:
    results = []
    for i, scenario in enumerate(scenarios):
        root = work / f"run-{i:04d}"
        root.mkdir()
        result, _ = run_once(scenario, root)
        if (any(result.counts.values()) or not result.restart_ok) and keep is not None:
            result.log_dir = str(shutil.copytree(root, keep / root.name))
            logger.error("run %d (%s): %s, restart ok %s, logs in %s", i, scenario,
                         result.counts, result.restart_ok, result.log_dir)
        shutil.rmtree(root, ignore_errors=True)
        results.append(result)
    return results


def run_benchmark(runs: int, seed: int = 7, baseline_runs: int | None = None,
                  keep_dir: Path | None = None) -> dict:
    """Run the self-test, ``runs`` kill scenarios and the clean-stop baseline; the JSON record."""
    started = time.perf_counter()
    baseline_runs = baseline_runs or max(2, runs // 20)
    with tempfile.TemporaryDirectory(prefix="crash-consistency-") as tmp:
        work = Path(tmp)
        clean_root = work / "self-test"
        clean_root.mkdir()
        _, clean = run_once(Scenario(seed, None, "limit", drops=False), clean_root)
        fired = self_test(clean)
        baseline = _run_set([Scenario(seed + 1 + i, None, ("limit", "bracket")[i % 2],
                                      drops=False) for i in range(baseline_runs)],
                            work, keep_dir)
        scenarios = plan(runs, seed)
        ours = _run_set(scenarios, work, keep_dir)
    kills = Counter(s.kill.split(":")[0] for s, r in zip(scenarios, ours) if r.killed)
    totals = {name: sum(r.counts.get(name, 0) for r in ours) for name in DETECTORS}
    base_totals = {name: sum(r.counts.get(name, 0) for r in baseline) for name in DETECTORS}
    ours_s = statistics.fmean(r.restart_s for r in ours)
    baseline_s = statistics.fmean(r.restart_s for r in baseline)
    failed = sum(not r.restart_ok for r in ours)
    return {
        "name": "crash_consistency", "runs": runs, "killed": sum(r.killed for r in ours),
        "killed_at": dict(sorted(kills.items())),
        **totals, "failed_restarts": failed,
        "reconnect_s": _percentiles([t for r in ours for t in r.reconnects]),
        "ours_s": round(ours_s, 3), "baseline_s": round(baseline_s, 3),
        "speedup": round(baseline_s / ours_s, 3),
        "equal": not any(totals.values()) and not any(base_totals.values()) and not failed
        and all(r.restart_ok for r in baseline),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "restart_s": _percentiles([r.restart_s for r in ours]),
        "baseline_runs": baseline_runs, "baseline_detectors": base_totals,
        "self_test": fired, "seed": seed, "wall_s": round(time.perf_counter() - started, 1),
        "failed_run_logs": [r.log_dir for r in ours + baseline if r.log_dir],
    }


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line; exit 1 when any detector fired or a restart failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crash_consistency",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="kill scenarios (default 200)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline-runs", type=int, default=None,
                        help="clean-stop restarts (default max(2, runs/20))")
    parser.add_argument("--keep-failed", type=Path, default=None,
                        help="copy the state and logs of a failing run here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    record = run_benchmark(args.runs, args.seed, args.baseline_runs, args.keep_failed)
    print(json.dumps(record))
    return 0 if record["equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
