"""First-layer estimators, learning-to-rank wrappers, OOF machinery and stacking.

Every learnable component is a scikit-learn estimator; :class:`StackedModel`
orchestrates the walk-forward (see its docstring for the three steps).
"""

from bma_models.models.first_layer import (
    DEFAULT_ENABLED,
    DEFAULT_PARAMS,
    MODEL_NAMES,
    available_cores,
    make_first_layer,
    threads_per_model,
)
from bma_models.models.oof import fit_models, oof_predictions, parallel_settings
from bma_models.models.ranking import (
    LightGBMRanker,
    XGBoostRanker,
    relevance_from_label,
    row_dates,
)
from bma_models.models.stacked import StackedModel
from bma_models.models.stacking import (
    ICWeightedAverage,
    NonNegativeRidgeStack,
    ValidatedStack,
    cross_sectional_zscore,
)

__all__ = [
    "DEFAULT_ENABLED",
    "DEFAULT_PARAMS",
    "MODEL_NAMES",
    "ICWeightedAverage",
    "LightGBMRanker",
    "NonNegativeRidgeStack",
    "StackedModel",
    "ValidatedStack",
    "XGBoostRanker",
    "available_cores",
    "cross_sectional_zscore",
    "fit_models",
    "make_first_layer",
    "oof_predictions",
    "parallel_settings",
    "relevance_from_label",
    "row_dates",
    "threads_per_model",
]
