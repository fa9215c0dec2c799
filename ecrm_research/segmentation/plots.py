"""Figures of the segmentation analysis, drawn from the tidy tables of
:mod:`ecrm_research.segmentation`. Single-panel functions take ``ax=None`` and return the Axes;
multi-panel views return the Figure; :func:`segment_scatter_figure` returns an interactive plotly
figure for the report's explore page.

Every static figure is sized for print: all text is :data:`FONT_PT` points in a figure at most
about 8 inches wide, so it prints at 8 pt or more on an A4 page (7.3 in of usable width; see
:mod:`ecrm_research.report.figure_quality`). Legends sit outside the data and reference lines carry
a label.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from sklearn.decomposition import PCA

from .clustering import UNCLUSTERED
from .profiles import segment_name_rules

__all__ = ["FONT_PT", "MAX_SCATTER_POINTS", "plot_k_selection", "plot_rfm_heatmap", "plot_rfm_distributions",
           "plot_segment_profiles", "plot_segment_sizes", "plot_segments_2d", "plot_rfm_cluster_crosstab",
           "segment_scatter_figure"]

#: font size (points) of every text in the static figures
FONT_PT = 9.0
#: at most this many customers are drawn in a scatter (a seeded random sample beyond)
MAX_SCATTER_POINTS = 5000
#: colour of the customers who are not clustered (too few orders)
_UNCLUSTERED_COLOUR = "#9aa5b1"


def _ax(ax, figsize=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _style(ax, *, size: float = FONT_PT) -> None:
    """Print-size fonts for the tick labels, axis labels and title of one Axes.

    Call it when the limits are final: it also fixes the ticks to those inside the view, so no
    tick label outside the drawn range is left behind (a locator proposes ticks beyond the limits,
    and matplotlib keeps their labels as undrawn texts).
    """
    ax.tick_params(labelsize=size)
    ax.xaxis.label.set_size(size)
    ax.yaxis.label.set_size(size)
    ax.title.set_size(size)
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        lo, hi = min(lo, hi), max(lo, hi)
        ticks = axis.get_ticklocs()
        inside = [t for t in ticks if lo - 1e-9 * abs(hi - lo) <= t <= hi + 1e-9 * abs(hi - lo)]
        if len(inside) < len(ticks):
            axis.set_ticks(inside)


def _wrap(label: Any, width: int) -> str:
    """A long label on several lines of at most `width` characters (words kept whole)."""
    return "\n".join(textwrap.wrap(str(label), width=width, break_on_hyphens=False)) or str(label)


def _plain_log_axis(axis) -> None:
    """Plain tick labels (1, 10, 100, 1,000) on a log axis instead of 10⁰, 10¹ ..."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _colourbar(ax, label: str) -> None:
    """Print-size label and ticks on the colour bar of a seaborn heat map drawn on `ax`."""
    cbar = ax.collections[0].colorbar
    if cbar is not None:
        cbar.set_label(label, size=FONT_PT)
        cbar.ax.tick_params(labelsize=FONT_PT)


