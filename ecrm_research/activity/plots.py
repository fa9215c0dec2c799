"""Figures for knowing the data (overview notebook)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_monthly_activity(monthly: pd.DataFrame, ax=None):
    """Orders and active customers per month (left axis) with revenue (right axis).

    Parameters
    ----------
    monthly : DataFrame
        Output of :func:`ecrm_research.activity.monthly_activity`.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    ax.plot(monthly["month"], monthly["orders"], marker="o", label="orders")
    ax.plot(monthly["month"], monthly["active_customers"], marker="s", label="active customers")
    ax.plot(monthly["month"], monthly["new_customers"], marker="^", label="new customers")
    ax.set_xlabel("month")
    ax.set_ylabel("count per month")
    ax2 = ax.twinx()
    ax2.bar(monthly["month"], monthly["revenue"], width=20, alpha=0.2, color="grey", label="revenue")
    ax2.set_ylabel("revenue per month (currency units)")
    ax.set_zorder(ax2.get_zorder() + 1)  # lines in front of the revenue bars
    ax.patch.set_visible(False)
    lines, labels = ax.get_legend_handles_labels()
    bars, blabels = ax2.get_legend_handles_labels()
    ax.legend(lines + bars, labels + blabels, loc="upper left", fontsize="small")
    ax.set_title("Monthly activity")
    return ax


def plot_cohort_retention(cohorts: pd.DataFrame, ax=None, *, annotate: bool = True):
    """Heat map of cohort retention (rows: first-order month, columns: months since).

    Parameters
    ----------
    cohorts : DataFrame
        Output of :func:`ecrm_research.activity.cohort_retention`.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 6))
    mat = cohorts.pivot(index="cohort", columns="age", values="retention").sort_index()
    im = ax.imshow(mat.to_numpy(float) * 100, aspect="auto", cmap="viridis", vmin=0, vmax=100)
    ax.set_yticks(range(len(mat.index)))
    ax.set_yticklabels([d.strftime("%Y-%m") for d in mat.index], fontsize="small")
    ax.set_xticks(range(len(mat.columns)))
    ax.set_xticklabels(mat.columns)
    ax.set_xlabel("months since first order")
    ax.set_ylabel("cohort (month of first order)")
    ax.set_title("Cohort retention: % of each cohort ordering again")
    if annotate and mat.size <= 400:
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                v = mat.iat[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v * 100:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if v < 0.5 else "black")
    ax.figure.colorbar(im, ax=ax, label="retention (%)")
    return ax


def plot_purchase_gaps(gaps: pd.Series, ax=None, *, marker: float | None = None):
    """Histogram of days between a customer's consecutive orders, with an optional window line."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    upper = float(np.quantile(gaps, 0.99)) if len(gaps) else 1.0
    ax.hist(gaps.clip(upper=upper), bins=50, color="steelblue")
    if marker is not None:
        ax.axvline(marker, color="crimson", ls="--", label=f"suggested inactivity window: {marker:.0f} days")
        ax.legend()
    ax.set_xlabel("days between consecutive orders (clipped at the 99th percentile)")
    ax.set_ylabel("number of repeat purchases")
    ax.set_title("Inter-purchase gaps")
    return ax
