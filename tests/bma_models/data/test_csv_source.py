"""CSV/Parquet import: aliases, every bad-row rule with counts and file:line examples."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bma_models.data.csv_source import CsvSource, load_bars_file, load_reference_file, parse_amounts
from bma_models.data.demo import demo_market
from bma_models.data.protocol import BAR_COLUMNS, DataSource, normalize_bars
from bma_models.errors import DataError

# line numbers in comments are CSV lines (header = 1)
BAD_CSV = """\
Date,Open,High,Low,Close,Volume,Name
2024-01-02,10,11,9,10.5,1000,aapl
2024-01-03,10,11,9,10.5,1000,AAPL

2024-01-04,xx,11,9,10.5,1000,AAPL
2024-01-05,-1,11,9,10.5,1000,AAPL
2024-01-06,10,11,9,10.5,1000,AAPL
notadate,10,11,9,10.5,1000,AAPL
2024-01-08,10,9,11,10.5,1000,AAPL
2024-01-09,12,11,9,10.5,1000,AAPL
2024-01-10,10,11,9,10.5,,AAPL
2024-01-03,10,11,9,10.6,1000,AAPL
2024-01-12,10,11,9,10.5,1000,FOO BAR
2024-01-16,10,11,9,10.5,1000,BRK-B
2024-01-19,10,11,9,10.5,-5,AAPL
2024-01-22,10,11,9,10.5,1000,AAPL
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_each_bad_row_rule_is_counted_with_file_line_examples(tmp_path):
    bars, report = load_bars_file(_write(tmp_path, "bad.csv", BAD_CSV))
    assert report.counts == {
        "missing_value": 1, "bad_date": 1, "bad_ticker": 1, "bad_number": 1,
        "non_positive_price": 1, "negative_volume": 1, "high_below_low": 1,
        "ohlc_inconsistent": 1, "non_session_date": 1, "duplicate": 1, "gap": 11,
    }
    examples = {rule: entry.examples[0] for rule, entry in report.issues.items()}
    assert examples["bad_number"] == "bad.csv:5: open='xx'"
    assert examples["non_positive_price"].startswith("bad.csv:6: open=-1.0")
    assert examples["non_session_date"] == "bad.csv:7: 2024-01-06"
    assert examples["bad_date"] == "bad.csv:8: 'notadate'"
    assert examples["high_below_low"] == "bad.csv:9: high=9.0 < low=11.0"
    assert examples["ohlc_inconsistent"].startswith("bad.csv:10:")
    assert examples["missing_value"] == "bad.csv:11: empty field(s) volume"
    assert examples["bad_ticker"] == "bad.csv:13: 'FOO BAR'"
    assert examples["negative_volume"] == "bad.csv:15: volume=-5.0"
    assert examples["duplicate"] == "bad.csv:3: AAPL 2024-01-03 (a later row is kept)"
    assert examples["gap"] == "AAPL: 11 session(s) missing, 2024-01-04..2024-01-19"
    assert report.rows_read == 14 and report.rows_kept == 4
    assert report.rows_read == report.rows_kept + report.rows_dropped
    assert any("blank" in note for note in report.notes)
    assert any("no vwap column" in note for note in report.notes)
    assert bars["ticker"].tolist() == ["AAPL", "AAPL", "BRK.B", "AAPL"]
    # the duplicate kept the LAST row (close 10.6)
    assert bars.loc[bars["date"] == "2024-01-03", "close"].item() == 10.6
    np.testing.assert_allclose(bars["vwap"], (bars["high"] + bars["low"] + bars["close"]) / 3)
    pd.testing.assert_frame_equal(normalize_bars(bars), bars)
    assert "bad.csv:5" in str(report)


def test_aliases_and_optional_vwap_are_read(tmp_path):
    path = _write(tmp_path, "aliased.csv", """\
        Symbol,DATE,O,H,L,C,Vol,VW
        MSFT,2024-03-01,400,405,398,404,1e6,402
        MSFT,2024-03-04,404,410,401,409,2e6,999
        MSFT,2024-03-05,409,411,405,406,1.5e6,
        """)
    bars, report = load_bars_file(path)
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert bars["vwap"].tolist()[0] == 402.0
    # vwap outside [low, high] and empty vwap are replaced by (h + l + c) / 3
    expected = [(410 + 401 + 409) / 3, (411 + 405 + 406) / 3]
    assert bars["vwap"].tolist()[1:] == pytest.approx(expected)
    assert report.counts == {"vwap_filled": 2}
    assert report.issues["vwap_filled"].examples == ["aliased.csv:3: '999'", "aliased.csv:4: ''"]


