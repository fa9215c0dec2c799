"""Kaplan-Meier curves with medians by group, and log-rank tests (multivariate and pairwise, Holm-adjusted)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test, pairwise_logrank_test
from lifelines.utils import median_survival_times

from ..exceptions import AnalysisError, ParameterError
from ..multiple_testing import holm
from . import plots


@dataclass
class KaplanMeierResult:
    """Kaplan-Meier curves, one per group.

    Attributes
    ----------
    table : DataFrame
        ``group``, ``time``, ``at_risk``, ``events``, ``censored``, ``survival``, ``ci_lower``,
        ``ci_upper`` (one row per distinct time, from time 0).
    summary : DataFrame
        Per group: ``group``, ``n``, ``events``, ``median``, ``median_ci_lower``,
        ``median_ci_upper``, ``median_reached`` (NaN median = survival never fell to 50 %).
    fitters : dict
        The fitted :class:`lifelines.KaplanMeierFitter` per group (for at-risk counts).
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    fitters: dict
    group_col: str | None
    unit: str = "days"
    alpha: float = 0.05

    def survival_at(self, time: float) -> pd.DataFrame:
        """Survival (with CI) of each group at ``time``."""
        rows = []
        for g, sub in self.table.groupby("group", sort=False):
            r = sub[sub["time"] <= time].iloc[-1]
            rows.append({"group": g, "time": time, "survival": r["survival"], "ci_lower": r["ci_lower"],
                         "ci_upper": r["ci_upper"]})
        return pd.DataFrame(rows)

    def plot(self, ax=None, *, at_risk_counts: bool = True, ci: bool = True):
        """Kaplan-Meier curves by group with CI bands and numbers at risk; see :func:`plots.plot_km`."""
        return plots.plot_km(self, ax=ax, at_risk_counts=at_risk_counts, ci=ci)


def kaplan_meier(
    df: pd.DataFrame,
    duration_col: str = "duration",
    event_col: str = "event",
    group_col: str | None = None,
    *,
    alpha: float = 0.05,
    unit: str = "days",
    max_groups: int = 12,
) -> KaplanMeierResult:
    """Kaplan-Meier survival curves (by group) with pointwise (1 − alpha) CIs and medians.

    Notes
    -----
    Ŝ(t) = Π_{tᵢ ≤ t} (1 − dᵢ / nᵢ) with dᵢ churners and nᵢ at risk at tᵢ; CIs are lifelines'
    exponential Greenwood ("log-log") intervals. The median survival time is the first t with
    Ŝ(t) ≤ 0.5; its CI is read off the CI band. Rows with a missing group are left out and
    counted in a ``(missing)`` group.
    """
    if group_col is None:
        groups = pd.Series("all", index=df.index)
    else:
        if group_col not in df.columns:
            raise ParameterError(f"group_col={group_col!r} is not a column; have {list(df.columns)[:30]}.",
                                 allowed=[str(c) for c in df.columns])
        groups = df[group_col].astype(object).where(df[group_col].notna(), "(missing)").astype(str)
        if groups.nunique() > max_groups:
            raise AnalysisError(f"group_col={group_col!r} has {groups.nunique()} levels; Kaplan-Meier curves "
                                f"are readable for ≤ {max_groups}. Bin it first or pick another column.")
    if isinstance(df[group_col].dtype if group_col else None, pd.CategoricalDtype):
        order = [str(c) for c in df[group_col].cat.categories if str(c) in set(groups)]
        order += [g for g in sorted(groups.unique()) if g not in order]
    else:
        order = sorted(groups.unique())
    tables, summ, fitters = [], [], {}
    for g in order:
        m = (groups == g).to_numpy()
        T = df.loc[m, duration_col].astype(float)
        E = df.loc[m, event_col].astype(int)
        kmf = KaplanMeierFitter(alpha=alpha).fit(T, E, label=str(g))
        fitters[g] = kmf
        et = kmf.event_table
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_
        t = pd.DataFrame({"group": g, "time": et.index.to_numpy(float), "at_risk": et["at_risk"].to_numpy(int),
                          "events": et["observed"].to_numpy(int), "censored": et["censored"].to_numpy(int),
                          "survival": sf.reindex(et.index).to_numpy(float),
                          "ci_lower": ci.iloc[:, 0].reindex(et.index).to_numpy(float),
                          "ci_upper": ci.iloc[:, 1].reindex(et.index).to_numpy(float)})
        tables.append(t)
        med = float(kmf.median_survival_time_)
        mci = median_survival_times(kmf.confidence_interval_)
        lo, hi = float(mci.iloc[0, 0]), float(mci.iloc[0, 1])
        summ.append({"group": g, "n": int(m.sum()), "events": int(E.sum()),
                     "median": med if np.isfinite(med) else np.nan,
                     "median_ci_lower": lo if np.isfinite(lo) else np.nan,
                     "median_ci_upper": hi if np.isfinite(hi) else np.nan,
                     "median_reached": bool(np.isfinite(med))})
    return KaplanMeierResult(table=pd.concat(tables, ignore_index=True), summary=pd.DataFrame(summ),
                             fitters=fitters, group_col=group_col, unit=unit, alpha=alpha)


def logrank(
    df: pd.DataFrame,
    duration_col: str = "duration",
    event_col: str = "event",
    group_col: str | None = None,
) -> pd.DataFrame:
    """Log-rank tests: all groups at once (multivariate) and every pair (Holm-adjusted).

    Returns
    -------
    DataFrame
        ``comparison`` (``all groups`` / ``pairwise``), ``group_a``, ``group_b``,
        ``test_statistic`` (χ²), ``df``, ``p_value``, ``p_holm`` (pairwise rows).

    Notes
    -----
    H₀: the groups share one survival curve. The statistic compares observed with expected
    churners per group at every churn time; χ² with (groups − 1) degrees of freedom.
    """
    cols = ["comparison", "group_a", "group_b", "test_statistic", "df", "p_value", "p_holm"]
    if group_col is None:
        return pd.DataFrame(columns=cols)
    d = df[[duration_col, event_col, group_col]].dropna()
    g = d[group_col].astype(str)
    levels = sorted(g.unique())
    if len(levels) < 2:
        return pd.DataFrame(columns=cols)
    mv = multivariate_logrank_test(d[duration_col], g, d[event_col])
    rows = [{"comparison": "all groups", "group_a": " | ".join(levels), "group_b": None,
             "test_statistic": float(mv.test_statistic), "df": _degrees_of_freedom(mv, len(levels) - 1),
             "p_value": float(mv.p_value), "p_holm": np.nan}]
    pw = pairwise_logrank_test(d[duration_col], g, d[event_col]).summary
    pw_rows = []
    for (a, b), r in pw.iterrows():
        pw_rows.append({"comparison": "pairwise", "group_a": str(a), "group_b": str(b),
                        "test_statistic": float(r["test_statistic"]), "df": 1, "p_value": float(r["p"])})
    if pw_rows:
        for r, h in zip(pw_rows, holm([r["p_value"] for r in pw_rows])):
            r["p_holm"] = float(h)
    return pd.DataFrame(rows + pw_rows, columns=cols)


def _degrees_of_freedom(result, default: int) -> int:
    """Degrees of freedom of a lifelines test result (the attribute's name differs between versions)."""
    return int(getattr(result, "degrees_of_freedom", getattr(result, "degrees_freedom", default)))
