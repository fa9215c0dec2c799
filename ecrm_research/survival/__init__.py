"""Churn as a survival problem: labelling, Kaplan-Meier, log-rank, Cox, PH checks, risk lists.

Two ways in, one object out (:class:`ChurnData`, one row per customer with ``duration``,
``event`` and covariates):

* :func:`~ecrm_research.prep.churn.label_churn` — from canonical orders of a *non-contractual* shop, where nobody
  announces that they leave, so churn has to be defined by inactivity;
* :func:`~ecrm_research.prep.churn.prepare_customer_table` — from a ready customer table with a duration and an event
  column (e.g. the IBM Telco data: ``tenure`` in months, ``Churn`` yes/no);

both are step-2 preparation and live in :mod:`ecrm_research.prep.churn`.

Then :func:`kaplan_meier` (curves and medians by group), :func:`logrank` (multivariate and
pairwise tests), :class:`ChurnCoxModel` (Cox proportional hazards with pre-flight checks,
hazard-ratio summary, churn probabilities), :func:`cox_zph` (the exact proportional-hazards
score test of R survival ≥ 3 ``cox.zph``, per covariate, per factor and GLOBAL), :func:`holdout_concordance`,
:func:`at_risk_customers` and :func:`campaign_sizing`.

Model fitting is delegated to lifelines (Efron's method for tied event times, as R's
``coxph`` default); ``tests/test_survival.py`` pins the Rossi recidivism fit against R and
against statsmodels' independent ``PHReg``.

Examples
--------
>>> data = label_churn(tables, inactivity_days=120)                 # doctest: +SKIP
>>> km = kaplan_meier(data.frame, group_col="is_member")             # doctest: +SKIP
>>> model = ChurnCoxModel().fit(data, covariates=["first_order_late", "is_member"])  # doctest: +SKIP
>>> model.summary                                                    # doctest: +SKIP

Modules
-------
``covariates``    :data:`DEFAULT_COVARIATES`, :func:`encode_covariates` (the design matrix)
``checks``        :func:`preflight_checks` (known causes of failed Cox fits, before fitting)
``kaplan_meier``  :class:`KaplanMeierResult`, :func:`kaplan_meier`, :func:`logrank`
``schoenfeld``    vectorised Schoenfeld residuals and the lifelines fitter that uses them
``ph_test``       :func:`cox_zph` (R survival ≥ 3 PH score test), :func:`ph_caveat`; ``p_text`` (from ``phrasing``)
``cox``           :class:`ChurnCoxModel`
``requirements``  :func:`require_table_columns`, :func:`require_churn_data` (clear errors before any fit)
``targeting``     :func:`holdout_concordance`, :func:`at_risk_customers`, :func:`campaign_sizing`
``plots``         the figures, drawn from the tidy tables above
"""

from __future__ import annotations

from ..exceptions import SurvivalWarning
from ..phrasing import p_text
from ..prep.churn import UNITS_PER_YEAR, ChurnData
from ..prep.churn_data import horizon_in_unit
from .checks import preflight_checks
from .covariates import DEFAULT_COVARIATES, encode_covariates
from .cox import COX_SUMMARY_COLUMNS, ChurnCoxModel
from .kaplan_meier import (
    CI_TYPES,
    KaplanMeierResult,
    greenwood_se,
    kaplan_meier,
    logrank,
    survival_confint,
    survival_median,
)
from .ph_test import TRANSFORMS, PHTestResult, cox_zph, ph_caveat
from .requirements import MIN_CUSTOMERS, MIN_EVENTS, require_churn_data, require_table_columns
from .targeting import at_risk_customers, campaign_sizing, holdout_concordance

__all__ = [
    "SurvivalWarning", "ChurnData", "horizon_in_unit",
    "encode_covariates", "preflight_checks", "KaplanMeierResult", "kaplan_meier", "logrank",
    "CI_TYPES", "greenwood_se", "survival_confint", "survival_median",
    "ChurnCoxModel", "cox_zph", "PHTestResult", "TRANSFORMS", "p_text", "ph_caveat",
    "holdout_concordance", "at_risk_customers", "campaign_sizing",
    "DEFAULT_COVARIATES", "UNITS_PER_YEAR", "COX_SUMMARY_COLUMNS",
    "MIN_CUSTOMERS", "MIN_EVENTS", "require_churn_data", "require_table_columns",
]
