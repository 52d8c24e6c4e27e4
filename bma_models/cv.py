"""Purged, embargoed, forward-chaining cross-validation over trading dates.

:class:`PurgedGroupTimeSeriesSplit` follows the scikit-learn splitter protocol
(``split(X, y, groups)`` / ``get_n_splits``) so it can be handed to
``cross_val_predict``, ``GridSearchCV`` or :func:`sklearn.model_selection.check_cv`.
Groups are trading dates; every row of one date lands on the same side of a split.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator
from sklearn.model_selection._split import GroupsConsumerMixin

from bma_models.errors import DataError, LeakageError, SettingsError

logger = logging.getLogger(__name__)

__all__ = [
    "PurgedGroupTimeSeriesSplit",
    "check_fold_separation",
    "check_purge_covers_horizon",
    "date_groups",
]


def date_groups(X, groups=None) -> np.ndarray:
    """Return the per-row date (group) labels used to split ``X``.

    Parameters
    ----------
    X : DataFrame or Series or array-like
        Rows to split. When ``groups`` is None, ``X`` must carry a ``(date, ticker)``
        MultiIndex (the level named ``date``, else level 0) or a DatetimeIndex.
    groups : array-like, optional
        Explicit per-row group labels; take precedence over the index.

    Returns
    -------
    numpy.ndarray
        One group label per row.

    Raises
    ------
    DataError
        If no groups are given and ``X`` has no date index, or the lengths differ.
    """
    if groups is not None:
        labels = np.asarray(groups)
        if labels.shape[0] != len(X):
            raise DataError(f"groups has {labels.shape[0]} rows but X has {len(X)}")
        return labels
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex):
        level = "date" if "date" in index.names else 0
        return np.asarray(index.get_level_values(level))
    if isinstance(index, pd.DatetimeIndex):
        return np.asarray(index)
    raise DataError(
        "cannot find the trading dates: pass groups= or index X by (date, ticker)"
    )


def check_purge_covers_horizon(cv: PurgedGroupTimeSeriesSplit, horizon: int) -> None:
    """Raise :class:`LeakageError` unless ``cv.gap`` is at least the label horizon.

    Why: the label of date ``t`` is the return over ``t+1 .. t+horizon``; with a
    purge shorter than the horizon, the last training labels overlap the returns
    the test rows are scored on.
    """
    if int(horizon) < 1:
        raise SettingsError(f"label horizon must be >= 1 session, got {horizon}")
    if cv.gap < horizon:
        raise LeakageError(
            f"purge gap of {cv.gap} sessions is shorter than the label horizon of "
            f"{horizon} sessions; training labels would overlap the test period"
        )


class PurgedGroupTimeSeriesSplit(GroupsConsumerMixin, BaseCrossValidator):
    """Forward-chaining K-fold over trading dates with a purge gap and an embargo.

    Dates are ordered and numbered ``0 .. G-1`` (their *positions*, i.e. session
    counts). The last ``n_splits * test_group_size`` dates are cut into
    ``n_splits`` consecutive test blocks. For the block starting at position
    ``s`` the training dates are all positions ``< s - gap - embargo`` (the most
    recent ``max_train_group_size`` of them if that is set)::

        train ... train | gap (purged) | embargo | test test test
        p <= s-gap-emb-1  s-gap-emb..     ..s-1    s .. s+test_group_size-1

    * ``gap`` -- the purge: the sessions just before the test block whose labels
      (``t+1 .. t+horizon`` forward returns) overlap the test period. It must be
      at least the label horizon (see :func:`check_purge_covers_horizon`).
    * ``embargo`` -- further sessions dropped *after* the purge. In a
      forward-chaining split no training data follows the test block, so the
      embargo of López de Prado's K-fold becomes an extra buffer against
      serial correlation of features and labels across the boundary.

    Every fold verifies ``max_train_pos + gap + embargo < min_test_pos`` and raises
    :class:`~bma_models.errors.LeakageError` naming the positions and dates if not.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds (>= 2 like scikit-learn's splitters).
    gap : int, default=5
        Purge length in sessions.
    embargo : int, default=3
        Extra sessions dropped after the purge.
    max_train_group_size : int, optional
        Keep at most this many most-recent training dates (rolling window).
        None means an expanding window.
    test_group_size : int, optional
        Dates per test block. None means ``G // (n_splits + 1)``.

    Examples
    --------
    Ten dates of two rows each; positions are shown as date numbers.

    >>> import numpy as np
    >>> dates = np.repeat(np.arange(10), 2)
    >>> X = np.zeros((20, 1))
    >>> cv = PurgedGroupTimeSeriesSplit(n_splits=3, gap=1, embargo=1, test_group_size=2)
    >>> for train, test in cv.split(X, groups=dates):
    ...     print(np.unique(dates[train]), np.unique(dates[test]))
    [0 1] [4 5]
    [0 1 2 3] [6 7]
    [0 1 2 3 4 5] [8 9]

    A rolling window of two training dates and no embargo:

    >>> cv = PurgedGroupTimeSeriesSplit(n_splits=2, gap=2, embargo=0, max_train_group_size=2)
    >>> for train, test in cv.split(X, groups=dates):
    ...     print(np.unique(dates[train]), np.unique(dates[test]))
    [0 1] [4 5 6]
    [3 4] [7 8 9]

    Without ``test_group_size`` each block holds ``G // (n_splits + 1)`` dates
    (here ``10 // 3 = 3``); the blocks are taken from the end so the most recent
    dates are always tested and any remainder goes to the first training window.
    """

    def __init__(
        self,
        n_splits=5,
        *,
        gap=5,
        embargo=3,
        max_train_group_size=None,
        test_group_size=None,
    ):
        self.n_splits = n_splits
        self.gap = gap
        self.embargo = embargo
        self.max_train_group_size = max_train_group_size
        self.test_group_size = test_group_size

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of folds, ``n_splits``."""
        return self.n_splits

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` row positions for each fold.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows; when ``groups`` is None its index must hold the dates.
        y : ignored
        groups : array-like of shape (n_samples,), optional
            Date of each row. Rows need not be sorted.

        Yields
        ------
        train_idx, test_idx : ndarray of int
            Positional row indices, ascending.

        Raises
        ------
        SettingsError
            If a parameter is out of range.
        DataError
            If there are too few dates for the requested folds.
        LeakageError
            If a fold violates the gap + embargo separation.
        """
        self._validate_params()
        labels = date_groups(X, groups)
        unique_dates, row_pos = np.unique(labels, return_inverse=True)
        row_pos = row_pos.ravel()
        for train_pos, test_pos in self._iter_position_folds(len(unique_dates)):
            check_fold_separation(train_pos, test_pos, self.gap, self.embargo, unique_dates)
            train_idx = np.flatnonzero(np.isin(row_pos, train_pos))
            test_idx = np.flatnonzero(np.isin(row_pos, test_pos))
            yield train_idx, test_idx

    def fold_positions(self, n_groups: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Return the ``(train, test)`` date positions of each fold for ``n_groups`` dates."""
        self._validate_params()
        return list(self._iter_position_folds(int(n_groups)))

    def _iter_position_folds(self, n_groups):
        n_splits, separation = self.n_splits, self.gap + self.embargo
        test_size = self.test_group_size or n_groups // (n_splits + 1)
        first_test = n_groups - n_splits * test_size
        if test_size < 1 or first_test - separation < 1:
            raise DataError(
                f"{n_groups} dates are too few for {n_splits} folds of {test_size} test "
                f"dates with gap {self.gap} + embargo {self.embargo}: the first fold "
                f"would start at date position {first_test} and keep no training date"
            )
        for test_start in range(first_test, n_groups, test_size):
            train_end = test_start - separation
            train_start = 0
            if self.max_train_group_size is not None:
                train_start = max(0, train_end - self.max_train_group_size)
            yield (
                np.arange(train_start, train_end),
                np.arange(test_start, test_start + test_size),
            )

    def _validate_params(self):
        for name in ("n_splits", "gap", "embargo", "max_train_group_size", "test_group_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)
            )):
                raise SettingsError(f"{name} must be an integer, got {value!r}")
        if self.n_splits < 2:
            raise SettingsError(f"n_splits must be >= 2, got {self.n_splits}")
        if self.gap < 0 or self.embargo < 0:
            raise SettingsError(
                f"gap and embargo must be >= 0, got gap={self.gap}, embargo={self.embargo}"
            )
        for name in ("max_train_group_size", "test_group_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SettingsError(f"{name} must be >= 1 or None, got {value}")


def check_fold_separation(train_pos, test_pos, gap, embargo, dates=None) -> None:
    """Raise :class:`LeakageError` unless ``max(train) + gap + embargo < min(test)``.

    Parameters
    ----------
    train_pos, test_pos : array-like of int
        Date positions (session numbers) of one fold.
    gap, embargo : int
        The purge and embargo in sessions.
    dates : array-like, optional
        Date labels indexed by position, used to name the offending dates.
    """
    train_pos, test_pos = np.asarray(train_pos), np.asarray(test_pos)
    if train_pos.size == 0 or test_pos.size == 0:
        raise DataError(
            f"empty fold: {train_pos.size} training and {test_pos.size} test dates"
        )
    last_train, first_test = int(train_pos.max()), int(test_pos.min())
    if last_train + gap + embargo < first_test:
        return
    names = ""
    if dates is not None:
        names = f" (last train date {dates[last_train]}, first test date {dates[first_test]})"
    raise LeakageError(
        f"fold violates the purge: last train position {last_train} + gap {gap} + "
        f"embargo {embargo} = {last_train + gap + embargo} is not before first test "
        f"position {first_test}{names}"
    )
