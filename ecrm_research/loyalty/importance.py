"""Which levers matter most: relative importance (Shapley decomposition of R²), the
importance-performance map and the ranking of levers by expected loyalty gain."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .drivers import check_design
from .scoring import ScaleScores


def _r2_from_corr(r: np.ndarray, subset: Sequence[int], y: int) -> float:
    """R² of variable ``y`` on the variables ``subset``, from their correlation matrix ``r``."""
    if not subset:
        return 0.0
    s = list(subset)
    rxy = r[s, y]
    return float(rxy @ np.linalg.solve(r[np.ix_(s, s)], rxy))


@dataclass
class RelativeImportance:
    """Shapley decomposition (general dominance weights) of R².

    ``summary``: predictor, shapley_r2, share (of R²), rank. ``by_size``: conditional dominance,
    the mean R² gain of each predictor when added to subsets of each size. ``r2``: full-model R².
    """

    summary: pd.DataFrame
    by_size: pd.DataFrame
    r2: float
    method: str


def relative_importance(scores: pd.DataFrame, outcome: str, predictors: Sequence[str], *,
                        max_exact: int = 10, n_permutations: int = 2000, seed: int = 42) -> RelativeImportance:
    """Dominance analysis / Shapley value decomposition of R² (Budescu 1993; Lindeman, Merenda & Gold 1980).

    Notes
    -----
    phi_j = sum over subsets S of the other predictors of |S|! (p - |S| - 1)! / p! *
    (R²(S + j) - R²(S)); the phi_j sum to the full R² exactly. All 2^p subsets are evaluated
    for p <= ``max_exact`` (R² from the correlation matrix); beyond that, ``n_permutations``
    random orders (seeded) estimate the values, which then still sum to R² exactly.
    """
    predictors = list(predictors)
    data = check_design(scores, outcome, predictors)
    cols = predictors + [outcome]
    r = np.corrcoef(data[cols].to_numpy(float), rowvar=False)
    p, y = len(predictors), len(predictors)
    full = _r2_from_corr(r, list(range(p)), y)
    if p <= max_exact:
        method = "exact (all subsets)"
        phi, gains, counts = _shapley_exact(r, p, y)
    else:
        method = f"Monte Carlo ({n_permutations} permutations)"
        phi, gains, counts = _shapley_permutations(r, p, y, n_permutations=n_permutations, seed=seed)
    summary = pd.DataFrame({"outcome": outcome, "predictor": predictors, "shapley_r2": phi,
                            "share": phi / full if full > 0 else np.nan})
    summary["rank"] = summary["shapley_r2"].rank(ascending=False, method="min").astype(int)
    by_size = pd.DataFrame(np.where(counts > 0, gains / np.maximum(counts, 1), np.nan), index=predictors,
                           columns=[f"size_{k}" for k in range(p)])
    by_size.index.name = "predictor"
    return RelativeImportance(summary.sort_values("rank").reset_index(drop=True), by_size, full, method)


def _shapley_exact(r: np.ndarray, p: int, y: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shapley values of R² over all 2^p subsets, with the R² gains and counts by subset size."""
    phi = np.zeros(p)
    gains = np.zeros((p, p))
    counts = np.zeros((p, p))
    cache = {(): 0.0}
    for size in range(1, p + 1):
        for s in itertools.combinations(range(p), size):
            cache[s] = _r2_from_corr(r, s, y)
    for j in range(p):
        others = [i for i in range(p) if i != j]
        for size in range(p):
            w = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
            for s in itertools.combinations(others, size):
                g = cache[tuple(sorted(s + (j,)))] - cache[s]
                phi[j] += w * g
                gains[j, size] += g
                counts[j, size] += 1
    return phi, gains, counts


