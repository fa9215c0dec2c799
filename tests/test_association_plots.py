"""Figures of the association analysis: the rule graph (static and interactive), the interactive rule
scatter and the print-size checks of the static figures, on planted rules whose answers are known."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ecrm_research import association as ar
from ecrm_research.association import plots as ap
from ecrm_research.association.synthetic import synthetic_baskets
from ecrm_research.report.figure_quality import figure_problems

# six planted rules: lift 9 > 8 > ... > 4, support not in the same order; item "<b>bold</b>" is user text
PLANTED = [
    # antecedents, consequents, support, confidence, lift, count
    (["tent", "sleeping bag"], ["camping stove"], 0.015, 0.99, 9.0, 150),
    (["phone case"], ["screen protector"], 0.037, 0.56, 8.0, 370),
    (["screen protector"], ["phone case"], 0.037, 0.60, 7.0, 370),
    (["<b>bold</b>"], ["coffee beans"], 0.020, 0.50, 6.0, 200),
    (["coffee beans"], ["milk frother"], 0.026, 0.35, 5.0, 260),
    (["tent"], ["camping stove"], 0.016, 0.61, 4.0, 160),
]


@pytest.fixture
def rules() -> pd.DataFrame:
    return pd.DataFrame([{"antecedents": frozenset(a), "consequents": frozenset(c), "support": s,
                          "confidence": cf, "lift": lf, "count": n} for a, c, s, cf, lf, n in PLANTED])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _items(rules: pd.DataFrame) -> set[str]:
    return {str(i) for s in list(rules["antecedents"]) + list(rules["consequents"]) for i in s}


def test_rule_graph_has_one_node_per_item_and_rule_and_an_edge_per_item_of_each_rule(rules):
    g = ap.rule_graph_layout(rules, max_rules=50)
    assert len(g.rules) == 6
    assert set(g.items["label"]) == _items(rules) and len(g.items) == 8
    # tent, sleeping bag -> rule -> camping stove is three edges; the other five rules two each
    assert len(g.edges) == 3 + 5 * 2
    assert (g.edges["role"] == "antecedent").sum() == 2 + 5 and (g.edges["role"] == "consequent").sum() == 6
    rule_ids, item_ids = set(g.rules["node"]), set(g.items["node"])
    ante, cons = g.edges[g.edges["role"] == "antecedent"], g.edges[g.edges["role"] == "consequent"]
    assert set(ante["source"]) <= item_ids and set(ante["target"]) <= rule_ids
    assert set(cons["source"]) <= rule_ids and set(cons["target"]) <= item_ids
    # the item "tent" is in two rules
    assert g.items.set_index("label").loc["tent", "n_rules"] == 2
    assert np.isfinite(g.nodes[["x", "y"]].to_numpy()).all() and np.abs(g.nodes[["x", "y"]].to_numpy()).max() <= 1


def test_rule_graph_keeps_the_rules_with_the_highest_lift(rules):
    g = ap.rule_graph_layout(rules, max_rules=3)
    assert g.rules["lift"].tolist() == [9.0, 8.0, 7.0]
    assert g.rules["rank"].tolist() == [1, 2, 3]
    assert set(g.items["label"]) == {"tent", "sleeping bag", "camping stove", "phone case", "screen protector"}
    fig = ap.rule_graph_figure(rules, max_rules=3)
    assert sorted(fig.data[0].marker.color) == [7.0, 8.0, 9.0]
    with pytest.raises(ValueError, match="max_rules"):
        ap.rule_graph_layout(rules, max_rules=0)


def test_rule_graph_is_deterministic_and_independent_of_row_order(rules):
    a = ap.rule_graph_layout(rules, seed=3).nodes
    b = ap.rule_graph_layout(rules, seed=3).nodes
    c = ap.rule_graph_layout(rules.iloc[::-1].reset_index(drop=True), seed=3).nodes
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    f1, f2 = ap.rule_graph_figure(rules), ap.rule_graph_figure(rules)
    assert f1.to_json() == f2.to_json()


def test_rule_graph_figure_sizes_follow_support_and_colours_follow_lift(rules):
    fig = ap.rule_graph_figure(rules)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"rules", "items"}
    r, i = traces["rules"], traces["items"]
    assert len(r.x) == 6 and len(i.x) == 8
    assert len(fig.layout.annotations) == 13  # one arrow per edge
    g = ap.rule_graph_layout(rules)
    np.testing.assert_allclose(r.x, g.rules["x"]) and np.testing.assert_allclose(i.y, g.items["y"])
    # marker size grows with support (ties: equal size); colour is the lift itself
    size = np.asarray(r.marker.size, dtype=float)
    support = g.rules["support"].to_numpy()
    order = np.argsort(support, kind="stable")
    assert np.all(np.diff(size[order]) >= 0)
    assert size[support.argmax()] > size[support.argmin()]
    np.testing.assert_allclose(size[support == 0.037], size[support == 0.037][0])
    np.testing.assert_allclose(r.marker.color, g.rules["lift"])
    assert r.marker.showscale and r.marker.colorbar.title.text == "lift"


def test_item_names_are_escaped_in_the_interactive_figures(rules):
    graph = ap.rule_graph_figure(rules)
    scatter = ap.rule_scatter_figure(rules)
    texts = [t for tr in graph.data for t in (list(tr.hovertext or []) + list(tr.text or []))]
    texts += list(scatter.data[0].hovertext)
    joined = "\n".join(texts)
    assert "&lt;b&gt;bold&lt;/b&gt;" in joined
    assert "<b>bold</b>" not in joined
    # the rule node of the bold item shows the rule, support, confidence, lift and count
    hover = next(t for t in graph.data[0].hovertext if "bold" in t)
    assert "&lt;b&gt;bold&lt;/b&gt; ⇒ coffee beans" in hover
    for part in ("support: 2.00%", "confidence: 50.0%", "lift: 6.00", "count: 200 baskets"):
        assert part in hover


def test_rule_scatter_figure_shows_every_rule_coloured_by_lift(rules):
    fig = ap.rule_scatter_figure(rules)
    (tr,) = fig.data
    by_lift = rules.sort_values("lift")
    np.testing.assert_allclose(tr.x, by_lift["support"])
    np.testing.assert_allclose(tr.y, by_lift["confidence"])
    np.testing.assert_allclose(tr.marker.color, by_lift["lift"])
    assert "phone case ⇒ screen protector" in tr.hovertext[-2] and "lift: 8.00" in tr.hovertext[-2]
    assert ap.rule_scatter_figure(rules, max_points=4).data[0].x.size == 4


def test_static_rule_graph_draws_every_rule_and_item_readably(rules):
    ax = ap.plot_rule_graph(rules, max_rules=30)
    rule_points, item_points = ax.collections[0], ax.collections[1]
    assert len(rule_points.get_offsets()) == 6 and len(item_points.get_offsets()) == 8
    np.testing.assert_allclose(sorted(rule_points.get_array()), sorted(rules["lift"]))
    areas = rule_points.get_sizes()
    g = ap.rule_graph_layout(rules)
    assert areas[g.rules["support"].to_numpy().argmax()] == areas.max()
    labels = {t.get_text() for t in ax.texts}
    assert "<b>bold</b>" in labels  # matplotlib draws the name as text, not markup
    assert figure_problems(ax.figure) == []


def test_static_rule_graph_separates_crowded_labels():
    """Twenty rules around one hub: the item names must not overlap."""
    hub = "bread"
    crowded = pd.DataFrame([{"antecedents": frozenset([hub]), "consequents": frozenset([f"item number {k}"]),
                             "support": 0.01 + k / 1000, "confidence": 0.5, "lift": 2 + k / 10, "count": 100 + k}
                            for k in range(20)])
    ax = ap.plot_rule_graph(crowded, max_rules=30)
    assert figure_problems(ax.figure) == []


def test_static_figures_print_readably(rules):
    baskets = synthetic_baskets(400, n_items=60, seed=1)
    freq = ar.item_frequencies(baskets)
    check = pd.DataFrame({"lift": [1.5, 3.0, 9.0, 1.1], "holdout_lift": [0.8, 2.5, 8.0, 1.3],
                          "holds": [False, True, True, True]})
    axes = {"frequency": ap.item_frequency_bar(freq), "sizes": ap.basket_size_hist(ar.basket_sizes(baskets)),
            "sizes with hidden baskets": ap.basket_size_hist(ar.basket_sizes(baskets), max_size=3),
            "scatter": ap.support_confidence_scatter(rules), "holdout": ap.holdout_lift_scatter(check),
            "matrix": ap.rules_matrix(rules)}
    for name, ax in axes.items():
        assert figure_problems(ax.figure) == [], name
    assert "not shown" in axes["sizes with hidden baskets"].get_xlabel()
    # the holdout plot: plain numbers on its log axes, both reference lines in the legend
    ax = axes["holdout"]
    ax.figure.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all("10^" not in t and "$" not in t for t in ticks)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "same lift in both periods" in legend and "later lift = 1 (no association)" in legend
    assert "fades (later lift ≤ 1)" in legend


def test_rule_figures_handle_no_rules():
    empty = pd.DataFrame(columns=["antecedents", "consequents", "support", "confidence", "lift", "count"])
    ax = ap.plot_rule_graph(empty)
    assert ax.texts[0].get_text() == "no rules"
    assert len(ap.rule_graph_figure(empty).data) == 0
    assert len(ap.rule_scatter_figure(empty).data[0].x) == 0
