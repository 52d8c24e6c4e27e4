"""The parquet bar store: incremental refresh, grouped vs per-ticker, re-adjustment, faults."""

from __future__ import annotations

import pandas as pd
import pytest

from bma_models.data import calendar
from polygon import BarStore, RefreshError
from polygon.errors import CacheError, PolygonError
from tests.polygon.conftest import UNIVERSE

START, END = "2024-01-02", "2024-06-28"


def _aggs(ticker: str, start: str, end: str = END) -> str:
    return f"/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}"


def _grouped(day: str) -> str:
    return f"/v2/aggs/grouped/locale/us/market/stocks/{day}"


def _expected(server, tickers=UNIVERSE, start=START, end=END) -> pd.DataFrame:
    frames = [server.expected_bars(t, start, end) for t in tickers]
    out = pd.concat(frames, ignore_index=True).sort_values(["date", "ticker"], kind="stable")
    return out.reset_index(drop=True)


def _assert_same_bars(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(actual.reset_index(drop=True), expected, check_dtype=False)
    assert str(actual["date"].dtype) == "datetime64[ns]"
    assert all(str(actual[c].dtype) == "float64" for c in ("open", "close", "volume", "vwap"))


def _seed_cache(server, store, tickers=UNIVERSE, through="2024-06-26"):
    server.last_session = pd.Timestamp(through)
    store.refresh(tickers, START, through)
    server.clear_log()
    server.last_session = pd.Timestamp(END)


def test_first_refresh_fetches_full_history_per_ticker(server, make_store) -> None:
    store = make_store()
    report = store.refresh(UNIVERSE, START, END)
    assert sorted(server.paths()) == sorted(_aggs(t, START) for t in UNIVERSE)
    assert report.full_history == list(UNIVERSE) and report.requests == 5
    _assert_same_bars(store.read_bars(), _expected(server))
    assert store.coverage("SYNA") == (pd.Timestamp(START), pd.Timestamp(END))


def test_up_to_date_cache_makes_no_request(server, make_store) -> None:
    store = make_store()
    store.refresh(UNIVERSE, START, END)
    server.clear_log()
    report = store.refresh(UNIVERSE, START, END)
    assert server.paths() == [] and report.mode == "none"


def test_incremental_refresh_per_ticker_when_that_is_cheaper(server, make_store) -> None:
    store = make_store()
    _seed_cache(server, store, ("SYNA", "SYNB"), through="2024-06-21")
    report = store.refresh(["SYNA", "SYNB"], START, END)
    # 5 missing sessions + 1 overlap by grouped daily would be 6 requests; per ticker: 2
    assert report.mode == "per_ticker"
    assert sorted(server.paths()) == [_aggs("SYNA", "2024-06-21"), _aggs("SYNB", "2024-06-21")]
    assert report.incremental == ["SYNA", "SYNB"]
    _assert_same_bars(store.read_bars(), _expected(server, ("SYNA", "SYNB")))


def test_incremental_refresh_uses_grouped_daily_when_cheaper(server, make_store) -> None:
    store = make_store()
    _seed_cache(server, store)
    report = store.refresh(UNIVERSE, START, END)
    # sessions 06-27 and 06-28 are missing, 06-26 is the overlap: 3 requests instead of 5
    assert report.mode == "grouped"
    assert sorted(server.paths()) == [_grouped(d) for d in ("2024-06-26", "2024-06-27",
                                                             "2024-06-28")]
    assert report.incremental == list(UNIVERSE)
    _assert_same_bars(store.read_bars(), _expected(server))


def test_new_ticker_gets_full_history_while_cached_ones_update(server, make_store) -> None:
    store = make_store()
    _seed_cache(server, store, UNIVERSE[:4])
    report = store.refresh(UNIVERSE, START, END)
    assert report.full_history == ["SYNE"] and report.incremental == list(UNIVERSE[:4])
    assert sorted(server.paths()) == sorted(
        [_aggs("SYNE", START)] + [_grouped(d) for d in ("2024-06-26", "2024-06-27", "2024-06-28")])
    _assert_same_bars(store.read_bars(), _expected(server))


def test_earlier_start_than_cached_refetches_full_history(server, make_store) -> None:
    store = make_store()
    store.refresh(["SYNA"], "2024-03-01", END)
    server.clear_log()
    store.refresh(["SYNA"], START, END)
    assert server.paths() == [_aggs("SYNA", START)]
    _assert_same_bars(store.read_bars(), _expected(server, ("SYNA",)))


def test_unpublished_sessions_do_not_advance_coverage(server, make_store) -> None:
    store = make_store()
    server.last_session = pd.Timestamp("2024-06-25")
    store.refresh(["SYNA"], START, END)  # the server has nothing after 06-25 yet
    assert store.coverage("SYNA")[1] == pd.Timestamp("2024-06-25")
    server.last_session = pd.Timestamp(END)
    server.clear_log()
    store.refresh(["SYNA"], START, END)
    assert server.paths() == [_aggs("SYNA", "2024-06-25")]
    _assert_same_bars(store.read_bars(), _expected(server, ("SYNA",)))


@pytest.mark.parametrize("tickers", [UNIVERSE, ("SYNC",)], ids=["grouped", "per_ticker"])
def test_split_after_caching_refetches_that_tickers_full_history(server, make_store,
                                                                 tickers) -> None:
    store = make_store()
    _seed_cache(server, store, tickers)
    server.split("SYNC", 4.0, effective="2024-06-27")
    report = store.refresh(tickers, START, END)
    assert report.refetched_after_adjustment == ["SYNC"]
    assert _aggs("SYNC", START) in server.paths()
    assert sorted(report.incremental) == sorted(set(tickers) - {"SYNC"})
    _assert_same_bars(store.read_bars(tickers), _expected(server, tickers))


def test_corrupt_file_is_detected_reported_and_rebuilt(server, make_store, caplog) -> None:
    store = make_store()
    store.refresh(["SYNA", "SYNB"], START, END)
    path = store.bars_dir / "SYNA.parquet"
    path.write_bytes(path.read_bytes()[: 200])  # a torn write by a non-atomic writer
    with pytest.raises(CacheError, match="corrupt cache file"):
        store.read_bars(["SYNA"])
    server.clear_log()
    report = store.refresh(["SYNA", "SYNB"], START, END)
    assert report.rebuilt_corrupt == ["SYNA"] and server.paths() == [_aggs("SYNA", START)]
    assert "corrupt cache file" in caplog.text
    assert (store.bars_dir / "SYNA.parquet.corrupt").exists()
    _assert_same_bars(store.read_bars(), _expected(server, ("SYNA", "SYNB")))


def test_download_with_20_percent_faults_equals_a_clean_download(server, make_store,
                                                                 make_client, tmp_path) -> None:
    server.page_limit = 40
    clean = make_store(tmp_path / "clean")
    clean.refresh(UNIVERSE, START, END)
    clean.refresh_reference(UNIVERSE)
    server.clear_log()
    server.script.random_faults(0.2, seed=3, retry_after="1", delay_s=0.3)
    faulty = make_store(tmp_path / "faulty", client=make_client(timeout_s=0.1, max_retries=10),
                        max_concurrency=3)
    faulty.refresh(UNIVERSE, START, END)
    faulty.refresh_reference(UNIVERSE)
    faults = [r.fault for r in server.requests if r.fault]
    assert len(faults) >= 0.1 * len(server.requests) and len(set(faults)) >= 4
    pd.testing.assert_frame_equal(faulty.read_bars(), clean.read_bars())
    pd.testing.assert_frame_equal(faulty.read_reference(), clean.read_reference())


def test_persistent_failure_raises_after_writing_the_others(server, make_store) -> None:
    store = make_store(client=None)
    server.script.add("/SYNB/", "503", times=100)
    with pytest.raises(RefreshError) as info:
        store.refresh(["SYNA", "SYNB"], START, END)
    assert list(info.value.report.failures) == ["SYNB"]
    assert store.cached_tickers() == ["SYNA"]


def test_failures_are_recorded_without_raising_when_asked(server, make_store, caplog) -> None:
    store = make_store(raise_on_failure=False)
    server.script.add("/SYNB/", "503", times=100)
    report = store.refresh(["SYNA", "SYNB"], START, END)
    assert not report.ok and "status=503" in report.failures["SYNB"]
    assert "raise_on_failure=False" in caplog.text


def test_progress_callback_sees_every_unit_of_work(server, make_store) -> None:
    calls: list[tuple[int, int, str]] = []
    store = make_store(progress=lambda done, total, label: calls.append((done, total, label)))
    store.refresh(UNIVERSE, START, END)
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5] and {c[1] for c in calls} == {5}
    assert sorted(c[2] for c in calls) == list(UNIVERSE)


