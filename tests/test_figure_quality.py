"""Readability of figures at print size (ecrm_research.report.figure_quality): planted problems are
found, with the printed size; clean figures (also with rotated tick labels and a legend beside the
axes) give no problem."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from ecrm_research.report.figure_quality import (  # noqa: E402
    MIN_PRINT_PT,
    PRINT_WIDTH_IN,
    figure_problems,
    print_scale,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def clean_figure():
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot([1, 2, 3], [1, 2, 3], label="observed")
    ax.set_title("Revenue by month")
    ax.set_xlabel("month")
    ax.set_ylabel("revenue")
    return fig, ax


def test_a_clean_figure_has_no_problem():
    fig, _ = clean_figure()
    assert figure_problems(fig) == []


def test_ticks_outside_the_view_are_not_checked():
    # matplotlib keeps a tick label beyond each end of the axis (0.75 and 3.25 here) that it never
    # draws; at the corner the undrawn x and y labels would "overlap"
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([1, 2, 3], [1, 2, 3])
    assert figure_problems(fig) == []


def test_tiny_font_is_found_with_its_printed_size():
    fig, ax = clean_figure()
    ax.set_xlabel("tiny label", fontsize=4)
    scale = print_scale(fig)
    assert scale == pytest.approx(110 / 96)  # narrower than the page: printed at screen size
    problems = figure_problems(fig)
    assert len(problems) == 1
    m = re.match(r"text 'tiny label' prints at ([0-9.]+) pt \(smallest allowed 8 pt\)$", problems[0])
    assert m and float(m.group(1)) == pytest.approx(4 * 110 / 96, abs=0.05)


def test_several_small_texts_are_counted():
    fig, ax = clean_figure()
    ax.set_xlabel("a", fontsize=5)
    ax.set_ylabel("b", fontsize=6)
    problems = figure_problems(fig)
    assert problems[0].startswith("text 'a' prints at 5.7 pt") and "(and 1 more texts)" in problems[0]


def test_a_wide_figure_prints_small():
    """14 in wide, 9 pt text: scaled to the 7.3 in of an A4 page it prints at 9 * 7.3 / 14 = 4.7 pt."""
    fig, ax = plt.subplots(figsize=(14, 4), layout="constrained")
    ax.plot(range(10), range(10))
    ax.set_title("wide title", fontsize=9)
    ax.set_xlabel("x", fontsize=9)
    ax.set_ylabel("y", fontsize=9)
    ax.tick_params(labelsize=9)
    scale = print_scale(fig)
    assert scale == pytest.approx(PRINT_WIDTH_IN / 14, rel=0.03)
    problems = figure_problems(fig)
    assert len(problems) == 1
    size = float(re.search(r"prints at ([0-9.]+) pt", problems[0]).group(1))
    assert size == pytest.approx(9 * PRINT_WIDTH_IN / 14, abs=0.15) and size < MIN_PRINT_PT
    # the same figure 7 in wide with 9 pt text is fine
    fig2, ax2 = plt.subplots(figsize=(7, 4), layout="constrained")
    ax2.plot(range(10), range(10))
    ax2.tick_params(labelsize=9)
    assert figure_problems(fig2) == []


def test_overlapping_annotations_are_found():
    fig, ax = clean_figure()
    ax.annotate("Loyalty", (2.0, 2.0), fontsize=11)
    ax.annotate("Satisfaction", (2.03, 2.02), fontsize=11)
    problems = figure_problems(fig)
    assert problems == ["labels overlap: 'Loyalty' and 'Satisfaction'"]
    ax.texts[1].set_position((1.2, 2.8))  # moved apart: fixed
    assert figure_problems(fig) == []


def test_rotated_tick_labels_are_compared_as_drawn():
    names = [f"category number {i}" for i in range(10)]
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    ax.bar(names, range(1, 11))
    ax.tick_params(axis="x", labelrotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    assert figure_problems(fig) == []  # their boxes overlap, the slanted glyphs do not
    fig2, ax2 = plt.subplots(figsize=(3, 4), layout="constrained")
    ax2.bar(names, range(1, 11))
    ax2.tick_params(axis="x", labelrotation=20)  # squeezed: the slanted labels run into each other
    assert any(p.startswith("labels overlap: 'category number") for p in figure_problems(fig2))


def test_legend_over_bars_is_found_and_outside_the_axes_is_fine():
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.bar(["trust", "quality", "value", "image"], [0.8, 0.85, 0.9, 0.82], label="alpha")
    ax.set_title("Reliability")
    ax.legend(loc="center")
    problems = figure_problems(fig)
    assert len(problems) == 1
    assert problems[0].startswith("legend covers data in 'Reliability' (") and "outside the axes" in problems[0]

    fig2, ax2 = plt.subplots(figsize=(6, 4), layout="constrained")
    ax2.bar(["trust", "quality", "value", "image"], [0.8, 0.85, 0.9, 0.82], label="alpha")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    assert figure_problems(fig2) == []


def test_legend_over_a_line_between_its_points_and_a_figure_legend():
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot([0, 1], [0, 1], label="diagonal")  # two points, both far from the legend
    ax.legend(loc="center")
    assert len(figure_problems(fig)) == 1
    ax.legend(loc="upper left")  # the corner the line does not reach
    assert figure_problems(fig) == []

    fig2, ax2 = plt.subplots(figsize=(6, 4))
    ax2.scatter([0.4, 0.5, 0.6], [0.5, 0.5, 0.5], label="customers")
    ax2.set_xlim(0, 1)
    ax2.set_ylim(0, 1)
    fig2.legend(loc="center")
    assert any(p.startswith("figure legend covers data") for p in figure_problems(fig2))


def test_limits_are_parameters():
    fig, ax = clean_figure()
    ax.set_xlabel("label", fontsize=8)
    assert figure_problems(fig) == []  # 8 pt prints at 9.2 pt on screen scale
    assert figure_problems(fig, min_pt=10)[0].startswith("text 'label' prints at 9.2 pt (smallest allowed 10 pt)")
    assert print_scale(fig, dpi=96) == pytest.approx(1.0)
    assert print_scale(fig, print_width_in=3) == pytest.approx(3 / 6, rel=0.05)
