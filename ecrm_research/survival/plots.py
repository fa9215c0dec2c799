"""Figures for churn survival analysis (churn notebook).

Each function takes ``ax=None`` and returns the Axes, drawn from the tidy tables of
:mod:`ecrm_research.survival` so the figures show the numbers the tables hold.

The figures are sized for a report: saved at 110 dpi and printed on A4 portrait, every text
prints at 8 pt or more (default sizes, figures at most ~7.5 in wide), legends sit outside the
data and every reference line (median Ŝ = 0.5, hazard ratio 1, break-even) has a legend entry.
Kaplan-Meier curves mark censored customers with ``+`` (as R's ``plot.survfit`` and survminer)
and carry a number-at-risk table under the axis (survminer's risk table).
"""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator
from matplotlib.transforms import offset_copy
from mpl_toolkits.axes_grid1 import make_axes_locatable
from statsmodels.nonparametric.smoothers_lowess import lowess

from ..exceptions import ParameterError
from .ph_test import TRANSFORM_LABELS

#: Words for the two values of yes/no covariates of the sample shop: (true, false).
BOOLEAN_LEVEL_WORDS = {
    "is_member": ("members", "non-members"),
    "first_order_late": ("customers whose first delivery was late", "customers whose first delivery was on time"),
}

#: ``gid`` of the censoring-mark lines of :func:`plot_km` (one Line2D per group)
CENSOR_GID = "km-censored"
#: ``gid`` of the number-at-risk table axes under a Kaplan-Meier plot
RISK_TABLE_GID = "km-risk-table"
#: legend-outside placement used by every figure here (upper left corner just right of the axes)
LEGEND_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
#: legend entries and risk-table labels are wrapped at this many characters
WRAP = 24

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


def _wrap(text: str, width: int = WRAP) -> str:
    return textwrap.fill(str(text), width=width, break_long_words=False, break_on_hyphens=False)


def censor_marks(curve: pd.DataFrame, max_marks: int | None = 80) -> pd.DataFrame:
    """Where one Kaplan-Meier curve gets its censoring marks.

    Parameters
    ----------
    curve : DataFrame
        One group's rows of :attr:`KaplanMeierResult.table` (``time``, ``censored``, ``survival``).
    max_marks : int, optional
        At most this many marks. One mark per distinct censoring time (as R's ``plot.survfit``
        with ``mark.time=TRUE``); when there are more distinct times, the time axis is cut into
        `max_marks` equal bins and each bin with a censoring gets one mark, at the time in it with
        the most censored customers (the first such time on ties). ``None``: no thinning.

    Returns
    -------
    DataFrame
        ``time``, ``survival`` (the curve at that time: where the mark sits), ``censored``
        (customers censored at that time; with thinning, in the whole bin), sorted by time.
    """
    if max_marks is not None and max_marks < 1:
        raise ParameterError(f"max_marks must be at least 1 (or None for every censoring time), got {max_marks!r}.")
    rows = curve.loc[curve["censored"].to_numpy() > 0, ["time", "survival", "censored"]]
    rows = rows.sort_values("time", kind="mergesort").reset_index(drop=True)
    if max_marks is None or len(rows) <= max_marks:
        return rows
    t = rows["time"].to_numpy(float)
    lo, hi = float(t.min()), float(t.max())
    bins = (np.minimum(((t - lo) / (hi - lo) * max_marks).astype(int), max_marks - 1) if hi > lo
            else np.zeros(len(t), int))
    rows = rows.assign(_bin=bins)
    # the time with most censorings in each bin; idxmax takes the first on ties (rows are time-sorted)
    keep = rows.groupby("_bin", sort=True)["censored"].idxmax().to_numpy()
    totals = rows.groupby("_bin", sort=True)["censored"].sum().to_numpy()
    out = rows.loc[keep, ["time", "survival"]].reset_index(drop=True)
    out["censored"] = totals
    return out


def number_at_risk(curve: pd.DataFrame, times) -> np.ndarray:
    """Customers still at risk (not yet churned or censored) just before each of `times`.

    `curve` is one group's rows of :attr:`KaplanMeierResult.table`; the number at risk at t is
    the ``at_risk`` of the first row at or after t (0 after the last row), as survminer's risk table.
    """
    c = curve.sort_values("time", kind="mergesort")
    t = c["time"].to_numpy(float)
    n = c["at_risk"].to_numpy(int)
    idx = np.searchsorted(t, np.asarray(times, float), side="left")
    return np.where(idx < len(t), n[np.minimum(idx, len(t) - 1)], 0)


