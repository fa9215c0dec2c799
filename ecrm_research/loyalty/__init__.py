"""Loyalty drivers from a customer survey: scales, reliability, driver regression, mediation,
relative importance, SEM with latent variables and importance-performance analysis.

The analysis answers *which levers raise loyalty, and by how much?* on any survey whose items
are grouped into constructs by a mapping ``{construct: [item, ...]}``:

1. :func:`score_constructs` — reverse-code items, apply the missing-answer policy (a construct
   is scored when at least 2/3 of its items are answered), average the items;
   :func:`drop_constant_items` removes items without variance (or stops with a clear error);
2. :func:`item_analysis`, :func:`measurement_model`, :func:`htmt` — Cronbach's alpha (raw and
   standardized), corrected item-total correlations, alpha-if-item-deleted, composite
   reliability and AVE from a CFA, Fornell-Larcker and HTMT discriminant validity;
3. :func:`fit_drivers` — OLS driver regressions (statsmodels) with standardized coefficients,
   optional HC3 errors, VIF, cross-validated R² and residual diagnostics;
4. :func:`mediation_analysis` — indirect, direct and total effects with seeded bootstrap
   percentile intervals, on composite scores and corrected for measurement error;
5. :func:`relative_importance` — exact Shapley decomposition (general dominance) of R²;
6. :func:`fit_sem` — measurement + structural model with semopy, finished to the ML optimum
   (:mod:`.mlfit`: gradient check, a second optimiser and a restart, the lowest objective kept),
   with lavaan 0.6's standard errors, std.all with delta-method SEs, and χ², CFI, TLI, RMSEA and
   SRMR as lavaan computes them, judged against the usual cut-offs; improper or unconverged
   solutions are warned about (``warnings_``);
7. :func:`importance_performance` and :func:`lever_ranking` — the IPA map and the expected
   loyalty gain per one-point improvement of each lever;
8. :func:`stated_vs_actual` — does stated loyalty predict real repurchase (canonical data)?

The code lives in submodules, one concern each: :mod:`.constructs` (the construct mapping),
:mod:`.scoring`, :mod:`.reliability`, :mod:`.mlfit` (reaching the ML optimum, lavaan's
inference), :mod:`.sem` (semopy and fit indices), :mod:`.measurement` (CFA), :mod:`.structural`
(SEM), :mod:`.drivers`, :mod:`.resampling` (bootstrap covariances), :mod:`.mediation`,
:mod:`.importance`, :mod:`.repurchase`, :mod:`.comparison` (estimators side by side, tables in
words); figures in :mod:`.plots`. This module re-exports their public API.

Examples
--------
>>> from ecrm_research import loyalty                                   # doctest: +SKIP
>>> spec = loyalty.load_constructs("data/mappings/ecsi_mobi_constructs.yaml")  # doctest: +SKIP
>>> sc = loyalty.score_constructs(frame, spec.constructs, scale_min=1, scale_max=10)  # doctest: +SKIP
>>> loyalty.item_analysis(sc.items, spec.constructs).summary            # doctest: +SKIP
"""


from ..exceptions import AnalysisError
from ..phrasing import format_p_value, p_text
from .comparison import all_effects, effects_by_method, readable, robustness_paths
from .constructs import (
    SAMPLE_PREFIXES,
    ConstructSpec,
    infer_constructs,
    load_constructs,
    resolve_constructs,
    survey_from_dataset,
)
from .drivers import DriverModel, fit_drivers, vif
from .importance import (
    QUADRANT_ACTIONS,
    RelativeImportance,
    importance_performance,
    lever_ranking,
    relative_importance,
)
from .measurement import MeasurementModel, measurement_model, reliability_table
from .mediation import MediationResult, mediation_analysis
from .mlfit import GRADIENT_TOLERANCE, MLSolution, parameter_table, reach_ml_optimum
from .reliability import (
    ItemAnalysis,
    apply_item_review,
    composite_reliability,
    cronbach_alpha,
    fornell_larcker,
    htmt,
    item_analysis,
    review_items,
    standardized_alpha,
)
from .repurchase import RepurchaseCheck, stated_vs_actual
from .scoring import (
    MIN_ANSWERED_SHARE,
    ScaleScores,
    constant_items,
    drop_constant_items,
    reverse_code,
    score_constructs,
)
from .sem import FIT_THRESHOLDS, fit_table, srmr
from .structural import SEMResult, fit_sem, structural_paths

__all__ = [
    "AnalysisError",
    # constructs
    "SAMPLE_PREFIXES", "ConstructSpec", "infer_constructs", "load_constructs", "resolve_constructs",
    "survey_from_dataset",
    # scores
    "MIN_ANSWERED_SHARE", "ScaleScores", "reverse_code", "score_constructs", "constant_items", "drop_constant_items",
    # reliability and validity
    "ItemAnalysis", "cronbach_alpha", "standardized_alpha", "item_analysis", "review_items", "apply_item_review",
    "composite_reliability", "htmt", "fornell_larcker",
    "MeasurementModel", "measurement_model", "reliability_table",
    # latent-variable models
    "FIT_THRESHOLDS", "fit_table", "srmr", "SEMResult", "fit_sem", "structural_paths",
    "GRADIENT_TOLERANCE", "MLSolution", "reach_ml_optimum", "parameter_table",
    # regressions and effects
    "DriverModel", "fit_drivers", "vif", "MediationResult", "mediation_analysis",
    "RelativeImportance", "relative_importance",
    # levers
    "QUADRANT_ACTIONS", "importance_performance", "lever_ranking",
    # stated vs actual
    "RepurchaseCheck", "stated_vs_actual",
    # side by side, and tables in words
    "all_effects", "effects_by_method", "robustness_paths", "readable", "format_p_value", "p_text",
]
