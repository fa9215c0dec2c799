"""Figures for market-basket analysis, drawn from the tidy tables of :mod:`ecrm_research.association`.

Every function takes ``ax=None`` (a new figure is made) and returns the Axes.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..phrasing import share_text

__all__ = ["item_frequency_bar", "basket_size_hist", "support_confidence_scatter", "rules_matrix",
           "rules_graph", "top_rules_view", "holdout_lift_scatter"]


def _ax(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _label(s: Any, width: int = 40) -> str:
    text = ", ".join(sorted(map(str, s))) if isinstance(s, (frozenset, set, list, tuple)) else str(s)
    return text if len(text) <= width else text[: width - 1] + "…"


def item_frequency_bar(freq: pd.DataFrame, top_n: int = 20, *, relative: bool = True, ax: Any = None) -> Any:
    """Horizontal bars of the most frequent items (arules' ``itemFrequencyPlot``).

    Parameters
    ----------
    freq : DataFrame
        :func:`ecrm_research.association.item_frequencies` output (``item, count, support``).
    top_n : int
        Number of items shown.
    relative : bool
        Plot support (share of baskets) instead of counts.
    """
    ax = _ax(ax, (7, max(3, 0.28 * min(top_n, len(freq)) + 1)))
    d = freq.head(top_n).iloc[::-1]
    col = "support" if relative else "count"
    ax.barh([_label(i) for i in d["item"]], d[col], color="#4C72B0")
    ax.set_xlabel("share of baskets" if relative else "baskets")
    ax.set_title(f"Top {len(d)} items by frequency")
    return ax


def basket_size_hist(sizes: pd.DataFrame, *, max_size: int | None = 30, ax: Any = None) -> Any:
    """Bar chart of the basket-size distribution (:func:`association.basket_sizes` output)."""
    ax = _ax(ax, (7, 3.5))
    d = sizes if max_size is None else sizes[sizes["size"] <= max_size]
    ax.bar(d["size"], d["n_baskets"], color="#55A868", width=0.85)
    ax.set_xlabel("items per basket")
    ax.set_ylabel("baskets")
    hidden = 0 if max_size is None else int(sizes.loc[sizes["size"] > max_size, "n_baskets"].sum())
    title = "Basket sizes"
    if hidden:
        title += f" ({hidden:,} baskets with more than {max_size} items not shown)"
    ax.set_title(title)
    return ax


def support_confidence_scatter(rules: pd.DataFrame, *, ax: Any = None, cmap: str = "viridis",
                               max_points: int = 20000, seed: int = 0) -> Any:
    """Support vs confidence of every rule, shaded by lift (arulesViz' default scatter)."""
    ax = _ax(ax, (7, 4.5))
    d = rules
    if len(d) > max_points:
        d = d.sample(max_points, random_state=seed)
    d = d.sort_values("lift")
    sc = ax.scatter(d["support"], d["confidence"], c=d["lift"], cmap=cmap, s=14, alpha=0.8, edgecolors="none")
    ax.figure.colorbar(sc, ax=ax, label="lift")
    ax.set_xlabel("support")
    ax.set_ylabel("confidence")
    ax.set_title(f"{len(rules):,} rules" + (f" ({max_points:,} shown)" if len(rules) > max_points else ""))
    return ax


def rules_matrix(rules: pd.DataFrame, top_n: int = 20, *, measure: str = "lift", ax: Any = None,
                 cmap: str = "rocket_r") -> Any:
    """Matrix view of the top rules: antecedent (rows) × consequent (columns), cells shaded by ``measure``.

    The rules are the ``top_n`` by ``measure``; each cell is annotated with its value.
    """
    import seaborn as sns

    top = rules.nlargest(top_n, measure)
    ax = _ax(ax, (max(5, 0.7 * top["consequents"].map(str).nunique() + 4), max(3, 0.38 * len(top) + 1.5)))
    if len(top) == 0:
        ax.text(0.5, 0.5, "no rules", ha="center", va="center")
        ax.set_axis_off()
        return ax
    m = pd.DataFrame({"antecedent": top["antecedents"].map(_label), "consequent": top["consequents"].map(_label),
                      measure: top[measure].to_numpy()})
    grid = m.pivot_table(index="antecedent", columns="consequent", values=measure, aggfunc="max")
    grid = grid.loc[m.drop_duplicates("antecedent")["antecedent"]]
    sns.heatmap(grid, ax=ax, cmap=cmap, annot=True, fmt=".1f", cbar_kws={"label": measure}, linewidths=0.5)
    ax.set_xlabel("then also buys (consequent)")
    ax.set_ylabel("basket contains (antecedent)")
    ax.set_title(f"Top {len(top)} rules by {measure}")
    return ax


def rules_graph(rules: pd.DataFrame, top_n: int = 20, *, measure: str = "lift", ax: Any = None, seed: int = 0) -> Any:
    """Graph of the top rules (items and rules as nodes, arulesViz' ``method="graph"``); needs networkx."""
    import networkx as nx

    top = rules.nlargest(top_n, measure)
    ax = _ax(ax, (8, 7))
    g = nx.DiGraph()
    for i, r in enumerate(top.itertuples(index=False)):
        node = f"r{i}"
        g.add_node(node, kind="rule", value=getattr(r, measure), size=r.support)
        for a in r.antecedents:
            g.add_node(str(a), kind="item")
            g.add_edge(str(a), node)
        for c in r.consequents:
            g.add_node(str(c), kind="item")
            g.add_edge(node, str(c))
    pos = nx.spring_layout(g, seed=seed)
    rules_n = [n for n, d in g.nodes(data=True) if d["kind"] == "rule"]
    items_n = [n for n, d in g.nodes(data=True) if d["kind"] == "item"]
    sup = np.array([g.nodes[n]["size"] for n in rules_n])
    sizes = 60 + 600 * (sup / sup.max() if len(sup) and sup.max() > 0 else sup)
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.4, arrows=True, arrowsize=8)
    nodes = nx.draw_networkx_nodes(g, pos, nodelist=rules_n, node_size=sizes, ax=ax, cmap="rocket_r",
                                   node_color=[g.nodes[n]["value"] for n in rules_n])
    nx.draw_networkx_labels(g, pos, labels={n: n for n in items_n}, font_size=8, ax=ax)
    ax.figure.colorbar(nodes, ax=ax, label=measure)
    ax.set_title(f"Top {len(top)} rules by {measure} (circle size = support)")
    ax.set_axis_off()
    return ax


def top_rules_view(rules: pd.DataFrame, top_n: int = 20, *, measure: str = "lift", ax: Any = None) -> Any:
    """Graph view of the top rules when networkx is installed, else the matrix view."""
    if importlib.util.find_spec("networkx") is not None:
        return rules_graph(rules, top_n, measure=measure, ax=ax)
    return rules_matrix(rules, top_n, measure=measure, ax=ax)


def holdout_lift_scatter(check: pd.DataFrame, *, ax: Any = None) -> Any:
    """Lift on the mining period (x) vs on the later holdout period (y), log scales.

    Points on the diagonal held their lift; below the dashed line y = 1 the association vanished.
    Rules whose antecedent or consequent never occurs in the holdout are not drawn.
    """
    ax = _ax(ax, (5.5, 5))
    d = check[np.isfinite(check["holdout_lift"]) & (check["holdout_lift"] > 0)]
    colors = np.where(d["holds"], "#4C72B0", "#C44E52")
    ax.scatter(d["lift"], d["holdout_lift"], c=colors, s=16, alpha=0.75, edgecolors="none")
    if len(d):
        lo = min(d["lift"].min(), d["holdout_lift"].min(), 1) * 0.9
        hi = max(d["lift"].max(), d["holdout_lift"].max()) * 1.1
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
        ax.axhline(1, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("lift, mining period")
    ax.set_ylabel("lift, holdout period")
    ax.set_title(f"Holdout check: {share_text(int(check['holds'].sum()), len(check), 'rules')} keep lift > 1")
    return ax