def add_risk_table(km, ax, *, times=None, pad: float = 0.7, row_height: float = 0.24):
    """A number-at-risk table under a Kaplan-Meier plot (survminer's risk table).

    One row per group (its name in the curve's colour), one column per x tick of `ax` (or
    `times`), the customers still at risk there. Returns the table's Axes (``gid``
    :data:`RISK_TABLE_GID`), which shares the x axis of `ax`.

    Parameters
    ----------
    km : KaplanMeierResult
    ax : Axes
        The Kaplan-Meier plot (draw the curves first: the groups' colours are read from it).
    times : sequence of float, optional
        Columns of the table; default the x ticks of `ax` inside its limits.
    pad, row_height : float
        Space between the plot and the table, and height of one row, in inches.
    """
    groups = list(dict.fromkeys(km.table["group"]))
    colors = {ln.get_gid(): ln.get_color() for ln in ax.get_lines() if str(ln.get_gid()).startswith("km-curve:")}
    lo, hi = ax.get_xlim()
    if times is None:
        times = [t for t in ax.get_xticks() if lo - 1e-9 <= t <= hi + 1e-9]
    times = [float(t) for t in times]
    tab = make_axes_locatable(ax).append_axes("bottom", size=row_height * len(groups) + 0.05, pad=pad, sharex=ax)
    tab.set_gid(RISK_TABLE_GID)
    tab.set_ylim(-0.5, len(groups) - 0.5)
    widest_first = 1
    for i, g in enumerate(groups):
        y = len(groups) - 1 - i
        counts = number_at_risk(km.table[km.table["group"] == g], times)
        for t, n in zip(times, counts):
            tab.text(t, y, f"{int(n):,}", ha="center", va="center", color=colors.get(f"km-curve:{g}", "black"))
        if len(counts) and times[0] <= lo + 0.05 * (hi - lo):  # a number centred at the left edge
            widest_first = max(widest_first, len(f"{int(counts[0]):,}"))
    tab.yaxis.set_major_locator(FixedLocator([len(groups) - 1 - i for i in range(len(groups))]))
    tab.set_yticklabels([_wrap(g, 30) for g in groups])
    for label, g in zip(tab.get_yticklabels(), groups):
        label.set_color(colors.get(f"km-curve:{g}", "black"))
    # group names clear of the numbers centred on the first tick (half a number's width, ~3.3 pt a digit)
    tab.tick_params(axis="both", length=0, labelbottom=False)
    tab.tick_params(axis="y", pad=4 + 3.3 * widest_first)
    for side in ("top", "right", "bottom", "left"):
        tab.spines[side].set_visible(False)
    tab.set_title("Number at risk", loc="left", fontsize="medium")
    return tab


