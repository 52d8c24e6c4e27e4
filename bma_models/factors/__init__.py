"""Vectorised factor library, registry and cross-sectional processing.

The registry (:data:`FAMILIES`) says how each factor family is computed; the
packaged ``alphas_config.yaml`` is the one list of default factors
(:data:`FACTORS`, :data:`DEFAULT_FACTOR_SET`); a copy in the config directory
replaces it (:func:`load_factor_set`).
"""

from bma_models.factors.cross_section import cross_sectional_process
from bma_models.factors.engine import compute_factors, resolve_specs
from bma_models.factors.registry import (
    DEFAULT_FACTOR_SET,
    FACTORS,
    FAMILIES,
    PACKAGED_ALPHAS_CONFIG,
    FactorFamily,
    FactorSet,
    FactorSpec,
    factor_specs_from_config,
    load_alphas_config,
    load_factor_set,
)
from bma_models.settings import CATEGORIES

__all__ = [
    "CATEGORIES",
    "DEFAULT_FACTOR_SET",
    "FACTORS",
    "FAMILIES",
    "PACKAGED_ALPHAS_CONFIG",
    "FactorFamily",
    "FactorSet",
    "FactorSpec",
    "compute_factors",
    "cross_sectional_process",
    "factor_specs_from_config",
    "load_alphas_config",
    "load_factor_set",
    "resolve_specs",
]
