"""Figures for knowing the data (overview notebook).

Every function takes ``ax=None`` (a new figure is made) and returns the Axes. New figures are at
most 6.4 in wide and every text is at least 8 pt, so nothing prints below 8 pt on an A4 page;
legends sit below the axes, outside the data.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

__all__ = ["plot_monthly_activity", "plot_cohort_retention", "plot_purchase_gaps"]

#: smallest font (pt) in these figures
FONT = 8
_THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")


def _ax(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def plot_monthly_activity(monthly: pd.DataFrame, ax: Any = None) -> Any:
    """Orders and active and new customers per month (left axis) with revenue (bars, right axis).

    Parameters
    ----------
    monthly : DataFrame
        Output of :func:`ecrm_research.activity.monthly_activity` (``month``, ``orders``,
        ``active_customers``, ``new_customers``, ``revenue``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib Axes
        The left axis (counts); the revenue axis is its twin.
    """
    ax = _ax(ax, (6.4, 3.8))
    ax.plot(monthly["month"], monthly["orders"], marker="o", ms=4, label="orders")
    ax.plot(monthly["month"], monthly["active_customers"], marker="s", ms=4, label="active customers")
    ax.plot(monthly["month"], monthly["new_customers"], marker="^", ms=4, label="new customers")
    ax.set_xlabel("month")
    ax.set_ylabel("count per month")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax2 = ax.twinx()
    ax2.bar(monthly["month"], monthly["revenue"], width=20, alpha=0.2, color="grey", label="revenue (right axis)")
    ax2.set_ylabel("revenue per month")
    ax2.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_zorder(ax2.get_zorder() + 1)  # lines in front of the revenue bars
    ax.patch.set_visible(False)
    ax.tick_params(axis="x", labelsize=FONT)
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    lines, labels = ax.get_legend_handles_labels()
    bars, blabels = ax2.get_legend_handles_labels()
    ax.legend(lines + bars, labels + blabels, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4,
              fontsize=FONT, frameon=False)
    ax.set_title("Monthly activity")
    return ax


def plot_cohort_retention(cohorts: pd.DataFrame, ax: Any = None, *, annotate: bool = True) -> Any:
    """Heat map of cohort retention (rows: first-order month, columns: months since), in %.

    Cells are annotated with the percentage when there is room for 8 pt text (at most 36 cohorts
    and 25 ages); the figure grows with the number of cohorts.

    Parameters
    ----------
    cohorts : DataFrame
        Output of :func:`ecrm_research.activity.cohort_retention` (``cohort``, ``age``, ``retention``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    annotate : bool
        Write the percentage in each cell (when there is room).

    Returns
    -------
    matplotlib Axes
    """
    mat = cohorts.pivot(index="cohort", columns="age", values="retention").sort_index()
    n_rows, n_cols = mat.shape
    ax = _ax(ax, (6.4, float(np.clip(0.24 * n_rows + 1.6, 3.0, 9.5))))
    im = ax.imshow(mat.to_numpy(float) * 100, aspect="auto", cmap="viridis", vmin=0, vmax=100)
    step = max(1, int(np.ceil(n_rows / 36)))  # at most 36 cohort labels
    ax.set_yticks(range(0, n_rows, step))
    ax.set_yticklabels([pd.Timestamp(d).strftime("%Y-%m") for d in mat.index[::step]], fontsize=FONT)
    xstep = max(1, int(np.ceil(n_cols / 25)))
    ax.set_xticks(range(0, n_cols, xstep))
    ax.set_xticklabels(mat.columns[::xstep], fontsize=FONT)
    ax.set_xlabel("months since first order")
    ax.set_ylabel("cohort (month of first order)")
    ax.set_title("Cohort retention: % of each cohort ordering again")
    if annotate and n_rows <= 36 and n_cols <= 25:
        for i in range(n_rows):
            for j in range(n_cols):
                v = mat.iat[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v * 100:.0f}", ha="center", va="center", fontsize=FONT,
                            color="white" if v < 0.5 else "black")
    cbar = ax.figure.colorbar(im, ax=ax, label="retention (%)", shrink=0.8)
    cbar.ax.tick_params(labelsize=FONT)
    return ax


def plot_purchase_gaps(gaps: pd.Series, ax: Any = None, *, marker: float | None = None,
                       quantile: float | None = 0.9) -> Any:
    """Histogram of days between a customer's consecutive orders, with reference lines.

    Gaps above the 99th percentile are drawn as one hatched bar at the right end, so the long tail
    does not squeeze the histogram.

    Parameters
    ----------
    gaps : Series
        Days between consecutive orders (:func:`ecrm_research.prep.purchase_gaps`).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    marker : float, optional
        The suggested inactivity window (days), drawn as a dashed line.
    quantile : float, optional
        Also draw this quantile of the gaps as a dotted line (None: no line).

    Returns
    -------
    matplotlib Axes
        Every line and the tail bar are explained in a legend below the axes.
    """
    ax = _ax(ax, (6.4, 3.6))
    g = pd.Series(gaps, dtype=float).dropna()
    upper = float(np.quantile(g, 0.99)) if len(g) else 1.0
    body, tail = g[g <= upper], int((g > upper).sum())
    _, edges, _ = ax.hist(body, bins=50, color="steelblue", label="repeat purchases")
    if tail:
        width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
        ax.bar(upper + 1.5 * width, tail, width=width, color="white", edgecolor="steelblue", hatch="////",
               label=f"gaps over {upper:.0f} days (top 1%), {tail:,}")
    if quantile is not None and len(g):
        q = float(np.quantile(g, quantile))
        ax.axvline(q, color="0.3", ls=":", lw=1.5, label=f"{quantile:.0%} of gaps are within {q:.0f} days")
    if marker is not None:
        ax.axvline(marker, color="crimson", ls="--", label=f"suggested inactivity window: {marker:.0f} days")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=FONT, frameon=False)
    ax.set_xlabel("days between consecutive orders")
    ax.set_ylabel("repeat purchases")
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_title("Inter-purchase gaps")
    return ax
