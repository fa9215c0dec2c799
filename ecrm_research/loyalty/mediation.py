"""Mediation analysis: indirect, direct and total effects of the drivers on the outcome through
the mediator, on composite scores and corrected for measurement error, with seeded bootstrap
percentile intervals."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .drivers import check_design
from .reliability import one_factor_reliability, one_factor_reliability_batch
from .resampling import resample_counts, resample_covs


@dataclass
class _MedDesign:
    """Roles in the mediation model."""

    drivers: list[str]
    direct: list[str]          # predictors of the outcome besides the mediator
    mediator: str
    outcome: str


def _effects_from_cov(cov: np.ndarray, names: list[str], d: _MedDesign) -> dict[tuple[str, str], Any]:
    """Indirect/direct/total effects (unstandardized and standardized) from a covariance matrix.

    ``cov`` may be one matrix ``(p, p)`` (values are floats) or a stack ``(B, p, p)`` (values
    are arrays of length B: one bootstrap resample each, solved together).
    """
    single = cov.ndim == 2
    cv = cov[None] if single else cov
    idx = {n: i for i, n in enumerate(names)}
    sd = np.sqrt(np.diagonal(cv, axis1=1, axis2=2))
    ia = [idx[x] for x in d.drivers]
    im, io = idx[d.mediator], idx[d.outcome]
    a = (np.linalg.solve(cv[:, ia][:, :, ia], cv[:, ia, im][..., None])[..., 0] if ia
         else np.zeros((cv.shape[0], 0)))
    ob = [im] + [idx[x] for x in d.direct]
    bc = np.linalg.solve(cv[:, ob][:, :, ob], cv[:, ob, io][..., None])[..., 0]
    b = bc[:, 0]
    c = {x: bc[:, 1 + j] for j, x in enumerate(d.direct)}
    zero = np.zeros(cv.shape[0])
    out = {}
    for j, x in enumerate(d.drivers):
        ind = a[:, j] * b
        dir_ = c.get(x, zero)
        s = sd[:, idx[x]] / sd[:, io]
        out.update({(x, "a"): a[:, j], (x, "a_std"): a[:, j] * sd[:, idx[x]] / sd[:, im],
                    (x, "indirect"): ind, (x, "indirect_std"): ind * s,
                    (x, "direct"): dir_, (x, "direct_std"): dir_ * s,
                    (x, "total"): ind + dir_, (x, "total_std"): (ind + dir_) * s})
    for x in d.direct:
        if x in d.drivers:
            continue
        s = sd[:, idx[x]] / sd[:, io]
        out.update({(x, "direct"): c[x], (x, "direct_std"): c[x] * s, (x, "total"): c[x],
                    (x, "total_std"): c[x] * s})
    sm = sd[:, im] / sd[:, io]
    out.update({(d.mediator, "direct"): b, (d.mediator, "direct_std"): b * sm,
                (d.mediator, "total"): b, (d.mediator, "total_std"): b * sm})
    if single:
        return {k: float(v[0]) for k, v in out.items()}
    return out


def _true_score_cov(scores: np.ndarray, item_blocks: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of the scores and each score's reliability; with item blocks, the variances are
    multiplied by the reliabilities (the true-score covariance), each from its block's complete rows."""
    cov = np.cov(scores, rowvar=False)
    rel = np.ones(cov.shape[0])
    if item_blocks is not None:
        for j, block in enumerate(item_blocks):
            blk = block[~np.isnan(block).any(axis=1)]
            rel[j] = one_factor_reliability(np.cov(blk, rowvar=False)) if blk.shape[1] > 1 else 1.0
        cov = cov.copy()
        cov[np.diag_indices_from(cov)] *= rel
    return cov, rel


@dataclass
class MediationResult:
    """Indirect, direct and total effects on the outcome with bootstrap percentile intervals.

    ``summary`` has one row per (method, driver, effect): method ('composite' = OLS on the
    construct scores; 'disattenuated' = the same paths on the scores' true-score covariance,
    i.e. corrected for each construct's reliability), driver, mediator, outcome, effect
    ('indirect', 'direct', 'total'), estimate, se, ci_lower, ci_upper (unstandardized),
    std_estimate, std_ci_lower, std_ci_upper, p_value (bootstrap, two-sided). ``reliability``:
    the constructs' one-factor reliabilities used for the correction; ``notes``: diagnostics
    (e.g. constructs that are indistinguishable once corrected).
    """

    summary: pd.DataFrame
    a_paths: pd.DataFrame
    reliability: pd.Series
    n_obs: int
    n_boot: int
    seed: int
    conf_level: float
    boot: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)

    def effects(self, effect: str = "indirect", method: str | None = "composite") -> pd.DataFrame:
        """The rows of one effect ('indirect', 'direct', 'total') for one method, or every method (None)."""
        s = self.summary
        keep = (s["effect"] == effect) & ((s["method"] == method) if method is not None else True)
        return s[keep].reset_index(drop=True)


