"""Figures for market-basket analysis, drawn from the tidy tables of :mod:`ecrm_research.association`.

Static figures (matplotlib, for the reports and the PDF) take ``ax=None`` (a new figure is made)
and return the Axes. They are sized for print: a new figure is at most 7.3 in wide (the usable
width of an A4 page) and every text is at least 8 pt, so nothing shrinks below 8 pt on paper.

Interactive figures (plotly, for the offline explore page) return a ``plotly.graph_objects.Figure``:
:func:`rule_scatter_figure` (support vs confidence, colour = lift, hover details) and
:func:`rule_graph_figure` (arulesViz' ``method="graph"``). Item names are user data: in plotly's
hover and node text, which plotly renders as HTML, they are escaped with :func:`html.escape`.

Both rule graphs are drawn from one tidy layout, :func:`rule_graph_layout` (items and rules as
nodes, edges antecedent → rule → consequent, positions from networkx' seeded ``spring_layout``).
"""

from __future__ import annotations

import html
import importlib.util
import textwrap
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..phrasing import share_text

__all__ = ["item_frequency_bar", "basket_size_hist", "support_confidence_scatter", "rules_matrix",
           "RuleGraph", "rule_graph_layout", "plot_rule_graph", "rule_graph_figure", "rule_scatter_figure",
           "top_rules_view", "holdout_lift_scatter", "rule_text"]

#: smallest font (pt) of the static figures; new figures are at most 7.3 in wide, so it prints at >= 8 pt
FONT = 8
#: widest new figure (in): the usable width of an A4 portrait page
MAX_WIDTH = 7.3
#: rule node sizes: matplotlib marker area (pt²) and plotly marker diameter (px), smallest and largest
_MPL_AREA = (50.0, 480.0)
_PLOTLY_DIAMETER = (10.0, 34.0)