def test_missing_required_column_names_file_and_column(tmp_path):
    text = "date,ticker,open,low,close,volume\n2024-01-02,A,1,1,1,1\n"
    path = _write(tmp_path, "nohigh.csv", text)
    with pytest.raises(DataError, match=r"nohigh.csv: missing required column 'high'"):
        load_bars_file(path)


def test_every_row_bad_raises(tmp_path):
    path = _write(tmp_path, "allbad.csv", """\
        date,ticker,open,high,low,close,volume
        2024-01-02,AAPL,-1,1,1,1,1
        2024-01-03,AAPL,1,1,2,1,1
        """)
    with pytest.raises(DataError, match="allbad.csv: no valid rows"):
        load_bars_file(path)


def test_unsupported_or_missing_file_raises(tmp_path):
    with pytest.raises(DataError, match="unsupported file type"):
        load_bars_file(_write(tmp_path, "bars.json", "{}"))
    with pytest.raises(DataError, match="not found"):
        load_bars_file(tmp_path / "nope.csv")


def test_parquet_round_trip_of_demo_bars(tmp_path):
    market = demo_market(n_tickers=55, n_sessions=80, seed=4)
    path = tmp_path / "demo.parquet"
    market.bars.to_parquet(path)
    bars, report = load_bars_file(path)
    pd.testing.assert_frame_equal(bars, market.bars)
    # the demo market's halts and missing days are reported as gaps, not filled
    expected_gaps = 0
    for _, rows in market.bars.groupby("ticker"):
        first, last = rows["date"].min(), rows["date"].max()
        span = ((market.dates >= first) & (market.dates <= last)).sum()
        expected_gaps += span - len(rows)
    assert expected_gaps > 0 and report.counts == {"gap": expected_gaps}


def test_parquet_examples_use_row_numbers(tmp_path):
    frame = pd.DataFrame({
        "date": pd.to_datetime(["2024-01-02", "2024-01-03"]), "ticker": ["A", "A"],
        "open": [1.0, 1.0], "high": [2.0, 2.0], "low": [0.5, 3.0], "close": [1.5, 1.5],
        "volume": [10.0, 10.0],
    })
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    _, report = load_bars_file(path)
    assert report.issues["high_below_low"].examples == ["x.parquet:row 2: high=2.0 < low=3.0"]


def test_reference_file_aliases_amounts_and_bad_rows(tmp_path):
    path = _write(tmp_path, "sectors.csv", """\
        Symbol,Security,GICS Sector,Market Cap,Shares Outstanding
        AAPL,Apple,Information Technology,$2.9T,15.1B
        brk-b,Berkshire,Financials,"900,000,000,000",n/a
        FOO BAR,Bad,Energy,1,1
        AAPL,Apple,Information Technology,3.0T,15.0B
        """)
    reference, report = load_reference_file(path)
    assert reference["ticker"].tolist() == ["AAPL", "BRK.B"]
    assert reference.set_index("ticker")["market_cap"].to_dict() == {"AAPL": 3.0e12, "BRK.B": 9e11}
    assert np.isnan(reference.set_index("ticker").loc["BRK.B", "shares_outstanding"])
    assert report.counts == {"bad_ticker": 1, "bad_amount": 1, "duplicate": 1}
    assert report.issues["bad_ticker"].examples == ["sectors.csv:4: 'FOO BAR'"]
    assert report.issues["duplicate"].examples == ["sectors.csv:2: 'AAPL'"]


def test_parse_amounts_understands_suffixes():
    values = parse_amounts(pd.Series(["1.5K", "2M", "3b", "-4", "1e3", "abc", ""]))
    assert values.tolist()[:5] == [1500.0, 2e6, 3e9, -4.0, 1000.0]
    assert values.iloc[5:].isna().all()