def mediation_analysis(scores: pd.DataFrame, drivers: Sequence[str], mediator: str, outcome: str, *,
                       direct_drivers: Sequence[str] = (), items: pd.DataFrame | None = None,
                       constructs: Mapping[str, Sequence[str]] | None = None, n_boot: int = 1000,
                       seed: int = 42, conf_level: float = 0.95, progress: bool = False) -> MediationResult:
    """Indirect effects ``driver -> mediator -> outcome`` with seeded bootstrap percentile CIs.

    Model (all linear, estimated by OLS)::

        mediator = a_1 driver_1 + ... + a_k driver_k + e_m
        outcome  = b mediator + c'_1 driver_1 + ... + c'_k driver_k + (direct drivers) + e_o

    indirect(x) = a_x b, direct(x) = c'_x, total(x) = a_x b + c'_x; the mediator's total effect
    is b, a direct driver's is its c'.

    Parameters
    ----------
    scores : DataFrame
        Construct scores; respondents missing any model variable are left out.
    drivers : sequence of str
        Constructs acting through the mediator (and directly).
    mediator, outcome : str
    direct_drivers : sequence of str
        Constructs acting on the outcome only.
    items, constructs : optional
        Reverse-coded items and the construct mapping. When given, every effect is also
        estimated on the true-score covariance of the scores (variances multiplied by each
        construct's one-factor reliability, omega; errors assumed uncorrelated across constructs).
        This is path analysis with single indicators whose error variance is fixed to
        (1 - reliability) * variance (Bollen 1989, ch. 5; Cole & Preacher 2014), and it removes
        the bias that measurement error puts on composite-score regressions (a too-small b and a
        spurious direct effect of drivers correlated with an unreliable mediator).
    n_boot : int
        Bootstrap resamples of respondents (reliabilities are re-estimated in each).
    seed : int
    conf_level : float
    progress : bool
        Show a tqdm progress bar.
    """
    drivers, direct_drivers = list(drivers), list(direct_drivers)
    inp = _mediation_inputs(scores, drivers, direct_drivers, mediator, outcome, items, constructs)
    point = _estimate(inp)
    if inp.blocks is not None:
        rel, notes = _disattenuation_checks(inp)
        for note in notes:
            warnings.warn(note, stacklevel=2)
    else:
        rel, notes = np.ones(len(inp.names)), []
    keys = list(point["composite"].keys())
    boot, n_fail = _bootstrap(inp, keys, n_boot=n_boot, seed=seed, progress=progress)
    if n_fail:
        warnings.warn(f"{n_fail} of {n_boot} bootstrap resamples were singular and skipped.", stacklevel=2)
    summary = _bootstrap_summary(point, boot, keys, mediator=mediator, outcome=outcome, conf_level=conf_level)
    a_rows = [{"method": m, "driver": xn, "mediator": mediator, "estimate": point[m][(xn, "a")],
               "std_estimate": point[m][(xn, "a_std")]} for m in inp.methods for xn in drivers]
    return MediationResult(summary, pd.DataFrame(a_rows), pd.Series(rel, index=inp.names, name="reliability"),
                           len(inp.x), n_boot, seed, conf_level, boot, notes)


@dataclass
class _MediationInputs:
    """The complete-case data of a mediation model: scores (and item blocks) in the order of ``names``."""

    design: _MedDesign
    names: list[str]
    x: np.ndarray                        # construct scores, one column per name
    blocks: list[np.ndarray] | None      # each construct's items, when the disattenuated method runs

    @property
    def methods(self) -> list[str]:
        return ["composite"] + (["disattenuated"] if self.blocks is not None else [])


