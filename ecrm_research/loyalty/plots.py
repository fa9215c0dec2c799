"""Figures of the loyalty-driver analysis, drawn from the tidy tables of :mod:`ecrm_research.loyalty`.

Every function takes ``ax=None`` and returns the Axes. The figures are sized for print: saved at
110 dpi and printed 7.3 in wide, each is at most ~7.3 in wide with texts of at least 9 pt, so every
label prints at 8 pt or more. Legends sit outside the data (below the figure, or below an
axes-free diagram) and every reference line (cut-offs, the quadrant lines of the
importance-performance map, the zero line of a forest plot) has a legend entry.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.transforms import Bbox

#: smallest font used in these figures (prints at >= 8 pt at the sizes chosen here)
FONT = 9
_POS, _NEG, _NS = "#1f5fa8", "#b22222", "#8c8c8c"


def _ax(ax, figsize, *, constrained: bool = True):
    """The given Axes, or a new one on a figure of `figsize` (constrained layout, so a legend can
    sit outside the axes and still be inside the saved figure)."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained" if constrained else None)
    return ax


def _legend_outside(ax, handles, labels, *, ncol: int):
    """Legend below the figure (constrained layout, one Axes), else to the right of the Axes."""
    fig = ax.figure
    if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine) and len(fig.axes) == 1:
        return fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=FONT, frameon=False)
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=FONT, frameon=False)


def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else " n.s."


def _label(name: str, labels: Mapping[str, str], width: int = 20) -> str:
    return textwrap.fill(labels.get(name, name.replace("_", " ")), width)


def _edge_point(center: tuple[float, float], half: tuple[float, float], toward: tuple[float, float]):
    """Where the line from a box's centre towards `toward` leaves the box (half-width, half-height)."""
    (cx, cy), (hw, hh) = center, half
    dx, dy = toward[0] - cx, toward[1] - cy
    if dx == 0 and dy == 0:
        return center
    s = min(hw / abs(dx) if dx else np.inf, hh / abs(dy) if dy else np.inf)
    return cx + s * dx, cy + s * dy


def _overlap(a: Bbox, others: Sequence[Bbox]) -> float:
    """Total area of `a` covered by `others` (0: free)."""
    total = 0.0
    for b in others:
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        if w > 0 and h > 0:
            total += w * h
    return total