def plot_k_selection(k_selection: pd.DataFrame, *, figsize: tuple[float, float] | None = None) -> plt.Figure:
    """Elbow (inertia), silhouette, BIC (mixtures) and bootstrap stability against k.

    The recommended k is a dashed red line in every panel, labelled in the legend below the panels.

    Parameters
    ----------
    k_selection : DataFrame
        ``CustomerSegmenter.k_selection_`` (``k, inertia, silhouette, bic, stability_ari,
        stability_sd, recommended``).
    figsize : (float, float), optional
        Default: 7.3 in wide (one row of panels, two rows when there are four).

    Returns
    -------
    Figure
    """
    panels = [("inertia", "inertia (elbow)"), ("silhouette", "silhouette (higher = better)")]
    if "bic" in k_selection and k_selection["bic"].notna().any():
        panels.append(("bic", "BIC (lower = better)"))
    if "stability_ari" in k_selection and k_selection["stability_ari"].notna().any():
        panels.append(("stability_ari", "bootstrap ARI ± sd (stability)"))
    ncols = 2 if len(panels) == 4 else len(panels)
    nrows = 2 if len(panels) == 4 else 1
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (7.3, 2.7 * nrows))
    axes = np.atleast_1d(axes).ravel()
    best = k_selection.loc[k_selection["recommended"].astype(bool), "k"] if "recommended" in k_selection else []
    handles = []
    for ax, (col, title) in zip(axes, panels):
        y = k_selection[col].astype(float)
        if col == "stability_ari" and "stability_sd" in k_selection:
            ax.errorbar(k_selection["k"], y, yerr=k_selection["stability_sd"].astype(float), marker="o", capsize=3)
            ax.set_ylim(min(0, float(y.min()) - 0.05), 1.05)
        else:
            ax.plot(k_selection["k"], y, marker="o")
        for k in best:
            line = ax.axvline(k, color="tab:red", ls="--", lw=1, label=f"recommended k = {int(k)}")
        if len(best) and not handles:
            handles = [line]
        ax.set_title(title)
        ax.set_xlabel("k (number of segments)")
        ax.set_xticks(k_selection["k"])
        _style(ax)
    if handles:
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=FONT_PT, frameon=False)
    fig.tight_layout()
    return fig


def plot_rfm_heatmap(scored: pd.DataFrame, *, value: str = "monetary", ax=None) -> plt.Axes:
    """Recency score × frequency score grid: customers per cell, coloured by mean ``value``.

    Each cell shows the number of customers (top) and their mean `value` (bottom); the colour scale
    is logarithmic, with plain tick labels.

    Parameters
    ----------
    scored : DataFrame
        :func:`~ecrm_research.segmentation.rfm.rfm_scores` (``r_score``, ``f_score`` and `value`).
    value : str, default 'monetary'
        Column averaged per cell.
    ax : Axes, optional

    Returns
    -------
    Axes
    """
    ax = _ax(ax, (6.2, 4.6))
    counts = pd.crosstab(scored["f_score"], scored["r_score"])
    means = scored.pivot_table(index="f_score", columns="r_score", values=value, aggfunc="mean")
    means = means.reindex(index=counts.index, columns=counts.columns)
    annot = counts.astype(int).map("{:,}".format) + "\n" + means.round(0).fillna(0).astype(int).map("{:,}".format)
    shown = means.clip(lower=1)
    sns.heatmap(shown, annot=annot.values, fmt="", cmap="YlGnBu", ax=ax,
                norm=LogNorm(vmin=float(np.nanmin(shown.to_numpy())), vmax=float(np.nanmax(shown.to_numpy()))),
                annot_kws={"fontsize": FONT_PT})
    _colourbar(ax, f"mean {value} (log scale)")
    cbar = ax.collections[0].colorbar
    if cbar is not None:
        cbar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        _plain_log_axis(cbar.ax.yaxis)
    ax.invert_yaxis()
    ax.set_xlabel("R score (5 = most recent)")
    ax.set_ylabel("F score (5 = most frequent)")
    ax.set_title(f"Customers per R×F cell (top) and mean {value} (bottom)")
    _style(ax)
    plt.setp(ax.get_yticklabels(), rotation=0)
    return ax


