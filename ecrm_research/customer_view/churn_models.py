"""Churn-risk models compared on a later period: Cox, logistic regression, gradient boosting, a neural network.

The set-up is a time split, the way a model is used in practice:

```
 train cut-off            test cut-off              as_of
 ─────┼──── horizon ─────────┼──── horizon ────────────┼──►
 features ≤ train cut-off   features ≤ test cut-off    features ≤ as_of  (the customer view)
 outcome: train window      outcome: test window       outcome: unknown
```

:func:`churn_cutoffs` places the two cut-offs; :func:`churn_frame` builds one row per customer with
features computed from orders placed *before* the cut-off only and the outcome
``churned = 1`` when the customer placed no completed order in ``[cut-off, cut-off + horizon)``;
:class:`ChurnModelComparison` fits every model on the training cut-off, scores them on the test
cut-off (AUC with a bootstrap CI, Brier score, top-decile lift, calibration) and can refit on the
latest labelled cut-off to predict at ``as_of``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..exceptions import AnalysisError, DataError, ParameterError
from ..infra.progress import Stages
from ..prep.customers import DAYS_PER_MONTH, customer_features, resolve_as_of, rfm_table
from ..prep.rules import REGISTRATION_ATTRIBUTES, STATUS_CODES, analysis_date, status_codes

__all__ = ["MODELS", "MODEL_LABELS", "OUTCOME_COLUMNS", "churn_cutoffs", "churn_frame", "auc_score",
           "brier_score", "top_decile_lift", "calibration_table", "gains_table", "ChurnModelComparison"]

#: the models compared, simplest-to-explain first
MODELS = ("cox", "logistic", "gradient_boosting", "neural_network")

#: how the models are named in tables and figures
MODEL_LABELS = {"cox": "Cox (time to next order)", "logistic": "logistic regression",
                "gradient_boosting": "gradient boosting", "neural_network": "neural network (MLP)"}

#: columns of :func:`churn_frame` that are not features
OUTCOME_COLUMNS = ("customer_id", "churned", "days_to_next_order")

_DAY = pd.Timedelta(days=1)
_MAX_LEVELS = 10  # levels of a categorical attribute kept as dummies (the rest: 'other')


def _horizon(horizon_days: Any) -> int:
    try:
        h = int(horizon_days)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"horizon_days must be a whole number of days, got {horizon_days!r}.") from exc
    if h <= 0 or h != horizon_days:
        raise ParameterError(f"horizon_days must be a positive whole number of days, got {horizon_days!r}.")
    return h


def churn_cutoffs(as_of: str | pd.Timestamp, horizon_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The training and test cut-offs before ``as_of``.

    Parameters
    ----------
    as_of : str or Timestamp
        The date the customer view is built for (normalised to midnight).
    horizon_days : int
        Length of each outcome window.

    Returns
    -------
    (Timestamp, Timestamp)
        ``(train_cutoff, test_cutoff)`` with test = as_of − horizon and train = test − horizon, so the
        test window ``[test, as_of)`` is the latest one fully observed and the training window
        ``[train, test)`` ends where the test features begin.
    """
    h = _horizon(horizon_days)
    if as_of is None:
        raise ParameterError("as_of is needed to place the cut-offs; use e.g. the day after the last order.")
    as_of = analysis_date(as_of, None)
    test = as_of - h * _DAY
    return test - h * _DAY, test


