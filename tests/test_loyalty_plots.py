"""The loyalty figures are readable in print: no overlapping labels (path diagram), legends off the
data (reliability bars), labelled reference lines and fonts of at least 8 pt on an A4 page.

Print size as in the report (issue 16): a figure saved at 110 dpi with `bbox_inches="tight"` is
printed at min(110/96, 7.3 in / tight width) of its size.
"""

from __future__ import annotations

import itertools
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import FancyBboxPatch, Rectangle
from matplotlib.text import Text

from ecrm_research.loyalty import plots

DPI, PRINT_WIDTH = 110, 7.3

# standardized SEM paths of the sample survey (reports/loyalty/tables/sem_paths.csv, seed 42): the
# three direct drivers' labels used to pile up where their arrows meet at the loyalty box
SAMPLE_PATHS = pd.DataFrame({
    "lval": ["satisfaction", "satisfaction", "loyalty", "loyalty", "loyalty", "loyalty", "loyalty", "loyalty"],
    "rval": ["trust", "service_quality", "satisfaction", "trust", "service_quality", "habit", "perceived_cost",
             "entertainment"],
    "std_estimate": [0.408, 0.344, 0.525, 0.0194, -0.00771, 0.236, -0.237, 0.130],
    "p_value": [7.6e-51, 2.2e-40, 6.6e-63, 0.475, 0.762, 2.5e-23, 2.3e-22, 3.9e-08],
})
SAMPLE_LAYOUT = dict(drivers=["trust", "service_quality"], mediator="satisfaction", outcome="loyalty",
                     direct_drivers=["habit", "perceived_cost", "entertainment"],
                     r2={"satisfaction": 0.28, "loyalty": 0.41})
# the ECSI mobi layout: three drivers through satisfaction, long display names
MOBI_PATHS = pd.DataFrame({
    "lval": ["satisfaction"] * 3 + ["loyalty"] * 4,
    "rval": ["image", "perceived_quality", "perceived_value", "satisfaction", "image", "perceived_quality",
             "perceived_value"],
    "std_estimate": [0.40, 0.30, 0.20, 0.50, 0.20, -0.03, 0.04],
    "p_value": [1e-5, 0.01, 0.03, 1e-8, 0.002, 0.6, 0.5],
})
MOBI_LAYOUT = dict(drivers=["image", "perceived_quality", "perceived_value"], mediator="satisfaction",
                   outcome="loyalty", r2={"satisfaction": 0.5, "loyalty": 0.6},
                   labels={"image": "image (trust proxy)", "perceived_quality": "perceived quality",
                           "perceived_value": "perceived value (cost side)"})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _drawn(ax):
    fig = ax.figure
    fig.canvas.draw()
    return fig, fig.canvas.get_renderer()


def _shown_texts(fig, renderer) -> list[Text]:
    """Every text a reader sees: annotations, titles, axis and tick labels, legend entries."""
    axis_texts = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for t in axis.findobj(Text)}
    out = [t for t in fig.findobj(Text) if id(t) not in axis_texts]
    for ax in fig.axes:
        if not ax.axison:
            continue  # axis("off"): no tick or axis labels drawn
        out += [ax.xaxis.label, ax.yaxis.label]
        for labels, (lo, hi), i in ((ax.get_xticklabels(), sorted(ax.get_xlim()), 0),
                                    (ax.get_yticklabels(), sorted(ax.get_ylim()), 1)):
            out += [t for t in labels if lo - 1e-9 <= t.get_position()[i] <= hi + 1e-9]  # ticks in view
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def _overlapping_pairs(texts, renderer):
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def _print_scale(fig, renderer) -> float:
    width = fig.get_tightbbox(renderer).width  # inches
    return min(DPI / 96, PRINT_WIDTH / width)


def _figures():
    rel = pd.DataFrame({"construct": ["trust", "service_quality", "perceived_cost", "habit", "loyalty"],
                        "n_items": [3, 4, 3, 3, 4], "cronbach_alpha": [0.81, 0.97, 0.62, 0.84, 0.86],
                        "standardized_alpha": [0.81, 0.97, 0.62, 0.84, 0.86],
                        "composite_reliability": [0.81, 0.98, 0.64, 0.84, 0.86], "ave": [0.59, 0.91, 0.38, 0.63, 0.6]})
    ipa = pd.DataFrame({"lever": ["perceived_cost", "trust", "habit", "service_quality", "entertainment"],
                        "importance": [0.199, 0.197, 0.184, 0.148, 0.093],
                        "performance": [48.4, 61.5, 54.3, 58.4, 46.7], "reversed": [True, False, False, False, False],
                        "action": ["concentrate here", "keep up", "keep up", "possible overkill", "low priority"]})
    ipa.attrs.update(importance_cut=0.1642, performance_cut=53.86, cut="mean")
    eff = pd.DataFrame({"driver": ["trust", "service_quality", "habit", "perceived_cost"],
                        "effect": ["indirect", "indirect", "direct", "direct"],
                        "std_estimate": [0.136, 0.12, 0.194, -0.2], "std_ci_lower": [0.118, 0.102, 0.156, -0.238],
                        "std_ci_upper": [0.157, 0.14, 0.232, -0.16]})
    ri = pd.DataFrame({"predictor": ["satisfaction", "perceived_cost", "habit", "trust"],
                       "shapley_r2": [0.171, 0.041, 0.039, 0.021]})
    ri["share"] = ri["shapley_r2"] / ri["shapley_r2"].sum()
    return {
        "path_diagram": lambda: plots.path_diagram(SAMPLE_PATHS, **SAMPLE_LAYOUT),
        "path_diagram_mobi": lambda: plots.path_diagram(MOBI_PATHS, **MOBI_LAYOUT),
        "reliability": lambda: plots.reliability_plot(rel),
        "importance_performance": lambda: plots.ipa_map(ipa),
        "effects": lambda: plots.effects_plot(eff),
        "relative_importance": lambda: plots.relative_importance_plot(ri),
    }