def plot_rfm_distributions(rfm: pd.DataFrame, *, figsize: tuple[float, float] = (7.3, 2.6)) -> plt.Figure:
    """Histograms of recency, frequency and monetary (the last two on log axes with plain tick labels).

    Monetary values below 1 (net spend after returns can be zero or negative) are drawn at 1.

    Parameters
    ----------
    rfm : DataFrame
        :func:`~ecrm_research.prep.customers.rfm_table` (``recency_days``, ``frequency``, ``monetary``).
    figsize : (float, float)

    Returns
    -------
    Figure
    """
    fig, axes = plt.subplots(1, 3, figsize=figsize)
    axes[0].hist(rfm["recency_days"], bins=40, color="tab:blue")
    axes[0].set_xlabel("recency (days)")
    for ax, col, colour, label in ((axes[1], "frequency", "tab:orange", "frequency (orders, log)"),
                                   (axes[2], "monetary", "tab:green", "monetary (log)")):
        values = rfm[col].astype(float).clip(lower=1)
        hi = max(float(values.max()), 2.0)
        ax.hist(values, bins=np.logspace(0, np.log10(hi) * 1.0001, 40), color=colour)
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
        ax.set_xlabel(label)
    for a in axes:
        a.set_ylabel("customers")
        _style(a)
    fig.tight_layout()
    return fig


def _name_words(words: Sequence[str]) -> str:
    """``['high-frequency', 'mid-frequency', 'low-frequency']`` → ``'high/mid/low-frequency'``."""
    groups: dict[str, list[str]] = {}
    for w in words:
        head, _, tail = w.partition("-")
        groups.setdefault(tail, []).append(head)
    return "/".join(("/".join(h) + f"-{t}") if t else "/".join(h) for t, h in groups.items())


def plot_segment_profiles(profiles: pd.DataFrame, *, ax=None, name_width: int = 24) -> plt.Axes:
    """Heat map of the feature z-scores (segment mean vs overall, in sd) per segment.

    Each column that a segment name reads is labelled with its name words (e.g. ``monetary`` with
    *high/mid/low-value*), so every word of a name can be checked against one number of the map:
    high when the number shown is ≥ +0.5, low when ≤ −0.5
    (:func:`~ecrm_research.segmentation.profiles.profile_segments`). The figure is sized so that
    the cell numbers and labels print at 8 pt or more (about 0.4 in per feature column; segment
    names wrapped at `name_width` characters).

    Parameters
    ----------
    profiles : DataFrame
        :func:`~ecrm_research.segmentation.profiles.profile_segments`.
    ax : Axes, optional
    name_width : int, default 24
        Characters per line of a segment name.

    Returns
    -------
    Axes
    """
    zcols = [c for c in profiles.columns if c.endswith("_z")]
    mat = profiles.set_index("segment")[zcols]
    mat.index = [_wrap(s, name_width) for s in mat.index]
    rules = segment_name_rules(profiles)
    words = {c: _name_words(g["word"].tolist()) for c, g in rules.groupby("column", sort=False)}
    mat.columns = [c[:-2] + (f"\n({words[c[:-2]]})" if c[:-2] in words else "") for c in zcols]
    lines = max((s.count("\n") + 1 for s in mat.index), default=1)
    # at least 6 in wide: the two-line title (about 4.5 in at 9 pt) stays clear of the colour bar
    ax = _ax(ax, (max(0.36 * len(zcols) + 2.2, 6.0), (0.15 * lines + 0.2) * len(mat) + 2.2))
    lim = max(1.0, float(np.nanmax(np.abs(mat.to_numpy()))))
    annot = mat.map(lambda z: "" if not np.isfinite(z) else f"{z:.1f}".replace("-0.0", "0.0"))
    sns.heatmap(mat, annot=annot.to_numpy(), fmt="", cmap="RdBu_r", center=0, vmin=-lim, vmax=lim, ax=ax,
                annot_kws={"fontsize": FONT_PT}, cbar_kws={"fraction": 0.05, "pad": 0.02})
    _colourbar(ax, "z (sd from overall mean)")
    ax.set_ylabel("")
    ax.set_title("How each segment differs from the average customer\n"
                 "(name words in brackets: high when z ≥ +0.5, low when z ≤ −0.5)")
    _style(ax)
    plt.setp(ax.get_yticklabels(), rotation=0)
    return ax


