"""Reliability and validity of the scales: Cronbach's alpha, item analysis and review, composite
reliability and AVE, one-factor reliability (omega), HTMT and the Fornell-Larcker table."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


def cronbach_alpha(items: pd.DataFrame) -> float:
    """Raw Cronbach's alpha on complete rows.

    Notes
    -----
    alpha = k / (k - 1) * (1 - sum(var(item_i)) / var(sum of items)), variances with ddof=1.
    """
    x = items.dropna().to_numpy(float)
    k = x.shape[1]
    if k < 2:
        return float("nan")
    total = x.sum(axis=1).var(ddof=1)
    return float(k / (k - 1) * (1 - x.var(axis=0, ddof=1).sum() / total)) if total > 0 else float("nan")


def standardized_alpha(items: pd.DataFrame) -> float:
    """Standardized alpha (alpha of the z-scored items) on complete rows.

    Notes
    -----
    alpha_std = k r / (1 + (k - 1) r) with r the mean inter-item correlation.
    """
    x = items.dropna()
    k = x.shape[1]
    if k < 2:
        return float("nan")
    r = x.corr().to_numpy()
    rbar = (r.sum() - k) / (k * (k - 1))
    return float(k * rbar / (1 + (k - 1) * rbar))


@dataclass
class ItemAnalysis:
    """Per-construct and per-item reliability.

    ``summary``: construct, n_items, n_complete, cronbach_alpha, standardized_alpha,
    mean_inter_item_r. ``items``: construct, item, mean, sd, item_total_r (corrected: item vs the
    sum of the other items), alpha_if_deleted, flag.
    """

    summary: pd.DataFrame
    items: pd.DataFrame


def item_analysis(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]], *,
                  min_item_total: float = 0.30) -> ItemAnalysis:
    """Cronbach's alpha (raw and standardized), corrected item-total correlations and
    alpha-if-item-deleted, per construct on the respondents who answered all its items.

    Parameters
    ----------
    items : DataFrame
        Reverse-coded items (:attr:`ScaleScores.items`).
    constructs : mapping
        Construct -> items.
    min_item_total : float
        Items whose corrected item-total correlation is below this (0.30, Nunnally & Bernstein
        1994) are flagged.
    """
    srows, irows = [], []
    for name, its in constructs.items():
        x = items[list(its)].dropna()
        k = len(its)
        a = cronbach_alpha(x)
        sa = standardized_alpha(x)
        r = x.corr().to_numpy()
        srows.append({"construct": name, "n_items": k, "n_complete": len(x), "cronbach_alpha": a,
                      "standardized_alpha": sa,
                      "mean_inter_item_r": float((r.sum() - k) / (k * (k - 1))) if k > 1 else np.nan})
        for it in its:
            rest = [j for j in its if j != it]
            itr = float(np.corrcoef(x[it], x[rest].sum(axis=1))[0, 1]) if rest else np.nan
            aid = cronbach_alpha(x[rest]) if len(rest) >= 2 else np.nan
            flags = []
            if np.isfinite(itr) and itr < min_item_total:
                flags.append(f"item-total r {itr:.2f} < {min_item_total:.2f}")
            if np.isfinite(aid) and aid > a + 0.01:
                flags.append(f"alpha rises to {aid:.3f} without it")
            irows.append({"construct": name, "item": it, "mean": float(x[it].mean()), "sd": float(x[it].std()),
                          "item_total_r": itr, "alpha_if_deleted": aid, "flag": "; ".join(flags)})
    return ItemAnalysis(pd.DataFrame(srows), pd.DataFrame(irows))


def review_items(analysis: ItemAnalysis, loadings: pd.DataFrame | None = None, *, min_item_total: float = 0.30,
                 min_loading: float = 0.40, min_items: int = 2) -> pd.DataFrame:
    """Decide, with reasons, which items to keep.

    An item is dropped when its corrected item-total correlation is below ``min_item_total``
    *and* alpha rises without it (or its standardized CFA loading is below ``min_loading``),
    as long as its construct keeps ``min_items`` items. Everything else is kept.

    Returns
    -------
    DataFrame
        construct, item, item_total_r, alpha_if_deleted, loading, decision ('keep'/'drop'), reason.
    """
    alphas = analysis.summary.set_index("construct")["cronbach_alpha"]
    lmap = {} if loadings is None else loadings.set_index("item")["std_loading"].to_dict()
    rows = []
    for name, grp in analysis.items.groupby("construct", sort=False):
        n_left = len(grp)
        for _, r in grp.sort_values("item_total_r").iterrows():
            lam = lmap.get(r["item"], np.nan)
            weak_itr = np.isfinite(r["item_total_r"]) and r["item_total_r"] < min_item_total
            alpha_up = np.isfinite(r["alpha_if_deleted"]) and r["alpha_if_deleted"] > alphas[name]
            weak_lam = np.isfinite(lam) and lam < min_loading
            if weak_itr and (alpha_up or weak_lam) and n_left > min_items:
                decision = "drop"
                reason = (f"corrected item-total r = {r['item_total_r']:.2f} < {min_item_total:.2f}"
                          + (f"; alpha rises from {alphas[name]:.3f} to {r['alpha_if_deleted']:.3f} without it"
                             if alpha_up else "")
                          + (f"; CFA loading {lam:.2f} < {min_loading:.2f}" if weak_lam else ""))
                n_left -= 1
            else:
                decision = "keep"
                if weak_itr or weak_lam:
                    reason = "weak item kept: its construct would have too few items left" \
                        if n_left <= min_items else "weak item kept: alpha would not improve without it"
                else:
                    reason = (f"item-total r = {r['item_total_r']:.2f} >= {min_item_total:.2f}"
                              if np.isfinite(r["item_total_r"]) else "two-item construct: kept")
            rows.append({"construct": name, "item": r["item"], "item_total_r": r["item_total_r"],
                         "alpha_if_deleted": r["alpha_if_deleted"], "loading": lam,
                         "decision": decision, "reason": reason})
    out = pd.DataFrame(rows)
    order = {it: i for i, it in enumerate(analysis.items["item"])}
    return out.sort_values("item", key=lambda s: s.map(order)).reset_index(drop=True)


def apply_item_review(constructs: Mapping[str, Sequence[str]], review: pd.DataFrame) -> dict[str, list[str]]:
    """Constructs without the items that :func:`review_items` dropped."""
    dropped = set(review.loc[review["decision"] == "drop", "item"])
    return {k: [i for i in v if i not in dropped] for k, v in constructs.items()}


def composite_reliability(loadings: pd.DataFrame) -> pd.DataFrame:
    """Composite reliability and AVE from standardized loadings.

    Parameters
    ----------
    loadings : DataFrame
        ``construct, item, std_loading`` (e.g. :attr:`MeasurementModel.loadings`).

    Notes
    -----
    CR = (sum l)^2 / ((sum l)^2 + sum(1 - l^2)) (Joreskog's rho; >= 0.70 wanted);
    AVE = mean(l^2) (Fornell & Larcker 1981; >= 0.50 wanted).
    """
    rows = []
    for name, g in loadings.groupby("construct", sort=False):
        lam = g["std_loading"].to_numpy(float)
        s = lam.sum() ** 2
        rows.append({"construct": name, "composite_reliability": float(s / (s + (1 - lam ** 2).sum())),
                     "ave": float((lam ** 2).mean())})
    return pd.DataFrame(rows)


def htmt(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Heterotrait-monotrait ratio of correlations (Henseler, Ringle & Sarstedt 2015).

    Notes
    -----
    HTMT_ij = mean(r between items of i and items of j) /
    sqrt(mean(r among items of i) * mean(r among items of j)); item correlations are pairwise.
    Values above 0.85 (strict) or 0.90 (lenient) signal poor discriminant validity.
    Single-item constructs give NaN.
    """
    r = items.corr()
    names = list(constructs)
    out = pd.DataFrame(np.nan, index=names, columns=names)

    def mono(its: Sequence[str]) -> float:
        k = len(its)
        if k < 2:
            return np.nan
        sub = r.loc[list(its), list(its)].to_numpy()
        return float((sub.sum() - np.trace(sub)) / (k * (k - 1)))

    m = {n: mono(constructs[n]) for n in names}
    for a, b in itertools.combinations(names, 2):
        het = float(r.loc[list(constructs[a]), list(constructs[b])].to_numpy().mean())
        val = het / math.sqrt(m[a] * m[b]) if m[a] > 0 and m[b] > 0 else np.nan
        out.loc[a, b] = out.loc[b, a] = val
    for n in names:
        out.loc[n, n] = 1.0
    out.index.name = "construct"
    return out


def fornell_larcker(ave: pd.Series, latent_corr: pd.DataFrame) -> pd.DataFrame:
    """Fornell-Larcker table: sqrt(AVE) on the diagonal, latent correlations off it.

    Discriminant validity holds for a construct when its sqrt(AVE) exceeds its absolute
    correlation with every other construct; the extra column ``fl_ok`` says so.
    """
    names = list(latent_corr.index)
    tab = latent_corr.loc[names, names].copy().astype(float)
    ok = []
    for n in names:
        tab.loc[n, n] = math.sqrt(ave[n])
        others = latent_corr.loc[n, [m for m in names if m != n]].abs()
        ok.append(bool((others < math.sqrt(ave[n])).all()))
    tab["fl_ok"] = ok
    tab.index.name = "construct"
    return tab


def one_factor_reliability(cov: np.ndarray, n_iter: int = 50) -> float:
    """Reliability of the unit-weighted sum of items under a one-factor (congeneric) model.

    Loadings from iterated principal-axis factoring of the item correlations; omega =
    (sum l_i s_i)^2 / var(sum). Two-item constructs use alpha (the one-factor model is not
    identified with two items).
    """
    k = cov.shape[0]
    if k == 1:
        return 1.0
    total = cov.sum()
    if k == 2:
        return float(2 * (1 - np.trace(cov) / total))
    sd = np.sqrt(np.diag(cov))
    r = cov / np.outer(sd, sd)
    h = 1 - 1 / np.diag(np.linalg.pinv(r))  # SMC starting communalities
    for _ in range(n_iter):
        rr = r.copy()
        np.fill_diagonal(rr, h)
        w, v = np.linalg.eigh(rr)
        lam = v[:, -1] * math.sqrt(max(w[-1], 0))
        h_new = np.clip(lam ** 2, 1e-4, 0.999)
        if np.max(np.abs(h_new - h)) < 1e-6:
            h = h_new
            break
        h = h_new
    lam = np.abs(lam)
    return float(min((lam * sd).sum() ** 2 / total, 1.0))


def one_factor_reliability_batch(covs: np.ndarray, n_iter: int = 50) -> np.ndarray:
    """:func:`one_factor_reliability` for a stack of covariance matrices ``(B, k, k)``.

    The same iteration run on all matrices at once (stacked ``eigh``); a matrix stops
    iterating when it converges, exactly as the one-matrix version does.
    """
    B, k = covs.shape[0], covs.shape[-1]
    if k == 1:
        return np.ones(B)
    total = covs.sum(axis=(1, 2))
    if k == 2:
        return 2 * (1 - np.trace(covs, axis1=1, axis2=2) / total)
    sd = np.sqrt(np.diagonal(covs, axis1=1, axis2=2))
    r = covs / (sd[:, :, None] * sd[:, None, :])
    h = 1 - 1 / np.diagonal(np.linalg.pinv(r), axis1=1, axis2=2)
    lam = np.zeros((B, k))
    active = np.ones(B, dtype=bool)
    diag = np.arange(k)
    for _ in range(n_iter):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        rr = r[idx].copy()
        rr[:, diag, diag] = h[idx]
        w, v = np.linalg.eigh(rr)
        lam_i = v[:, :, -1] * np.sqrt(np.maximum(w[:, -1], 0))[:, None]
        h_new = np.clip(lam_i ** 2, 1e-4, 0.999)
        conv = np.max(np.abs(h_new - h[idx]), axis=1) < 1e-6
        h[idx] = h_new
        lam[idx] = lam_i
        active[idx[conv]] = False
    lam = np.abs(lam)
    return np.minimum((lam * sd).sum(axis=1) ** 2 / total, 1.0)
