"""Segment profiles (size, revenue share, feature means, distinguishing features, automatic names) and outliers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .clustering import SHARE_FEATURES, UNCLUSTERED


def outlier_summary(features: pd.DataFrame, columns: Sequence[str] = ("frequency", "monetary", "mean_order_value"),
                    *, fence: float = 3.0) -> pd.DataFrame:
    """Extreme customers per feature on the log scale (Tukey fence with ``fence`` × IQR).

    Returns
    -------
    DataFrame
        ``feature, n_outliers_high, n_outliers_low, share, max, p99, median``. The clustering
        works on ``log1p`` values, which tames these tails; nothing is removed.
    """
    rows = []
    for c in columns:
        if c not in features:
            continue
        x = features[c].astype(float).dropna()
        lx = np.log1p(x.clip(lower=0))
        q1, q3 = lx.quantile([0.25, 0.75])
        iqr = q3 - q1
        hi = int((lx > q3 + fence * iqr).sum())
        lo = int((lx < q1 - fence * iqr).sum())
        rows.append({"feature": c, "n_outliers_high": hi, "n_outliers_low": lo,
                     "share": (hi + lo) / max(len(x), 1), "max": x.max(), "p99": x.quantile(0.99),
                     "median": x.median()})
    return pd.DataFrame(rows)


_NAME_FREQ = ("orders_per_month", "frequency")
_NAME_VALUE = ("mean_order_value", "monetary")


def _level(z: float) -> str:
    return "high" if z > 0.5 else ("low" if z < -0.5 else "mid")


def _auto_name(z: pd.Series) -> str:
    parts = []
    if "recency_days" in z and z["recency_days"] > 0.5:
        parts.append("lapsed")
    elif "recency_days" in z and z["recency_days"] < -0.5:
        parts.append("active")
    f = next((c for c in _NAME_FREQ if c in z), None)
    v = next((c for c in _NAME_VALUE if c in z), None)
    if f:
        parts.append(f"{_level(z[f])}-frequency")
    if v:
        parts.append(f"{_level(z[v])}-value")
    if "discount_rate" in z and z["discount_rate"] > 0.5:
        parts.append("discount-seeking")
    if "app_share" in z and z["app_share"] > 0.5:
        parts.append("app-first")
    return " ".join(parts) or "average"


def profile_segments(features: pd.DataFrame, labels: Sequence[int], *,
                     columns: Sequence[str] | None = None, revenue: str = "monetary",
                     unclustered_name: str = "fewer than 3 orders") -> pd.DataFrame:
    """Size, revenue share, feature means/medians and distinguishing features per cluster.

    Parameters
    ----------
    features : DataFrame
        :func:`~ecrm_research.prep.customers.customer_features` (one row per customer).
    labels : array-like of int
        Cluster per row.
    columns : sequence of str, optional
        Features to profile (default: all numeric feature columns with data).
    revenue : str, default 'monetary'
        Column summed for ``share_revenue``.
    unclustered_name : str
        Segment name of cluster -1 (customers not clustered, see ``CustomerSegmenter.min_orders``).

    Returns
    -------
    DataFrame
        One row per cluster, largest first (cluster -1 last): ``cluster, segment, n_customers, share_customers,
        share_revenue``, then ``<feature>_mean``, ``<feature>_median``, ``<feature>_z`` and
        ``distinguishing`` (the features with |z| ≥ 0.5, strongest first, as "+name" / "−name").

    Notes
    -----
    z = (segment mean − overall mean) / overall standard deviation over all customers with a
    value, on the log scale for counts and amounts (log1p where zeros occur) and the raw scale
    for shares. ``segment`` is a name built
    from the z-scores: ``lapsed``/``active`` (recency z > 0.5 / < −0.5), ``high/mid/low-frequency``
    (orders_per_month), ``high/mid/low-value`` (mean_order_value), ``discount-seeking``
    (discount z > 0.5), ``app-first``; duplicates get " (2)", " (3)".
    """
    labels = np.asarray(labels)
    if columns is None:
        columns = [c for c in features.columns if c != "customer_id" and pd.api.types.is_numeric_dtype(features[c])
                   and features[c].notna().any() and features[c].nunique() > 1]
    columns = list(columns)
    X = features[columns].astype(float)
    T = X.copy()
    for c in columns:
        if c not in SHARE_FEATURES and not c.startswith("cat_"):
            T[c] = np.log(T[c]) if (T[c].dropna() > 0).all() else np.log1p(T[c].clip(lower=0))
    mu, sd = T.mean(), T.std(ddof=0).replace(0, np.nan)
    total_rev = features[revenue].clip(lower=0).sum() if revenue in features else np.nan
    rows = []
    for cl in pd.Series(labels).value_counts().sort_index().index:
        m = labels == cl
        z = (T[m].mean() - mu) / sd
        row = {"cluster": int(cl), "n_customers": int(m.sum()), "share_customers": m.mean(),
               "share_revenue": (features.loc[m, revenue].clip(lower=0).sum() / total_rev) if total_rev else np.nan}
        for c in columns:
            row[f"{c}_mean"] = X.loc[m, c].mean()
            row[f"{c}_median"] = X.loc[m, c].median()
            row[f"{c}_z"] = z[c]
        strong = z.dropna()[z.dropna().abs() >= 0.5].sort_values(key=np.abs, ascending=False)
        row["distinguishing"] = ", ".join(f"{'+' if v > 0 else '−'}{k} ({v:+.1f} sd)" for k, v in strong.items())
        row["segment"] = unclustered_name if cl == UNCLUSTERED else _auto_name(z.dropna())
        rows.append(row)
    prof = pd.DataFrame(rows)
    prof["_last"] = prof["cluster"] == UNCLUSTERED
    prof = prof.sort_values(["_last", "n_customers", "cluster"], ascending=[True, False, True]).drop(columns="_last")
    seen: dict[str, int] = {}
    names = []
    for name in prof["segment"]:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    prof["segment"] = names
    lead = ["cluster", "segment", "n_customers", "share_customers", "share_revenue"]
    return prof[lead + [c for c in prof.columns if c not in lead]].reset_index(drop=True)
