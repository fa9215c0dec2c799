"""Figures for churn survival analysis (churn notebook).

Each function takes ``ax=None`` and returns the Axes, drawn from the tidy tables of
:mod:`ecrm_research.survival` so the figures show the numbers the tables hold.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from lifelines.plotting import add_at_risk_counts
from matplotlib.ticker import FuncFormatter
from statsmodels.nonparametric.smoothers_lowess import lowess

from ..exceptions import ParameterError
from .ph_test import TRANSFORM_LABELS

#: Words for the two values of yes/no covariates of the sample shop: (true, false).
BOOLEAN_LEVEL_WORDS = {
    "is_member": ("members", "non-members"),
    "first_order_late": ("customers whose first delivery was late", "customers whose first delivery was on time"),
}

_TRUE_TEXT = {"true", "yes", "1", "1.0", "y"}
_FALSE_TEXT = {"false", "no", "0", "0.0", "n"}


def level_label(variable: str, value: Any) -> str:
    """A level of a covariate as words a reader understands: ``is_member`` True → "members".

    Yes/no values (True/False, 1/0, "yes"/"no") of the variables in :data:`BOOLEAN_LEVEL_WORDS`
    read as their words; of any other variable as ``"<variable>: yes"`` / ``"<variable>: no"``
    (a leading ``is_`` dropped, underscores as spaces). Other values are returned as text.
    """
    text = str(value).strip().lower()
    truth = True if text in _TRUE_TEXT else False if text in _FALSE_TEXT else None
    if truth is None or (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
                         and float(value) not in (0.0, 1.0)):
        return str(value)
    if variable in BOOLEAN_LEVEL_WORDS:
        return BOOLEAN_LEVEL_WORDS[variable][0 if truth else 1]
    name = (variable[3:] if variable.startswith("is_") else variable).replace("_", " ")
    return f"{name}: {'yes' if truth else 'no'}"


def level_labels(values: pd.Series, variable: str | None = None) -> pd.Series:
    """:func:`level_label` of every value when the column holds yes/no values only; other columns unchanged.

    Use it on a grouping column before Kaplan-Meier curves, log-rank tests and their tables, so a
    report reads "members" / "non-members" rather than ``True`` / ``False``. Missing values stay missing.
    """
    variable = variable or str(values.name)
    present = values.dropna().unique()
    words = {v: level_label(variable, v) for v in present}
    if not present.size or any(w == str(v) for v, w in words.items()):
        return values
    return values.map(words).astype(object).where(values.notna(), None)


def plot_km(km, ax=None, *, at_risk_counts: bool = True, ci: bool = True, title: str | None = None):
    """Kaplan-Meier curves by group with CI bands and the numbers at risk under the axis.

    Parameters
    ----------
    km : KaplanMeierResult
        From :func:`ecrm_research.survival.kaplan_meier`.
    at_risk_counts : bool
        Add lifelines' at-risk / censored / events table below the plot.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    for g, sub in km.table.groupby("group", sort=False):
        line, = ax.step(sub["time"], sub["survival"], where="post", label=f"{g} (n={sub['at_risk'].iloc[0]:,})")
        if ci:
            ax.fill_between(sub["time"], sub["ci_lower"], sub["ci_upper"], step="post", alpha=0.2,
                            color=line.get_color(), linewidth=0)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"time since start ({km.unit})")
    ax.set_ylabel("share not yet churned  Ŝ(t)")
    ax.set_title(title or (f"Kaplan-Meier survival by {km.group_col}" if km.group_col else "Kaplan-Meier survival"))
    ax.legend(title=km.group_col, fontsize="small", loc="lower left")
    if at_risk_counts:
        fitters = list(km.fitters.values())
        add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk", "Events"])
    return ax


def plot_forest(summary: pd.DataFrame, ax=None, *, sort: bool = True, title: str | None = None):
    """Forest plot: hazard ratio with its CI per covariate, log scale, reference line at 1.

    Parameters
    ----------
    summary : DataFrame
        ``covariate``, ``hazard_ratio``, ``ci_lower``, ``ci_upper``, ``p_value`` (the Cox summary).
    """
    s = summary.sort_values("hazard_ratio") if sort else summary
    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(s) + 1)))
    y = np.arange(len(s))
    sig = s["p_value"].to_numpy() < 0.05
    colors = np.where(s["hazard_ratio"].to_numpy() > 1, "tab:red", "tab:blue")
    colors = np.where(sig, colors, "grey")
    ax.hlines(y, s["ci_lower"], s["ci_upper"], colors=colors, lw=2)
    ax.scatter(s["hazard_ratio"], y, c=colors, zorder=3, s=30)
    ax.axvline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xscale("log")
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_minor_formatter(fmt)
    ax.tick_params(axis="x", which="minor", labelsize="x-small")
    ax.set_yticks(y)
    ax.set_yticklabels(s["covariate"])
    ax.set_xlabel("hazard ratio (log scale; > 1 = churns sooner)")
    ax.set_title(title or "Cox model: hazard ratios with 95% CI (grey: p ≥ 0.05)")
    return ax