def plot_segment_sizes(profiles: pd.DataFrame, *, name_width: int = 26,
                       figsize: tuple[float, float] | None = None) -> plt.Figure:
    """Segment sizes: customers per segment (left) and the segment's share of customers and of
    revenue (right), one horizontal bar per segment in the order of `profiles`.

    A segment whose revenue bar is much longer than its customer bar brings more than its share of
    the revenue (the planted champions on the sample: 15 % of customers, 50 % of revenue).

    Parameters
    ----------
    profiles : DataFrame
        :func:`~ecrm_research.segmentation.profiles.profile_segments` (``segment``, ``n_customers``,
        ``share_customers``, ``share_revenue``).
    name_width : int, default 26
        Characters per line of a segment name.
    figsize : (float, float), optional
        Default: 7.3 in wide, 0.55 in per segment.

    Returns
    -------
    Figure
        Two Axes: ``fig.axes[0]`` with one bar per segment (width = customers), ``fig.axes[1]`` with
        two bars per segment (share of customers and share of revenue, in percent).
    """
    names = [_wrap(s, name_width) for s in profiles["segment"]]
    n = profiles["n_customers"].to_numpy(dtype=float)
    share_c = profiles["share_customers"].to_numpy(dtype=float) * 100
    share_r = profiles["share_revenue"].to_numpy(dtype=float) * 100
    y = np.arange(len(profiles))
    fig, (left, right) = plt.subplots(1, 2, sharey=True, figsize=figsize or (7.3, 0.55 * len(profiles) + 1.6),
                                      gridspec_kw={"width_ratios": [1, 1.2]})
    colours = [_UNCLUSTERED_COLOUR if c == UNCLUSTERED else "tab:blue" for c in profiles["cluster"]] \
        if "cluster" in profiles else ["tab:blue"] * len(profiles)
    bars = left.barh(y, n, color=colours)
    left.bar_label(bars, labels=[f"{int(v):,}" for v in n], padding=2, fontsize=FONT_PT)
    left.set_xlim(0, n.max() * 1.3 if len(n) else 1)
    left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    left.set_xlabel("customers")
    left.set_yticks(y, names)
    left.invert_yaxis()
    h = 0.38
    bc = right.barh(y - h / 2, share_c, height=h, color="#9fc5e8", label="share of customers")
    br = right.barh(y + h / 2, share_r, height=h, color="tab:green", label="share of revenue")
    for b, vals in ((bc, share_c), (br, share_r)):
        right.bar_label(b, labels=[f"{v:.0f}%" for v in vals], padding=2, fontsize=FONT_PT)
    right.set_xlim(0, max(share_c.max(initial=0), share_r.max(initial=0)) * 1.25 or 1)
    right.set_xlabel("share (%)")
    right.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=FONT_PT, frameon=False)
    for ax in (left, right):
        _style(ax)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("Segment sizes: customers, and shares of customers and revenue", fontsize=FONT_PT)
    fig.tight_layout()
    return fig


def plot_segments_2d(Z: pd.DataFrame | np.ndarray, labels: Sequence[int], *, names: dict | None = None,
                     max_points: int = MAX_SCATTER_POINTS, random_state: int = 42, ax=None) -> plt.Axes:
    """Customers on the first two principal components of the clustering features.

    Parameters
    ----------
    Z : DataFrame or array
        The transformed clustering features (``CustomerSegmenter.transform``), one row per customer.
    labels : sequence of int
        Cluster per row.
    names : dict, optional
        Cluster → segment name (legend text).
    max_points : int
        At most this many customers are drawn (a seeded random sample).
    random_state : int
    ax : Axes, optional

    Returns
    -------
    Axes
        The legend is below the axes.
    """
    ax = _ax(ax, (6.2, 4.4))
    Z = np.asarray(Z, dtype=float)
    labels = np.asarray(labels)
    pca = PCA(n_components=2, random_state=random_state).fit(Z)
    P = pca.transform(Z)
    idx = np.arange(len(Z))
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(random_state).choice(len(Z), max_points, replace=False))
    for cl in np.unique(labels):
        m = idx[labels[idx] == cl]
        ax.scatter(P[m, 0], P[m, 1], s=6, alpha=0.5, label=(names or {}).get(cl, f"cluster {cl}"))
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ev[1]:.0%} of variance)")
    ax.legend(fontsize=FONT_PT, markerscale=2.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1,
              frameon=False)
    ax.set_title("Segments in two dimensions (PCA)")
    _style(ax)
    return ax