def _mediation_inputs(scores: pd.DataFrame, drivers: list[str], direct_drivers: list[str], mediator: str,
                      outcome: str, items: pd.DataFrame | None,
                      constructs: Mapping[str, Sequence[str]] | None) -> _MediationInputs:
    """Check the model's variables and collect the complete rows of their scores (and items)."""
    direct = list(dict.fromkeys(drivers + direct_drivers))
    design = _MedDesign(drivers, direct, mediator, outcome)
    names = list(dict.fromkeys(drivers + direct_drivers + [mediator, outcome]))
    data = check_design(scores, outcome, [n for n in names if n != outcome])
    x = data[names].to_numpy(float)
    blocks = None
    if items is not None and constructs is not None:
        it = items.loc[data.index]
        blocks = [it[list(constructs[n])].to_numpy(float) for n in names]
    return _MediationInputs(design, names, x, blocks)


def _estimate(inp: _MediationInputs, rows: np.ndarray | None = None) -> dict[str, dict]:
    """Effects by method on all rows, or on the resample ``rows`` (row indices)."""
    xs = inp.x if rows is None else inp.x[rows]
    res = {}
    cov, _ = _true_score_cov(xs, None)
    res["composite"] = _effects_from_cov(cov, inp.names, inp.design)
    if inp.blocks is not None:
        bl = inp.blocks if rows is None else [b[rows] for b in inp.blocks]
        cov_t, _ = _true_score_cov(xs, bl)
        res["disattenuated"] = _effects_from_cov(cov_t, inp.names, inp.design)
    return res


def _disattenuation_checks(inp: _MediationInputs) -> tuple[np.ndarray, list[str]]:
    """The constructs' reliabilities, and notes on constructs the correction makes indistinguishable."""
    names = inp.names
    notes: list[str] = []
    cov_t, rel = _true_score_cov(inp.x, inp.blocks)
    sd_t = np.sqrt(np.diag(cov_t))
    corr_t = cov_t / np.outer(sd_t, sd_t)
    for i, j in zip(*np.triu_indices(len(names), 1)):
        if abs(corr_t[i, j]) > 0.95:
            notes.append(f"{names[i]} and {names[j]} correlate {corr_t[i, j]:.2f} after correcting for "
                         f"measurement error: practically the same construct, so their separate "
                         f"disattenuated effects are unstable (wide intervals).")
    if np.linalg.eigvalsh(corr_t).min() <= 0:
        notes.append("The corrected correlation matrix is not positive definite; the disattenuated "
                     "estimates are not interpretable.")
    return rel, notes