def path_diagram(paths: pd.DataFrame, *, drivers: Sequence[str], mediator: str, outcome: str,
                 direct_drivers: Sequence[str] = (), r2: Mapping[str, float] | None = None,
                 labels: Mapping[str, str] | None = None, alpha: float = 0.05, ax=None):
    """Path diagram of the structural model.

    Parameters
    ----------
    paths : DataFrame
        ``lval, rval, std_estimate, p_value`` (:attr:`SEMResult.paths`, or a driver-regression
        summary renamed ``outcome -> lval, predictor -> rval``).
    drivers, mediator, outcome, direct_drivers :
        Layout: the drivers, then the direct drivers, in a column on the left, the mediator at the
        top in the middle, the outcome on the right.
    r2 : mapping, optional
        R² printed in the boxes of the endogenous constructs.
    labels : mapping, optional
        Display names of the constructs (default: the name with spaces for underscores).
    alpha : float
        Significance level: paths with ``p_value < alpha`` are solid, the others dashed grey.
    ax : Axes, optional
        Where to draw; its figure should not use a layout engine that moves the Axes after
        drawing (the boxes are sized from the measured text).

    Returns
    -------
    Axes

    Notes
    -----
    Arrow width grows with |standardized path|; significant paths are solid (blue positive,
    red negative), non-significant ones dashed grey. Each path's label is put at the first
    point along its arrow (middle first) where it overlaps no box and no other label.
    """
    labels = dict(labels or {})
    r2 = dict(r2 or {})
    left = list(dict.fromkeys([d for d in [*drivers, *direct_drivers] if d not in (mediator, outcome)]))
    n = max(len(left), 1)
    ax = _ax(ax, (7.2, max(3.4, 0.8 * n + 1.9)), constrained=False)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")

    # nodes: text first, measured, then a box in data units around it (independent of the dpi)
    texts = {}
    for name in [*left, mediator, outcome]:
        text = _label(name, labels) + (f"\nR² = {r2[name]:.2f}" if name in r2 else "")
        texts[name] = ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=FONT + 1, zorder=4)
    to_data = ax.transData.inverted()
    half = {}
    for name, t in texts.items():
        ext = t.get_window_extent()
        (x0, y0), (x1, y1) = to_data.transform([(ext.x0, ext.y0), (ext.x1, ext.y1)])
        half[name] = ((x1 - x0) / 2 + 0.02, (y1 - y0) / 2 + 0.025)
    left_half = (max([half[d][0] for d in left] + [0.08]), max([half[d][1] for d in left] + [0.04]))
    half.update({d: left_half for d in left})  # one box size for the left column
    x_left = left_half[0] + 0.01
    x_right = 1 - half[outcome][0] - 0.01
    ys = np.linspace(1 - left_half[1] - 0.01, left_half[1] + 0.01, n) if len(left) > 1 else [0.5]
    pos = {d: (x_left, float(y)) for d, y in zip(left, ys)}
    pos[mediator] = ((x_left + x_right) / 2, 1 - half[mediator][1] - 0.01)
    pos[outcome] = (x_right, float(np.mean(ys)) if len(left) > 1 else 0.5)
    node_boxes = []
    for name, t in texts.items():
        (x, y), (hw, hh) = pos[name], half[name]
        t.set_position((x, y))
        patch = FancyBboxPatch((x - hw, y - hh), 2 * hw, 2 * hh, boxstyle="round,pad=0,rounding_size=0.015",
                               fc="#fff7e6" if name in (mediator, outcome) else "#eef3fb", ec="#555555",
                               lw=1, zorder=3, clip_on=False)
        ax.add_patch(patch)
        node_boxes.append(patch.get_window_extent())

    edges = []  # (src, dst, estimate, p, start, end) of the arrows drawn
    for _, r in paths.iterrows():
        src, dst = r["rval"], r["lval"]
        if src not in pos or dst not in pos:
            continue
        est, p = float(r["std_estimate"]), float(r.get("p_value", np.nan))
        sig = np.isfinite(p) and p < alpha
        color = (_POS if est >= 0 else _NEG) if sig else _NS
        a = _edge_point(pos[src], half[src], pos[dst])
        b = _edge_point(pos[dst], half[dst], pos[src])
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14, color=color, zorder=1,
                                     lw=0.8 + 3.5 * min(abs(est), 1), linestyle="-" if sig else "--",
                                     shrinkA=1, shrinkB=2))
        edges.append((est, p, color, a, b))
    # each arrow's points in display units, to keep a label off the other arrows
    steps = np.linspace(0, 1, 60)[:, None]
    tracks = [ax.transData.transform(np.asarray(a) + steps * (np.asarray(b) - np.asarray(a))) for *_, a, b in edges]
    placed: list[Bbox] = []
    for k, (est, p, color, a, b) in enumerate(edges):
        label = ax.text(0, 0, f"{est:.2f}{_stars(p)}", fontsize=FONT, ha="center", va="center", color=color,
                        zorder=2, bbox=dict(fc="white", ec="none", alpha=0.9, pad=1))
        best = None
        for rank, frac in enumerate((0.5, 0.4, 0.6, 0.3, 0.7, 0.35, 0.65, 0.25, 0.75, 0.45, 0.55, 0.2, 0.8)):
            label.set_position((a[0] + frac * (b[0] - a[0]), a[1] + frac * (b[1] - a[1])))
            ext = label.get_window_extent().padded(2)
            crossings = sum(bool(ext.count_contains(t)) for j, t in enumerate(tracks) if j != k)
            cost = (_overlap(ext, node_boxes + placed), crossings, rank)
            if best is None or cost < best[0]:
                best = (cost, frac, ext)
        frac = best[1]
        label.set_position((a[0] + frac * (b[0] - a[0]), a[1] + frac * (b[1] - a[1])))
        placed.append(best[2])
    ax.set_title(f"Standardized paths (* p < .05, ** p < .01, *** p < .001; n.s. = p ≥ {alpha:g})", fontsize=FONT + 1)
    handles = [Line2D([], [], color=_POS, lw=2.5), Line2D([], [], color=_NEG, lw=2.5),
               Line2D([], [], color=_NS, lw=1.5, ls="--")]
    ax.legend(handles, ["positive path", "negative path", "not significant"], loc="upper center",
              bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=FONT, frameon=False)
    return ax


