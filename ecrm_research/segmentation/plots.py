"""Figures of the segmentation analysis, drawn from the tidy tables of
:mod:`ecrm_research.segmentation`. Single-panel functions take ``ax=None`` and return the Axes;
multi-panel views return the Figure."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.decomposition import PCA

from .profiles import segment_name_rules


def _ax(ax, figsize=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_k_selection(k_selection: pd.DataFrame, *, figsize=(12, 3.2)) -> plt.Figure:
    """Elbow (inertia), silhouette, BIC (mixtures) and bootstrap stability against k.

    Parameters
    ----------
    k_selection : DataFrame
        ``CustomerSegmenter.k_selection_`` (``k, inertia, silhouette, bic, stability_ari,
        stability_sd, recommended``).
    """
    panels = [("inertia", "inertia (elbow)"), ("silhouette", "silhouette (higher = better)")]
    if "bic" in k_selection and k_selection["bic"].notna().any():
        panels.append(("bic", "BIC (lower = better)"))
    if "stability_ari" in k_selection and k_selection["stability_ari"].notna().any():
        panels.append(("stability_ari", "bootstrap ARI (stability)"))
    fig, axes = plt.subplots(1, len(panels), figsize=figsize)
    axes = np.atleast_1d(axes)
    best = k_selection.loc[k_selection["recommended"].astype(bool), "k"] if "recommended" in k_selection else []
    for ax, (col, title) in zip(axes, panels):
        y = k_selection[col].astype(float)
        if col == "stability_ari" and "stability_sd" in k_selection:
            ax.errorbar(k_selection["k"], y, yerr=k_selection["stability_sd"].astype(float), marker="o", capsize=3)
            ax.set_ylim(min(0, y.min() - 0.05), 1.05)
        else:
            ax.plot(k_selection["k"], y, marker="o")
        for k in best:
            ax.axvline(k, color="tab:red", ls="--", lw=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("k")
        ax.set_xticks(k_selection["k"])
    fig.tight_layout()
    return fig


def plot_rfm_heatmap(scored: pd.DataFrame, *, value: str = "monetary", ax=None) -> plt.Axes:
    """Recency score × frequency score grid: customers per cell, coloured by mean ``value``."""
    ax = _ax(ax, (6, 4.5))
    counts = pd.crosstab(scored["f_score"], scored["r_score"])
    means = scored.pivot_table(index="f_score", columns="r_score", values=value, aggfunc="mean")
    means = means.reindex(index=counts.index, columns=counts.columns)
    annot = counts.astype(int).astype(str) + "\n" + means.round(0).fillna(0).astype(int).map("{:,}".format)
    sns.heatmap(np.log10(means.clip(lower=1)), annot=annot.values, fmt="", cmap="YlGnBu", ax=ax,
                cbar_kws={"label": f"log10 mean {value}"}, annot_kws={"fontsize": 7})
    ax.invert_yaxis()
    ax.set_xlabel("R score (5 = most recent)")
    ax.set_ylabel("F score (5 = most frequent)")
    ax.set_title(f"Customers per R×F cell (top) and mean {value} (bottom)", fontsize=10)
    return ax


def plot_rfm_distributions(rfm: pd.DataFrame, *, figsize=(12, 3.2)) -> plt.Figure:
    """Histograms of recency, frequency (log) and monetary (log)."""
    fig, axes = plt.subplots(1, 3, figsize=figsize)
    axes[0].hist(rfm["recency_days"], bins=40, color="tab:blue")
    axes[0].set_xlabel("recency (days)")
    axes[1].hist(np.log10(rfm["frequency"].clip(lower=1)), bins=40, color="tab:orange")
    axes[1].set_xlabel("log10 frequency (orders)")
    axes[2].hist(np.log10(rfm["monetary"].clip(lower=1)), bins=40, color="tab:green")
    axes[2].set_xlabel("log10 monetary")
    for a in axes:
        a.set_ylabel("customers")
    fig.tight_layout()
    return fig


def _name_words(words: Sequence[str]) -> str:
    """``['high-frequency', 'mid-frequency', 'low-frequency']`` → ``'high/mid/low-frequency'``."""
    groups: dict[str, list[str]] = {}
    for w in words:
        head, _, tail = w.partition("-")
        groups.setdefault(tail, []).append(head)
    return "/".join(("/".join(h) + f"-{t}") if t else "/".join(h) for t, h in groups.items())


def plot_segment_profiles(profiles: pd.DataFrame, *, ax=None) -> plt.Axes:
    """Heat map of the feature z-scores (segment mean vs overall, in sd) per segment.

    Each column that a segment name reads is labelled with its name words (e.g. ``monetary`` with
    *high/mid/low-value*), so every word of a name can be checked against one number of the map:
    high when the number shown is ≥ +0.5, low when ≤ −0.5
    (:func:`~ecrm_research.segmentation.profiles.profile_segments`).
    """
    zcols = [c for c in profiles.columns if c.endswith("_z")]
    mat = profiles.set_index("segment")[zcols]
    rules = segment_name_rules(profiles)
    words = {c: _name_words(g["word"].tolist()) for c, g in rules.groupby("column", sort=False)}
    mat.columns = [c[:-2] + (f"\n({words[c[:-2]]})" if c[:-2] in words else "") for c in zcols]
    ax = _ax(ax, (1.1 * len(zcols) + 3, 0.5 * len(mat) + 2))
    lim = max(1.0, float(np.nanmax(np.abs(mat.to_numpy()))))
    sns.heatmap(mat, annot=True, fmt=".1f", cmap="RdBu_r", center=0, vmin=-lim, vmax=lim, ax=ax,
                cbar_kws={"label": "z (sd from overall mean)"})
    ax.set_ylabel("")
    ax.set_title("Segment profiles: how each segment differs from the average customer\n"
                 "(name words in brackets: high when z ≥ +0.5, low when z ≤ −0.5)", fontsize=10)
    return ax


def plot_segments_2d(Z: pd.DataFrame | np.ndarray, labels: Sequence[int], *, names: dict | None = None,
                     max_points: int = 5000, random_state: int = 42, ax=None) -> plt.Axes:
    """Customers on the first two principal components of the clustering features."""
    ax = _ax(ax, (6, 5))
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
    ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.set_title("Segments in two dimensions (PCA)", fontsize=10)
    return ax


def plot_rfm_cluster_crosstab(segments: pd.DataFrame, *, normalize: bool = True, ax=None) -> plt.Axes:
    """Named RFM segment × cluster: share of each RFM segment's customers in each cluster."""
    tab = pd.crosstab(segments["rfm_segment"], segments["segment"], normalize="index" if normalize else False)
    ax = _ax(ax, (1.4 * tab.shape[1] + 3, 0.45 * tab.shape[0] + 2))
    sns.heatmap(tab, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", ax=ax,
                cbar_kws={"label": "share of RFM segment" if normalize else "customers"})
    ax.set_xlabel("cluster segment")
    ax.set_ylabel("RFM segment")
    ax.set_title("RFM segments vs behavioural clusters", fontsize=10)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return ax