def test_csv_source_filters_and_attaches_reference(tmp_path):
    market = demo_market(n_tickers=60, n_sessions=60, seed=2)
    data = tmp_path / "bars.csv"
    market.bars.to_csv(data, index=False)
    sectors = tmp_path / "sectors.csv"
    market.reference.rename(columns={"ticker": "Symbol", "market_cap": "Market Cap"}).to_csv(
        sectors, index=False)
    source = CsvSource(data, sectors)
    assert isinstance(source, DataSource) and source.name == "csv"
    start = market.dates[10]
    loaded = source.load(["DM0001", "dm0002", "ZZZZ"], start, None)
    assert loaded.tickers == ["DM0001", "DM0002"] and not loaded.is_demo
    assert loaded.dates.min() == start
    assert loaded.reference["sector"].tolist() == market.reference["sector"].iloc[:2].tolist()
    assert any("ZZZZ" in note for note in loaded.notes)
    expected = market.bars[market.bars["ticker"].isin(["DM0001", "DM0002"])
                           & (market.bars["date"] >= start)].reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded.bars, expected, check_exact=False, rtol=1e-12)
    with pytest.raises(DataError, match="no bars"):
        source.load(["ZZZZ"], None, None)


def test_csv_source_reads_a_directory_of_per_ticker_files(tmp_path):
    folder = tmp_path / "bars"
    folder.mkdir()
    for ticker, close in (("AAPL", 10.0), ("MSFT", 20.0)):
        pd.DataFrame({
            "Date": ["2024-01-02", "2024-01-03"], "Open": close, "High": close + 1,
            "Low": close - 1, "Close": close, "Volume": 100,
        }).to_csv(folder / f"{ticker}.csv", index=False)
    with_vwap = pd.read_csv(folder / "AAPL.csv").assign(VWAP=10.2)
    with_vwap.to_csv(folder / "AAPL.csv", index=False)
    (folder / "notes.md").write_text("ignored", encoding="utf-8")
    source = CsvSource(folder)
    market = source.load()
    assert market.tickers == ["AAPL", "MSFT"] and len(market.bars) == 4
    vwap = market.bars.groupby("ticker")["vwap"].first().to_dict()
    assert vwap == {"AAPL": 10.2, "MSFT": pytest.approx((21 + 19 + 20) / 3)}
    assert "vwap_filled" not in source.report.counts
    assert any("MSFT.csv: no vwap column" in note for note in source.report.notes)


_GOOD_ROW = ("2024-01-02", "AAPL", "10", "11", "9", "10.5", "1000")
_CORRUPTIONS = {
    0: ["bad", "", "2024-02-30"],
    1: ["", "FOO BAR", "1X"],
    2: ["-1", "0", "abc", ""],
    3: ["8", "x"],
    6: ["-1", ""],
}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from(sorted(_CORRUPTIONS)),
                          st.integers(0, 3)), min_size=1, max_size=30))
def test_rows_read_equals_rows_kept_plus_dropped(tmp_path, corruptions):
    sessions = pd.bdate_range("2024-02-01", periods=45)
    rows = [[str(d.date()), *_GOOD_ROW[1:]] for d in sessions]
    for row_index, column, choice in corruptions:
        options = _CORRUPTIONS[column]
        rows[row_index][column] = options[choice % len(options)]
    text = "date,ticker,open,high,low,close,volume\n" + "\n".join(",".join(r) for r in rows)
    path = tmp_path / "fuzz.csv"
    path.write_text(text, encoding="utf-8")
    try:
        bars, report = load_bars_file(path)
    except DataError as e:
        assert "no valid rows" in str(e)
        return
    assert report.rows_read == 45
    assert report.rows_kept == len(bars) == report.rows_read - report.rows_dropped
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()