def effects_plot(effects: pd.DataFrame, *, estimate: str = "std_estimate", lower: str = "std_ci_lower",
                 upper: str = "std_ci_upper", label: str = "driver", group: str | None = "effect",
                 labels: Mapping[str, str] | None = None, ax=None):
    """Forest plot of effects with their confidence intervals (one row per effect).

    A point whose interval excludes 0 is blue, else grey; the line at 0 (no effect) is in the legend.
    `labels` maps names in the `label` column to display names (default: spaces for underscores).
    """
    labels = dict(labels or {})
    df = effects.reset_index(drop=True)
    ax = _ax(ax, (7, 0.42 * len(df) + 1.6))
    names = [labels.get(v, str(v).replace("_", " ")) for v in df[label]]
    ylab = [f"{n} ({g})" for n, g in zip(names, df[group])] if group and group in df.columns else names
    y = np.arange(len(df))[::-1]
    sig = ((df[lower] > 0) | (df[upper] < 0)).to_numpy()
    est, lo, hi = (df[c].to_numpy(float) for c in (estimate, lower, upper))
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="none", ecolor="#555555", capsize=3)
    ax.scatter(est, y, c=np.where(sig, _POS, "#bbbbbb"), zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, ylab, fontsize=FONT + 1)
    ax.tick_params(axis="x", labelsize=FONT + 1)
    ax.set_xlabel("standardized effect (95% CI)", fontsize=FONT + 1)
    handles = [Line2D([], [], ls="", marker="o", color=_POS), Line2D([], [], ls="", marker="o", color="#bbbbbb"),
               Line2D([], [], color="black", lw=0.8)]
    _legend_outside(ax, handles, ["interval excludes 0", "interval includes 0", "0 = no effect"], ncol=3)
    return ax


def relative_importance_plot(summary: pd.DataFrame, *, labels: Mapping[str, str] | None = None, ax=None):
    """Horizontal bars of each driver's Shapley share of R², labelled with the value and its share.

    `labels` maps predictor names to display names (default: spaces for underscores).
    """
    labels = dict(labels or {})
    df = summary.sort_values("shapley_r2")
    ax = _ax(ax, (6, 0.45 * len(df) + 1.2))
    ax.barh([_label(p, labels, 30) for p in df["predictor"]], df["shapley_r2"], color=_POS)
    for y, (v, s) in enumerate(zip(df["shapley_r2"], df["share"])):
        ax.text(v, y, f" {v:.3f} ({s:.0%})", va="center", fontsize=FONT)
    ax.tick_params(labelsize=FONT + 1)
    ax.set_xlabel(f"Shapley share of R² (R² = {summary['shapley_r2'].sum():.3f})", fontsize=FONT + 1)
    ax.set_xlim(0, df["shapley_r2"].max() * 1.35)
    return ax