def _ax(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is None:
        _, ax = plt.subplots(figsize=(min(figsize[0], MAX_WIDTH), figsize[1]), layout="constrained")
    return ax


def _items(s: Any) -> str:
    return ", ".join(sorted(map(str, s))) if isinstance(s, (frozenset, set, list, tuple, np.ndarray)) else str(s)


def _label(s: Any, width: int = 40) -> str:
    text = _items(s)
    return text if len(text) <= width else text[: width - 1] + "…"


def rule_text(antecedents: Any, consequents: Any) -> str:
    """A rule as plain text, ``"sleeping bag, tent ⇒ camping stove"`` (items sorted within each side)."""
    return f"{_items(antecedents)} ⇒ {_items(consequents)}"


def _plain_log_ticks(axis: Any) -> None:
    """Plain tick labels on a log axis (1, 2, 5, 10, 20 ... instead of 10⁰, 10¹)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def item_frequency_bar(freq: pd.DataFrame, top_n: int = 20, *, relative: bool = True, ax: Any = None) -> Any:
    """Horizontal bars of the most frequent items (arules' ``itemFrequencyPlot``).

    Parameters
    ----------
    freq : DataFrame
        :func:`ecrm_research.association.item_frequencies` output (``item, count, support``).
    top_n : int
        Number of items shown.
    relative : bool
        Plot support (share of baskets, in %) instead of counts.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib Axes
    """
    ax = _ax(ax, (6.4, max(2.5, 0.24 * min(top_n, len(freq)) + 1)))
    d = freq.head(top_n).iloc[::-1]
    col = "support" if relative else "count"
    values = d[col] * 100 if relative else d[col]
    ax.barh(range(len(d)), values, color="#4C72B0")
    ax.set_yticks(range(len(d)))
    ax.set_yticklabels([_label(i) for i in d["item"]], fontsize=FONT, parse_math=False)
    ax.tick_params(axis="x", labelsize=FONT)
    ax.set_xlabel("share of baskets (%)" if relative else "baskets")
    ax.set_title(f"Top {len(d)} items by frequency")
    return ax


def basket_size_hist(sizes: pd.DataFrame, *, max_size: int | None = 30, ax: Any = None) -> Any:
    """Bar chart of the basket-size distribution (:func:`association.basket_sizes` output).

    Parameters
    ----------
    sizes : DataFrame
        ``size, n_baskets``.
    max_size : int or None
        Largest basket size drawn; larger baskets are counted in the title.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib Axes
    """
    ax = _ax(ax, (6.4, 3.2))
    d = sizes if max_size is None else sizes[sizes["size"] <= max_size]
    ax.bar(d["size"], d["n_baskets"], color="#55A868", width=0.85)
    ax.set_ylabel("baskets")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    hidden = 0 if max_size is None else int(sizes.loc[sizes["size"] > max_size, "n_baskets"].sum())
    ax.set_title("Basket sizes")
    ax.set_xlabel("items per basket" + (f"\n({hidden:,} basket{'s' if hidden != 1 else ''} with more than "
                                        f"{max_size} items not shown)" if hidden else ""))
    return ax


def support_confidence_scatter(rules: pd.DataFrame, *, ax: Any = None, cmap: str = "viridis",
                               max_points: int = 20000, seed: int = 0) -> Any:
    """Support vs confidence of every rule, shaded by lift (arulesViz' default scatter).

    Parameters
    ----------
    rules : DataFrame
        Rules with ``support``, ``confidence``, ``lift``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    cmap : str
        Colour map of the lift.
    max_points : int
        At most this many rules are drawn (a seeded random sample of them).
    seed : int
        Seed of the sample.

    Returns
    -------
    matplotlib Axes
    """
    ax = _ax(ax, (6.4, 4.2))
    d = rules
    if len(d) > max_points:
        d = d.sample(max_points, random_state=seed)
    d = d.sort_values("lift")
    sc = ax.scatter(d["support"] * 100, d["confidence"] * 100, c=d["lift"], cmap=cmap, s=24, alpha=0.8,
                    edgecolors="none")
    ax.figure.colorbar(sc, ax=ax, label="lift")
    ax.set_xlabel("support (% of baskets)")
    ax.set_ylabel("confidence (%)")
    ax.set_title(f"{len(rules):,} rules" + (f" ({max_points:,} shown)" if len(rules) > max_points else ""))
    return ax


def rules_matrix(rules: pd.DataFrame, top_n: int = 20, *, measure: str = "lift", ax: Any = None,
                 cmap: str = "magma_r") -> Any:
    """Matrix view of the top rules: antecedent (rows) × consequent (columns), cells shaded by ``measure``.

    The rules are the ``top_n`` by ``measure``; each cell is annotated with its value.

    Returns
    -------
    matplotlib Axes
    """
    import seaborn as sns  # lazy: seaborn is only needed for this fallback view

    top = rules.nlargest(top_n, measure)
    ax = _ax(ax, (max(4.5, 0.45 * top["consequents"].map(str).nunique() + 3.5), max(2.5, 0.3 * len(top) + 1.5)))
    if len(top) == 0:
        ax.text(0.5, 0.5, "no rules", ha="center", va="center")
        ax.set_axis_off()
        return ax
    m = pd.DataFrame({"antecedent": top["antecedents"].map(lambda s: _label(s, 30)),
                      "consequent": top["consequents"].map(lambda s: _label(s, 24)),
                      measure: top[measure].to_numpy()})
    grid = m.pivot_table(index="antecedent", columns="consequent", values=measure, aggfunc="max")
    grid = grid.loc[m.drop_duplicates("antecedent")["antecedent"]]
    sns.heatmap(grid, ax=ax, cmap=cmap, annot=True, fmt=".1f", annot_kws={"fontsize": FONT},
                cbar_kws={"label": measure}, linewidths=0.5)
    ax.tick_params(labelsize=FONT)
    ax.set_xlabel("then also buys (consequent)")
    ax.set_ylabel("basket contains (antecedent)")
    ax.set_title(f"Top {len(top)} rules by {measure}")
    return ax


# --------------------------------------------------------------------------- the rule graph


@dataclass
class RuleGraph:
    """A rule graph as two tidy tables (arulesViz' ``method="graph"``).

    Attributes
    ----------
    nodes : DataFrame
        One row per node: ``node`` (int id), ``kind`` (``item`` | ``rule``), ``label`` (the item, or
        the rule as text), ``x``, ``y`` (positions in [-1, 1]), and for rules ``rank`` (1 = highest
        lift), ``support``, ``confidence``, ``lift``, ``count`` (NaN for items); ``n_rules`` (items: the
        number of drawn rules the item is in).
    edges : DataFrame
        ``source``, ``target`` (node ids) and ``role``: ``antecedent`` (item → rule) or
        ``consequent`` (rule → item).
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame

    @property
    def rules(self) -> pd.DataFrame:
        """The rule nodes, highest lift first."""
        return self.nodes[self.nodes["kind"] == "rule"]

    @property
    def items(self) -> pd.DataFrame:
        """The item nodes."""
        return self.nodes[self.nodes["kind"] == "item"]


def _top_rules(rules: pd.DataFrame, max_rules: int) -> pd.DataFrame:
    """The `max_rules` rules with the highest lift; ties by support, confidence, then rule text."""
    if max_rules < 1:
        raise ValueError(f"max_rules must be at least 1, got {max_rules!r}")
    d = pd.DataFrame({"antecedents": rules["antecedents"].to_numpy(), "consequents": rules["consequents"].to_numpy(),
                      "text": [rule_text(a, c) for a, c in zip(rules["antecedents"], rules["consequents"])],
                      "support": rules["support"].to_numpy(float), "confidence": rules["confidence"].to_numpy(float),
                      "lift": rules["lift"].to_numpy(float),
                      "count": rules["count"].to_numpy(float) if "count" in rules else np.nan})
    d = d.sort_values(["lift", "support", "confidence", "text"], ascending=[False, False, False, True],
                      kind="stable")
    return d.head(max_rules).reset_index(drop=True)


def rule_graph_layout(rules: pd.DataFrame, max_rules: int = 50, *, seed: int = 0) -> RuleGraph:
    """Nodes, edges and positions of the rule graph of the `max_rules` rules with the highest lift.

    Every item of the drawn rules is one node; every rule is a small node with an edge from each
    item of its antecedent and an edge to its consequent. Positions come from networkx'
    ``spring_layout`` with a fixed seed, so the same rules give the same picture.

    Parameters
    ----------
    rules : DataFrame
        Rules with ``antecedents``, ``consequents`` (item sets), ``support``, ``confidence``,
        ``lift`` and ``count``.
    max_rules : int
        Rules drawn: the highest lift first (ties: support, confidence, rule text).
    seed : int
        Seed of the layout.

    Returns
    -------
    RuleGraph
    """
    import networkx as nx  # lazy: only the rule graph needs it

    top = _top_rules(rules, max_rules)
    items: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    edges: list[tuple[int, int, str]] = []
    n_rules_of: dict[str, int] = {}
    sides = [(sorted(map(str, a)), sorted(map(str, c))) for a, c in zip(top["antecedents"], top["consequents"])]
    for ante, cons in sides:
        for it in ante + cons:
            if it not in items:
                items[it] = len(items)
            n_rules_of[it] = n_rules_of.get(it, 0) + 1
    for name, i in items.items():
        rows.append({"node": i, "kind": "item", "label": name, "n_rules": n_rules_of[name]})
    for rank, ((ante, cons), r) in enumerate(zip(sides, top.to_dict("records")), start=1):
        node = len(rows)
        rows.append({"node": node, "kind": "rule", "label": r["text"], "rank": rank, "support": r["support"],
                     "confidence": r["confidence"], "lift": r["lift"], "count": r["count"]})
        edges += [(items[a], node, "antecedent") for a in ante]
        edges += [(node, items[c], "consequent") for c in cons]
    nodes = pd.DataFrame(rows, columns=["node", "kind", "label", "rank", "support", "confidence", "lift", "count",
                                        "n_rules"])
    edge_frame = pd.DataFrame(edges, columns=["source", "target", "role"])
    g = nx.Graph()
    g.add_nodes_from(nodes["node"])
    g.add_edges_from(zip(edge_frame["source"], edge_frame["target"]))
    pos = _component_layout(g, seed)
    xy = np.array([pos[n] for n in nodes["node"]], dtype=float).reshape(-1, 2)
    nodes["x"], nodes["y"] = xy[:, 0], xy[:, 1]
    nodes["n_rules"] = nodes["n_rules"].astype("Int64")
    nodes["rank"] = nodes["rank"].astype("Int64")
    return RuleGraph(nodes=nodes, edges=edge_frame)


def _component_layout(g: Any, seed: int) -> dict[Any, np.ndarray]:
    """Positions in [-1, 1]²: each connected component laid out on its own with a seeded
    ``spring_layout`` and the components placed side by side in rows, largest first (one layout of
    a disconnected graph pushes the components to the corners and squeezes each into a dot)."""
    import networkx as nx  # lazy: only the rule graph needs it

    comps = sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: (-len(c), c[0]))
    if not comps:
        return {}
    ncol = int(np.ceil(np.sqrt(len(comps))))
    side = [np.sqrt(len(c)) for c in comps]  # a component's square grows with its number of nodes
    pos: dict[Any, np.ndarray] = {}
    x0 = y0 = row_h = 0.0
    for i, (c, s) in enumerate(zip(comps, side)):
        if i and i % ncol == 0:
            x0, y0, row_h = 0.0, y0 - row_h, 0.0
        sub = g.subgraph(c)
        if len(c) == 1:
            local = {c[0]: np.zeros(2)}
        else:
            local = nx.spring_layout(sub, k=1.8 / np.sqrt(len(c)), iterations=300, seed=seed)
        pts = np.array([local[n] for n in c], dtype=float)
        pts = pts - (pts.max(axis=0) + pts.min(axis=0)) / 2
        span = np.abs(pts).max()
        pts = pts / span * (0.34 * s) if span > 0 else pts  # a margin for the names
        for n, xy in zip(c, pts):
            pos[n] = xy + np.array([x0 + s / 2, y0 - s / 2])
        x0 += s
        row_h = max(row_h, s)
    allpts = np.array(list(pos.values()))
    centre = (allpts.max(axis=0) + allpts.min(axis=0)) / 2
    span = np.abs(allpts - centre).max()
    return {n: (xy - centre) / span if span > 0 else xy - centre for n, xy in pos.items()}


def _scaled(values: pd.Series, lo: float, hi: float) -> np.ndarray:
    """`values` mapped linearly onto [lo, hi] (monotone; all equal → the middle)."""
    v = values.to_numpy(dtype=float)
    if len(v) == 0:
        return v
    vmin, vmax = np.nanmin(v), np.nanmax(v)
    if not np.isfinite(vmax - vmin) or vmax == vmin:
        return np.full(len(v), (lo + hi) / 2)
    return lo + (hi - lo) * (v - vmin) / (vmax - vmin)


def _wrap(text: str, width: int = 22) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) or text


def _separate_labels(ax: Any, labels: list[Any], max_iter: int = 300) -> None:
    """Move overlapping annotation labels apart vertically (their offsets, in points) until none overlap."""
    if len(labels) < 2:
        return
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_pt = 72.0 / fig.dpi
    for _ in range(max_iter):
        boxes = [t.get_window_extent(renderer).expanded(1.02, 1.08) for t in labels]
        moved = False
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                a, b = boxes[i], boxes[j]
                if not a.overlaps(b):
                    continue
                dy = (min(a.y1, b.y1) - max(a.y0, b.y0)) / 2 + 1
                up, down = (i, j) if (a.y0 + a.y1) >= (b.y0 + b.y1) else (j, i)
                for k, sign in ((up, 1), (down, -1)):
                    ox, oy = labels[k].xyann
                    labels[k].xyann = (ox, oy + sign * dy * to_pt)
                boxes[up] = labels[up].get_window_extent(renderer).expanded(1.02, 1.08)
                boxes[down] = labels[down].get_window_extent(renderer).expanded(1.02, 1.08)
                moved = True
        if not moved:
            return


def _label_side(graph: RuleGraph, node: int) -> tuple[tuple[float, float], str, str]:
    """Where an item's name goes: on the side away from the rules it is linked to (unit offset
    direction, horizontal and vertical alignment), so the edges do not run through it."""
    e = graph.edges
    nb = pd.concat([e.loc[e["source"] == node, "target"], e.loc[e["target"] == node, "source"]])
    xy = graph.nodes.set_index("node")[["x", "y"]]
    d = xy.loc[node].to_numpy(float) - xy.loc[nb].to_numpy(float).mean(axis=0) if len(nb) else np.zeros(2)
    norm = float(np.hypot(*d))
    if norm < 1e-9:
        return (0.0, 1.0), "center", "bottom"
    dx, dy = d / norm
    if abs(dy) >= 0.5:
        return (dx, dy), "center", "bottom" if dy > 0 else "top"
    return (dx, dy), "left" if dx > 0 else "right", "center"


def plot_rule_graph(rules: pd.DataFrame, max_rules: int = 30, *, ax: Any = None, seed: int = 0,
                    cmap: str = "viridis") -> Any:
    """Static rule graph for the report and the PDF (the encoding of :func:`rule_graph_figure`).

    Items are grey dots with their names; each rule is a circle whose area grows with its support
    and whose colour shows its lift, with arrows from the items of its antecedent and to its
    consequent. Overlapping item names are moved apart.

    Parameters
    ----------
    rules : DataFrame
        Rules with ``antecedents``, ``consequents``, ``support``, ``confidence``, ``lift``, ``count``.
    max_rules : int
        The `max_rules` rules with the highest lift are drawn.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    seed : int
        Seed of the layout (:func:`rule_graph_layout`).
    cmap : str
        Colour map of the lift.

    Returns
    -------
    matplotlib Axes
    """
    ax = _ax(ax, (6.8, 5.6))
    if len(rules) == 0:
        ax.text(0.5, 0.5, "no rules", ha="center", va="center")
        ax.set_axis_off()
        return ax
    graph = rule_graph_layout(rules, max_rules, seed=seed)
    nodes = graph.nodes.set_index("node")
    rule_nodes, item_nodes = graph.rules, graph.items
    area = pd.Series(_scaled(rule_nodes["support"], *_MPL_AREA), index=rule_nodes["node"])
    for e in graph.edges.itertuples(index=False):
        src, dst = nodes.loc[e.source], nodes.loc[e.target]
        # arrows stop at the circles: the radius of a rule node, a few points for an item dot
        rule_end = float(np.sqrt(area[e.target if e.role == "antecedent" else e.source]) / 2)
        shrink_a, shrink_b = (4, rule_end + 1) if e.role == "antecedent" else (rule_end + 1, 4)
        ax.annotate("", xy=(dst["x"], dst["y"]), xytext=(src["x"], src["y"]),
                    arrowprops={"arrowstyle": "-|>", "color": "0.55", "lw": 0.8, "shrinkA": shrink_a,
                                "shrinkB": shrink_b, "mutation_scale": 8}, zorder=1)
    sc = ax.scatter(rule_nodes["x"], rule_nodes["y"], s=area.to_numpy(), c=rule_nodes["lift"], cmap=cmap,
                    edgecolors="0.25", linewidths=0.5, zorder=2)
    ax.scatter(item_nodes["x"], item_nodes["y"], s=18, color="0.35", zorder=3)
    labels = []
    for r in item_nodes.itertuples(index=False):
        (dx, dy), ha, va = _label_side(graph, r.node)
        labels.append(ax.annotate(_wrap(str(r.label)), xy=(r.x, r.y), xytext=(5 * dx, 5 * dy),
                                  textcoords="offset points", ha=ha, va=va, fontsize=FONT, parse_math=False,
                                  zorder=4, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                                  "alpha": 0.8}))
    ax.set_xlim(graph.nodes["x"].min() - 0.2, graph.nodes["x"].max() + 0.2)
    ax.set_ylim(graph.nodes["y"].min() - 0.12, graph.nodes["y"].max() + 0.22)  # room for the names above
    ax.set_xticks([])
    ax.set_yticks([])  # no tick labels hiding under the names
    ax.set_axis_off()
    cbar = ax.figure.colorbar(sc, ax=ax, shrink=0.7, pad=0.02)
    cbar.set_label("lift", fontsize=FONT)
    cbar.ax.tick_params(labelsize=FONT)
    sup = rule_nodes["support"]
    if len(sup):
        lo, hi = float(sup.min()), float(sup.max())
        keys = [(lo, _MPL_AREA[0]), (hi, _MPL_AREA[1])] if hi > lo else [(lo, sum(_MPL_AREA) / 2)]
        handles = [ax.scatter([], [], s=a, facecolors="none", edgecolors="0.25") for _, a in keys]
        ax.legend(handles, [f"support {s:.1%}" for s, _ in keys], title="circle area = support", loc="upper center",
                  bbox_to_anchor=(0.5, 0.0), ncol=len(keys), frameon=False, fontsize=FONT, title_fontsize=FONT,
                  borderaxespad=0.2, handleheight=3.6, columnspacing=2.5)
    shown = len(rule_nodes)
    ax.set_title(f"Rule graph: the {shown} rule{'s' if shown != 1 else ''} with the highest lift"
                 + (f" (of {len(rules):,})" if len(rules) > shown else ""), fontsize=FONT + 2)
    _separate_labels(ax, labels)
    return ax


def _hover(text: str, support: float, confidence: float, lift: float, count: float) -> str:
    """Hover text of one rule; `text` is escaped (plotly renders hover text as HTML)."""
    count_text = "" if pd.isna(count) else f"<br>count: {int(count):,} baskets"
    return (f"<b>{html.escape(text)}</b><br>support: {support:.2%}<br>confidence: {confidence:.1%}"
            f"<br>lift: {lift:.2f}{count_text}")


def rule_graph_figure(rules: pd.DataFrame, max_rules: int = 50, *, seed: int = 0) -> Any:
    """Interactive rule graph (plotly): items as nodes, each rule a small node between them.

    Edges run antecedent item → rule → consequent item (arrows); a rule node's size grows with its
    support and its colour shows its lift; hovering over a rule shows the rule, support,
    confidence, lift and count, over an item its name and the number of drawn rules it is in.
    Positions are those of :func:`rule_graph_layout` (seeded, so the figure is deterministic).
    Item names are escaped for plotly's HTML-like text.

    Parameters
    ----------
    rules : DataFrame
        Rules with ``antecedents``, ``consequents``, ``support``, ``confidence``, ``lift``, ``count``.
    max_rules : int
        The `max_rules` rules with the highest lift are drawn.
    seed : int
        Seed of the layout.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces ``items`` and ``rules``; one arrow annotation per edge.
    """
    import plotly.graph_objects as go  # lazy: plotly is only needed for the explore page

    fig = go.Figure()
    if len(rules) == 0:
        fig.update_layout(title="Rule graph: no rules")
        return fig
    graph = rule_graph_layout(rules, max_rules, seed=seed)
    nodes = graph.nodes.set_index("node")
    rule_nodes, item_nodes = graph.rules, graph.items
    diameter = _scaled(rule_nodes["support"], *_PLOTLY_DIAMETER)
    radius = dict(zip(rule_nodes["node"], diameter / 2))
    annotations = []
    for e in graph.edges.itertuples(index=False):
        src, dst = nodes.loc[e.source], nodes.loc[e.target]
        annotations.append({"x": dst["x"], "y": dst["y"], "ax": src["x"], "ay": src["y"], "xref": "x", "yref": "y",
                            "axref": "x", "ayref": "y", "text": "", "showarrow": True, "arrowhead": 2,
                            "arrowsize": 1, "arrowwidth": 1, "arrowcolor": "#999999",
                            "standoff": radius[e.target] + 1 if e.role == "antecedent" else 5,
                            "startstandoff": radius[e.source] + 1 if e.role == "consequent" else 4})
    fig.add_trace(go.Scatter(
        x=rule_nodes["x"], y=rule_nodes["y"], mode="markers", name="rules",
        marker={"size": diameter, "color": rule_nodes["lift"].to_numpy(), "colorscale": "Viridis",
                "showscale": True, "colorbar": {"title": {"text": "lift"}}, "line": {"width": 0.5, "color": "#444"}},
        hovertext=[_hover(str(t), s, c, lf, n) for t, s, c, lf, n in
                   rule_nodes[["label", "support", "confidence", "lift", "count"]].itertuples(index=False)],
        hoverinfo="text"))
    names = [html.escape(str(s)) for s in item_nodes["label"]]
    fig.add_trace(go.Scatter(
        x=item_nodes["x"], y=item_nodes["y"], mode="markers+text", name="items", text=names,
        textposition="top center", marker={"size": 7, "color": "#555555"},
        hovertext=[f"<b>{n}</b><br>in {int(k)} of the drawn rules" for n, k in zip(names, item_nodes["n_rules"])],
        hoverinfo="text"))
    shown = len(rule_nodes)
    fig.update_layout(
        title=f"Rule graph: the {shown} rules with the highest lift (size = support, colour = lift)",
        annotations=annotations, showlegend=False, template="plotly_white", height=650, hovermode="closest",
        xaxis={"visible": False, "range": [graph.nodes["x"].min() - 0.2, graph.nodes["x"].max() + 0.2]},
        yaxis={"visible": False, "range": [graph.nodes["y"].min() - 0.12, graph.nodes["y"].max() + 0.22],
               "scaleanchor": "x", "scaleratio": 1})
    return fig


def rule_scatter_figure(rules: pd.DataFrame, *, max_points: int = 20000, seed: int = 0) -> Any:
    """Interactive support-vs-confidence scatter (plotly): one point per rule, colour = lift.

    Hovering over a point shows the rule (antecedent ⇒ consequent, item names escaped), its
    support, confidence, lift and count.

    Parameters
    ----------
    rules : DataFrame
        Rules with ``antecedents``, ``consequents``, ``support``, ``confidence``, ``lift``, ``count``.
    max_points : int
        At most this many rules are drawn (a seeded random sample of them).
    seed : int
        Seed of the sample.

    Returns
    -------
    plotly.graph_objects.Figure
        One trace, ``rules``, with the points in order of increasing lift.
    """
    import plotly.graph_objects as go  # lazy: plotly is only needed for the explore page

    d = rules if len(rules) <= max_points else rules.sample(max_points, random_state=seed)
    d = d.sort_values("lift", kind="stable")
    counts = d["count"].to_numpy(float) if "count" in d else np.full(len(d), np.nan)
    hover = [_hover(rule_text(a, c), s, cf, lf, n) for a, c, s, cf, lf, n in
             zip(d["antecedents"], d["consequents"], d["support"], d["confidence"], d["lift"], counts)]
    fig = go.Figure(go.Scatter(
        x=d["support"].to_numpy(float), y=d["confidence"].to_numpy(float), mode="markers", name="rules",
        marker={"size": 8, "color": d["lift"].to_numpy(float), "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": {"text": "lift"}}, "opacity": 0.85},
        hovertext=hover, hoverinfo="text"))
    title = f"{len(rules):,} rules: support vs confidence (colour = lift)"
    if len(rules) > max_points:
        title += f", {max_points:,} shown"
    fig.update_layout(title=title, template="plotly_white", height=520, hovermode="closest",
                      xaxis={"title": {"text": "support (share of baskets)"}, "tickformat": ".1%"},
                      yaxis={"title": {"text": "confidence"}, "tickformat": ".0%"})
    return fig


