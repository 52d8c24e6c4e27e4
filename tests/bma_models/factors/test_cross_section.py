"""Per-date winsorise / z-score / sector de-mean / median impute."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bma_models.errors import SettingsError
from bma_models.factors import cross_sectional_process
from bma_models.factors.cross_section import row_quantiles


def _frame(values_by_date, tickers=("A", "B", "C", "D", "E")):
    dates = pd.bdate_range("2024-01-01", periods=len(values_by_date))
    index = pd.MultiIndex.from_product([dates, list(tickers)], names=["date", "ticker"])
    return pd.DataFrame({"f": np.concatenate(values_by_date).astype(float)}, index=index)


def _reference(frame, lower, upper, sectors=None):
    def per_date(x):
        x = x.clip(x.quantile(lower), x.quantile(upper))
        z = (x - x.mean()) / x.std(ddof=0) if x.std(ddof=0) > 0 else x * 0
        if sectors is not None:
            s = pd.Series(x.index.get_level_values("ticker").map(sectors), index=x.index)
            z = z - z.groupby(s).transform("mean").fillna(0)
        return z.fillna(z.median())
    return frame.groupby(level="date", group_keys=False)["f"].apply(per_date)


def test_matches_a_groupby_reference_without_and_with_sectors():
    rng = np.random.default_rng(42)
    frame = _frame([rng.standard_t(2, 40) for _ in range(3)], tickers=[f"T{i}" for i in range(40)])
    frame.iloc[[3, 50, 51]] = np.nan
    out = cross_sectional_process(frame, lower=0.05, upper=0.95)
    pd.testing.assert_series_equal(out["f"], _reference(frame, 0.05, 0.95), check_names=False)
    sectors = {f"T{i}": ("X" if i % 3 else "Y") for i in range(40)}
    out = cross_sectional_process(frame, sectors=sectors, lower=0.05, upper=0.95)
    pd.testing.assert_series_equal(out["f"], _reference(frame, 0.05, 0.95, sectors),
                                   check_names=False)


def test_hand_computed_winsorise_zscore_and_median_fill():
    frame = _frame([[1.0, 2.0, 3.0, 4.0, np.nan]])
    out = cross_sectional_process(frame, lower=0.0, upper=1.0)["f"].to_numpy()
    z = (np.array([1, 2, 3, 4]) - 2.5) / np.std([1, 2, 3, 4])
    np.testing.assert_allclose(out[:4], z)
    assert out[4] == pytest.approx(np.median(z))
    clipped = cross_sectional_process(_frame([[0.0, 0.0, 0.0, 0.0, 100.0]]), upper=0.5)
    assert (clipped["f"] == 0.0).all()  # outlier clipped to the median: constant -> 0


def test_each_date_uses_only_its_own_cross_section():
    rng = np.random.default_rng(1)
    frame = _frame([rng.normal(size=5) for _ in range(4)])
    changed = frame.copy()
    changed.iloc[15:] = changed.iloc[15:] * 100 + 7  # rewrite the last date only
    a, b = cross_sectional_process(frame), cross_sectional_process(changed)
    pd.testing.assert_frame_equal(a.iloc[:15], b.iloc[:15])


def test_sector_means_are_zero_and_unknown_sectors_untouched():
    rng = np.random.default_rng(2)
    frame = _frame([rng.normal(size=5) for _ in range(3)])
    sectors = pd.Series({"A": "X", "B": "X", "C": "Y", "D": "Y", "E": None})
    out = cross_sectional_process(frame, sectors=sectors)
    plain = cross_sectional_process(frame)
    labels = out.index.get_level_values("ticker").map(sectors.to_dict())
    means = out["f"].groupby([out.index.get_level_values("date"), labels]).mean()
    np.testing.assert_allclose(means.to_numpy(), 0.0, atol=1e-12)
    e_rows = out.index.get_level_values("ticker") == "E"
    pd.testing.assert_frame_equal(out[e_rows], plain[e_rows])
    off = cross_sectional_process(frame, sectors=sectors, sector_neutral=False)
    pd.testing.assert_frame_equal(off, plain)


def test_all_nan_date_stays_nan_and_order_is_preserved():
    frame = _frame([[np.nan] * 5, [1.0, 2.0, np.nan, 3.0, 4.0]])
    shuffled = frame.iloc[::-1]
    out = cross_sectional_process(shuffled)
    assert out.index.equals(shuffled.index)
    assert out["f"].iloc[5:].isna().all() and out["f"].iloc[:5].notna().all()


def test_row_quantiles_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 9))
    x[x > 1.2] = np.nan
    x[0] = np.nan
    expected = np.nanquantile(x[1:], [0.01, 0.5, 0.99], axis=1).T
    np.testing.assert_allclose(row_quantiles(x, (0.01, 0.5, 0.99))[1:], expected)
    assert np.isnan(row_quantiles(x, (0.5,))[0]).all()


def test_bad_quantiles_are_rejected():
    with pytest.raises(SettingsError, match="lower"):
        cross_sectional_process(_frame([[1.0] * 5]), lower=0.6, upper=0.4)