def schoenfeld_axis_label(transform: str) -> str:
    """x-axis label of the scaled-Schoenfeld plot for a time transform of the PH test."""
    return "event time: " + TRANSFORM_LABELS.get(transform, f"g(time)  ({transform} transform)")


def plot_schoenfeld(model, covariate: str, ax=None, *, transform: str = "km", max_points: int = 5000,
                    random_state: int = 0):
    """Scaled Schoenfeld residuals of one model column against transformed event time, with a lowess trend.

    The residuals and the time axis are those of R's ``cox.zph`` (``$y`` with ``terms=FALSE``, ``$x``)
    for the same ``transform`` as :meth:`ChurnCoxModel.check_proportional_hazards`: the trend
    estimates the coefficient βⱼ(t); flat at the fitted coefficient (dashed) supports proportional
    hazards, a slope means the hazard ratio drifts over time. With more than ``max_points`` events
    a seeded random sample is drawn and smoothed (lowess is quadratic in the number of points).
    """
    res = model.ph_test(transform, terms=False)
    resid = res.residuals
    if covariate not in model.cph_.params_.index:
        cols = model.factors().get(covariate)
        hint = (f" '{covariate}' is a factor: plot one of its columns {cols}." if cols
                else f" Model columns: {list(model.cph_.params_.index)}.")
        raise ParameterError(f"no model column named {covariate!r}.{hint}")
    ok = resid[covariate].notna().to_numpy()
    r = resid[covariate].to_numpy(float)[ok]
    x = res.x.to_numpy(float)[ok]
    if len(r) > max_points:
        keep = np.sort(np.random.default_rng(random_state).choice(len(r), size=max_points, replace=False))
        r, x = r[keep], x[keep]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(x, r, s=6, alpha=0.3, color="tab:grey")
    span = float(np.ptp(x)) if len(x) else 0.0
    if span > 0:
        fit = lowess(r, x, frac=0.4, delta=0.01 * span, return_sorted=True)
        ax.plot(fit[:, 0], fit[:, 1], color="tab:red", lw=2, label="lowess trend ≈ β(t)")
    ax.axhline(float(model.cph_.params_[covariate]), color="black", ls="--", lw=0.8, label="fitted coefficient β")
    ax.set_xlabel(schoenfeld_axis_label(res.transform))
    ax.set_ylabel(f"β(t) for {covariate}: scaled Schoenfeld residual")
    ax.set_title(f"Proportional-hazards check: {covariate}")
    ax.legend(fontsize="small")
    return ax


def plot_churn_probability(at_risk: pd.DataFrame, ax=None, *, threshold: float | None = None):
    """Histogram of churn probabilities of active customers, with the campaign threshold."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    p = at_risk["churn_probability"].dropna()
    ax.hist(p, bins=40, color="tab:blue", alpha=0.8)
    if threshold is not None and threshold <= 1:
        ax.axvline(threshold, color="tab:red", ls="--", label=f"break-even {threshold:.2f}")
        ax.legend(fontsize="small")
    h = at_risk.attrs.get("horizon")
    ax.set_xlabel("churn probability" + (f" within {h:g}" if h is not None else ""))
    ax.set_ylabel("active customers")
    ax.set_title("Who is at risk?")
    return ax


def plot_campaign(curve: pd.DataFrame, ax=None, *, recommended: int | None = None):
    """Cumulative expected net gain (in acquisition-cost units) by number of customers contacted."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    ax.plot(curve["contacted"], curve["net_gain"], color="tab:green")
    ax.axhline(0, color="black", lw=0.8)
    if recommended:
        ax.axvline(recommended, color="tab:red", ls="--", label=f"contact top {recommended:,}")
        ax.legend(fontsize="small")
    ax.set_xlabel("customers contacted (highest expected gain first)")
    ax.set_ylabel("expected net gain (× acquisition cost)")
    ax.set_title("Retention campaign sizing")
    return ax
