"""Figures of the customer view: calibration curve and gain chart of the churn-risk models, and the offer backtest.

The churn figures draw from the tidy tables of a fitted-and-evaluated
:class:`~ecrm_research.customer_view.churn_models.ChurnModelComparison` (``calibration_``, ``gains_``),
the backtest figure from the ``backtest_nbo`` table, so the figure, the report and the tests see the
same numbers.

The figures are made to be printed (``report.figure_quality``): fonts of at least 9 pt in figures
at most ~7.5 in wide (they print at >= 8 pt on A4), legends outside the data (to the right of a
single panel, below a pair of panels), and every reference line labelled in the legend (*perfect
calibration*, *random targeting*, *top 10% contacted*).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from ..exceptions import AnalysisError
from .churn_models import MODEL_LABELS

__all__ = ["PERFECT_CALIBRATION", "RANDOM_TARGETING", "TOP_DECILE", "plot_calibration", "plot_gains",
           "plot_churn_models", "plot_backtest"]

_FONT = 9
#: legend labels of the reference lines
PERFECT_CALIBRATION = "perfect calibration"
RANDOM_TARGETING = "random targeting"
TOP_DECILE = "top 10% contacted"
_LEGENDS = ("right", "below", None)


def _evaluated(comparison: Any, table: str) -> Any:
    if not hasattr(comparison, table):
        raise AnalysisError("Evaluate the comparison first: ChurnModelComparison().fit(train).evaluate(test).")
    return getattr(comparison, table)


def _legend(ax: Axes, where: str | None, ncol: int = 1) -> None:
    """A legend outside the data: to the right of the axes, or below its x-axis label."""
    if where not in _LEGENDS:
        raise ValueError(f"legend={where!r}: use one of {', '.join(map(repr, _LEGENDS))}.")
    if where == "right":
        ax.legend(fontsize=_FONT, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    elif where == "below":  # under the tick labels and the x-axis label (one or two lines)
        below = -0.1 - 0.05 * (ax.get_xlabel().count("\n") + 1)
        ax.legend(fontsize=_FONT, loc="upper center", bbox_to_anchor=(0.5, below), ncol=ncol, frameon=False)


def _finish(ax: Axes, title: str, xlabel: str, ylabel: str) -> Axes:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=_FONT + 1)
    ax.set_xlabel(xlabel, fontsize=_FONT)
    ax.set_ylabel(ylabel, fontsize=_FONT)
    ax.tick_params(labelsize=_FONT)
    ax.grid(alpha=0.3)
    return ax


def plot_calibration(comparison: Any, ax: Axes | None = None, *, legend: str | None = "right") -> Axes:
    """Calibration curve: mean predicted churn probability vs observed churn rate per decile of prediction.

    A well calibrated model lies on the diagonal (labelled *perfect calibration*); points below it
    over-predict churn.

    Parameters
    ----------
    comparison : ChurnModelComparison
        Fitted and evaluated (``calibration_`` set).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    legend : {"right", "below", None}
        Where the legend goes: outside the axes to the right, below the x-axis label, or none (the
        caller draws one, as :func:`plot_churn_models` does).

    Returns
    -------
    matplotlib Axes
    """
    cal = _evaluated(comparison, "calibration_")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.8))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label=PERFECT_CALIBRATION)
    for model, part in cal.groupby("model", sort=False):
        ax.plot(part["mean_predicted"], part["observed"], marker="o", ms=4, lw=1.5,
                label=MODEL_LABELS.get(model, model))
    _finish(ax, "Calibration on the test period", "mean predicted churn probability\n(deciles of predicted risk)",
            "observed churn rate")
    _legend(ax, legend, ncol=2)
    return ax


def plot_gains(comparison: Any, ax: Axes | None = None, *, legend: str | None = "right") -> Axes:
    """Gain chart: share of the period's churners reached when contacting the highest-risk share of customers.

    The diagonal (*random targeting*) is what contacting customers in random order reaches; the dotted
    vertical line marks the riskiest 10% (the top decile of the lift).

    Parameters
    ----------
    comparison : ChurnModelComparison
        Fitted and evaluated (``gains_`` set).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    legend : {"right", "below", None}
        Where the legend goes (see :func:`plot_calibration`).

    Returns
    -------
    matplotlib Axes
    """
    gains = _evaluated(comparison, "gains_")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.8))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label=RANDOM_TARGETING)
    for model, part in gains.groupby("model", sort=False):
        ax.plot(part["share_contacted"], part["share_of_churners"], lw=1.5, label=MODEL_LABELS.get(model, model))
    ax.axvline(0.1, color="black", lw=0.8, ls=":", label=TOP_DECILE)
    _finish(ax, "Gain chart on the test period", "customers contacted\n(highest risk first)",
            "churners reached")
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    _legend(ax, legend, ncol=2)
    return ax


def plot_churn_models(comparison: Any, axes: Sequence[Axes] | None = None) -> np.ndarray:
    """Calibration curve (left) and gain chart (right) side by side, with one legend below both.

    Parameters
    ----------
    comparison : ChurnModelComparison
        Fitted and evaluated.
    axes : two matplotlib Axes, optional
        Where to draw; a new figure (7.6 in wide, constrained layout) when None. With axes of your
        own, each panel gets its legend below it.

    Returns
    -------
    numpy array of two Axes
        ``axes[0].figure`` is the figure to save.
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.9), layout="constrained")
        plot_calibration(comparison, ax=axes[0], legend=None)
        plot_gains(comparison, ax=axes[1], legend=None)
        handles, labels = {}, []
        for ax in axes:  # models once, then the reference lines of both panels
            for h, label in zip(*ax.get_legend_handles_labels()):
                if label not in handles:
                    handles[label] = h
                    labels.append(label)
        fig.legend([handles[label] for label in labels], labels, loc="outside lower center", ncol=4,
                   fontsize=_FONT, frameon=False)
        return np.asarray(axes)
    if len(axes) != 2:
        raise ValueError(f"plot_churn_models needs two Axes (calibration, gains); got {len(axes)}.")
    plot_calibration(comparison, ax=axes[0], legend="below")
    plot_gains(comparison, ax=axes[1], legend="below")
    return np.asarray(axes)


