"""The event bus and the research job without a display."""

from __future__ import annotations

import logging
import os

import pytest

from autotrader.gui.bus import EventBus, LogLine, QueueLogHandler
from autotrader.gui.risk_fields import field_infos, parse, to_text
from autotrader.gui.risk_tab import nest
from autotrader.services import brokers


def test_bus_drains_in_bounded_batches_in_order():
    bus = EventBus(max_batch=10)
    seen: list[int] = []
    bus.subscribe(int, seen.append)
    for i in range(25):
        bus.post(i)
    assert [bus.drain(), bus.drain(), bus.drain(), bus.drain()] == [10, 10, 5, 0]
    assert seen == list(range(25))


def test_a_failing_handler_is_logged_and_the_others_still_run(caplog):
    errors = []
    bus = EventBus(on_error=lambda msg, e: errors.append((msg, str(e))))
    seen = []

    def broken(message):
        raise RuntimeError("boom")

    bus.subscribe(str, broken)
    bus.subscribe(str, seen.append)
    bus.post("hello")
    with caplog.at_level(logging.ERROR):
        bus.drain()
    assert seen == ["hello"]
    assert errors == [("hello", "boom")]
    assert "GUI handler" in caplog.text and bus.failures == 1


def test_log_handler_posts_formatted_lines():
    bus = EventBus()
    lines = []
    bus.subscribe(LogLine, lines.append)
    logger = logging.getLogger("tests.gui.bus")
    handler = QueueLogHandler(bus)
    logger.addHandler(handler)
    try:
        logger.error("disk full")
    finally:
        logger.removeHandler(handler)
    bus.drain()
    assert lines[0].levelno == logging.ERROR and "disk full" in lines[0].text


def test_every_risk_field_reads_back_the_value_it_shows():
    from autotrader.config import Settings
    from autotrader.gui.risk_fields import value_of

    settings = Settings()
    infos = {info.key: info for info in field_infos(settings)}
    for key, info in infos.items():
        value = value_of(settings, key)
        back = parse(info, to_text(info, value))
        if isinstance(value, float):
            assert back == pytest.approx(value, rel=1e-12), key
        elif key.startswith("filters.trading_"):
            assert back == value.strftime("%H:%M"), key  # the store reads "HH:MM"
        else:
            assert back == value, key
    pct = infos["capital.cash_reserve_pct"]
    assert (to_text(pct, 0.05), parse(pct, "7.5")) == ("5", 0.075)
    assert parse(infos["risk_controls.stops.trailing"], "false") is False
    assert parse(infos["orders.daily_order_limit"], "30") == 30
    age = infos["signals.max_run_age_sessions"]  # int | None: an empty box is "no limit"
    assert (age.kind, age.optional, to_text(age, None), parse(age, "")) == ("int", True, "", None)
    assert parse(age, "3") == 3 and "Empty: no limit." in age.help
    with pytest.raises(ValueError, match="Max orders per day: '3.5' is not a whole number"):
        parse(infos["orders.daily_order_limit"], "3.5")
    assert nest({"capital.x": 1, "risk_controls.stops.enabled": False}) == {
        "capital": {"x": 1}, "risk_controls": {"stops": {"enabled": False}}}


def test_tws_handshake_reads_the_server_version_of_the_fake_gateway():
    from tests.fakes.tws import FakeGateway

    with FakeGateway() as gateway:
        assert brokers.tws_handshake("127.0.0.1", gateway.port, 5.0) == 176


def test_unknown_broker_is_refused_with_the_choices(tmp_path):
    import pytest

    from autotrader.config import Settings

    with pytest.raises(brokers.BrokerUnavailable, match="paper, ib"):
        brokers.make_broker("tws", state_dir=tmp_path, settings=Settings())


def test_ib_broker_from_the_gui_reconciles_the_journal_after_every_reconnect(monkeypatch, tmp_path):
    """The GUI's IB path wires the same reconnect reconcile and price fallback as the CLI."""
    import types

    from autotrader.config import Settings
    from autotrader.services import brokers

    captured = {}

    class FakeIB:
        @staticmethod
        def from_settings(settings, **options):
            captured.update(options)
            return "ib-broker"

    monkeypatch.setattr(brokers, "ib_available", lambda: True)
    monkeypatch.setattr(brokers.importlib, "import_module",
                        lambda name: types.SimpleNamespace(IBBroker=FakeIB))
    calls = []
    journal = types.SimpleNamespace(reconcile=lambda broker, now: calls.append((broker, now)))
    broker = brokers.make_broker("ib", state_dir=tmp_path, settings=Settings(),
                                 clock=lambda: "t0", journal=journal,
                                 prev_close=lambda symbol: 12.5)
    assert broker == "ib-broker"
    captured["on_reconnect"]("reconnected")
    assert calls == [("reconnected", "t0")]
    assert captured["prev_close"]("AAPL") == 12.5


