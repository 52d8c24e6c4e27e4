"""``autotrader run --broker ib``: connection failures, live arming and a cycle on the fake."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from autotrader.cli import main
from tests.autotrader.broker.ib.conftest import RECOMMENDATIONS, refs_at_gateway
from tests.autotrader.conftest import write_run

SIM_TIME = "2026-03-02T15:30:00+00:00"




def _args(tmp_path: Path, port: int, *extra: str, **connection: object) -> list[str]:
    run_dir = tmp_path / "result" / "20260301-run"
    if not run_dir.exists():
        write_run(tmp_path / "result", "20260301-run", RECOMMENDATIONS)
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "connection.json").write_text(json.dumps(
        {"connection": {"port": port, "client_id": 9, "connect_timeout_s": 1.5,
                        **connection}}))
    return ["run", "--broker", "ib", "--once", "--run-dir", str(run_dir), "--state-dir",
            str(tmp_path / "state"), "--config-dir", str(config), "--log-level", "WARNING",
            *extra]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_gateway_exits_1_with_the_endpoint_in_the_log(tmp_path, caplog):
    args = _args(tmp_path, _free_port(), "--sim-time", SIM_TIME, connect_attempts=2,
                 reconnect_base_delay_s=0.05)
    assert main(args) == 1
    assert "cannot connect to TWS/Gateway" in caplog.text
    assert "failed after 2 attempts" in caplog.text


def test_a_socket_drop_during_the_startup_sync_is_retried_and_the_trader_runs(tmp_path,
                                                                             gateway):
    """Issue #20 scenario 3: the reconnect policy also covers the first connect."""
    gateway.drop_during_sync(connections=1)  # TCP connect and handshake succeed, sync does not
    assert main(_args(tmp_path, gateway.port, "--sim-time", SIM_TIME)) == 0
    assert len(gateway.requests("startApi")) == 2
    refs = refs_at_gateway(gateway)
    assert len(refs) >= 4 and all(n == 1 for n in refs.values())


def test_a_startup_sync_that_always_fails_exits_1_after_the_policy(tmp_path, gateway, caplog):
    gateway.drop_during_sync(connections=10)
    args = _args(tmp_path, gateway.port, "--sim-time", SIM_TIME, connect_attempts=3,
                 reconnect_base_delay_s=0.05)
    assert main(args) == 1
    assert "failed after 3 attempts" in caplog.text and "Socket disconnect" in caplog.text
    assert len(gateway.requests("startApi")) == 3 and gateway.orders() == []


def test_arm_live_is_a_usage_error_with_the_paper_broker(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--broker", "paper", "--once", "--arm-live"])
    assert exc.value.code == 2 and "--arm-live" in capsys.readouterr().err


def test_one_ib_cycle_on_the_paper_fake_places_orders(tmp_path, gateway):
    assert main(_args(tmp_path, gateway.port, "--sim-time", SIM_TIME)) == 0
    refs = refs_at_gateway(gateway)
    assert len(refs) >= 4 and all(n == 1 for n in refs.values())


def test_a_live_account_is_not_traded_without_arm_live(tmp_path, make_gateway, caplog):
    gw = make_gateway(accounts=("U7654321",))
    assert main(_args(tmp_path, gw.port, "--sim-time", SIM_TIME)) == 1
    assert "refused on a live IB session" in caplog.text  # no simulated clock on live
    assert main(_args(tmp_path, gw.port)) in (0, 1)
    assert gw.orders() == []  # wall clock: orders refused (unarmed) or market closed