def plot_backtest(backtest: Any, ax: Axes | None = None, *, legend: str | None = "below") -> Axes:
    """Hit rate@k of each next-best-offer method with its bootstrap CI (the ``backtest_nbo`` table).

    Methods are drawn side by side (small horizontal offsets) so overlapping intervals stay visible.

    Parameters
    ----------
    backtest : DataFrame
        ``method, k, hit_rate, hit_rate_ci_lower, hit_rate_ci_upper`` (``backtest_nbo``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    legend : {"right", "below", None}
        Where the legend goes: below the x-axis label (default: method names are long), to the right,
        or none.

    Returns
    -------
    matplotlib Axes
    """
    needed = {"method", "k", "hit_rate", "hit_rate_ci_lower", "hit_rate_ci_upper"}
    if not needed <= set(backtest.columns):
        missing = sorted(needed - set(backtest.columns))
        raise AnalysisError(f"plot_backtest needs the backtest_nbo table; missing columns {missing}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    groups = list(backtest.groupby("method", sort=False))
    width = 0.3 / max(len(groups) - 1, 1)
    for i, (method, rows) in enumerate(groups):
        offset = (i - (len(groups) - 1) / 2) * width
        ax.errorbar(rows["k"] + offset, rows["hit_rate"], fmt="o-", capsize=3, label=method,
                    yerr=[rows["hit_rate"] - rows["hit_rate_ci_lower"], rows["hit_rate_ci_upper"] - rows["hit_rate"]])
    ax.set_xticks(sorted(backtest["k"].unique()))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.set_title("Next best offer: customers who bought one of their offers", fontsize=_FONT + 1)
    ax.set_xlabel("offers per customer (k)", fontsize=_FONT)
    ax.set_ylabel("hit rate (95% bootstrap CI)", fontsize=_FONT)
    ax.tick_params(labelsize=_FONT)
    ax.grid(alpha=0.3)
    _legend(ax, legend, ncol=min(len(groups), 2))
    return ax