def _shapley_permutations(r: np.ndarray, p: int, y: int, *, n_permutations: int,
                          seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shapley values of R² estimated from random orders (seeded), with the R² gains and counts by size."""
    phi = np.zeros(p)
    gains = np.zeros((p, p))
    counts = np.zeros((p, p))
    rng = np.random.default_rng(seed)
    for _ in range(n_permutations):
        order = rng.permutation(p)
        prev = 0.0
        for size, j in enumerate(order):
            cur = _r2_from_corr(r, sorted(order[: size + 1]), y)
            phi[j] += cur - prev
            gains[j, size] += cur - prev
            counts[j, size] += 1
            prev = cur
    phi /= n_permutations
    return phi, gains, counts


#: Quadrant of the importance-performance map (high importance?, high performance?) -> (action, why).
QUADRANT_ACTIONS = {
    (True, False): ("concentrate here", "matters a lot for loyalty but customers rate it low"),
    (True, True): ("keep up", "matters a lot and is rated high"),
    (False, False): ("low priority", "matters little and is rated low"),
    (False, True): ("possible overkill", "rated high but matters little for loyalty"),
}


def importance_performance(total_effects: pd.DataFrame, scores: ScaleScores, *, cut: str = "mean") -> pd.DataFrame:
    """Importance-performance map of the levers.

    Parameters
    ----------
    total_effects : DataFrame
        ``driver, estimate`` (+ ``ci_lower, ci_upper``): unstandardized total effects on the
        outcome (rows with ``effect == 'total'`` of :attr:`MediationResult.summary`).
    scores : ScaleScores
        For performance: the mean construct score rescaled to 0-100.
    cut : {'mean', 'median'}
        Where the quadrant lines are drawn (over the levers).

    Returns
    -------
    DataFrame
        lever, total_effect, ci_lower, ci_upper, importance (= |total effect|), performance
        (0-100, oriented so that higher is better: a lever that *lowers* loyalty, such as
        perceived cost, is shown as 100 - its rescaled mean, "low cost = good"), reversed,
        quadrant, action, why, expected_gain_per_point.

    Notes
    -----
    Importance and expected gain are unstandardized total effects: loyalty points per one
    scale point of the lever (all constructs share one answer scale). For a lever with a
    negative effect, the gain is obtained by *lowering* it by one point.
    """
    te = total_effects.copy()
    rows = []
    for _, r in te.iterrows():
        lever = r["driver"]
        perf = float(scores.rescale(scores.scores[lever].mean()))
        rev = r["estimate"] < 0
        rows.append({"lever": lever, "total_effect": r["estimate"], "ci_lower": r.get("ci_lower", np.nan),
                     "ci_upper": r.get("ci_upper", np.nan), "importance": abs(r["estimate"]),
                     "performance": 100 - perf if rev else perf, "reversed": bool(rev),
                     "expected_gain_per_point": abs(r["estimate"])})
    out = pd.DataFrame(rows)
    agg = np.mean if cut == "mean" else np.median
    imp_cut, perf_cut = agg(out["importance"]), agg(out["performance"])
    q = [QUADRANT_ACTIONS[(i >= imp_cut, pf >= perf_cut)] for i, pf in zip(out["importance"], out["performance"])]
    out["quadrant"] = [("high" if i >= imp_cut else "low") + " importance, " + ("high" if pf >= perf_cut else "low")
                       + " performance" for i, pf in zip(out["importance"], out["performance"])]
    out["action"] = [a for a, _ in q]
    out["why"] = [w for _, w in q]
    out.attrs.update(importance_cut=float(imp_cut), performance_cut=float(perf_cut), cut=cut)
    return out.sort_values("importance", ascending=False).reset_index(drop=True)


def lever_ranking(ipa: pd.DataFrame, *, outcome: str = "loyalty", scale: tuple[float, float] | None = None,
                  labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Levers ranked by expected loyalty gain per one-point improvement, with a sentence each."""
    labels = dict(labels or {})
    out = ipa.sort_values("expected_gain_per_point", ascending=False).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    rng = f" (on the {scale[0]:g}-{scale[1]:g} scale)" if scale else ""
    sig = (out["ci_lower"] > 0) | (out["ci_upper"] < 0)
    out["significant"] = sig
    advice = []
    for r, s in zip(out.itertuples(), sig):
        lo, hi = (-r.ci_upper, -r.ci_lower) if r.reversed else (r.ci_lower, r.ci_upper)
        name = labels.get(r.lever, r.lever.replace("_", " "))
        advice.append(f"{'Lowering' if r.reversed else 'Raising'} {name} by one point{rng} is expected to "
                      f"raise {outcome} by {r.expected_gain_per_point:.3f} points (95% CI {lo:.3f} to {hi:.3f}"
                      + ("" if s else ", not distinguishable from 0") + f"); quadrant: {r.action}.")
    out["advice"] = advice
    return out
