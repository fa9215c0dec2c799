"""The preparation rules both engines apply, written once: order statuses, the as-of date, the churn
windows, the accounting rows, covariate names and small per-customer arithmetic.

The pandas engine (:mod:`~ecrm_research.prep.pandas_engine`) and the Spark engine
(:mod:`~ecrm_research.prep.spark`) compute the same tables; what they must agree on lives here.
The cleaning reason codes are :data:`ecrm_research.data.quality.REASONS` (the data layer owns the
quarantine); both engines use that tuple.

Status semantics
----------------
An order counts as *completed* / *returned* when its status, lower-cased, is ``'completed'`` /
``'returned'``. Canonical statuses are lower-case already (``schema.coerce_table`` lower-cases
category columns), so on canonical data this is plain equality; lower-casing makes hand-built
tables with ``'Completed'`` behave the same in every step and on both engines.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError, ParameterError, SurvivalWarning

__all__ = [
    "DAYS_PER_MONTH", "COMPLETED", "RETURNED", "STATUS_CODES", "REGISTRATION_ATTRIBUTES", "CHURN_COVARIATES",
    "status_codes", "analysis_date", "end_of_data", "churn_windows", "accounting_row", "category_column",
    "mean_or_nan", "spend_share",
]

#: average days in a month (365.25 / 12), for orders per month
DAYS_PER_MONTH = 30.4375

#: the statuses that count, lower case; every other status (cancelled, pending, missing) counts as 0
COMPLETED, RETURNED = "completed", "returned"
#: integer code of a status: 1 = completed, 2 = returned (0 = any other or missing)
STATUS_CODES = {COMPLETED: 1, RETURNED: 2}

#: registration attributes of ``customers`` used as churn covariates, in output order
REGISTRATION_ATTRIBUTES = ("is_member", "channel", "region", "age_band", "acquisition_source")

#: churn covariates in the order :class:`~ecrm_research.prep.churn_data.ChurnData` lists them
CHURN_COVARIATES = ("first_order_late", "late_share", "return_share", "n_contacts", "mean_discount",
                    "n_orders_window", "spend_window", *REGISTRATION_ATTRIBUTES)


def status_codes(status: pd.Series) -> np.ndarray:
    """0 = other/missing, 1 = completed, 2 = returned (case-insensitive, see the module docstring);
    a categorical is decoded via its few categories."""

    def code(text: pd.Series) -> np.ndarray:
        low = text.astype("string").str.lower()
        return np.select([low.eq(COMPLETED).fillna(False).to_numpy(bool),
                          low.eq(RETURNED).fillna(False).to_numpy(bool)], [1, 2], 0).astype(np.int8)

    if isinstance(status.dtype, pd.CategoricalDtype):
        lut = np.r_[code(pd.Series(status.cat.categories)), 0].astype(np.int8)
        return lut[status.cat.codes.to_numpy()]  # code -1 (missing) reads the last slot, 0
    return code(status)


def analysis_date(as_of: Any, last_order: pd.Timestamp | None) -> pd.Timestamp:
    """The RFM/features analysis date: ``as_of`` normalised to midnight, else the day after the last
    order (`last_order`; None when there are no orders).

    Raises
    ------
    ParameterError
        ``as_of`` is not a date.
    AnalysisError
        No ``as_of`` and no orders.
    """
    if as_of is not None:
        try:
            return pd.Timestamp(as_of).normalize()
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"as_of={as_of!r} is not a date; use e.g. '2011-12-10'.") from exc
    if last_order is None or pd.isna(last_order):
        raise AnalysisError("orders is empty: there is nothing to segment.")
    return pd.Timestamp(last_order).normalize() + pd.Timedelta(days=1)


def end_of_data(as_of: Any, last_order: pd.Timestamp) -> pd.Timestamp:
    """The churn labelling's end of observation: ``as_of`` as given (not normalised), else the
    latest order time."""
    return last_order if as_of is None else pd.Timestamp(as_of)


def churn_windows(tables: Mapping[str, Any], inactivity_days: int, covariate_window_days: int | None
                  ) -> tuple[int, int]:
    """Checked churn windows ``(W, N)``: inactivity window and behaviour window, ``N`` defaulting to
    ``min(90, W)``; warns (:class:`SurvivalWarning`) when ``N > W`` (look-ahead)."""
    if "orders" not in tables:
        raise AnalysisError(f"Churn labelling needs the 'orders' table; have {sorted(tables)}.")
    W = int(inactivity_days)
    if W <= 0:
        raise AnalysisError(f"inactivity_days must be a positive number of days, got {inactivity_days!r}.")
    N = int(min(90, W) if covariate_window_days is None else covariate_window_days)
    if N <= 0:
        raise AnalysisError(f"covariate_window_days must be positive, got {covariate_window_days!r}.")
    if N > W:
        warnings.warn(f"covariate_window_days={N} is longer than inactivity_days={W}: behaviour measured after "
                      f"day {W} can see a churn that has already happened (look-ahead). Use a window ≤ {W} days.",
                      SurvivalWarning, stacklevel=4)
    return W, N


def accounting_row(step: str, customers: int, note: str) -> dict[str, Any]:
    """One row of a :class:`ChurnData` accounting table: where ``customers`` customers went."""
    return {"step": step, "customers": int(customers), "note": note}


def category_column(category: Any) -> str:
    """The feature column of a product category's spend share: ``'Tea & Coffee'`` → ``'cat_tea_coffee'``."""
    return "cat_" + re.sub(r"\W+", "_", str(category).strip().lower()).strip("_")


def mean_or_nan(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``total / count`` per customer, NaN where the count is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def spend_share(spend: np.ndarray, spend_all: np.ndarray, has_line: np.ndarray) -> np.ndarray:
    """A category's share of each customer's positive spend; 0 for customers without such spend."""
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(has_line & (spend_all != 0), spend / np.where(spend_all != 0, spend_all, 1.0), np.nan)
    return np.nan_to_num(share, nan=0.0)
