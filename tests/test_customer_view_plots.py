"""Figures of the customer-view notebook (ecrm_research.customer_view.plots), issue 16: print-size fonts,
no overlapping labels and legends outside the data (report.figure_quality), labelled reference lines
("perfect calibration", "random targeting", "top 10% contacted"), plain tick labels (no 10⁰ mathtext),
and curves drawn from the comparison's tidy tables.

The comparison is a stand-in with the two tables the plots read (``calibration_``, ``gains_``), built
from a planted model: predicted p, observed rate p² (over-predicts churn) or p (calibrated).
"""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ecrm_research.customer_view import plots as cvp
from ecrm_research.customer_view.churn_models import MODEL_LABELS
from ecrm_research.exceptions import AnalysisError
from ecrm_research.report.figure_quality import MIN_PRINT_PT, figure_problems, print_scale

matplotlib.use("Agg")  # tests only: no display (notebooks never set a backend; the runner does)

MODELS = ["cox", "logistic", "gradient_boosting", "neural_network"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _comparison() -> SimpleNamespace:
    p = (np.arange(10) + 0.5) / 10  # deciles of predicted risk
    cal, gains = [], []
    share = np.linspace(0, 1, 101)
    for i, model in enumerate(MODELS):
        observed = p if model == "logistic" else p ** (1 + 0.3 * i)
        cal.append(pd.DataFrame({"model": model, "bin": np.arange(1, 11), "mean_predicted": p, "observed": observed,
                                 "n": 100}))
        gains.append(pd.DataFrame({"model": model, "share_contacted": share,
                                   "share_of_churners": np.minimum(1, share * (2.0 - 0.1 * i))}))
    return SimpleNamespace(calibration_=pd.concat(cal, ignore_index=True), gains_=pd.concat(gains, ignore_index=True))


def _backtest() -> pd.DataFrame:
    rows = []
    for method, base in [("rules (fallback segment popularity)", 0.33), ("popularity", 0.34),
                         ("segment popularity", 0.335)]:
        for k, gain in [(1, 0.0), (3, 0.27), (5, 0.38)]:
            rows.append({"method": method, "k": k, "hit_rate": base + gain, "hit_rate_ci_lower": base + gain - 0.02,
                         "hit_rate_ci_upper": base + gain + 0.02})
    return pd.DataFrame(rows)


def _legend_texts(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def _outside(legend, ax) -> bool:
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def _tick_texts(ax) -> list[str]:
    ax.figure.canvas.draw()
    return [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]


def _diagonal(ax):
    lines = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [0, 1] and list(ln.get_ydata()) == [0, 1]]
    assert len(lines) == 1
    return lines[0]


# ----------------------------------------------------------------------- the notebook's figures


def test_churn_models_figure_is_readable_in_print():
    axes = cvp.plot_churn_models(_comparison())
    fig = axes[0].figure
    assert figure_problems(fig) == []
    # every text prints at >= 8 pt on A4 (the checker's rule, measured here directly as well)
    scale = print_scale(fig)
    sizes = [t.get_fontsize() * scale for ax in axes for t in ax.texts + ax.get_xticklabels() + ax.get_yticklabels()
             + [ax.title, ax.xaxis.label, ax.yaxis.label]]
    sizes += [t.get_fontsize() * scale for t in fig.legends[0].get_texts()]
    assert min(sizes) >= MIN_PRINT_PT


def test_churn_models_figure_has_one_legend_below_both_panels_with_the_reference_lines():
    axes = cvp.plot_churn_models(_comparison())
    fig = axes[0].figure
    assert all(ax.get_legend() is None for ax in axes)
    assert len(fig.legends) == 1
    legend = fig.legends[0]
    texts = _legend_texts(legend)
    assert texts[:5] == [cvp.PERFECT_CALIBRATION] + [MODEL_LABELS[m] for m in MODELS]
    assert texts[5:] == [cvp.RANDOM_TARGETING, cvp.TOP_DECILE]  # each model once; reference lines of both panels
    assert all(_outside(legend, ax) for ax in axes)
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).y1 <= min(ax.xaxis.label.get_window_extent(renderer).y0 for ax in axes)