def plot_rfm_cluster_crosstab(segments: pd.DataFrame, *, normalize: bool = True, ax=None,
                              name_width: int = 16) -> plt.Axes:
    """Named RFM segment × cluster: share of each RFM segment's customers in each cluster.

    Parameters
    ----------
    segments : DataFrame
        :func:`~ecrm_research.segmentation.value.customer_segments` (``rfm_segment``, ``segment``).
    normalize : bool, default True
        Shares of each RFM segment (rows sum to 100 %) instead of customer counts.
    ax : Axes, optional
    name_width : int, default 16
        Characters per line of a cluster segment name (the column labels).

    Returns
    -------
    Axes
    """
    tab = pd.crosstab(segments["rfm_segment"], segments["segment"], normalize="index" if normalize else False)
    annot = (tab * 100).round(0).astype(int).astype(str) + "%" if normalize else tab.map("{:,}".format)
    tab.columns = [_wrap(c, name_width) for c in tab.columns]
    ax = _ax(ax, (min(1.05 * tab.shape[1] + 2.6, 8.0), 0.36 * tab.shape[0] + 2.4))
    sns.heatmap(tab, annot=annot.to_numpy(), fmt="", cmap="Blues", ax=ax, annot_kws={"fontsize": FONT_PT},
                cbar_kws={"fraction": 0.05, "pad": 0.02})
    _colourbar(ax, "share of RFM segment" if normalize else "customers")
    cbar = ax.collections[0].colorbar
    if normalize and cbar is not None:
        cbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("cluster segment")
    ax.set_ylabel("RFM segment")
    ax.set_title("RFM segments vs behavioural clusters" + (" (rows sum to 100%)" if normalize else ""))
    _style(ax)
    plt.setp(ax.get_xticklabels(), rotation=0)
    plt.setp(ax.get_yticklabels(), rotation=0)
    return ax


# --------------------------------------------------------------------------- interactive