def _completed(orders: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Customer id (text) and time of the completed orders with a customer and a time."""
    ts = pd.to_datetime(orders["ordered_at"])
    ok = (status_codes(orders["status"]) == STATUS_CODES["completed"]) & np.asarray(
        orders["customer_id"].notna() & ts.notna(), dtype=bool)
    return orders["customer_id"][ok].astype(str), ts[ok]


def churn_frame(tables: Mapping[str, pd.DataFrame], cutoff: str | pd.Timestamp, horizon_days: int, *,
                window_days: int | None = None, top_categories: int = 0,
                end: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per customer as of ``cutoff``: features from the past, churn in the next ``horizon_days``.

    Parameters
    ----------
    tables : dict of DataFrame
        Cleaned canonical tables (``orders``, ``order_items``; ``customers``, ``products``,
        ``service_contacts`` used when present).
    cutoff : str or Timestamp
        The cut-off (normalised to midnight). Only orders, deliveries and contacts *before* it are read
        for the features, so nothing after it can change them (no look-ahead).
    horizon_days : int
        Outcome window: ``churned = 1`` when the customer places no completed order in
        ``[cutoff, cutoff + horizon_days)``.
    window_days : int, optional
        Window of the recent-activity features (default ``horizon_days``).
    top_categories : int, default 0
        Spend-share columns ``cat_*`` of the top categories (:func:`prep.customers.customer_features`).
        Off by default: the top categories can differ between cut-offs, and the model needs the same
        columns at every cut-off.
    end : str or Timestamp, optional
        End of the observed data (default the day after the last order). When
        ``cutoff + horizon_days > end`` the outcome is unknown: ``churned`` and ``days_to_next_order``
        are NaN (the frame for scoring at ``as_of``).

    Returns
    -------
    DataFrame
        Customers with at least one completed order before ``cutoff``, sorted by ``customer_id``:
        ``customer_id``; RFM and behaviour (as :func:`prep.customers.customer_features` as of the
        cut-off): ``recency_days, frequency, monetary, tenure_days, mean_order_value, basket_size``,
        ``discount_rate`` and ``app_share`` when the data have them; ``order_rate`` = frequency /
        max(tenure, 1 month) in orders per month (defined for one-order customers too);
        ``recent_orders``, ``recent_value`` = completed orders and their value in
        ``[cutoff − window_days, cutoff)``; ``first_order_late`` (0/1) and ``late_share`` from
        orders *delivered* before the cut-off (ordered_at + delivery_days < cutoff) when the orders
        carry ``promised_days``/``delivery_days``; ``n_contacts`` before the cut-off when there are
        service contacts; the registration attributes ``is_member`` (0/1), ``channel``, ``region``,
        ``age_band``, ``acquisition_source`` present in ``customers`` (as recorded: the data hold one
        value per customer, not its history); then ``churned`` (0/1) and ``days_to_next_order``
        (whole days counted from 1 = the cut-off's day to the next completed order; ``horizon_days``
        when churned — the censored time of the Cox model). ``attrs`` carry ``cutoff``,
        ``horizon_days`` and ``window_days``.

    Raises
    ------
    ParameterError
        ``horizon_days``/``window_days`` not positive, or ``cutoff`` not after the first completed order
        (no history: the horizon is too long for the data).
    """
    h = _horizon(horizon_days)
    w = h if window_days is None else _horizon(window_days)
    orders = tables["orders"]
    cutoff = resolve_as_of(orders, cutoff)
    cust, ts = _completed(orders)
    if ts.empty:
        raise DataError("No completed orders: churn needs customers' completed orders (check the order statuses).",
                        source="orders", column="status")
    first = ts.min()
    if first >= cutoff:
        raise ParameterError(
            f"The cut-off {cutoff.date()} is not after the first completed order ({first:%Y-%m-%d}): there is no "
            f"history to compute features from. horizon_days={h} is too long for these data (the training cut-off "
            "is as_of − 2 × horizon_days); use a shorter horizon or a later as_of.")
    feats = customer_features(dict(tables), as_of=cutoff, top_categories=top_categories)
    frame = feats.drop(columns=["orders_per_month"]).copy()
    for col in ("discount_rate", "app_share"):
        if frame[col].isna().all():
            frame = frame.drop(columns=col)
    frame["order_rate"] = frame["frequency"] / np.maximum(frame["tenure_days"], DAYS_PER_MONTH) * DAYS_PER_MONTH
    ids = pd.Index(frame["customer_id"].astype(str))
    recent = _recent_activity(tables, cutoff, w)
    frame["recent_orders"] = recent["frequency"].reindex(ids).fillna(0).to_numpy(float)
    frame["recent_value"] = recent["monetary"].reindex(ids).fillna(0.0).to_numpy(float)
    for name, values in _delivery_features(orders, cutoff).items():
        frame[name] = values.reindex(ids).to_numpy(float)
    contacts = tables.get("service_contacts")
    if contacts is not None and len(contacts) and {"customer_id", "contacted_at"} <= set(contacts.columns):
        before = contacts[pd.to_datetime(contacts["contacted_at"]) < cutoff]
        frame["n_contacts"] = before["customer_id"].astype(str).value_counts().reindex(ids).fillna(0).to_numpy(float)
    _add_attributes(frame, tables.get("customers"), ids)
    end = resolve_as_of(orders, end)
    stop = cutoff + h * _DAY
    if stop <= end:
        window = (ts >= cutoff) & (ts < stop)
        nxt = ts[window].groupby(cust[window]).min().reindex(ids)
        day = np.floor((nxt - cutoff) / _DAY).to_numpy(float) + 1.0
        churned = np.isnan(day)
        frame["churned"] = churned.astype(float)
        frame["days_to_next_order"] = np.where(churned, float(h), day)
    else:
        frame["churned"] = np.nan
        frame["days_to_next_order"] = np.nan
    frame = frame.reset_index(drop=True)
    frame.attrs.update(cutoff=cutoff, horizon_days=h, window_days=w)
    return frame


def _recent_activity(tables: Mapping[str, pd.DataFrame], cutoff: pd.Timestamp, window: int) -> pd.DataFrame:
    """Frequency and monetary value in ``[cutoff − window, cutoff)`` (:func:`rfm_table` on the window)."""
    orders = tables["orders"]
    in_window = orders[np.asarray(pd.to_datetime(orders["ordered_at"]) >= cutoff - window * _DAY, dtype=bool)]
    try:
        rfm = rfm_table(in_window, tables["order_items"], as_of=cutoff)
    except AnalysisError:  # nobody ordered in the window
        return pd.DataFrame({"frequency": [], "monetary": []}, index=pd.Index([], dtype=object))
    return rfm.set_index(rfm["customer_id"].astype(str))[["frequency", "monetary"]]


def _delivery_features(orders: pd.DataFrame, cutoff: pd.Timestamp) -> dict[str, pd.Series]:
    """``first_order_late`` and ``late_share`` by customer from deliveries completed before the cut-off."""
    if not {"promised_days", "delivery_days"} <= set(orders.columns) or orders["delivery_days"].isna().all():
        return {}
    ts = pd.to_datetime(orders["ordered_at"])
    done = (status_codes(orders["status"]) == STATUS_CODES["completed"]) & np.asarray(
        orders["customer_id"].notna() & (ts < cutoff), dtype=bool)
    o = pd.DataFrame({"customer_id": orders["customer_id"].astype(str).to_numpy(object)[done],
                      "ordered_at": ts[done].to_numpy(),
                      "promised": orders["promised_days"].to_numpy(float, na_value=np.nan)[done],
                      "delivery": orders["delivery_days"].to_numpy(float, na_value=np.nan)[done]})
    delivered = (o["ordered_at"] + pd.to_timedelta(o["delivery"], unit="D")) < cutoff
    late = (o["delivery"] > o["promised"]) & delivered
    o["late"] = late.astype(float).where(delivered)
    first = o.sort_values(["customer_id", "ordered_at"], kind="stable").groupby("customer_id", sort=True).head(1)
    return {"first_order_late": first.set_index("customer_id")["late"].fillna(0.0),
            "late_share": o.groupby("customer_id")["late"].mean()}


def _add_attributes(frame: pd.DataFrame, customers: pd.DataFrame | None, ids: pd.Index) -> None:
    """Registration attributes of ``customers`` (is_member as 0/1, the others as text)."""
    if customers is None or "customer_id" not in customers:
        return
    cust = customers.drop_duplicates("customer_id").set_index(customers["customer_id"].drop_duplicates().astype(str))
    for col in REGISTRATION_ATTRIBUTES:
        if col not in cust or cust[col].isna().all():
            continue
        values = cust[col].reindex(ids)
        if col == "is_member":
            frame[col] = values.astype("boolean").astype(float).to_numpy(float)
        else:
            frame[col] = values.astype("string").to_numpy(object)


# ----------------------------------------------------------------------------------------------------
# metrics (each checked in the tests against scikit-learn or a brute-force count)


def auc_score(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``): P(score of a churner > score of a
    non-churner), ties counted ½; NaN when one class is absent (a bootstrap resample may lack one).
    """
    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(p, dtype=float)))


def brier_score(y: np.ndarray, p: np.ndarray) -> float:
    """Brier score = mean (p − y)² (scikit-learn's ``brier_score_loss``): 0 is perfect, 0.25 is a constant ½."""
    return float(brier_score_loss(np.asarray(y, dtype=int), np.asarray(p, dtype=float)))


def _descending(p: np.ndarray) -> np.ndarray:
    """Positions from the highest predicted probability down (ties in input order)."""
    return np.argsort(-np.asarray(p, dtype=float), kind="stable")


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Churn rate among the ⌈n/10⌉ customers with the highest predicted probability ÷ the overall churn rate.

    1 = no better than contacting at random; the maximum is 1 / churn rate (when the rate is ≤ 10 %).
    """
    y = np.asarray(y, dtype=float)
    k = max(1, math.ceil(len(y) / 10))
    return float(y[_descending(p)[:k]].mean() / y.mean())


def calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Equal-count bins of predicted probability (deciles by default): ``bin`` (1 = lowest),
    ``mean_predicted``, ``observed`` (churn rate), ``n``."""
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.argsort(p, kind="stable")
    bins = np.empty(len(p), dtype=int)
    bins[order] = np.arange(len(p)) * n_bins // max(len(p), 1)
    df = pd.DataFrame({"bin": bins + 1, "p": p, "y": y})
    return (df.groupby("bin").agg(mean_predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
            .reset_index())


def calibration_error(table: pd.DataFrame) -> float:
    """Expected calibration error of a :func:`calibration_table`: Σ_b (n_b / n) · |mean predicted_b − observed_b|."""
    return float(np.average((table["mean_predicted"] - table["observed"]).abs(), weights=table["n"]))


def gains_table(y: np.ndarray, p: np.ndarray, steps: int = 100) -> pd.DataFrame:
    """Cumulative gains: ``share_contacted`` (0, 1/steps, …, 1; the highest-risk customers first) and
    ``share_of_churners`` reached among them. A random list lies on the diagonal."""
    y = np.asarray(y, dtype=float)[_descending(p)]
    caught = np.r_[0.0, np.cumsum(y)] / y.sum()
    share = np.linspace(0.0, 1.0, steps + 1)
    k = np.ceil(share * len(y) - 1e-9).astype(int)
    return pd.DataFrame({"share_contacted": share, "share_of_churners": caught[k]})


# ----------------------------------------------------------------------------------------------------
# design matrix and models


class _Design:
    """Feature columns learned on the training frame: numeric columns (median-imputed) and dummies of
    the text attributes (the ``_MAX_LEVELS`` most frequent levels, reference = the most frequent)."""

    def fit(self, frame: pd.DataFrame) -> _Design:
        self.numeric: list[str] = []
        self.medians: dict[str, float] = {}
        self.levels: dict[str, list[str]] = {}
        for col in frame.columns:
            if col in OUTCOME_COLUMNS:
                continue
            s = frame[col]
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                x = s.astype(float)
                if x.notna().any() and x.nunique() > 1:
                    self.numeric.append(col)
                    self.medians[col] = float(x.median())
            else:
                counts = s.astype("string").fillna("missing").value_counts()
                if len(counts) > 1:
                    self.levels[col] = [str(v) for v in counts.index[1:_MAX_LEVELS]]
        self.columns = self.numeric + [f"{c}={v}" for c, lv in self.levels.items() for v in lv]
        if not self.columns:
            raise ParameterError("The training frame has no feature that varies between customers.")
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in [*self.numeric, *self.levels] if c not in frame]
        if missing:
            raise DataError(f"The frame lacks the feature columns {missing} the models were fitted on; build it with "
                            "churn_frame(...) and the same top_categories.", column=missing[0])
        out = {c: frame[c].astype(float).fillna(self.medians[c]).to_numpy(float) for c in self.numeric}
        for c, lv in self.levels.items():
            s = frame[c].astype("string").fillna("missing")
            for v in lv:
                out[f"{c}={v}"] = s.eq(v).to_numpy(dtype=float, na_value=0.0)
        return pd.DataFrame(out, index=frame.index, columns=self.columns)


class _CoxChurn:
    """Cox model of the time to the next order from the cut-off, censored at the horizon; P(churn) = S(h | x).

    Durations are whole days 1…h (an order on the cut-off's day is day 1); churners are censored at h.
    lifelines' Breslow baseline counts events at h before the censorings at h, so
    S(h | x) = P(no order in days 1…h | x) — exactly the churn outcome, a probability in [0, 1].
    Features are standardised; a small ridge penalty (0.01) keeps the fit stable with correlated
    RFM features (monetary, frequency, order rate).
    """

    def __init__(self, horizon: int, penalizer: float = 0.01):
        self.horizon = horizon
        self.scaler = StandardScaler()
        self.cph = CoxPHFitter(penalizer=penalizer)

    def fit(self, X: pd.DataFrame, y: np.ndarray, days: np.ndarray) -> _CoxChurn:
        Z = pd.DataFrame(self.scaler.fit_transform(X), columns=X.columns)
        Z["_duration"] = np.minimum(days, self.horizon)
        Z["_ordered"] = 1 - y
        self.cph.fit(Z, "_duration", "_ordered")
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        Z = pd.DataFrame(self.scaler.transform(X), columns=X.columns)
        s = self.cph.predict_survival_function(Z, times=[self.horizon]).to_numpy()[0]
        return np.clip(s, 0.0, 1.0)


def _estimator(model: str, random_state: int) -> Any:
    if model == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if model == "gradient_boosting":
        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=random_state)
    return make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32, 16), alpha=1e-3, max_iter=500,
                                                         early_stopping=True, random_state=random_state))