def plot_km(km, ax=None, *, at_risk_counts: bool = True, ci: bool = True, censored: bool = True,
            max_marks: int | None = 50, title: str | None = None):
    """Kaplan-Meier curves by group with CI bands, censoring marks and a number-at-risk table.

    Parameters
    ----------
    km : KaplanMeierResult
        From :func:`ecrm_research.survival.kaplan_meier`.
    ax : Axes, optional
        Where to draw; a new 5.6 × 5.0 in figure when None.
    at_risk_counts : bool
        Add the number-at-risk table under the plot (:func:`add_risk_table`).
    ci : bool
        Shade the pointwise confidence band (the ``ci_type`` of `km`).
    censored : bool
        Mark censored customers with ``+`` on the curve (:func:`censor_marks`: one mark per
        distinct censoring time, at most `max_marks` per curve); legend entry "censored".
    max_marks : int, optional
        Thinning of the marks for large groups; ``None`` marks every censoring time.
    title : str, optional

    Returns
    -------
    Axes
        The plot (the risk table is a second Axes of the same figure).

    Notes
    -----
    A dotted line at Ŝ = 0.5 (legend "median: Ŝ(t) = 0.5") shows where each curve's median
    time to churn is read off. The legend sits outside the axes, to the right.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 5.0))
    handles = []
    any_marks = False
    for g, sub in km.table.groupby("group", sort=False):
        line, = ax.step(sub["time"], sub["survival"], where="post", label=_wrap(f"{g} (n={sub['at_risk'].iloc[0]:,})"),
                        gid=f"km-curve:{g}")
        handles.append(line)
        if ci:
            ax.fill_between(sub["time"], sub["ci_lower"], sub["ci_upper"], step="post", alpha=0.2,
                            color=line.get_color(), linewidth=0)
        if censored:
            marks = censor_marks(sub, max_marks)
            if len(marks):
                any_marks = True
                ax.plot(marks["time"], marks["survival"], ls="none", marker="+", ms=6, mew=1.0,
                        color=line.get_color(), label="_censored", gid=CENSOR_GID)
    median = ax.axhline(0.5, color="grey", lw=0.9, ls=":", label="median: Ŝ(t) = 0.5")
    handles.append(median)
    if any_marks:
        handles.append(Line2D([], [], ls="none", marker="+", ms=7, mew=1.2, color="dimgrey", label="censored"))
    ax.set_ylim(0, 1.03)
    tmax = float(km.table["time"].max()) if len(km.table) else 1.0
    ax.set_xlim(-0.02 * tmax, 1.02 * tmax if tmax > 0 else 1.0)
    ax.set_xlabel(f"time since start ({km.unit})")
    ax.set_ylabel("share not yet churned  Ŝ(t)")
    ax.set_title(title or (f"Kaplan-Meier survival by {km.group_col}" if km.group_col else "Kaplan-Meier survival"))
    ax.legend(handles=handles, title=_wrap(km.group_col) if km.group_col else None, **LEGEND_OUTSIDE)
    if at_risk_counts:
        add_risk_table(km, ax)
    return ax


def hazard_ratio_ticks(lo: float, hi: float, *, min_gap: float = 0.09) -> list[float]:
    """Readable ticks for a log hazard-ratio axis from `lo` to `hi`: 1 and round values
    (0.1, 0.2, 0.5, 2, 5, 10 first, then 0.3, 0.7, 1.5, 3 ...) at least `min_gap` of the axis
    (in log units, as a share of its length) apart, so their labels never touch."""
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        return [1.0]
    span = np.log10(hi) - np.log10(lo)
    first = [1.0]
    for k in range(-4, 5):
        first += [10.0 ** k, 2 * 10.0 ** k, 5 * 10.0 ** k]
    second = [m * 10.0 ** k for k in range(-4, 5) for m in (1.5, 3, 4, 7)]
    second += [m / 10 for m in (8, 9, 11, 12)]
    kept: list[float] = []
    for v in first + second:
        if not lo <= v <= hi or any(abs(np.log10(v) - np.log10(w)) / span < min_gap for w in kept):
            continue
        kept.append(float(v))
    return sorted(kept)


def plot_forest(summary: pd.DataFrame, ax=None, *, sort: bool = True, title: str | None = None):
    """Forest plot: hazard ratio with its 95 % CI per covariate, log scale, reference line at 1.

    Parameters
    ----------
    summary : DataFrame
        ``covariate``, ``hazard_ratio``, ``ci_lower``, ``ci_upper``, ``p_value`` (the Cox summary).
    ax : Axes, optional
        A new figure sized to the number of covariates when None.
    sort : bool
        Order by hazard ratio (largest at the top).

    Returns
    -------
    Axes
        Red: churn sooner (HR > 1, p < 0.05); blue: churn later (HR < 1, p < 0.05); grey: not
        significant at 5 %. The dashed line at 1 ("HR = 1: no effect") and the colours are in
        the legend, under the axes.
    """
    s = summary.sort_values("hazard_ratio", kind="mergesort") if sort else summary
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, max(3.0, 0.32 * len(s) + 1.8)))
    y = np.arange(len(s))
    hr = s["hazard_ratio"].to_numpy(float)
    sig = s["p_value"].to_numpy(float) < 0.05
    colors = np.where(sig, np.where(hr > 1, "tab:red", "tab:blue"), "grey")
    ax.hlines(y, s["ci_lower"], s["ci_upper"], colors=colors, lw=2)
    ax.scatter(hr, y, c=colors, zorder=3, s=30)
    ref = ax.axvline(1.0, color="black", lw=0.8, ls="--", label="HR = 1: no effect")
    ax.set_xscale("log")
    values = np.concatenate([hr, s["ci_lower"].to_numpy(float), s["ci_upper"].to_numpy(float), [1.0]])
    values = values[np.isfinite(values) & (values > 0)]
    lo, hi = float(values.min()), float(values.max())
    margin = 0.06 * max(np.log10(hi) - np.log10(lo), 0.1)
    lo, hi = 10 ** (np.log10(lo) - margin), 10 ** (np.log10(hi) + margin)
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator(hazard_ratio_ticks(lo, hi)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(y)
    ax.set_yticklabels(s["covariate"])
    ax.set_ylim(-0.7, len(s) - 0.3)
    ax.set_xlabel("hazard ratio (log scale; > 1 = churns sooner)")
    ax.set_title(title or "Cox model: hazard ratios with 95% CI")
    handles = [ref] + [Line2D([], [], color=c, marker="o", lw=2, label=lab) for c, lab in (
        ("tab:red", "churn sooner (p < 0.05)"), ("tab:blue", "churn later (p < 0.05)"),
        ("grey", "not significant (p ≥ 0.05)"))]
    # below the axes (a fixed distance under the x label, whatever the height): long covariate names
    # already take the width, and a legend on the right would shrink the printed fonts
    below = offset_copy(ax.transAxes, fig=ax.figure, y=-0.5, units="inches")
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, ncol=2,
              borderaxespad=0.0)
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
        _, ax = plt.subplots(figsize=(5.0, 3.6))
    ax.scatter(x, r, s=6, alpha=0.3, color="tab:grey")
    span = float(np.ptp(x)) if len(x) else 0.0
    if span > 0:
        fit = lowess(r, x, frac=0.4, delta=0.01 * span, return_sorted=True)
        ax.plot(fit[:, 0], fit[:, 1], color="tab:red", lw=2, label="lowess trend ≈ β(t)")
    ax.axhline(float(model.cph_.params_[covariate]), color="black", ls="--", lw=0.8,
               label="fitted coefficient β\n(constant hazard ratio)")
    ax.set_xlabel(schoenfeld_axis_label(res.transform))
    ax.set_ylabel("β(t): scaled Schoenfeld residual")
    ax.set_title(f"Proportional-hazards check: {covariate}")
    ax.legend(**LEGEND_OUTSIDE)
    _ticks_in_view(ax)
    return ax


def _ticks_in_view(ax) -> None:
    """Fix the major ticks to those inside the current limits: matplotlib keeps (undrawn) labels for
    ticks just outside the view, which readability checks would otherwise measure."""
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        lo, hi = min(lo, hi), max(lo, hi)
        ticks = [t for t in axis.get_majorticklocs() if lo <= t <= hi]
        if ticks:
            axis.set_major_locator(FixedLocator(ticks))


def plot_churn_probability(at_risk: pd.DataFrame, ax=None, *, threshold: float | None = None,
                           unit: str | None = None):
    """Histogram of churn probabilities of active customers, with the campaign's break-even line.

    Parameters
    ----------
    at_risk : DataFrame
        From :func:`~ecrm_research.survival.at_risk_customers` (``churn_probability``; the
        horizon in ``attrs['horizon']``).
    threshold : float, optional
        Break-even churn probability (cost_ratio / save_rate); drawn when ≤ 1, with a legend entry.
    unit : str, optional
        Unit of the horizon, for the axis label ("within 90 days").
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.2))
    p = at_risk["churn_probability"].dropna()
    ax.hist(p, bins=40, color="tab:blue", alpha=0.8, label="active customers")
    if threshold is not None and threshold <= 1:
        ax.axvline(threshold, color="tab:red", ls="--", label=f"break-even: {threshold:.2f}")
    ax.legend(**LEGEND_OUTSIDE)
    h = at_risk.attrs.get("horizon")
    within = f" within {h:g}" + (f" {unit}" if unit else "") if h is not None else ""
    ax.set_xlabel("churn probability" + within)
    ax.set_ylabel("active customers")
    ax.set_title("Who is at risk?")
    return ax


def plot_campaign(curve: pd.DataFrame, ax=None, *, recommended: int | None = None):
    """Cumulative expected net gain (in acquisition-cost units) by number of customers contacted."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.2))
    ax.plot(curve["contacted"], curve["net_gain"], color="tab:green", label="cumulative net gain")
    ax.axhline(0, color="black", lw=0.8, label="break-even (no gain)")
    if recommended:
        ax.axvline(recommended, color="tab:red", ls="--", label=f"contact the top {recommended:,}")
    ax.legend(**LEGEND_OUTSIDE)
    ax.set_xlabel("customers contacted (highest expected gain first)")
    ax.set_ylabel("expected net gain (× acquisition cost)")
    ax.set_title("Retention campaign sizing")
    return ax