def ipa_map(ipa: pd.DataFrame, *, labels: Mapping[str, str] | None = None, ax=None):
    """Importance-performance map: performance (0-100) across, importance (total effect) up.

    The quadrant lines are ``ipa.attrs['performance_cut']`` / ``['importance_cut']`` (the
    levers' mean by default, ``ipa.attrs['cut']``), named with their values in the legend below the
    map; each quadrant is labelled with its action.
    """
    labels = dict(labels or {})
    ax = _ax(ax, (7, 5.8))
    pc = ipa.attrs.get("performance_cut", ipa["performance"].mean())
    ic = ipa.attrs.get("importance_cut", ipa["importance"].mean())
    cut = ipa.attrs.get("cut", "mean")
    colors = {"concentrate here": _NEG, "keep up": "#2e8b57", "low priority": "#7f7f7f",
              "possible overkill": "#b8860b"}
    ax.scatter(ipa["performance"], ipa["importance"], s=80, c=[colors.get(a, "k") for a in ipa["action"]], zorder=3)
    for _, r in ipa.iterrows():
        name = labels.get(r["lever"], r["lever"].replace("_", " ")) + (" (reversed)" if r.get("reversed") else "")
        ax.annotate(name, (r["performance"], r["importance"]), xytext=(5, 5), textcoords="offset points",
                    fontsize=FONT + 1)
    ax.axvline(pc, color="#555555", ls="--", lw=0.9)
    ax.axhline(ic, color="#555555", ls=":", lw=1.1)
    x0, x1 = min(ipa["performance"].min(), pc) - 5, max(ipa["performance"].max(), pc) + 5
    y0, y1 = 0, max(ipa["importance"].max(), ic) * 1.2
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    for (x, y, txt, ha) in ((x0, y1, "concentrate here", "left"), (x1, y1, "keep up", "right"),
                            (x0, 0, "low priority", "left"), (x1, 0, "possible overkill", "right")):
        ax.text(x, y, f" {txt} ", ha=ha, va="top" if y == y1 else "bottom", fontsize=FONT + 1, color=colors[txt],
                style="italic")
    ax.tick_params(labelsize=FONT + 1)
    ax.set_xlabel("performance (mean score rescaled to 0-100)", fontsize=FONT + 1)
    ax.set_ylabel("importance (total effect on loyalty per scale point)", fontsize=FONT + 1)
    ax.set_title("Importance-performance map", fontsize=FONT + 2)
    handles = [Line2D([], [], color="#555555", ls="--", lw=0.9), Line2D([], [], color="#555555", ls=":", lw=1.1)]
    _legend_outside(ax, handles, [f"levers' {cut} performance ({pc:.1f})", f"levers' {cut} importance ({ic:.3g})"],
                    ncol=2)
    return ax


_RELIABILITY = {"cronbach_alpha": ("Cronbach's alpha", _POS), "composite_reliability": ("composite reliability",
                                                                                        "#6a9fd8"),
                "ave": ("AVE (average variance extracted)", "#d2a000")}


def reliability_plot(reliability: pd.DataFrame, *, labels: Mapping[str, str] | None = None, ax=None):
    """Alpha, composite reliability and AVE per construct against their cut-offs (0.70, 0.70, 0.50).

    Horizontal bars grouped by construct (first construct at the top), so construct names never
    collide however many there are; the cut-off lines and the bars are named in a legend below the
    figure, outside the bars.
    """
    labels = dict(labels or {})
    cols = [c for c in _RELIABILITY if c in reliability.columns]
    df = reliability.set_index("construct")[cols]
    ax = _ax(ax, (7, 0.55 * len(df) + 1.9))
    y = np.arange(len(df))[::-1]
    height = 0.8 / max(len(cols), 1)
    handles, names = [], []
    for j, col in enumerate(cols):
        name, color = _RELIABILITY[col]
        handles.append(ax.barh(y + ((len(cols) - 1) / 2 - j) * height, df[col], height, color=color))
        names.append(name)
    cut_for = " and ".join(n for c, (n, _) in _RELIABILITY.items() if c in cols and c != "ave")
    if cut_for:
        handles.append(ax.axvline(0.7, color="#333333", ls="--", lw=1))
        names.append(f"cut-off 0.70 ({cut_for})")
    if "ave" in cols:
        handles.append(ax.axvline(0.5, color="#8a6d00", ls=":", lw=1.3))
        names.append("cut-off 0.50 (AVE)")
    ax.set_yticks(y, [_label(c, labels, 24) for c in df.index], fontsize=FONT + 1)
    ax.tick_params(axis="x", labelsize=FONT + 1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("reliability (alpha, CR) and average variance extracted", fontsize=FONT + 1)
    _legend_outside(ax, handles, names, ncol=2)
    return ax