def _labels(frame: pd.DataFrame, role: str) -> np.ndarray:
    if "churned" not in frame:
        raise DataError(f"The {role} frame has no 'churned' column; build it with churn_frame(...).", column="churned")
    y = frame["churned"].to_numpy(float)
    if np.isnan(y).any():
        raise ParameterError(f"The {role} frame's outcome is unknown (churned is NaN): its cut-off + horizon lies "
                             "after the end of the data. Use churn_cutoffs(as_of, horizon_days) for the cut-offs.")
    n1 = int(y.sum())
    if n1 == 0 or n1 == len(y):
        what = "no churners" if n1 == 0 else "only churners"
        raise ParameterError(f"The {role} period has {what} ({len(y):,} customers): the models need both outcomes. "
                             "Change horizon_days (a longer horizon gives fewer churners, a shorter one more).")
    return y.astype(int)


class ChurnModelComparison:
    """Fit churn-risk models on one cut-off, compare them on a later one.

    Parameters
    ----------
    models : sequence of str
        Any of :data:`MODELS`: ``cox`` (lifelines Cox model of the time to the next order, P(churn) =
        S(horizon | x), see :class:`_CoxChurn`), ``logistic`` (standardised features, L2 C = 1),
        ``gradient_boosting`` (scikit-learn HistGradientBoostingClassifier, 200 trees of rate 0.05),
        ``neural_network`` (standardised features, MLP 32-16, early stopping).
    random_state : int
        Seeds the models and the bootstrap.
    n_bootstrap : int
        Bootstrap resamples of the test customers for the AUC intervals (percentile method).
    alpha : float
        1 − confidence level of the intervals.
    margin : float
        AUC difference below which the simple model counts as "as good" (default 0.01).
    progress : bool
        Show a progress bar of the stages (fits, predictions, bootstrap).

    Fits and predictions run on one thread (threadpoolctl): customer tables are small, and on a busy
    machine OpenMP threads of the gradient boosting cost 20× more than they save.

    Attributes
    ----------
    summary_ : DataFrame
        ``model, auc, auc_ci_lower, auc_ci_upper, brier, top_decile_lift, calibration_error`` on the
        test frame, plus ``label``, ``n``, ``churn_rate``.
    auc_differences_ : DataFrame
        ``model, auc_difference, ci_lower, ci_upper``: AUC of each model − AUC of the logistic
        regression, paired bootstrap (the same resampled customers for both models).
    calibration_, gains_ : DataFrame
        :func:`calibration_table` / :func:`gains_table` per model (column ``model`` first).
    best_model_ : str
        The best calibrated model: lowest Brier score (the view uses its probabilities as
        probabilities, so calibration matters, not ranking alone).
    verdict_ : str
        Plain words: whether the logistic regression is as good as the complex models.
    features_ : list of str
        Model columns (numeric features and ``attribute=level`` dummies).
    diagnostics_ : list of str
        Warnings met while fitting (e.g. the MLP not converging).

    Notes
    -----
    The simple model is "as good" as the best complex one (highest AUC among the others) when the AUC
    difference is below ``margin`` or its paired bootstrap interval contains 0. The expected
    calibration error is Σ_b (n_b / n) |p̄_b − ȳ_b| over deciles of predicted probability.
    """

    def __init__(self, models: Sequence[str] = MODELS, random_state: int = 0, n_bootstrap: int = 200, *,
                 alpha: float = 0.05, margin: float = 0.01, progress: bool = False):
        unknown = [m for m in models if m not in MODELS]
        if unknown or not models:
            raise ParameterError(f"Unknown churn models {unknown}; choose from {list(MODELS)}.", allowed=list(MODELS))
        if int(n_bootstrap) < 10:
            raise ParameterError(f"n_bootstrap must be at least 10, got {n_bootstrap!r}.")
        if not 0 < alpha < 1:
            raise ParameterError(f"alpha must be between 0 and 1, got {alpha!r}.")
        self.models = tuple(dict.fromkeys(models))
        self.random_state = int(random_state)
        self.n_bootstrap = int(n_bootstrap)
        self.alpha = float(alpha)
        self.margin = float(margin)
        self.progress = progress

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, train_frame: pd.DataFrame) -> ChurnModelComparison:
        """Fit every model on a labelled :func:`churn_frame` (the training cut-off). Returns self."""
        y = _labels(train_frame, "training")
        h = train_frame.attrs.get("horizon_days") or int(np.nanmax(train_frame["days_to_next_order"]))
        self.horizon_days_ = int(h)
        self.design_ = _Design().fit(train_frame)
        self.features_ = list(self.design_.columns)
        X = self.design_.transform(train_frame)
        self.diagnostics_: list[str] = []
        self.estimators_: dict[str, Any] = {}
        stages = Stages(self.progress, len(self.models), desc="churn models: fit")
        for m in self.models:
            stages.stage(m)
            with warnings.catch_warnings(record=True) as caught, threadpool_limits(1):
                warnings.simplefilter("always", ConvergenceWarning)
                if m == "cox":
                    est = _CoxChurn(self.horizon_days_).fit(X, y, train_frame["days_to_next_order"].to_numpy(float))
                else:
                    est = _estimator(m, self.random_state).fit(X.to_numpy(), y)
            self.diagnostics_ += [f"{m}: {w.message}" for w in caught if issubclass(w.category, ConvergenceWarning)]
            self.estimators_[m] = est
        stages.close()
        self.n_train_ = len(y)
        self.train_churn_rate_ = float(y.mean())
        return self

    def refit(self, frame: pd.DataFrame) -> ChurnModelComparison:
        """Refit every model on a later labelled frame (the test cut-off, the latest fully observed window)
        before predicting at ``as_of``; the evaluation (``summary_``, ``best_model_``, ``verdict_``) is kept."""
        kept = {k: getattr(self, k) for k in ("summary_", "auc_differences_", "calibration_", "gains_",
                                              "best_model_", "verdict_") if hasattr(self, k)}
        self.fit(frame)
        for k, v in kept.items():
            setattr(self, k, v)
        self.refit_cutoff_ = frame.attrs.get("cutoff")
        return self

    def _require_fitted(self) -> None:
        if not hasattr(self, "estimators_"):
            raise AnalysisError("Fit the comparison first: ChurnModelComparison().fit(train_frame).")

    def predict_proba(self, frame: pd.DataFrame, model: str | None = None) -> pd.Series:
        """Churn probability within the horizon per row of ``frame`` (a :func:`churn_frame`).

        ``model`` defaults to :attr:`best_model_` (after :meth:`evaluate`). Returns a Series named
        ``churn_probability`` indexed like ``frame``.
        """
        self._require_fitted()
        if model is None:
            if not hasattr(self, "best_model_"):
                raise AnalysisError("No best model yet: call evaluate(test_frame) first or pass model=...")
            model = self.best_model_
        if model not in self.estimators_:
            raise ParameterError(f"model {model!r} was not fitted; fitted: {list(self.estimators_)}.",
                                 allowed=list(self.estimators_))
        X = self.design_.transform(frame)
        est = self.estimators_[model]
        with threadpool_limits(1):  # see fit
            p = est.predict_proba(X) if model == "cox" else est.predict_proba(X.to_numpy())[:, 1]
        return pd.Series(np.asarray(p, dtype=float), index=frame.index, name="churn_probability")

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, test_frame: pd.DataFrame) -> ChurnModelComparison:
        """Score every model on a later labelled frame: AUC [bootstrap CI], Brier, top-decile lift,
        calibration and gains; pick :attr:`best_model_` and write :attr:`verdict_`. Returns self."""
        self._require_fitted()
        y = _labels(test_frame, "test")
        stages = Stages(self.progress, len(self.models) + 1, desc="churn models: evaluate")
        preds = {}
        for m in self.models:
            stages.stage(f"predict {m}")
            preds[m] = self.predict_proba(test_frame, m).to_numpy()
        stages.stage(f"bootstrap ({self.n_bootstrap})")
        boot = self._bootstrap(y, preds, stages)
        stages.close()
        q = [100 * self.alpha / 2, 100 * (1 - self.alpha / 2)]
        rows, cal, gains = [], [], []
        for m in self.models:
            ct = calibration_table(y, preds[m])
            lo, hi = np.nanpercentile(boot[m], q)
            rows.append({"model": m, "auc": auc_score(y, preds[m]), "auc_ci_lower": lo, "auc_ci_upper": hi,
                         "brier": brier_score(y, preds[m]), "top_decile_lift": top_decile_lift(y, preds[m]),
                         "calibration_error": calibration_error(ct), "label": MODEL_LABELS[m], "n": len(y),
                         "churn_rate": float(y.mean())})
            cal.append(ct.assign(model=m))
            gains.append(gains_table(y, preds[m]).assign(model=m))
        self.summary_ = pd.DataFrame(rows)
        self.calibration_ = pd.concat(cal, ignore_index=True)[["model", "bin", "mean_predicted", "observed", "n"]]
        self.gains_ = pd.concat(gains, ignore_index=True)[["model", "share_contacted", "share_of_churners"]]
        self.predictions_ = pd.DataFrame(preds, index=test_frame.index)
        self.auc_differences_ = self._differences(y, preds, boot, q)
        self.best_model_ = str(self.summary_.sort_values(["brier", "model"]).iloc[0]["model"])
        self.verdict_ = self._verdict()
        return self

    def _bootstrap(self, y: np.ndarray, preds: dict[str, np.ndarray], stages: Stages) -> dict[str, np.ndarray]:
        """AUC of every model on the same resamples of the test customers (paired)."""
        rng = np.random.default_rng(self.random_state)
        n = len(y)
        out = {m: np.full(self.n_bootstrap, np.nan) for m in preds}
        for b in range(self.n_bootstrap):
            idx = rng.integers(0, n, n)
            yb = y[idx]
            for m, p in preds.items():
                out[m][b] = auc_score(yb, p[idx])
            if b % 50 == 49:
                stages.note(resample=b + 1)
        return out

    def _differences(self, y: np.ndarray, preds: dict[str, np.ndarray], boot: dict[str, np.ndarray],
                     q: list[float]) -> pd.DataFrame:
        cols = ["model", "auc_difference", "ci_lower", "ci_upper"]
        if "logistic" not in preds:
            return pd.DataFrame(columns=cols)
        base = auc_score(y, preds["logistic"])
        rows = []
        for m in preds:
            if m == "logistic":
                continue
            lo, hi = np.nanpercentile(boot[m] - boot["logistic"], q)
            rows.append({"model": m, "auc_difference": auc_score(y, preds[m]) - base, "ci_lower": lo, "ci_upper": hi})
        return pd.DataFrame(rows, columns=cols)

    def _verdict(self) -> str:
        s = self.summary_.set_index("model")
        best = MODEL_LABELS[self.best_model_]
        calib = (f"The best calibrated model is the {best} (lowest Brier score, "
                 f"{s.loc[self.best_model_, 'brier']:.3f}); the customer view uses its probabilities.")
        d = self.auc_differences_
        if "logistic" not in s.index or d.empty:
            return calib + " (No comparison with a simple model: the logistic regression was not fitted.)"
        top = d.sort_values(["auc_difference", "model"], ascending=[False, True]).iloc[0]
        m, diff = top["model"], float(top["auc_difference"])
        level = f"{1 - self.alpha:.0%}"
        numbers = (f"AUC {s.loc['logistic', 'auc']:.3f} for the logistic regression vs {s.loc[m, 'auc']:.3f} for "
                   f"the {MODEL_LABELS[m]}, difference {diff:+.3f} ({level} paired bootstrap interval "
                   f"{top['ci_lower']:+.3f} to {top['ci_upper']:+.3f})")
        if diff <= 0:
            head = (f"The simple model is as good as the complex ones: the logistic regression ranks churners at "
                    f"least as well as every other model ({numbers}).")
        elif diff < self.margin or top["ci_lower"] <= 0:
            why = (f"the difference is below {self.margin:.2f}" if diff < self.margin
                   else "the interval of the difference contains 0")
            head = (f"The simple model is as good as the complex ones: {why} ({numbers}). Prefer the logistic "
                    "regression when it must be explained.")
        else:
            head = (f"The complex model is better: the {MODEL_LABELS[m]} ranks churners more accurately than the "
                    f"logistic regression ({numbers}); the gain is larger than {self.margin:.2f} and its interval "
                    "excludes 0.")
        return f"{head} {calib}"