def test_us_style_dates_are_parsed_month_first_and_noted(tmp_path):
    path = _write(tmp_path, "us.csv", """\
        date,ticker,open,high,low,close,volume
        01/02/2024,AAPL,10,11,9,10,100
        2024-01-03,AAPL,10,11,9,10,100
        """)
    bars, report = load_bars_file(path)
    assert bars["date"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    assert any("month-first" in note for note in report.notes)


# a 2:1 split after the close of 2024-01-03 and a $1 dividend going ex on 2024-01-05:
# the split-adjusted prices show the dividend as a drop, the adjusted close does not
ADJUSTED_CSV = """\
date,ticker,open,high,low,close,Adj Close,volume
2024-01-02,ACME,50,51,49,50,45,1000
2024-01-03,ACME,50,51,49,50,45,2000
2024-01-04,ACME,50,51,49,50,45,3000
2024-01-05,ACME,49,50,48,49,49,4000
2024-01-08,ACME,49,50,48,49,49,5000
"""


def test_adjusted_close_puts_prices_on_a_total_return_basis_and_is_noted(tmp_path):
    bars, report = load_bars_file(_write(tmp_path, "adj.csv", ADJUSTED_CSV))
    factor = np.array([0.9, 0.9, 0.9, 1.0, 1.0])
    np.testing.assert_allclose(bars["close"], [45, 45, 45, 49, 49])
    np.testing.assert_allclose(bars["open"], np.array([50, 50, 50, 49, 49]) * factor)
    np.testing.assert_allclose(bars["high"], np.array([51, 51, 51, 50, 50]) * factor)
    np.testing.assert_allclose(bars["low"], np.array([49, 49, 49, 48, 48]) * factor)
    np.testing.assert_allclose(bars["volume"], np.array([1, 2, 3, 4, 5]) * 1000 / factor)
    # the vwap fallback is computed on the adjusted prices; dollar volume is unchanged
    np.testing.assert_allclose(bars["vwap"], (bars["high"] + bars["low"] + bars["close"]) / 3)
    np.testing.assert_allclose(bars["close"] * bars["volume"],
                               np.array([50, 50, 50, 49, 49]) * np.array([1, 2, 3, 4, 5]) * 1e3)
    # the ex-dividend day is a gain on the total-return basis (45 -> 49), not a -2 % drop
    assert bars["close"].pct_change().iloc[3] == pytest.approx(49 / 45 - 1)
    assert any("adjusted close used" in note and "3 of 5 rows" in note
               for note in report.notes)


def test_bad_adjusted_close_drops_the_row_and_without_the_column_nothing_changes(tmp_path):
    text = ADJUSTED_CSV.replace("2024-01-04,ACME,50,51,49,50,45,", "2024-01-04,ACME,50,51,49,50,,")
    text = text.replace("2024-01-08,ACME,49,50,48,49,49,", "2024-01-08,ACME,49,50,48,49,-1,")
    bars, report = load_bars_file(_write(tmp_path, "badadj.csv", text))
    assert report.counts["bad_adj_close"] == 2
    assert report.issues["bad_adj_close"].examples == ["badadj.csv:4: ''", "badadj.csv:6: '-1'"]
    assert len(bars) == 3 and report.rows_read == report.rows_kept + report.rows_dropped
    plain = "\n".join(",".join(f for i, f in enumerate(line.split(",")) if i != 6)
                      for line in ADJUSTED_CSV.splitlines())
    bars, report = load_bars_file(_write(tmp_path, "plain.csv", plain))
    np.testing.assert_allclose(bars["close"], [50, 50, 50, 49, 49])
    np.testing.assert_allclose(bars["volume"], [1000, 2000, 3000, 4000, 5000])
    assert not any("adjusted close" in note for note in report.notes)


def test_gzip_csv_and_parquet_with_adjusted_close_load_alike(tmp_path):
    frame = pd.read_csv(_write(tmp_path, "adj.csv", ADJUSTED_CSV))
    frame.to_csv(tmp_path / "adj.csv.gz", index=False, compression="gzip")
    frame.rename(columns={"Adj Close": "adjclose"}).to_parquet(tmp_path / "adj.parquet")
    from_csv, _ = load_bars_file(tmp_path / "adj.csv")
    from_gzip, gzip_report = load_bars_file(tmp_path / "adj.csv.gz")
    from_parquet, parquet_report = load_bars_file(tmp_path / "adj.parquet")
    pd.testing.assert_frame_equal(from_gzip, from_csv)
    pd.testing.assert_frame_equal(from_parquet, from_csv)
    assert any("adjusted close used" in note for note in gzip_report.notes)
    assert any("adjusted close used" in note for note in parquet_report.notes)
    # a directory of per-ticker .csv.gz files takes the ticker from the name before .csv.gz
    folder = tmp_path / "per_ticker"
    folder.mkdir()
    frame.drop(columns="ticker").to_csv(folder / "ACME.csv.gz", index=False)
    market = CsvSource(folder).load()
    assert market.tickers == ["ACME"]
    np.testing.assert_allclose(market.bars["close"], from_csv["close"])