def test_reference_lines_carry_their_labels():
    cal = cvp.plot_calibration(_comparison())
    assert _diagonal(cal).get_label() == "perfect calibration"
    gains = cvp.plot_gains(_comparison())
    assert _diagonal(gains).get_label() == "random targeting"
    top = [ln for ln in gains.get_lines() if list(ln.get_xdata()) == [0.1, 0.1]]
    assert len(top) == 1 and top[0].get_label() == "top 10% contacted"
    for ax in (cal, gains):
        assert {"perfect calibration", "random targeting"} & set(_legend_texts(ax.get_legend()))


def test_tick_labels_are_plain_numbers_and_percentages():
    axes = cvp.plot_churn_models(_comparison())
    cal_ticks = _tick_texts(axes[0])
    assert "0.0" in cal_ticks and "1.0" in cal_ticks  # probabilities
    gains_ticks = _tick_texts(axes[1])
    assert "0%" in gains_ticks and "100%" in gains_ticks and all(t.endswith("%") for t in gains_ticks)
    bt = cvp.plot_backtest(_backtest())
    x = [t.get_text() for t in bt.get_xticklabels()]
    assert x == ["1", "3", "5"]
    assert all(t.endswith("%") for t in [t.get_text() for t in bt.get_yticklabels()] if t)
    for ax in (*axes, bt):
        assert not any("$" in t or "10^" in t or "\\times" in t for t in _tick_texts(ax))


def test_backtest_figure_is_readable_with_the_legend_below():
    ax = cvp.plot_backtest(_backtest())
    assert figure_problems(ax.figure) == []
    legend = ax.get_legend()
    assert _legend_texts(legend) == ["rules (fallback segment popularity)", "popularity", "segment popularity"]
    assert _outside(legend, ax)
    renderer = ax.figure.canvas.get_renderer()
    assert legend.get_window_extent(renderer).y1 <= ax.xaxis.label.get_window_extent(renderer).y0


@pytest.mark.parametrize("legend", ["right", "below"])
def test_single_panels_put_the_legend_outside_and_read_well(legend):
    for plot in (cvp.plot_calibration, cvp.plot_gains):
        ax = plot(_comparison(), legend=legend)
        assert _outside(ax.get_legend(), ax), (plot.__name__, legend)
        assert figure_problems(ax.figure) == [], (plot.__name__, legend)
        plt.close(ax.figure)


# ----------------------------------------------------------------------- drawn from the tables


def test_curves_are_the_tables_numbers():
    cmp_ = _comparison()
    ax = cvp.plot_calibration(cmp_)
    cox = cmp_.calibration_.query("model == 'cox'")
    line = ax.get_lines()[1]
    assert line.get_label() == MODEL_LABELS["cox"]
    assert np.allclose(line.get_xdata(), cox["mean_predicted"]) and np.allclose(line.get_ydata(), cox["observed"])
    ax = cvp.plot_gains(cmp_)
    logistic = cmp_.gains_.query("model == 'logistic'")
    assert np.allclose(ax.get_lines()[2].get_ydata(), logistic["share_of_churners"])


def test_own_axes_get_a_legend_each_and_no_figure_legend():
    fig, own = plt.subplots(1, 2, figsize=(7.5, 4))
    axes = cvp.plot_churn_models(_comparison(), axes=own)
    assert list(axes) == list(own) and not fig.legends
    assert all(ax.get_legend() is not None and _outside(ax.get_legend(), ax) for ax in axes)
    with pytest.raises(ValueError, match="two Axes"):
        cvp.plot_churn_models(_comparison(), axes=own[:1])


def test_legend_none_draws_none_and_a_wrong_place_is_an_error():
    ax = cvp.plot_gains(_comparison(), legend=None)
    assert ax.get_legend() is None
    with pytest.raises(ValueError, match="legend='inside'"):
        cvp.plot_calibration(_comparison(), legend="inside")


def test_unevaluated_comparison_says_what_to_do():
    with pytest.raises(AnalysisError, match="Evaluate the comparison first"):
        cvp.plot_churn_models(SimpleNamespace())
