"""Knowing the data: descriptive statistics, monthly activity and cohort retention.

These feed the overview notebook (step 4 and 5 of "knowing the data") and give the other
analyses data-driven defaults (the purchase gaps and the inactivity window they suggest for churn
labelling are step-2 preparation: :mod:`ecrm_research.prep.orders`).

All functions take cleaned canonical tables (``dict`` of DataFrames as returned by
:func:`ecrm_research.data.quality.clean`) and return tidy DataFrames.

Modules
-------
``descriptive``  :func:`summary_statistics`, :func:`order_values`, :func:`monthly_activity`, :func:`cohort_retention`
``plots``        the figures of the overview notebook
"""

from __future__ import annotations

from .descriptive import cohort_retention, monthly_activity, order_values, summary_statistics

__all__ = ["summary_statistics", "order_values", "monthly_activity", "cohort_retention"]
