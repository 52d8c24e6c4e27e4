"""The book on disk: book.json after every cycle, the paper account, holdings files."""

from __future__ import annotations

import json

import pytest

from autotrader.domain.records import OrderRequest, OrderType, Side
from autotrader.engine.plan_status import BookPosition, BookSnapshot, Outcome
from autotrader.services.book import (
    BOOK_FILE,
    PAPER_FILE,
    BookError,
    holdings_from_file,
    holdings_from_state,
    read_book,
    read_paper_account,
    resolve_holdings,
    write_book,
)
from autotrader.services.recommendations import load_recommendations
from autotrader.services.trading import TradingRunner
from tests.autotrader.services.test_trading import SETTINGS

SNAPSHOT = BookSnapshot("2026-03-02T15:00:00+00:00", "ib", "run-1", 10_000.0, 4_000.0,
                        (BookPosition("AAA", 100, 60.0, 55.0),), {"AAA": 0.5, "BBB": 0.4},
                        {"AAA": 60.0, "BBB": float("nan")},
                        {"BBB": Outcome("denied", "liquidity", "ADV 1 USD below 2")},
                        tolerance_usd=500.0)


def test_book_round_trips_as_strict_json_and_leaves_no_temporary_file(tmp_path):
    path = write_book(tmp_path / BOOK_FILE, SNAPSHOT)
    document = json.loads(path.read_text(), parse_constant=pytest.fail)  # no NaN literal
    assert document["prices"]["BBB"] is None
    back = read_book(path)
    assert back.positions == SNAPSHOT.positions and back.outcomes == SNAPSHOT.outcomes
    assert (back.equity, back.cash, back.planned, back.tolerance_usd) == (10_000.0, 4_000.0,
                                                                         SNAPSHOT.planned, 500.0)
    assert [p.name for p in tmp_path.iterdir()] == [BOOK_FILE]


def test_book_errors_name_the_file(tmp_path):
    with pytest.raises(BookError, match=r"book\.json: no book snapshot"):
        read_book(tmp_path / BOOK_FILE)
    (tmp_path / BOOK_FILE).write_text("{not json")
    with pytest.raises(BookError, match=r"book\.json is not readable JSON"):
        read_book(tmp_path / BOOK_FILE)
    (tmp_path / BOOK_FILE).write_text(json.dumps({"as_of": "x", "broker": "ib"}))
    with pytest.raises(BookError, match=r"book\.json: bad book snapshot \(KeyError"):
        read_book(tmp_path / BOOK_FILE)


def _filled_paper_account(broker, clock):
    broker.place(OrderRequest("r1", "AAA", Side.BUY, 100, OrderType.MARKET))
    clock.advance(60)
    broker.match()
    return broker


def test_the_paper_account_is_read_read_only_while_the_broker_has_it_open(broker, clock,
                                                                         tmp_path):
    _filled_paper_account(broker, clock)
    before = (tmp_path / "paper.db").read_bytes()
    positions, cash = read_paper_account(tmp_path / "paper.db")
    assert positions == {"AAA": (100, pytest.approx(50.0 * 1.001))}
    assert cash == pytest.approx(100_000.0 - 100 * 50.05 - 1.0)
    assert (tmp_path / "paper.db").read_bytes() == before
    with pytest.raises(BookError, match="no paper account"):
        read_paper_account(tmp_path / "missing.db")
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BookError, match=r"junk\.db: not a readable paper account"):
        read_paper_account(tmp_path / "junk.db")