def _bootstrap(inp: _MediationInputs, keys: list, *, n_boot: int, seed: int,
               progress: bool) -> tuple[dict[str, np.ndarray], int]:
    """Bootstrap estimates (one row per resample, one column per key) by method, and the number of
    singular resamples skipped (their rows stay NaN).

    Resamples are drawn in the same order as one at a time (same seed, same resamples); each
    resample costs one covariance matrix of [scores | items], and the reliabilities and path
    solves then run on the stacked matrices at once (numpy batched eigh/solve).
    """
    x, blocks = inp.x, inp.blocks
    rng = np.random.default_rng(seed)
    n = len(x)
    boot = {m: np.full((n_boot, len(keys)), np.nan) for m in inp.methods}
    it_range: Iterable[int] = range(n_boot)
    if progress:
        # lazy: under Jupyter without ipywidgets, importing tqdm.auto prints a TqdmWarning into every
        # notebook that imports this package, even when no progress bar is asked for
        from tqdm.auto import tqdm

        it_range = tqdm(it_range, desc="bootstrap", unit="resample")
    complete_blocks = blocks is not None and not any(np.isnan(b).any() for b in blocks)
    z = np.hstack([x] + list(blocks)) if complete_blocks else x
    n_fail = 0
    chunk = max(1, min(n_boot, 250, int(2e8 // (16 * n))))  # resamples at a time: draws + counts ~200 MB
    done = 0
    it = iter(it_range)
    while done < n_boot:
        ids = [i for _, i in zip(range(chunk), it)]
        if not ids:
            break
        done += len(ids)
        draws = [rng.integers(0, n, n) for _ in ids]
        counts = resample_counts(draws, n)
        zc = resample_covs(z, counts)
        try:
            est = _chunk_estimates(inp, zc, counts, complete_blocks)
            for m in inp.methods:
                boot[m][ids] = np.column_stack([est[m][k] for k in keys])
        except np.linalg.LinAlgError:  # a singular resample in the chunk: fall back to one at a time
            n_fail += _estimate_one_at_a_time(inp, ids, draws, boot, keys)
    return boot, n_fail


def _chunk_estimates(inp: _MediationInputs, zc: np.ndarray, counts: np.ndarray,
                     complete_blocks: bool) -> dict[str, dict]:
    """Effects by method for a chunk of resamples, from the covariances ``zc`` of [scores | items]
    (or of the scores alone when some items are missing) and the resamples' row counts."""
    p = inp.x.shape[1]
    covs = zc[:, :p, :p]
    est = {"composite": _effects_from_cov(covs, inp.names, inp.design)}
    if inp.blocks is not None:
        rel_b = _chunk_reliabilities(inp.blocks, zc, counts, p, complete_blocks)
        cov_t = covs.copy()
        dg = np.arange(p)
        cov_t[:, dg, dg] *= rel_b
        est["disattenuated"] = _effects_from_cov(cov_t, inp.names, inp.design)
    return est


def _chunk_reliabilities(blocks: list[np.ndarray], zc: np.ndarray, counts: np.ndarray, p: int,
                         complete_blocks: bool) -> np.ndarray:
    """One-factor reliability of each construct in each resample of a chunk: a (resamples, constructs) array."""
    n_res = len(counts)
    if complete_blocks:
        spans = np.cumsum([p] + [b.shape[1] for b in blocks])
        return np.stack([one_factor_reliability_batch(zc[:, spans[j]:spans[j + 1], spans[j]:spans[j + 1]])
                         if blocks[j].shape[1] > 1 else np.ones(n_res) for j in range(len(blocks))], axis=1)
    # each construct's reliability from its own complete rows, as _true_score_cov does
    rel_b = np.ones((n_res, len(blocks)))
    for j, blk in enumerate(blocks):
        if blk.shape[1] > 1:
            ok = ~np.isnan(blk).any(axis=1)
            rel_b[:, j] = one_factor_reliability_batch(resample_covs(blk, counts, ok))
    return rel_b


def _estimate_one_at_a_time(inp: _MediationInputs, ids: list[int], draws: list[np.ndarray],
                            boot: dict[str, np.ndarray], keys: list) -> int:
    """Fill ``boot`` for the resamples ``ids`` one by one, skipping singular ones; returns how many were skipped."""
    n_fail = 0
    for i, rows in zip(ids, draws):
        try:
            one = _estimate(inp, rows)
        except np.linalg.LinAlgError:
            n_fail += 1
            continue
        for m in inp.methods:
            boot[m][i] = [one[m][k] for k in keys]
    return n_fail


def _bootstrap_summary(point: dict[str, dict], boot: dict[str, np.ndarray], keys: list, *, mediator: str,
                       outcome: str, conf_level: float) -> pd.DataFrame:
    """One row per (method, driver, effect): point estimate, bootstrap SE, percentile intervals and p-value."""
    lo_q, hi_q = (1 - conf_level) / 2, 1 - (1 - conf_level) / 2
    col = {k: j for j, k in enumerate(keys)}
    rows_out = []
    for m, B in boot.items():
        for x_name, kind in keys:
            if kind.endswith("_std") or kind in ("a",):
                continue
            b_raw = B[:, col[(x_name, kind)]]
            b_std = B[:, col[(x_name, kind + "_std")]]
            ok = np.isfinite(b_raw)
            b_raw, b_std = b_raw[ok], b_std[ok]
            p = 2 * min((b_raw <= 0).mean(), (b_raw >= 0).mean())
            rows_out.append({
                "method": m, "driver": x_name, "mediator": mediator if kind == "indirect" else "",
                "outcome": outcome, "effect": kind,
                "estimate": point[m][(x_name, kind)], "se": float(b_raw.std(ddof=1)),
                "ci_lower": float(np.quantile(b_raw, lo_q)), "ci_upper": float(np.quantile(b_raw, hi_q)),
                "std_estimate": point[m][(x_name, kind + "_std")],
                "std_ci_lower": float(np.quantile(b_std, lo_q)), "std_ci_upper": float(np.quantile(b_std, hi_q)),
                "p_value": float(max(p, 1 / (len(b_raw) + 1)))})
    summary = pd.DataFrame(rows_out)
    order = {"indirect": 0, "direct": 1, "total": 2}
    return summary.sort_values(["method", "effect", "driver"], key=lambda s: s.map(order) if s.name == "effect"
                               else s).reset_index(drop=True)