def _hover_value(col: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA:
        return "—"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"
    return html.escape(str(v))


def segment_scatter_figure(features: pd.DataFrame, labels: Sequence[int] | None = None, *,
                           names: Mapping[int, str] | None = None, x: str = "frequency", y: str = "monetary",
                           log_x: bool | None = None, log_y: bool | None = None,
                           hover: Sequence[str] = ("recency_days", "frequency", "monetary", "value_tier"),
                           id_col: str = "customer_id", max_points: int = MAX_SCATTER_POINTS,
                           random_state: int = 42, title: str | None = None) -> Any:
    """An interactive scatter of customers coloured by segment, for the report's explore page.

    Hovering a point shows the customer id, the segment and the `hover` columns (by default recency,
    frequency, monetary and value tier). Customer ids and segment names are escaped (``html.escape``):
    they are the user's data and plotly renders hover text and legend entries as HTML.

    Parameters
    ----------
    features : DataFrame
        One row per customer with `id_col`, `x`, `y` and the `hover` columns that exist (missing
        ones are left out), e.g. :func:`~ecrm_research.segmentation.value.customer_segments` joined
        with the clustering features. A ``segment`` column names the segments when `labels` is None.
    labels : sequence of int, optional
        Cluster per row (default: ``features["cluster"]`` when present); `names` maps it to a name.
    names : mapping, optional
        Cluster → segment name; default: the ``segment`` column, else ``cluster <id>``.
    x, y : str
        Columns on the axes.
    log_x, log_y : bool, optional
        Log axes; ``None`` = log when every value is positive and the largest is at least 20 times
        the smallest (skewed counts and amounts).
    hover : sequence of str
        Extra columns shown on hover.
    id_col : str
        The customer id column.
    max_points : int
        At most this many customers are drawn: a random sample with `random_state` (the same sample
        for the same data and seed), taken before the rows without a drawable `x`/`y` are dropped.
    random_state : int
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scattergl`` trace per segment (named after it, cluster order, unclustered last). Rows
        whose `x` or `y` is missing, or not positive on a log axis, are not drawn; the title says how
        many customers are shown.
    """
    import plotly.graph_objects as go  # lazy: only the explore page needs plotly

    df = features.reset_index(drop=True)
    if labels is None:
        labels = df["cluster"] if "cluster" in df else np.zeros(len(df), dtype=int)
    labels = np.asarray(labels)
    if len(labels) != len(df):
        raise ValueError(f"labels has {len(labels)} values for {len(df)} customers; pass one cluster per row.")
    if names is None:
        names = (dict(zip(labels, df["segment"])) if "segment" in df else {})
    n_all = len(df)
    idx = np.arange(n_all)
    if n_all > max_points:
        idx = np.sort(np.random.default_rng(random_state).choice(n_all, max_points, replace=False))
    xs, ys = df[x].astype(float).to_numpy(), df[y].astype(float).to_numpy()

    def _log(flag, v):
        if flag is not None:
            return bool(flag)
        v = v[np.isfinite(v)]
        return bool(len(v)) and bool((v > 0).all()) and v.max() >= 20 * v.min()

    lx, ly = _log(log_x, xs), _log(log_y, ys)
    ok = np.isfinite(xs) & np.isfinite(ys) & ((xs > 0) | (not lx)) & ((ys > 0) | (not ly))
    idx = idx[ok[idx]]
    hover = [c for c in hover if c in df and c not in (id_col,)]
    fig = go.Figure()
    order = sorted(np.unique(labels), key=lambda c: (c == UNCLUSTERED, c))
    # the colours of the static figures (matplotlib's default cycle, clusters in order; unclustered grey)
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["#1f77b4"])
    colours = {cl: cycle[i % len(cycle)] for i, cl in enumerate(c for c in order if c != UNCLUSTERED)}
    colours[UNCLUSTERED] = _UNCLUSTERED_COLOUR
    for cl in order:
        rows = idx[labels[idx] == cl]
        if not len(rows):
            continue
        name = html.escape(str(names.get(cl, f"cluster {cl}")))
        sub = df.iloc[rows]
        text = []
        for _, r in sub.iterrows():
            parts = [f"<b>{html.escape(str(r[id_col]))}</b>", f"segment: {name}"]
            parts += [f"{c.replace('_', ' ')}: {_hover_value(c, r[c])}" for c in hover]
            text.append("<br>".join(parts))
        marker = {"size": 5, "opacity": 0.6, "color": colours[cl]}
        fig.add_trace(go.Scattergl(x=xs[rows], y=ys[rows], mode="markers", name=name, text=text,
                                   hovertemplate="%{text}<extra></extra>", marker=marker))
    shown = len(idx)
    note = f"{shown:,} of {n_all:,} customers" + (" (a random sample)" if n_all > max_points else "")
    fig.update_layout(
        title=(html.escape(title) if title else f"Customers by segment: {x.replace('_', ' ')} × {y.replace('_', ' ')}")
        + f"<br><sup>{note}; hover a point for the customer</sup>",
        xaxis={"title": x.replace("_", " ") + (" (log)" if lx else ""), "type": "log" if lx else "linear"},
        yaxis={"title": y.replace("_", " ") + (" (log)" if ly else ""), "type": "log" if ly else "linear"},
        legend={"title": {"text": "segment"}}, template="plotly_white", height=560,
    )
    return fig
