"""The polygon data source hands bars and reference data over in the protocol's layout."""

from __future__ import annotations

import pandas as pd
import pytest

from polygon import PolygonError, PolygonSource
from tests.polygon.conftest import UNIVERSE

BAR_COLUMNS = ["date", "ticker", "open", "high", "low", "close", "volume", "vwap"]
REFERENCE_COLUMNS = ["ticker", "sector", "market_cap", "shares_outstanding"]


def test_load_refreshes_and_returns_protocol_frames(server, make_store) -> None:
    source = PolygonSource(make_store())
    loaded = source.load(["syna", "SYNB"], "2024-03-01", "2024-06-28")
    assert source.name == "polygon" and loaded.source == "polygon" and not loaded.is_demo
    bars, reference = loaded.bars, loaded.reference
    assert list(bars.columns) == BAR_COLUMNS and list(reference.columns) == REFERENCE_COLUMNS
    assert bars["date"].min() == pd.Timestamp("2024-03-01")
    assert bars["date"].max() == pd.Timestamp("2024-06-28")
    assert not bars.duplicated(["date", "ticker"]).any()
    assert bars.equals(bars.sort_values(["date", "ticker"]).reset_index(drop=True))
    assert list(reference["ticker"]) == ["SYNA", "SYNB"]
    assert reference["market_cap"].dtype == "float64" and reference["sector"].notna().all()
    assert any("bars refresh" in note for note in loaded.notes)
    assert set(loaded._asdict()) == {"bars", "reference", "source", "is_demo", "notes"}


def test_offline_load_reads_the_cache_without_requests(server, make_store) -> None:
    store = make_store()
    PolygonSource(store).load(UNIVERSE[:2], "2024-01-02", "2024-06-28")
    server.clear_log()
    loaded = PolygonSource(store, refresh=False).load(None, "2024-06-01", "2024-06-28")
    assert server.paths() == [] and sorted(loaded.bars["ticker"].unique()) == list(UNIVERSE[:2])


def test_missing_tickers_are_noted(server, make_store) -> None:
    server.unknown_tickers.add("GONE")
    loaded = PolygonSource(make_store()).load(["SYNA", "GONE"], "2024-06-03", "2024-06-28")
    assert any("GONE" in note for note in loaded.notes)
    assert list(loaded.bars["ticker"].unique()) == ["SYNA"]


def test_no_tickers_and_empty_cache_is_an_error(make_store) -> None:
    with pytest.raises(PolygonError, match="cache is empty"):
        PolygonSource(make_store(), refresh=False).load(None, None, "2024-06-28")


def test_tqdm_progress_draws_and_closes_its_bar(capsys) -> None:
    from polygon import TqdmProgress

    progress = TqdmProgress(desc="bars")
    for done in (1, 2, 3):
        progress(done, 3, f"T{done}")
    assert progress._bar is None  # closed once done == total
    assert "bars" in capsys.readouterr().err
