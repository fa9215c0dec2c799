"""Kaplan-Meier curves with medians by group, and log-rank tests (multivariate and pairwise, Holm-adjusted).

The pointwise intervals and the median's interval follow R's ``survfit`` (package survival):
:func:`survival_confint` is its ``conf.type`` ("log-log", "log", "plain") and
:func:`survival_median` its rule for the median and its interval (``summary(fit)$table``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test, pairwise_logrank_test
from scipy.stats import norm

from ..exceptions import AnalysisError, ParameterError
from ..multiple_testing import holm
from . import plots

#: The pointwise interval types of :func:`kaplan_meier`, named as R's ``survfit(conf.type=...)``.
CI_TYPES: tuple[str, ...] = ("log-log", "log", "plain")

#: R's tolerance for the median (``sqrt(.Machine$double.eps)``): survival within it of 0.5 is 0.5.
MEDIAN_TOL: float = float(np.sqrt(np.finfo(float).eps))


@dataclass
class KaplanMeierResult:
    """Kaplan-Meier curves, one per group.

    Attributes
    ----------
    table : DataFrame
        ``group``, ``time``, ``at_risk``, ``events``, ``censored``, ``survival``, ``ci_lower``,
        ``ci_upper`` (one row per distinct time, from time 0; the interval is of type
        ``ci_type``, NaN where R's ``survfit`` gives NA, see :func:`survival_confint`).
    summary : DataFrame
        Per group: ``group``, ``n``, ``events``, ``median``, ``median_ci_lower``,
        ``median_ci_upper``, ``median_reached`` (NaN median = survival never fell to 50 %;
        NaN limit = the interval band never reaches 50 %), by :func:`survival_median`.
    fitters : dict
        The fitted :class:`lifelines.KaplanMeierFitter` per group (for at-risk counts; their
        own ``confidence_interval_`` is always lifelines' log-log, use ``table`` instead).
    ci_type : str
        ``"log-log"``, ``"log"`` or ``"plain"`` (see :func:`kaplan_meier`).
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    fitters: dict
    group_col: str | None
    unit: str = "days"
    alpha: float = 0.05
    ci_type: str = "log-log"

    def survival_at(self, time: float) -> pd.DataFrame:
        """Survival (with the ``ci_type`` CI) of each group at ``time`` (the curve is right-continuous)."""
        rows = []
        for g, sub in self.table.groupby("group", sort=False):
            r = sub[sub["time"] <= time].iloc[-1]
            rows.append({"group": g, "time": time, "survival": r["survival"], "ci_lower": r["ci_lower"],
                         "ci_upper": r["ci_upper"]})
        return pd.DataFrame(rows)

    def plot(self, ax=None, *, at_risk_counts: bool = True, ci: bool = True):
        """Kaplan-Meier curves by group with CI bands and numbers at risk; see :func:`plots.plot_km`."""
        return plots.plot_km(self, ax=ax, at_risk_counts=at_risk_counts, ci=ci)


def greenwood_se(at_risk: np.ndarray, events: np.ndarray) -> np.ndarray:
    """Greenwood standard error of log Ŝ(t) at each row (R's ``survfit(...)$std.err``).

    Notes
    -----
    se(log Ŝ(t))² = Σ_{tᵢ ≤ t} dᵢ / (nᵢ (nᵢ − dᵢ)); infinite once every subject at risk has
    churned (nᵢ = dᵢ, Ŝ = 0), as in R.
    """
    n = np.asarray(at_risk, float)
    d = np.asarray(events, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(d > 0, d / (n * (n - d)), 0.0)
    return np.sqrt(np.cumsum(term))


def survival_confint(surv: np.ndarray, se: np.ndarray, ci_type: str = "log-log",
                     alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise (1 − alpha) interval of Ŝ(t) from the standard error of log Ŝ (R's ``survfit_confint``).

    Parameters
    ----------
    surv : array
        Ŝ(t).
    se : array
        Standard error of log Ŝ(t) (:func:`greenwood_se`).
    ci_type : {"log-log", "log", "plain"}
        R's ``conf.type``.
    alpha : float

    Returns
    -------
    (lower, upper) : arrays
        NaN where R gives NA/NaN.

    Notes
    -----
    With z = Φ⁻¹(1 − alpha/2) and s = se(log Ŝ):

    * ``"plain"``: Ŝ ± z·s·Ŝ, clipped to [0, 1]; NaN where Ŝ = 0 (s = ∞).
    * ``"log"`` (R's default): exp(log Ŝ ± z·s), upper capped at 1; NaN where Ŝ = 0.
    * ``"log-log"`` (Kalbfleisch–Prentice, lifelines' only type):
      exp(−exp(log(−log Ŝ) ∓ z·s / log Ŝ)); always inside (0, 1); NaN where Ŝ = 0 or Ŝ = 1.
    """
    _check_ci_type(ci_type)
    p = np.asarray(surv, float)
    se = np.asarray(se, float)
    z = float(norm.ppf(1 - alpha / 2))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if ci_type == "plain":
            half = se * p * z
            return np.maximum(p - half, 0.0), np.minimum(p + half, 1.0)
        if ci_type == "log":
            xx = np.where(p == 0, np.nan, p)
            return np.exp(np.log(xx) - z * se), np.minimum(np.exp(np.log(xx) + z * se), 1.0)
        xx = np.where((p == 0) | (p == 1), np.nan, p)
        shift = z * se / np.log(xx)
        return np.exp(-np.exp(np.log(-np.log(xx)) - shift)), np.exp(-np.exp(np.log(-np.log(xx)) + shift))


def _check_ci_type(ci_type: str) -> None:
    if ci_type not in CI_TYPES:
        raise ParameterError(f"ci_type={ci_type!r} is not a Kaplan-Meier interval type; use one of "
                             f"{', '.join(repr(c) for c in CI_TYPES)} (R's survfit conf.type).",
                             allowed=list(CI_TYPES))


def survival_median(time: np.ndarray, curve: np.ndarray, *, tol: float = MEDIAN_TOL) -> float:
    """Time at which ``curve`` (Ŝ or a limit of its interval) falls to 0.5, by R's rule for the
    median and its limits in ``print(fit)`` / ``summary(fit)$table``.

    Parameters
    ----------
    time, curve : arrays
        The curve's distinct times (ascending) and values; NaN values (R's NA) are skipped.
    tol : float
        Values within ``tol`` of 0.5 count as 0.5.

    Returns
    -------
    float
        NaN when the curve never falls to 0.5.

    Notes
    -----
    R (``survival:::survmean``): the first time t₁ with curve(t₁) < 0.5 + tol; when
    curve(t₁) = 0.5 (a plateau at exactly 0.5) and the curve drops later, the midpoint of the
    plateau (t₁ + the first time the curve is below it) / 2. Kaplan-Meier with 4 churners at
    1, 2, 3, 4 → median (2 + 3) / 2 = 2.5. A plateau at 0.5 that runs to the last observation
    gives t₁ (``print``); R's ``quantile(fit, 0.5)`` gives (t₁ + last time) / 2 there instead.
    """
    x = np.asarray(time, float)
    y = np.asarray(curve, float)
    keep = ~np.isnan(y) & (y < 0.5 + tol)
    if not keep.any():
        return float("nan")
    x, y = x[keep], y[keep]
    below = np.flatnonzero(y < y[0])
    if abs(y[0] - 0.5) < tol and below.size:
        return float((x[0] + x[below[0]]) / 2)
    return float(x[0])


def _group_order(df: pd.DataFrame, group_col: str | None, max_groups: int) -> tuple[pd.Series, list[str]]:
    """Group label of every row (``(missing)`` for a missing group) and the groups' order."""
    if group_col is None:
        return pd.Series("all", index=df.index), ["all"]
    if group_col not in df.columns:
        raise ParameterError(f"group_col={group_col!r} is not a column; have {list(df.columns)[:30]}.",
                             allowed=[str(c) for c in df.columns])
    groups = df[group_col].astype(object).where(df[group_col].notna(), "(missing)").astype(str)
    if groups.nunique() > max_groups:
        raise AnalysisError(f"group_col={group_col!r} has {groups.nunique()} levels; Kaplan-Meier curves "
                            f"are readable for ≤ {max_groups}. Bin it first or pick another column.")
    if isinstance(df[group_col].dtype, pd.CategoricalDtype):
        order = [str(c) for c in df[group_col].cat.categories if str(c) in set(groups)]
        order += [g for g in sorted(groups.unique()) if g not in order]
    else:
        order = sorted(groups.unique())
    return groups, order


def _curve_table(kmf: KaplanMeierFitter, group: str, ci_type: str, alpha: float) -> pd.DataFrame:
    """One group's rows of :attr:`KaplanMeierResult.table` (R's ``survfit0`` rows: time 0 added with
    survival and both limits 1 when nobody left at time 0)."""
    et = kmf.event_table
    surv = kmf.survival_function_.iloc[:, 0].reindex(et.index).to_numpy(float)
    at_risk, events = et["at_risk"].to_numpy(int), et["observed"].to_numpy(int)
    lower, upper = survival_confint(surv, greenwood_se(at_risk, events), ci_type, alpha)
    added = (et.index.to_numpy(float) == 0) & (et["removed"].to_numpy(int) == 0)
    lower[added], upper[added] = 1.0, 1.0
    return pd.DataFrame({"group": group, "time": et.index.to_numpy(float), "at_risk": at_risk,
                         "events": events, "censored": et["censored"].to_numpy(int), "survival": surv,
                         "ci_lower": lower, "ci_upper": upper, "_added": added})


def kaplan_meier(
    df: pd.DataFrame,
    duration_col: str = "duration",
    event_col: str = "event",
    group_col: str | None = None,
    *,
    alpha: float = 0.05,
    ci_type: str = "log-log",
    unit: str = "days",
    max_groups: int = 12,
) -> KaplanMeierResult:
    """Kaplan-Meier survival curves (by group) with pointwise (1 − alpha) CIs and medians.

    Parameters
    ----------
    df : DataFrame
        One row per customer.
    duration_col, event_col : str
        Time observed and churned (1) or right-censored (0).
    group_col : str, optional
        One curve per level (at most ``max_groups``).
    alpha : float
        1 − confidence level of the intervals.
    ci_type : {"log-log", "log", "plain"}
        Pointwise interval of Ŝ(t), as R's ``survfit(..., conf.type=)`` (Greenwood variance):
        ``"log-log"`` (default; Kalbfleisch–Prentice, lifelines' interval, R's "log-log"),
        ``"log"`` (R's default) or ``"plain"`` (Ŝ ± z·se, clipped to [0, 1]). See
        :func:`survival_confint`. The median's interval is read off the same band.
    unit : str
        Unit of the durations, for labels.
    max_groups : int

    Returns
    -------
    KaplanMeierResult

    Notes
    -----
    Ŝ(t) = Π_{tᵢ ≤ t} (1 − dᵢ / nᵢ) with dᵢ churners and nᵢ at risk at tᵢ. The median survival
    time is the first t with Ŝ(t) ≤ 0.5 — the midpoint of the plateau where Ŝ equals 0.5
    exactly, when the curve drops later — and its CI is where the lower and upper bands fall to
    0.5, NaN where a band never does (R's rule, :func:`survival_median`; a group of one gives
    NaN limits).
    Survival, limits and median match R's ``survfit(Surv(t, e) ~ g, conf.type=ci_type)`` and
    ``summary(fit)$table``. Rows with a missing group are left out and counted in a
    ``(missing)`` group.
    """
    _check_ci_type(ci_type)
    groups, order = _group_order(df, group_col, max_groups)
    tables, summ, fitters = [], [], {}
    for g in order:
        m = (groups == g).to_numpy()
        T = df.loc[m, duration_col].astype(float)
        E = df.loc[m, event_col].astype(int)
        kmf = KaplanMeierFitter(alpha=alpha).fit(T, E, label=str(g))
        fitters[g] = kmf
        t = _curve_table(kmf, g, ci_type, alpha)
        r = t[~t.pop("_added").to_numpy(bool)]
        tables.append(t)
        times = r["time"].to_numpy(float)
        med = survival_median(times, r["survival"].to_numpy(float))
        summ.append({"group": g, "n": int(m.sum()), "events": int(E.sum()), "median": med,
                     "median_ci_lower": survival_median(times, r["ci_lower"].to_numpy(float)),
                     "median_ci_upper": survival_median(times, r["ci_upper"].to_numpy(float)),
                     "median_reached": bool(np.isfinite(med))})
    return KaplanMeierResult(table=pd.concat(tables, ignore_index=True), summary=pd.DataFrame(summ),
                             fitters=fitters, group_col=group_col, unit=unit, alpha=alpha, ci_type=ci_type)


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