def test_state_book_is_the_paper_account_for_paper_and_the_snapshot_for_ib(broker, clock,
                                                                          tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    assert holdings_from_state(state) is None
    write_book(state / BOOK_FILE, SNAPSHOT)  # IB traded last: research uses its snapshot
    ib = holdings_from_state(state)
    assert ib.quantities.to_dict() == {"AAA": 100.0} and ib.cash == 4_000.0
    assert ib.source.startswith("ib snapshot") and ib.prices["AAA"] == 60.0
    _filled_paper_account(broker, clock)
    broker.disconnect()
    (tmp_path / "paper.db").rename(state / PAPER_FILE)
    write_book(state / BOOK_FILE, SNAPSHOT.__class__(**{**SNAPSHOT.__dict__, "broker": "paper"}))
    paper = holdings_from_state(state)
    assert paper.source.startswith("paper account") and paper.quantities["AAA"] == 100
    assert paper.cash == pytest.approx(100_000.0 - 100 * 50.05 - 1.0)


def test_holdings_files_with_quantities_and_cash_or_weights(tmp_path):
    path = tmp_path / "book.csv"
    path.write_text("ticker,quantity\naaa,100\nBBB,20\nCASH,5000\n")
    book = holdings_from_file(path)
    assert book.quantities.to_dict() == {"AAA": 100.0, "BBB": 20.0} and book.cash == 5000.0
    path.write_text("Ticker,Weight\nAAA,0.03\nBBB,0.02\n")
    book = holdings_from_file(path)
    assert book.weights.to_dict() == {"AAA": 0.03, "BBB": 0.02} and book.cash is None


@pytest.mark.parametrize(("text", "message"), [
    ("symbol,quantity\nAAA,1\n", "line 1: needs a 'ticker' column"),
    ("ticker,quantity\nAAA,abc\n", "line 2: quantity 'abc' is not a number"),
    ("ticker,quantity\nAAA,1\nAAA,2\n", "line 3: AAA appears twice"),
    ("ticker,weight\nAAA,-0.1\n", "line 2: weight -0.1 must be a finite number >= 0"),
    ("ticker,weight\nAAA,0.1\nCASH,5\n", "a CASH row needs quantities"),
])
def test_bad_holdings_files_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "book.csv"
    path.write_text(text)
    with pytest.raises(BookError, match=f"book.csv.*{message}"):
        holdings_from_file(path)


def test_holdings_option_auto_state_none_file(tmp_path):
    empty = tmp_path / "empty"
    assert resolve_holdings("auto", empty) is None and resolve_holdings("none", empty) is None
    with pytest.raises(BookError, match="--holdings state: no book.json or paper_broker.db"):
        resolve_holdings("state", empty)
    write_book(tmp_path / BOOK_FILE, SNAPSHOT)
    assert resolve_holdings("auto", tmp_path).quantities["AAA"] == 100
    assert resolve_holdings("none", tmp_path) is None
    (tmp_path / "h.csv").write_text("ticker,weight\nZZZ,0.1\n")
    assert resolve_holdings(str(tmp_path / "h.csv"), tmp_path).weights["ZZZ"] == 0.1


def test_every_cycle_writes_the_book_and_the_plan_versus_book(broker, journal, run_dir, clock,
                                                              caplog):
    caplog.set_level("INFO", logger="autotrader.services.trading")
    market = {"open": False}
    runner = TradingRunner(broker, journal,
                           lambda: load_recommendations(run_dir, broker_is_live=False),
                           settings=SETTINGS, clock=clock, market_open=lambda now: market["open"])
    closed = runner.run_cycle()
    book = read_book(journal.path.parent / BOOK_FILE)
    assert book.run_id == "20260301-run" and book.broker == "paper" and book.positions == ()
    assert book.planned == {"AAA": 0.05, "BBB": 0.05, "CCC": 0.05, "DDD": 0.05}
    assert {o.check for o in book.outcomes.values()} == {"market_hours"}
    assert closed.status["coverage"] == 0.0 and book.as_of == clock().isoformat()
    assert {g["kind"] for g in closed.status["gaps"]} == {"market_closed"}
    market["open"] = True
    clock.advance(60)
    opened = runner.run_cycle()
    book = read_book(journal.path.parent / BOOK_FILE)
    assert {p.symbol for p in book.positions} == {"AAA", "BBB", "CCC", "DDD"}
    assert opened.status["coverage"] > 0.95 and opened.status["gaps"] == []
    assert book.equity == pytest.approx(broker.account().equity)
    assert "PLAN vs BOOK run 20260301-run" in caplog.text