def test_reference_refresh_maps_sectors_and_is_incremental(server, make_store) -> None:
    server.unknown_tickers.add("GONE")
    store = make_store()
    report = store.refresh_reference(["SYNA", "SYNB", "GONE"])
    assert report.not_found == ["GONE"] and report.requests == 3
    reference = store.read_reference()
    assert list(reference["ticker"]) == ["GONE", "SYNA", "SYNB"]
    synb = reference.set_index("ticker").loc["SYNB"]
    assert synb["sector"] is not None and synb["market_cap"] > 0
    assert synb["shares_outstanding"] == synb["share_class_shares_outstanding"]
    server.clear_log()
    assert store.refresh_reference(["SYNA", "SYNB", "GONE"]).requests == 0
    store.refresh_reference(["SYNC"])
    assert server.paths() == ["/v3/reference/tickers/SYNC"]
    assert len(store.read_reference()) == 4


def test_stale_temp_files_are_ignored_by_readers_and_removed(server, make_store) -> None:
    store = make_store()
    store.refresh(["SYNA"], START, END)
    stale = store.bars_dir / ".SYNA.parquet.123.456.tmp"
    stale.write_bytes(b"PAR1 half written")
    assert store.cached_tickers() == ["SYNA"]
    store.refresh(["SYNA"], START, END)
    assert not stale.exists()


def test_a_store_without_client_reads_the_cache_and_refuses_to_download(server, make_store,
                                                                       tmp_path) -> None:
    make_store().refresh(UNIVERSE, START, END)
    server.clear_log()
    reader = BarStore(None, tmp_path / "cache", calendar=calendar)
    assert reader.coverage("SYNA") == (pd.Timestamp(START), pd.Timestamp(END))
    _assert_same_bars(reader.read_bars(), _expected(server))
    with pytest.raises(PolygonError, match="read-only, without a client"):
        reader.refresh(UNIVERSE, START, END)
    assert server.paths() == []