FIGURES = _figures()


@pytest.mark.parametrize("layout", ["sample", "mobi"])
def test_path_diagram_labels_do_not_overlap(layout):
    paths, kw = (SAMPLE_PATHS, SAMPLE_LAYOUT) if layout == "sample" else (MOBI_PATHS, MOBI_LAYOUT)
    fig, renderer = _drawn(plots.path_diagram(paths, **kw))
    texts = _shown_texts(fig, renderer)
    assert len(texts) >= len(paths) + 7  # nodes, path labels, title, legend entries
    assert not _overlapping_pairs(texts, renderer)
    # and no path label sits on a construct's box
    ax = fig.axes[0]
    boxes = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == len(set(paths["lval"]) | set(paths["rval"]))
    path_labels = [t for t in ax.texts if re.match(r"^-?\d\.\d\d", t.get_text())]
    assert len(path_labels) == len(paths)
    for t in path_labels:
        assert not any(t.get_window_extent(renderer).overlaps(b) for b in boxes), t.get_text()


def test_path_diagram_labels_every_path_with_its_value_and_stars():
    ax = plots.path_diagram(SAMPLE_PATHS, **SAMPLE_LAYOUT)
    shown = sorted(t.get_text() for t in ax.texts if re.match(r"^-?\d\.\d\d", t.get_text()))
    assert shown == sorted(["0.41***", "0.34***", "0.53***", "0.02 n.s.", "-0.01 n.s.", "0.24***", "-0.24***",
                            "0.13***"])
    nodes = [t.get_text() for t in ax.texts if not re.match(r"^-?\d\.\d\d", t.get_text())]
    assert "loyalty\nR² = 0.41" in nodes and "service quality" in nodes


def test_reliability_legend_covers_no_bar():
    fig, renderer = _drawn(FIGURES["reliability"]())
    ax = fig.axes[0]
    legend = fig.legends[0] if fig.legends else ax.get_legend()
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 5 * 3
    box = legend.get_window_extent(renderer)
    covered = [b for b in bars if box.overlaps(b.get_window_extent(renderer))]
    assert not covered
    assert not box.overlaps(ax.get_window_extent(renderer))  # outside the data area altogether


def _legend_texts(ax) -> list[str]:
    fig = ax.figure
    legends = list(fig.legends) + ([ax.get_legend()] if ax.get_legend() else [])
    return [t.get_text() for lg in legends for t in lg.get_texts()]


def test_reference_lines_are_labelled():
    ax = FIGURES["reliability"]()
    texts = _legend_texts(ax)
    assert any("0.70" in t and "alpha" in t for t in texts) and any("0.50" in t and "AVE" in t for t in texts)
    levels = sorted(round(float(line.get_xdata()[0]), 2) for line in ax.get_lines())
    assert levels == [0.5, 0.7]
    ax = FIGURES["importance_performance"]()
    texts = _legend_texts(ax)
    assert "levers' mean performance (53.9)" in texts and "levers' mean importance (0.164)" in texts
    ax = FIGURES["effects"]()
    assert "0 = no effect" in _legend_texts(ax)


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_text_prints_at_8pt_or_more_and_none_overlap(name):
    fig, renderer = _drawn(FIGURES[name]())
    scale = _print_scale(fig, renderer)
    texts = _shown_texts(fig, renderer)
    small = {t.get_text(): round(t.get_fontsize() * scale, 1) for t in texts if t.get_fontsize() * scale < 8}
    assert not small, f"{name}: prints below 8 pt: {small}"
    assert not _overlapping_pairs(texts, renderer), name


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_quality_checker_finds_no_problem(name):
    quality = pytest.importorskip("ecrm_research.report.figure_quality")
    fig = FIGURES[name]().figure
    assert quality.figure_problems(fig) == []


def test_legends_sit_outside_the_data():
    for name in ("importance_performance", "effects", "reliability"):
        fig, renderer = _drawn(FIGURES[name]())
        ax = fig.axes[0]
        legend = fig.legends[0] if fig.legends else ax.get_legend()
        assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)), name


def test_plot_functions_draw_into_a_given_axes():
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    rel = pd.DataFrame({"construct": ["a", "b"], "cronbach_alpha": [0.8, 0.7], "composite_reliability": [0.8, 0.7],
                        "ave": [0.6, 0.5]})
    assert plots.reliability_plot(rel, ax=axes[0]) is axes[0]
    assert axes[0].get_legend() is not None  # no figure legend on a shared figure: beside its own axes
    eff = pd.DataFrame({"driver": ["a"], "effect": ["total"], "std_estimate": [0.1], "std_ci_lower": [-0.1],
                        "std_ci_upper": [0.3]})
    assert plots.effects_plot(eff, ax=axes[1]) is axes[1]
    assert np.allclose(axes[1].collections[-1].get_offsets()[:, 0], [0.1])
