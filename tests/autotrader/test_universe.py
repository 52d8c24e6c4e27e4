"""The watchlist table and the choice of universe source."""

from __future__ import annotations

import pytest

from autotrader import appdb
from autotrader.universe import Watchlist, resolve_universe
from bma_models.data.universe import UniverseError


@pytest.fixture
def conn(tmp_path):
    connection = appdb.connect(tmp_path / "workstation.db")
    yield connection
    connection.close()


def test_add_normalises_and_updates_note_without_duplicating(conn):
    watchlist = Watchlist(conn)
    assert watchlist.add(" brk-b ", note="class B") == "BRK.B"
    watchlist.add("AAPL")
    watchlist.add("brk.b", note="Berkshire")
    assert watchlist.tickers() == ["AAPL", "BRK.B"]
    notes = {ticker: note for ticker, note, _ in watchlist.entries()}
    assert notes == {"AAPL": "", "BRK.B": "Berkshire"}


def test_add_rejects_invalid_ticker(conn):
    with pytest.raises(UniverseError, match="'FOO BAR' is not a valid ticker"):
        Watchlist(conn).add("FOO BAR")
    assert Watchlist(conn).tickers() == []


def test_remove_reports_whether_the_ticker_was_there(conn):
    watchlist = Watchlist(conn)
    watchlist.add("MSFT")
    assert watchlist.remove("msft") is True
    assert watchlist.remove("MSFT") is False
    assert watchlist.tickers() == []


def test_replace_keeps_notes_of_survivors_and_is_atomic_on_error(conn):
    watchlist = Watchlist(conn)
    watchlist.add("AAPL", note="keep me")
    watchlist.add("XOM")
    watchlist.replace(["aapl", "NVDA", "NVDA"])
    assert watchlist.tickers() == ["AAPL", "NVDA"]
    assert dict((t, n) for t, n, _ in watchlist.entries())["AAPL"] == "keep me"
    with pytest.raises(UniverseError):
        watchlist.replace(["MSFT", "BAD TICKER"])
    assert watchlist.tickers() == ["AAPL", "NVDA"]
    watchlist.replace([])
    assert watchlist.tickers() == []


def test_watchlist_persists_across_connections(tmp_path):
    path = tmp_path / "db.sqlite"
    first = appdb.connect(path)
    Watchlist(first).replace(["AAPL", "MSFT"])
    first.close()
    second = appdb.connect(path)
    assert Watchlist(second).tickers() == ["AAPL", "MSFT"]
    second.close()


def test_import_stocks_file_reports_added_present_rejected_and_duplicates(conn, tmp_path):
    path = tmp_path / "stocks.txt"
    path.write_text("AAPL\nmsft\n# comment\nFOO BAR\naapl\nNVDA\n", encoding="utf-8")
    watchlist = Watchlist(conn)
    watchlist.add("NVDA")
    report = watchlist.import_file(path)
    assert report.added == ["AAPL", "MSFT"]
    assert report.already_present == ["NVDA"]
    assert [str(r) for r in report.rejected] == ["stocks.txt:4: 'FOO BAR' is not a valid ticker"]
    assert report.duplicates == ["stocks.txt:5: duplicate 'AAPL' (first listed on line 1); dropped"]
    assert watchlist.tickers() == ["AAPL", "MSFT", "NVDA"]
    assert "2 added, 1 already present, 1 rejected, 1 duplicates" in report.summary()


def test_import_csv_with_symbol_column(conn, tmp_path):
    path = tmp_path / "sp500.csv"
    path.write_text(
        "Symbol,Security,GICS Sector\nAAPL,Apple,IT\nBRK.B,Berkshire,Fin\nBAD 1,x,y\n,Empty,z\n",
        encoding="utf-8",
    )
    report = Watchlist(conn).import_file(path)
    assert report.added == ["AAPL", "BRK.B"]
    assert [str(r) for r in report.rejected] == [
        "sp500.csv:4: 'BAD 1' is not a valid ticker",
        "sp500.csv:5: empty ticker",
    ]


def test_import_csv_without_ticker_column_raises(conn, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("Company,Weight\nApple,0.1\n", encoding="utf-8")
    with pytest.raises(UniverseError, match="no ticker/symbol column"):
        Watchlist(conn).import_file(path)


def test_resolve_universe_from_stocks_file_and_watchlist(conn, tmp_path):
    stocks = tmp_path / "stocks.txt"
    stocks.write_text("MSFT\nAAPL\n", encoding="utf-8")
    assert resolve_universe("stocks_file", stocks_file=stocks) == ["MSFT", "AAPL"]
    Watchlist(conn).replace(["NVDA", "AMD"])
    assert resolve_universe("watchlist", conn=conn) == ["AMD", "NVDA"]


@pytest.mark.parametrize(
    ("source", "use_conn", "message"),
    [
        ("watchlist", True, "watchlist is empty"),
        ("watchlist", False, "needs the app database"),
        ("polygon", True, "unknown universe source"),
    ],
)
def test_resolve_universe_errors_name_the_problem(conn, source, use_conn, message):
    with pytest.raises(UniverseError, match=message):
        resolve_universe(source, conn=conn if use_conn else None)


def test_resolve_universe_rejects_invalid_stocks_file(tmp_path):
    stocks = tmp_path / "stocks.txt"
    stocks.write_text("AAPL\nNOT VALID\n", encoding="utf-8")
    with pytest.raises(UniverseError, match="stocks.txt:2: 'NOT VALID' is not a valid ticker"):
        resolve_universe("stocks_file", stocks_file=stocks)
