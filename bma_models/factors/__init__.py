"""Vectorised factor library, registry and cross-sectional processing.

The registry (:data:`FACTORS`, :data:`FAMILIES`) is the single source of truth
for the factor list; ``config/alphas_config.yaml`` selects from it through
:func:`factor_specs_from_config`.
"""

from bma_models.factors.cross_section import cross_sectional_process
from bma_models.factors.engine import compute_factors, resolve_specs
from bma_models.factors.registry import (
    CATEGORIES,
    FACTORS,
    FAMILIES,
    FactorFamily,
    FactorSpec,
    factor_specs_from_config,
    load_alphas_config,
)

__all__ = [
    "CATEGORIES",
    "FACTORS",
    "FAMILIES",
    "FactorFamily",
    "FactorSpec",
    "compute_factors",
    "cross_sectional_process",
    "factor_specs_from_config",
    "load_alphas_config",
    "resolve_specs",
]
