"""PurgedGroupTimeSeriesSplit: hand-computed folds, invariants, errors, sklearn protocol."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge
from sklearn.model_selection import check_cv, cross_validate

import bma_models.cv as cv_module
from bma_models.cv import (
    PurgedGroupTimeSeriesSplit,
    check_fold_separation,
    check_purge_covers_horizon,
)
from bma_models.errors import DataError, LeakageError, SettingsError


def test_doctests_of_the_cv_module_pass():
    result = doctest.testmod(cv_module)
    assert result.attempted >= 4
    assert result.failed == 0


def test_hand_computed_folds_for_twelve_dates_two_rows_each():
    # 12 dates, n_splits=3 -> test blocks of 12 // 4 = 3 dates: [3,4,5], [6,7,8], [9,10,11];
    # gap 1 + embargo 1: train ends 2 dates before each block -> [0], [0..3], [0..6];
    # max_train_group_size=4 trims the last to [3..6]. Rows are 2 * date, 2 * date + 1.
    dates = np.repeat(pd.bdate_range("2024-01-01", periods=12), 2)
    X = pd.DataFrame({"x": np.arange(24.0)})
    cv = PurgedGroupTimeSeriesSplit(n_splits=3, gap=1, embargo=1, max_train_group_size=4)
    folds = list(cv.split(X, groups=dates))
    expected = [
        ([0, 1], [6, 7, 8, 9, 10, 11]),
        ([0, 1, 2, 3, 4, 5, 6, 7], [12, 13, 14, 15, 16, 17]),
        ([6, 7, 8, 9, 10, 11, 12, 13], [18, 19, 20, 21, 22, 23]),
    ]
    assert [(list(a), list(b)) for a, b in folds] == expected
    assert cv.get_n_splits() == 3


def test_groups_default_to_the_date_level_of_the_index():
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-01-01", periods=10), ["A", "B", "C"]], names=["date", "ticker"]
    )
    X = pd.DataFrame({"x": np.arange(30.0)}, index=index)
    cv = PurgedGroupTimeSeriesSplit(n_splits=2, gap=2, embargo=1)
    by_index = [(a.tolist(), b.tolist()) for a, b in cv.split(X)]
    by_groups = [
        (a.tolist(), b.tolist())
        for a, b in cv.split(X, groups=index.get_level_values("date"))
    ]
    assert by_index == by_groups
    # 10 // 3 = 3 test dates from position 4; train ends 3 dates earlier -> dates 0
    assert by_index[0] == ([0, 1, 2], [12, 13, 14, 15, 16, 17, 18, 19, 20])


def test_too_few_dates_raise_data_error_naming_the_numbers():
    cv = PurgedGroupTimeSeriesSplit(n_splits=5, gap=5, embargo=3)
    with pytest.raises(DataError, match=r"12 dates are too few for 5 folds"):
        list(cv.split(np.zeros((12, 1)), groups=np.arange(12)))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_splits": 1}, "n_splits must be >= 2"),
        ({"gap": -1}, "gap and embargo must be >= 0"),
        ({"embargo": 2.5}, "embargo must be an integer"),
        ({"test_group_size": 0}, "test_group_size must be >= 1"),
        ({"max_train_group_size": 0}, "max_train_group_size must be >= 1"),
    ],
)
def test_invalid_parameters_raise_settings_error(params, message):
    cv = PurgedGroupTimeSeriesSplit(**params)
    with pytest.raises(SettingsError, match=message):
        list(cv.split(np.zeros((100, 1)), groups=np.arange(100)))


def test_separation_check_names_positions_and_dates_when_violated():
    dates = pd.bdate_range("2024-01-01", periods=10)
    with pytest.raises(LeakageError, match=r"last train position 5 \+ gap 2 \+ embargo 1 = 8"):
        check_fold_separation([0, 1, 2, 3, 4, 5], [8, 9], gap=2, embargo=1, dates=dates)
    with pytest.raises(LeakageError, match="2024-01-08"):
        check_fold_separation([5], [8], gap=2, embargo=1, dates=dates)
    check_fold_separation([0, 1, 2, 3, 4], [8, 9], gap=2, embargo=1, dates=dates)


def test_purge_shorter_than_label_horizon_is_leakage():
    with pytest.raises(LeakageError, match="gap of 4 sessions is shorter than .* 5"):
        check_purge_covers_horizon(PurgedGroupTimeSeriesSplit(gap=4), horizon=5)
    check_purge_covers_horizon(PurgedGroupTimeSeriesSplit(gap=5), horizon=5)


def test_missing_dates_without_groups_raise_data_error():
    with pytest.raises(DataError, match="cannot find the trading dates"):
        list(PurgedGroupTimeSeriesSplit().split(np.zeros((100, 2))))


def test_splitter_works_with_sklearn_check_cv_and_cross_validate():
    rng = np.random.default_rng(0)
    dates = np.repeat(np.arange(60), 5)
    X = rng.standard_normal((300, 3))
    y = X @ np.array([1.0, 0.0, -1.0]) + 0.1 * rng.standard_normal(300)
    cv = PurgedGroupTimeSeriesSplit(n_splits=4, gap=2, embargo=1)
    assert check_cv(cv) is cv
    scores = cross_validate(Ridge(), X, y, cv=cv, groups=dates)
    assert len(scores["test_score"]) == 4
    assert np.all(scores["test_score"] > 0.9)


@st.composite
def split_cases(draw):
    n_dates = draw(st.integers(8, 60))
    n_splits = draw(st.integers(2, 5))
    gap = draw(st.integers(0, 6))
    embargo = draw(st.integers(0, 4))
    max_train = draw(st.one_of(st.none(), st.integers(1, 20)))
    test_size = draw(st.one_of(st.none(), st.integers(1, 8)))
    rows_per_date = draw(st.lists(st.integers(1, 3), min_size=n_dates, max_size=n_dates))
    seed = draw(st.integers(0, 2**16))
    return n_dates, n_splits, gap, embargo, max_train, test_size, rows_per_date, seed


@settings(max_examples=150, deadline=None)
@given(split_cases())
def test_folds_are_disjoint_forward_and_separated_by_gap_plus_embargo(case):
    n_dates, n_splits, gap, embargo, max_train, test_size, rows_per_date, seed = case
    size = test_size or n_dates // (n_splits + 1)
    assume(size >= 1 and n_dates - n_splits * size - gap - embargo >= 1)
    # rows in shuffled order with an uneven number of rows per date
    groups = np.repeat(np.arange(n_dates) * 10, rows_per_date)
    groups = np.random.default_rng(seed).permutation(groups)
    cv = PurgedGroupTimeSeriesSplit(
        n_splits, gap=gap, embargo=embargo, max_train_group_size=max_train,
        test_group_size=test_size,
    )
    folds = list(cv.split(np.zeros((groups.size, 1)), groups=groups))
    assert len(folds) == n_splits == cv.get_n_splits()
    previous_test_max = -1
    all_test = []
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        train_pos, test_pos = np.unique(groups[train]) // 10, np.unique(groups[test]) // 10
        assert train_pos.max() + gap + embargo < test_pos.min()
        assert train_pos.max() + gap + embargo + 1 == test_pos.min()  # nothing more is dropped
        assert np.array_equal(test_pos, np.arange(test_pos.min(), test_pos.max() + 1))
        assert test_pos.min() > previous_test_max
        previous_test_max = test_pos.max()
        if max_train is not None:
            assert train_pos.size <= max_train
        # every row of a date is on one side
        assert np.isin(groups, groups[test]).sum() == test.size
        assert np.isin(groups, groups[train]).sum() == train.size
        all_test.append(test)
    tested = np.concatenate(all_test)
    assert np.unique(tested).size == tested.size
    assert previous_test_max == n_dates - 1
