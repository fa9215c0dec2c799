"""The closed loop: one customer view, next best offers, churn-risk models and a campaign plan.

Analytical CRM closes a loop: *analyse* the customers, *act* on the analysis (a campaign), *measure*
what the action did (a randomised holdout), and *learn* (feed the result into the next analysis). The
loop needs one shared customer record. This package builds it from the analyses below it (layer 3.5:
it may import ``segmentation``, ``loyalty``, ``survival``, ``association``, ``activity`` and everything
below them; only ``report`` and ``cli`` import it), in the five steps of notebook
``05_customer_view``::

    1 define      one row per customer as of a date; churn = no completed order within horizon_days
    2 prepare     cleaned canonical tables (prep) ─► churn_cutoffs: train | test | as_of, one horizon apart
    3 apply       customer_profiles (segments, RFM, value tier, CLV)   satisfaction_scores (survey, 0-100)
                  customer_histories ─► NextBestOffer (rules on histories, segment popularity fallback)
                  churn_frame ─► ChurnModelComparison (Cox, logistic, gradient boosting, MLP)
    4 analyse     backtest_nbo (hit rate@k, recall@k, bootstrap CIs vs popularity baselines)
                  ChurnModelComparison.evaluate (AUC + CI, Brier, top-decile lift, calibration, gains)
    5 apply       build_customer_view ─► customer_view.parquet/.csv (VIEW_COLUMNS)
                  plan_campaign (retention vs cross-sell by expected value, cut at the budget)
                  holdout_size (the control group that would measure the save rate)

Every step that learns from the data is evaluated on a later period than it was built on: features
are computed from orders before a cut-off only, outcomes from the window after it.

Modules
-------
``nbo``           next best offer: :func:`customer_histories`, :class:`NextBestOffer`, :func:`backtest_nbo`
``churn_models``  :data:`MODELS`, :func:`churn_cutoffs`, :func:`churn_frame`, :class:`ChurnModelComparison`
                  and the metrics (:func:`auc_score`, :func:`brier_score`, :func:`top_decile_lift`,
                  :func:`calibration_table`, :func:`gains_table`)
``view``          :data:`VIEW_COLUMNS`, :func:`customer_profiles`, :func:`top_categories`,
                  :func:`satisfaction_scores`, :func:`satisfaction_reason`, :func:`build_customer_view`,
                  :data:`ACTION_RULES`, :func:`view_columns_table`, :func:`view_coverage`
``campaign``      :func:`plan_campaign` → :class:`CampaignPlan`, :func:`holdout_size`
``plots``         figures (calibration, gain chart, offer backtest), each ``ax=None`` → Axes; imported on its own
                 (``from ecrm_research.customer_view import plots``) so the package loads without matplotlib
"""

from __future__ import annotations

from .campaign import PLAN_COLUMNS, CampaignPlan, holdout_size, plan_campaign
from .churn_models import (
    MODEL_LABELS,
    MODELS,
    OUTCOME_COLUMNS,
    ChurnModelComparison,
    auc_score,
    brier_score,
    calibration_table,
    churn_cutoffs,
    churn_frame,
    gains_table,
    top_decile_lift,
)
from .nbo import (
    BACKTEST_COLUMNS,
    DEFAULT_TARGET_RULES,
    HISTORY_COLUMNS,
    METHODS,
    OFFER_COLUMNS,
    NextBestOffer,
    backtest_nbo,
    customer_histories,
)
from .view import (
    ACTION_RULES,
    VALUE_DEFINITION,
    VIEW_COLUMNS,
    build_customer_view,
    customer_profiles,
    linked_answers,
    satisfaction_reason,
    satisfaction_scores,
    top_categories,
    view_columns_table,
    view_coverage,
)

__all__ = [
    # nbo
    "HISTORY_COLUMNS", "OFFER_COLUMNS", "BACKTEST_COLUMNS", "METHODS", "DEFAULT_TARGET_RULES",
    "customer_histories", "NextBestOffer", "backtest_nbo",
    # churn_models
    "MODELS", "MODEL_LABELS", "OUTCOME_COLUMNS", "churn_cutoffs", "churn_frame", "ChurnModelComparison",
    "auc_score", "brier_score", "top_decile_lift", "calibration_table", "gains_table",
    # view
    "VIEW_COLUMNS", "ACTION_RULES", "VALUE_DEFINITION", "customer_profiles", "top_categories",
    "satisfaction_scores", "satisfaction_reason", "linked_answers", "build_customer_view",
    "view_columns_table", "view_coverage",
    # campaign
    "CampaignPlan", "PLAN_COLUMNS", "plan_campaign", "holdout_size",
]
