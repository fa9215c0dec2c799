"""Figures of the customer view: calibration curve and gain chart of the churn-risk models, and the offer backtest.

Both draw from the tidy tables of a fitted-and-evaluated
:class:`~ecrm_research.customer_view.churn_models.ChurnModelComparison` (``calibration_``, ``gains_``),
so the figure, the report and the tests see the same numbers.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from ..exceptions import AnalysisError
from .churn_models import MODEL_LABELS

__all__ = ["plot_calibration", "plot_gains", "plot_backtest"]

_FONT = 9


def _evaluated(comparison: Any, table: str) -> Any:
    if not hasattr(comparison, table):
        raise AnalysisError("Evaluate the comparison first: ChurnModelComparison().fit(train).evaluate(test).")
    return getattr(comparison, table)


def _finish(ax: Axes, title: str, xlabel: str, ylabel: str) -> Axes:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=_FONT + 1)
    ax.set_xlabel(xlabel, fontsize=_FONT)
    ax.set_ylabel(ylabel, fontsize=_FONT)
    ax.tick_params(labelsize=_FONT)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=_FONT, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return ax


def plot_calibration(comparison: Any, ax: Axes | None = None) -> Axes:
    """Calibration curve: mean predicted churn probability vs observed churn rate per decile of prediction.

    A well calibrated model lies on the diagonal; points below it over-predict churn.
    """
    cal = _evaluated(comparison, "calibration_")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    for model, part in cal.groupby("model", sort=False):
        ax.plot(part["mean_predicted"], part["observed"], marker="o", ms=4, lw=1.5,
                label=MODEL_LABELS.get(model, model))
    return _finish(ax, "Calibration on the test period (deciles of predicted risk)",
                   "mean predicted churn probability", "observed churn rate")


def plot_gains(comparison: Any, ax: Axes | None = None) -> Axes:
    """Gain chart: share of the period's churners reached when contacting the highest-risk share of customers."""
    gains = _evaluated(comparison, "gains_")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="random order (no model)")
    for model, part in gains.groupby("model", sort=False):
        ax.plot(part["share_contacted"], part["share_of_churners"], lw=1.5, label=MODEL_LABELS.get(model, model))
    ax.axvline(0.1, color="black", lw=0.8, ls=":", label="top 10 % contacted")
    return _finish(ax, "Gain chart on the test period", "share of customers contacted (highest risk first)",
                   "share of churners reached")


def plot_backtest(backtest: Any, ax: Axes | None = None) -> Axes:
    """Hit rate@k of each next-best-offer method with its bootstrap CI (the ``backtest_nbo`` table).

    Methods are drawn side by side (small horizontal offsets) so overlapping intervals stay visible.
    """
    needed = {"method", "k", "hit_rate", "hit_rate_ci_lower", "hit_rate_ci_upper"}
    if not needed <= set(backtest.columns):
        missing = sorted(needed - set(backtest.columns))
        raise AnalysisError(f"plot_backtest needs the backtest_nbo table; missing columns {missing}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    groups = list(backtest.groupby("method", sort=False))
    width = 0.3 / max(len(groups) - 1, 1)
    for i, (method, rows) in enumerate(groups):
        offset = (i - (len(groups) - 1) / 2) * width
        ax.errorbar(rows["k"] + offset, rows["hit_rate"], fmt="o-", capsize=3, label=method,
                    yerr=[rows["hit_rate"] - rows["hit_rate_ci_lower"], rows["hit_rate_ci_upper"] - rows["hit_rate"]])
    ax.set_xticks(sorted(backtest["k"].unique()))
    ax.set_title("Next best offer: share of customers who bought one of their offers", fontsize=_FONT + 1)
    ax.set_xlabel("offers per customer (k)", fontsize=_FONT)
    ax.set_ylabel("hit rate (95% bootstrap CI)", fontsize=_FONT)
    ax.tick_params(labelsize=_FONT)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=_FONT, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return ax
