"""Figures of the loyalty-driver analysis, drawn from the tidy tables of :mod:`ecrm_research.loyalty`.

Every function takes ``ax=None`` and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _ax(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else " n.s."


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
        Layout: drivers on the left, the mediator in the middle, the outcome on the right,
        direct drivers below.
    r2 : mapping, optional
        R² printed under the endogenous constructs.

    Notes
    -----
    Arrow width grows with |standardized path|; significant paths are solid (blue positive,
    red negative), non-significant ones dashed grey.
    """
    labels = dict(labels or {})
    r2 = dict(r2 or {})
    direct_only = [d for d in direct_drivers if d not in drivers]
    n_left = max(len(drivers), 1)
    ax = _ax(ax, (10, 1.2 + 1.1 * max(n_left, len(direct_only) + 2)))
    pos = {}
    for i, d in enumerate(drivers):
        pos[d] = (0.0, 1.0 - i / max(n_left - 1, 1) if n_left > 1 else 0.5)
    pos[mediator] = (0.47, 1.2)
    pos[outcome] = (0.95, 0.5)
    for i, d in enumerate(direct_only):
        pos[d] = (0.25 + 0.45 * i / max(len(direct_only) - 1, 1) if len(direct_only) > 1 else 0.5, -0.25)
    for name, (x, y) in pos.items():
        text = labels.get(name, name.replace("_", "\n"))
        if name in r2:
            text += f"\nR²={r2[name]:.2f}"
        ax.text(x, y, text, ha="center", va="center", fontsize=9, zorder=3,
                bbox=dict(boxstyle="round,pad=0.4", fc="#fff7e6" if name in (mediator, outcome) else "#eef3fb",
                          ec="#555555"))
    for _, r in paths.iterrows():
        if r["rval"] not in pos or r["lval"] not in pos:
            continue
        (x0, y0), (x1, y1) = pos[r["rval"]], pos[r["lval"]]
        est, p = float(r["std_estimate"]), float(r.get("p_value", np.nan))
        sig = np.isfinite(p) and p < alpha
        color = ("#1f5fa8" if est >= 0 else "#b22222") if sig else "#999999"
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=1,
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=0.8 + 4 * min(abs(est), 1),
                                    linestyle="-" if sig else "--", shrinkA=28, shrinkB=28,
                                    connectionstyle="arc3,rad=0.06"))
        ax.text(x0 + 0.55 * (x1 - x0), y0 + 0.55 * (y1 - y0), f"{est:.2f}{_stars(p)}", fontsize=8, ha="center",
                va="center", color=color, zorder=2, bbox=dict(fc="white", ec="none", alpha=0.8, pad=0.5))
    ax.set_xlim(-0.2, 1.15)
    ax.set_ylim(-0.45 if direct_only else -0.15, 1.4)
    ax.axis("off")
    ax.set_title("Standardized paths (* p<.05, ** p<.01, *** p<.001; dashed = not significant)", fontsize=9)
    return ax


def effects_plot(effects: pd.DataFrame, *, estimate: str = "std_estimate", lower: str = "std_ci_lower",
                 upper: str = "std_ci_upper", label: str = "driver", group: str | None = "effect", ax=None):
    """Forest plot of effects with their confidence intervals (one row per effect)."""
    df = effects.reset_index(drop=True)
    ax = _ax(ax, (7, 0.45 * len(df) + 1.2))
    ylab = [f"{r[label]} ({r[group]})" if group and group in df.columns else str(r[label]) for _, r in df.iterrows()]
    y = np.arange(len(df))[::-1]
    sig = (df[lower] > 0) | (df[upper] < 0)
    ax.errorbar(df[estimate], y, xerr=[df[estimate] - df[lower], df[upper] - df[estimate]], fmt="none",
                ecolor="#555555", capsize=3)
    ax.scatter(df[estimate], y, c=np.where(sig, "#1f5fa8", "#bbbbbb"), zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, ylab)
    ax.set_xlabel("standardized effect (95% CI)")
    return ax


def relative_importance_plot(summary: pd.DataFrame, ax=None):
    """Horizontal bars of each driver's Shapley share of R²."""
    df = summary.sort_values("shapley_r2")
    ax = _ax(ax, (6, 0.45 * len(df) + 1.2))
    ax.barh(df["predictor"], df["shapley_r2"], color="#1f5fa8")
    for y, (v, s) in enumerate(zip(df["shapley_r2"], df["share"])):
        ax.text(v, y, f" {v:.3f} ({s:.0%})", va="center", fontsize=8)
    ax.set_xlabel(f"Shapley share of R² (R² = {summary['shapley_r2'].sum():.3f})")
    ax.set_xlim(0, df["shapley_r2"].max() * 1.35)
    return ax


def ipa_map(ipa: pd.DataFrame, *, labels: Mapping[str, str] | None = None, ax=None):
    """Importance-performance map: performance (0-100) across, importance (total effect) up.

    The quadrant lines are ``ipa.attrs['performance_cut']`` / ``['importance_cut']`` (the
    levers' mean by default); each quadrant is labelled with its action.
    """
    labels = dict(labels or {})
    ax = _ax(ax, (7, 5.5))
    pc = ipa.attrs.get("performance_cut", ipa["performance"].mean())
    ic = ipa.attrs.get("importance_cut", ipa["importance"].mean())
    colors = {"concentrate here": "#b22222", "keep up": "#2e8b57", "low priority": "#999999",
              "possible overkill": "#d2a000"}
    ax.scatter(ipa["performance"], ipa["importance"], s=80, c=[colors.get(a, "k") for a in ipa["action"]], zorder=3)
    for _, r in ipa.iterrows():
        name = labels.get(r["lever"], r["lever"].replace("_", " ")) + (" (reversed)" if r.get("reversed") else "")
        ax.annotate(name, (r["performance"], r["importance"]), xytext=(5, 5), textcoords="offset points", fontsize=9)
    ax.axvline(pc, color="#555555", ls="--", lw=0.8)
    ax.axhline(ic, color="#555555", ls="--", lw=0.8)
    x0, x1 = min(ipa["performance"].min(), pc) - 5, max(ipa["performance"].max(), pc) + 5
    y0, y1 = 0, max(ipa["importance"].max(), ic) * 1.2
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    for (x, y, txt, ha) in ((x0, y1, "concentrate here", "left"), (x1, y1, "keep up", "right"),
                            (x0, 0, "low priority", "left"), (x1, 0, "possible overkill", "right")):
        ax.text(x, y, f" {txt} ", ha=ha, va="top" if y == y1 else "bottom", fontsize=9, color=colors[txt],
                style="italic")
    ax.set_xlabel("performance (mean score rescaled to 0-100)")
    ax.set_ylabel("importance (total effect on loyalty per scale point)")
    ax.set_title("Importance-performance map")
    return ax


def reliability_plot(reliability: pd.DataFrame, ax=None):
    """Alpha, composite reliability and AVE per construct against their cut-offs (0.70, 0.70, 0.50)."""
    cols = [c for c in ("cronbach_alpha", "composite_reliability", "ave") if c in reliability.columns]
    df = reliability.set_index("construct")[cols]
    ax = _ax(ax, (7, 4))
    df.plot.bar(ax=ax, width=0.75, color=["#1f5fa8", "#6a9fd8", "#d2a000"][: len(cols)])
    ax.axhline(0.7, color="#555555", ls="--", lw=0.8)
    ax.axhline(0.5, color="#d2a000", ls=":", lw=0.8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("value")
    ax.set_xlabel("")
    ax.legend(fontsize=8, loc="lower right")
    ax.tick_params(axis="x", rotation=30)
    return ax
