"""Segment profiles (size, revenue share, feature means, distinguishing features, names) and outliers.

Segment names are built from the profile's z-scores by the rules of :data:`NAME_RULES`, so that
every word of a name can be checked against one column of the profile heat map
(``plots.plot_segment_profiles``); :func:`segment_name_rules` lists the rules that apply to a
profile table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .clustering import SHARE_FEATURES, UNCLUSTERED

#: A level is high when the z-score, as shown with one decimal, is ≥ +NAME_Z, low when ≤ −NAME_Z.
NAME_Z = 0.5


@dataclass(frozen=True)
class NameRule:
    """One word of a segment name: the profile column it reads and the word for each level.

    ``columns`` are tried in order; the first one that is profiled *and not read by an earlier
    rule* is used (so ``orders_per_month`` carries the frequency word only when ``frequency`` is
    not profiled, and then gets no repeat-rate word). ``None`` = no word at that level.
    """

    topic: str
    columns: tuple[str, ...]
    high: str | None
    mid: str | None
    low: str | None


#: The naming rules, in the order the words appear in a name. The frequency and value words are
#: always present (the F and M of RFM: total completed orders and net spend); the others only when
#: the segment stands out (high or low).
NAME_RULES: tuple[NameRule, ...] = (
    NameRule("recency", ("recency_days",), "lapsed", None, "active"),
    NameRule("frequency", ("frequency", "orders_per_month"), "high-frequency", "mid-frequency", "low-frequency"),
    NameRule("value", ("monetary", "mean_order_value"), "high-value", "mid-value", "low-value"),
    NameRule("repeat rate", ("orders_per_month",), "fast-repeat", None, "slow-repeat"),
    NameRule("order value", ("mean_order_value",), "big-order", None, "small-order"),
    NameRule("discount", ("discount_rate",), "discount-seeking", None, None),
    NameRule("channel", ("app_share",), "app-first", None, None),
)


def shown_z(z: float) -> float:
    """The z-score as the profile heat map shows it (one decimal, ``f"{z:.1f}"``)."""
    return float(f"{z:.1f}")


def z_level(z: float) -> str:
    """``'high'`` if the shown z ≥ +:data:`NAME_Z`, ``'low'`` if ≤ −NAME_Z, else ``'mid'`` (NaN: ``'mid'``)."""
    if not np.isfinite(z):
        return "mid"
    s = shown_z(z)
    return "high" if s >= NAME_Z else ("low" if s <= -NAME_Z else "mid")


def _resolve(columns: Iterable[str]) -> list[tuple[NameRule, str]]:
    """The rules that apply to the profiled ``columns``, each with the column it reads."""
    available, used, out = set(columns), set(), []
    for rule in NAME_RULES:
        col = next((c for c in rule.columns if c in available and c not in used), None)
        if col is not None:
            used.add(col)
            out.append((rule, col))
    return out


def segment_name_rules(profiles: pd.DataFrame | Iterable[str] | None = None) -> pd.DataFrame:
    """The naming rules as a table: which word reads which column, at which z-score.

    Parameters
    ----------
    profiles : DataFrame or iterable of str, optional
        A :func:`profile_segments` table (its ``<feature>_z`` columns) or feature names: the
        rules resolved for those columns. ``None``: every rule with all its candidate columns.

    Returns
    -------
    DataFrame
        ``topic, word, column, rule`` (e.g. ``value, high-value, monetary, z ≥ +0.5``).
    """
    if profiles is None:
        pairs = [(r, " or ".join(r.columns)) for r in NAME_RULES]
    else:
        cols = ([c[:-2] for c in profiles.columns if c.endswith("_z")] if isinstance(profiles, pd.DataFrame)
                else list(profiles))
        pairs = _resolve(cols)
    rows = []
    for rule, col in pairs:
        levels = ((rule.high, f"z (1 decimal) ≥ +{NAME_Z}"), (rule.mid, f"−{NAME_Z} < z (1 decimal) < +{NAME_Z}"),
                  (rule.low, f"z (1 decimal) ≤ −{NAME_Z}"))
        for word, cond in levels:
            if word is not None:
                rows.append({"topic": rule.topic, "word": word, "column": col, "rule": cond})
    return pd.DataFrame(rows, columns=["topic", "word", "column", "rule"])


def segment_name(z: Mapping[str, float]) -> tuple[str, list[str]]:
    """The name of a segment from its z-scores, and the columns its words read.

    Each rule of :data:`NAME_RULES` that applies (see :func:`segment_name_rules`) adds its word
    for the level of its column's z-score (:func:`z_level`); ``'average'`` when no rule adds one.
    """
    z = {k: float(v) for k, v in z.items() if v is not None and np.isfinite(v)}
    words, read = [], []
    for rule, col in _resolve(z):
        read.append(col)
        word = getattr(rule, z_level(z[col]))
        if word is not None:
            words.append(word)
    return (" ".join(words) or "average"), read


def _tag(z: pd.DataFrame, member: int, group: list[int], skip: set[str]) -> str | None:
    """``'+feature'`` / ``'−feature'``: the feature (not in ``skip``) that sets ``member`` most apart
    from the other segments of ``group``, among those where its shown |z| ≥ NAME_Z."""
    others = z.loc[[g for g in group if g != member]].mean()
    own = z.loc[member]
    cand = [c for c in z.columns if c not in skip and np.isfinite(own[c]) and abs(shown_z(own[c])) >= NAME_Z]
    if not cand:
        return None
    best = max(cand, key=lambda c: (abs(own[c] - others[c]), c))
    return f"{'+' if own[best] > 0 else '−'}{best}"


def _disambiguate(names: list[str], z: pd.DataFrame, read: list[list[str]]) -> list[str]:
    """Unique names: segments sharing a name get ``(+feature)``/``(−feature)`` — the feature, not
    yet in the name, that sets each most apart from the others of its group (shown |z| ≥ NAME_Z,
    sign = sign of its z) — else a number ``(2)``, ``(3)`` in size order."""
    out = list(names)
    for name in dict.fromkeys(names):
        group = [i for i, n in enumerate(names) if n == name]
        if len(group) < 2:
            continue
        tags: set[str] = set()
        for pos, i in enumerate(group):
            tag = _tag(z, i, group, set(read[i]))
            if tag is None or tag in tags:
                tag = str(pos + 1)
            tags.add(tag)
            out[i] = f"{name} ({tag})"
    n = 1
    while len(set(out)) < len(out):  # a tagged name equal to another segment's name: number them
        seen: set[str] = set()
        for i, name in enumerate(out):
            if name in seen:
                n += 1
                out[i] = f"{name} ({n})"
            seen.add(out[i])
    return out


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


def profile_segments(features: pd.DataFrame, labels: Sequence[int], *,
                     columns: Sequence[str] | None = None, revenue: str = "monetary",
                     unclustered_name: str = "fewer than 3 orders") -> pd.DataFrame:
    """Size, revenue share, feature means/medians, distinguishing features and a name per cluster.

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
        ``distinguishing`` (the features with shown |z| ≥ 0.5, strongest first, as "+name" / "−name").

    Notes
    -----
    z = (segment mean − overall mean) / overall standard deviation over all customers with a
    value (the unclustered ones included), on the log scale for counts and amounts (log1p where
    zeros occur) and the raw scale for shares. These are the numbers of the profile heat map.

    Names (``segment``) follow :data:`NAME_RULES`, read on the z-score *as shown* with one
    decimal (``z_shown``): high if ``z_shown ≥ +0.5``, low if ``z_shown ≤ −0.5``, mid otherwise.

    =========================  ====================================  =============================
    word                       column (the first one profiled)       level that gives the word
    =========================  ====================================  =============================
    active / lapsed            recency_days                          low / high (no word when mid)
    high/mid/low-frequency     frequency, else orders_per_month      high / mid / low
    high/mid/low-value         monetary, else mean_order_value       high / mid / low
    fast-repeat / slow-repeat  orders_per_month (if not used above)  high / low
    big-order / small-order    mean_order_value (if not used above)  high / low
    discount-seeking           discount_rate                         high
    app-first                  app_share                             high
    =========================  ====================================  =============================

    So *value* is total net spend (the M of RFM), not the value of one order (*big-order*), and
    *frequency* is the number of orders, not the rate (*fast-repeat*). ``'average'`` when no word
    applies. Segments sharing a name get the feature that sets each apart, ``(+feature)`` or
    ``(−feature)`` (not yet in the name, shown |z| ≥ 0.5, sign of its z), else ``(2)``, ``(3)``.
    Cluster -1 is named ``unclustered_name``.
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
    rows, zs, read = [], [], []
    for cl in pd.Series(labels).value_counts().sort_index().index:
        m = labels == cl
        z = (T[m].mean() - mu) / sd
        row = {"cluster": int(cl), "n_customers": int(m.sum()), "share_customers": m.mean(),
               "share_revenue": (features.loc[m, revenue].clip(lower=0).sum() / total_rev) if total_rev else np.nan}
        for c in columns:
            row[f"{c}_mean"] = X.loc[m, c].mean()
            row[f"{c}_median"] = X.loc[m, c].median()
            row[f"{c}_z"] = z[c]
        zz = z.dropna()
        strong = zz[zz.map(shown_z).abs() >= NAME_Z].sort_values(key=np.abs, ascending=False)
        row["distinguishing"] = ", ".join(f"{'+' if v > 0 else '−'}{k} ({v:+.1f} sd)" for k, v in strong.items())
        name, cols = (unclustered_name, []) if cl == UNCLUSTERED else segment_name(zz)
        row["segment"] = name
        rows.append(row)
        zs.append(z)
        read.append(cols)
    prof = pd.DataFrame(rows)
    prof["_last"] = prof["cluster"] == UNCLUSTERED
    order = prof.sort_values(["_last", "n_customers", "cluster"], ascending=[True, False, True]).index
    zt = pd.DataFrame(zs).reset_index(drop=True).loc[order].reset_index(drop=True)
    prof = prof.loc[order].drop(columns="_last").reset_index(drop=True)
    prof["segment"] = _disambiguate(prof["segment"].tolist(), zt, [read[i] for i in order])
    lead = ["cluster", "segment", "n_customers", "share_customers", "share_revenue"]
    return prof[lead + [c for c in prof.columns if c not in lead]].reset_index(drop=True)