def top_rules_view(rules: pd.DataFrame, top_n: int = 20, *, measure: str = "lift", ax: Any = None) -> Any:
    """The rule graph (:func:`plot_rule_graph`) of the top rules when networkx is installed, else
    the matrix view (:func:`rules_matrix`); ``measure`` other than lift always gives the matrix."""
    if measure == "lift" and importlib.util.find_spec("networkx") is not None:
        return plot_rule_graph(rules, top_n, ax=ax)
    return rules_matrix(rules, top_n, measure=measure, ax=ax)


def holdout_lift_scatter(check: pd.DataFrame, *, ax: Any = None) -> Any:
    """Lift on the mining period (x) vs on the later holdout period (y), log scales.

    Points on the diagonal held their lift; below the dashed line y = 1 the association vanished.
    Rules whose antecedent or consequent never occurs in the holdout are not drawn. Both reference
    lines and the two colours are explained in a legend below the axes.

    Parameters
    ----------
    check : DataFrame
        :func:`ecrm_research.association.holdout_check` output (``lift``, ``holdout_lift``, ``holds``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib Axes
    """
    ax = _ax(ax, (5.2, 5.4))
    d = check[np.isfinite(check["holdout_lift"]) & (check["holdout_lift"] > 0)]
    held = d["holds"].astype(bool)
    ax.scatter(d.loc[held, "lift"], d.loc[held, "holdout_lift"], color="#4C72B0", s=24, alpha=0.75,
               edgecolors="none", label="holds (later lift > 1)")
    if (~held).any():
        ax.scatter(d.loc[~held, "lift"], d.loc[~held, "holdout_lift"], color="#C44E52", s=24, alpha=0.75,
                   edgecolors="none", label="fades (later lift ≤ 1)")
    if len(d):
        lo = min(d["lift"].min(), d["holdout_lift"].min(), 1) * 0.9
        hi = max(d["lift"].max(), d["holdout_lift"].max()) * 1.1
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, label="same lift in both periods")
        ax.axhline(1, color="grey", ls="--", lw=1, label="later lift = 1 (no association)")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.xaxis)
        _plain_log_ticks(ax.yaxis)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=FONT, frameon=False)
    ax.set_xlabel("lift, mining period")
    ax.set_ylabel("lift, holdout period")
    ax.set_title(f"Holdout check: {share_text(int(check['holds'].sum()), len(check), 'rules')}\nkeep lift > 1")
    return ax