def test_stall_meter_keeps_each_long_gap_with_the_work_timed_in_it():
    from autotrader.gui.app import StallMeter

    meter = StallMeter(interval_s=0.02, spike_s=0.03)
    meter.tick(10.0)
    meter.note("TaskDone:ResearchView._show_summary", 0.040)
    meter.note("LogLine:LogView.append", 0.001)
    meter.tick(10.070)  # 70 ms gap: 20 ms timer + 41 ms timed + 9 ms untimed
    meter.tick(10.090)  # 20 ms: not a spike
    assert meter.max_gap_s == pytest.approx(0.070)
    (spike,) = meter.spikes
    assert meter.spike_count == 1
    assert spike["gap_ms"] == 70.0 and spike["untimed_ms"] == 9.0
    assert spike["ran"].startswith("TaskDone:ResearchView._show_summary 40.0ms, LogLine")
    meter.reset()
    assert meter.spikes == [] and meter.max_gap_s == 0.0 and meter.notes == []


def test_stall_meter_separates_gaps_in_which_the_hypervisor_took_a_cpu():
    from autotrader.gui.app import StallMeter

    steal = iter([(0.0, 0.0), (0.0, 0.0), (0.0, 90.0), (0.0, 90.0)])
    meter = StallMeter(interval_s=0.02, spike_s=0.03, detailed=True,
                       read_steal=lambda: next(steal))
    for now in (10.0, 10.040, 10.140, 10.160):  # 40 ms, then 100 ms with 90 ms stolen
        meter.tick(now)
    assert meter.max_gap_s == pytest.approx(0.100)
    assert meter.max_gap_without_steal_s == pytest.approx(0.040)
    assert [s["steal_ms"] for s in meter.spikes] == [0.0, 90.0]


def test_cpu_steal_is_read_per_cpu_from_proc_stat(tmp_path):
    from autotrader.gui.app import cpu_steal_ms

    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3 4 5 6 7 30 0 0\n"
                    "cpu0 1 2 3 4 5 6 7 10 0 0\ncpu1 1 2 3 4 5 6 7 20 0 0\nintr 5\n")
    tick_ms = 1000.0 / os.sysconf("SC_CLK_TCK")
    assert cpu_steal_ms(str(stat)) == (10 * tick_ms, 20 * tick_ms)
    assert cpu_steal_ms(str(tmp_path / "missing")) is None


def test_bus_times_every_handler_of_a_drain():
    bus = EventBus()
    bus.subscribe(int, lambda n: None)
    bus.post(1)
    bus.drain()
    ((what, seconds),) = bus.last_timings
    assert what.startswith("int:test_bus_times_every_handler") and seconds >= 0.0


def test_probe_times_tk_callbacks_without_counting_their_own_notes_twice(display):
    import time
    import tkinter as tk

    from autotrader.gui.app import StallMeter
    from autotrader.gui.stallprobe import timed_tk_callbacks

    meter = StallMeter()
    done: list[float] = []

    def chart_strip() -> None:
        started = time.perf_counter()
        with meter.timed("chart strip"):
            time.sleep(0.03)
        time.sleep(0.01)
        done.append(time.perf_counter() - started)

    with timed_tk_callbacks(lambda: meter):
        root = tk.Tk()
        try:
            root.after(1, chart_strip)
            deadline = time.monotonic() + 5
            while not done and time.monotonic() < deadline:
                root.update()
        finally:
            root.destroy()
    notes = dict(meter.notes)
    outer = notes["tk:after:test_probe_times_tk_callbacks_without_counting_their_own_notes"
                  "_twice.<locals>.chart_strip"]
    inner = notes["chart strip"]
    assert inner >= 0.03 and outer >= 0.01
    # only the callback's own remainder: counted in full it would be >= done[0] (~0.04 s)
    assert outer <= done[0] - inner + 0.015
    assert tk.CallWrapper.__call__.__name__ == "__call__"  # the patch is undone
