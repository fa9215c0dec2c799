"""The latent-variable structural equation model of the loyalty drivers (semopy, finished to the ML
optimum): paths, loadings, R², standardized direct/indirect/total effects with delta-method SEs,
fit indices and convergence, as lavaan 0.6 reports them."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .constructs import ConstructSpec
from .mlfit import MLSolution, improper_solution, standardized_vcov, two_sided_p
from .sem import fit_table, loadings_table, measurement_description, sem_data, semopy_fit


@dataclass
class SEMResult:
    """Latent-variable structural equation model, fitted to the ML optimum.

    Attributes
    ----------
    paths : DataFrame
        Structural paths: lval, rval, estimate, se, z, p_value (unstandardized, lavaan's
        expected-information SEs), std_estimate (std.all), std_se, std_z, std_p_value,
        std_ci_lower, std_ci_upper (delta method, as lavaan's ``standardizedSolution()``).
    loadings : DataFrame
        construct, item, estimate, se, p_value, std_loading, std_se.
    effects : DataFrame
        Standardized direct, indirect (via the mediator) and total effects on the outcome with
        delta-method standard errors from the joint covariance of the standardized paths.
    fit : DataFrame
        Fit indices with thresholds, then objective, gradient_norm, converged, optimiser
        (:func:`fit_table`).
    r2 : dict
        R² of the endogenous latent variables.
    parameters : DataFrame
        Every parameter (:func:`~.mlfit.parameter_table`).
    solution : MLSolution
        How the optimum was reached: the runs compared (``convergence``), the kept optimiser.
    warnings_ : list of str
        Plain-words warnings: improper solution (negative variance, standardized value beyond
        ±1, R² of practically 1), no convergence, no identification. Empty when the fit is clean.
    """

    paths: pd.DataFrame
    loadings: pd.DataFrame
    effects: pd.DataFrame
    fit: pd.DataFrame
    r2: dict[str, float]
    description: str
    n_obs: int
    model: Any = None
    parameters: pd.DataFrame = field(default_factory=pd.DataFrame)
    solution: MLSolution | None = None
    warnings_: list[str] = field(default_factory=list)

    @property
    def summary(self) -> pd.DataFrame:
        return self.paths

    @property
    def convergence(self) -> pd.DataFrame:
        """The optimiser runs compared: optimiser, objective, gradient_norm, chi2, kept."""
        return self.solution.attempts if self.solution is not None else pd.DataFrame()

    @property
    def optimiser(self) -> str:
        return self.solution.optimiser if self.solution is not None else ""

    @property
    def objective(self) -> float:
        """F_ML at the solution (2 × lavaan's ``fmin``)."""
        return self.solution.objective if self.solution is not None else math.nan

    @property
    def gradient_norm(self) -> float:
        return self.solution.gradient_norm if self.solution is not None else math.nan

    @property
    def converged(self) -> bool:
        return bool(self.solution is not None and self.solution.converged)


def structural_paths(spec: ConstructSpec) -> dict[str, list[str]]:
    """Regressions of the loyalty model: mediator ~ drivers; outcome ~ mediator + drivers + direct drivers."""
    direct = list(dict.fromkeys(spec.drivers + spec.direct_drivers))
    return {spec.mediator: list(spec.drivers), spec.outcome: [spec.mediator] + direct}


def fit_sem(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]], paths: Mapping[str, Sequence[str]], *,
            mediator: str | None = None, outcome: str | None = None, missing: str = "pairwise") -> SEMResult:
    """Fit a measurement + structural model by maximum likelihood (semopy, finished to the optimum).

    Parameters
    ----------
    items : DataFrame
        Reverse-coded items.
    constructs : mapping
        Construct -> items (each construct becomes a latent variable measured by its items).
    paths : mapping
        Endogenous construct -> its predictors, e.g. ``{'satisfaction': ['trust', 'quality'],
        'loyalty': ['satisfaction', 'trust', 'habit']}``.
    mediator, outcome : str, optional
        When given, ``effects`` decomposes each driver's effect on ``outcome`` into direct and
        indirect (through ``mediator``).
    missing : {'pairwise', 'listwise'}
        Missing answers: fit the pairwise-complete item covariance matrix with n = the smallest
        pairwise count (default; keeps the information of respondents who skipped one item), or
        only the respondents who answered every item. ``n_obs`` states the n used.

    Notes
    -----
    semopy's SLSQP can stop short of the ML optimum on ill-conditioned surveys (two constructs
    almost the same); :func:`~.mlfit.reach_ml_optimum` checks the gradient, runs a second
    optimiser and a restart, and keeps the lowest objective. With complete answers the estimates,
    standard errors (expected information), std.all with delta-method SEs, χ², CFI, TLI, RMSEA and
    SRMR are lavaan 0.6's (``sem(model, data)`` with its defaults). An improper or unconverged
    solution is warned about and listed in ``warnings_``.
    """
    desc = sem_description(constructs, paths)
    data, n = sem_data(items, constructs, missing)
    model, solution, table, stats = semopy_fit(desc, data, missing=missing)
    names = list(constructs)
    paths_df = _path_table(table, names)
    loadings = loadings_table(table, names)
    r2 = _latent_r2(table, paths)
    effects = (_sem_effects(table, standardized_vcov(model, solution), paths, mediator, outcome)
               if mediator and outcome else pd.DataFrame())
    fit = fit_table(stats, solution)
    problems = sem_warnings(table, r2, solution)
    for text in problems:
        warnings.warn(text, stacklevel=2)
    return SEMResult(paths_df, loadings, effects, fit, r2, desc, n, model, table, solution, problems)


def sem_warnings(table: pd.DataFrame, r2: Mapping[str, float], solution: MLSolution) -> list[str]:
    """Sentences for ``SEMResult.warnings_``: an improper solution, no convergence, no identification."""
    out = []
    improper = improper_solution(table)
    near_one = [f"{lv} {v:.3f}" for lv, v in r2.items() if 0.995 < v <= 1]
    if near_one:
        improper.append("R² of practically 1: " + ", ".join(near_one))
    if improper:
        out.append("The SEM has an improper solution (" + "; ".join(improper) + "), a 'Heywood case': its "
                   "estimates are unreliable. Usual causes: two constructs that are almost the same (see HTMT) "
                   "or a construct with two weak items.")
    if not solution.converged:
        why = "; ".join(solution.notes) or f"largest gradient {solution.gradient_norm:.2g} after all optimisers"
        out.append(f"The SEM fit did not converge to a minimum ({why}): do not interpret its estimates.")
    return out


def sem_description(constructs: Mapping[str, Sequence[str]], paths: Mapping[str, Sequence[str]]) -> str:
    """The semopy model description: the measurement lines, then one ``lhs ~ rhs + ...`` line per regression."""
    lines = measurement_description(constructs)
    for lhs, rhs in paths.items():
        if rhs:
            lines.append(f"{lhs} ~ " + " + ".join(rhs))
    return "\n".join(lines)


def _path_table(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The regressions among latent variables, unstandardized and standardized with their SEs."""
    st = table[(table["op"] == "~") & table["lval"].isin(names) & table["rval"].isin(names)]
    return st[["lval", "rval", "estimate", "se", "z", "p_value", "std_estimate", "std_se", "std_z", "std_p_value",
               "std_ci_lower", "std_ci_upper"]].reset_index(drop=True)


def _latent_r2(table: pd.DataFrame, endogenous: Iterable[str]) -> dict[str, float]:
    """R² of each endogenous latent variable: 1 - its standardized residual variance."""
    r2 = {}
    for lhs in endogenous:
        res_var = table[(table["op"] == "~~") & (table["lval"] == lhs) & (table["rval"] == lhs)]
        if len(res_var):
            r2[lhs] = float(1 - res_var["std_estimate"].iloc[0])
    return r2


def _sem_effects(table: pd.DataFrame, std_vcov: np.ndarray, paths: Mapping[str, Sequence[str]], mediator: str,
                 outcome: str) -> pd.DataFrame:
    """Standardized indirect (via the mediator), direct and total effects on the outcome.

    indirect = a·b, direct = c', total = a·b + c' on the std.all paths; each SE is the delta method
    sqrt(g' C g), g the gradient of the effect in the standardized paths and C their joint covariance
    (so the covariance of a and b counts, unlike Sobel's formula).
    """
    rows_of = {(r.lval, r.rval): i for i, r in enumerate(table.itertuples()) if r.op == "~"}
    s = table["std_estimate"].to_numpy(float)
    b = rows_of.get((outcome, mediator))
    drivers = list(dict.fromkeys(list(paths.get(mediator, []))
                                 + [r for r in paths.get(outcome, []) if r != mediator]))
    rows = []
    for x in drivers:
        a, c = rows_of.get((mediator, x)), rows_of.get((outcome, x))
        parts = []
        if a is not None and b is not None:
            parts.append(("indirect", s[a] * s[b], {a: s[b], b: s[a]}))
        if c is not None:
            parts.append(("direct", s[c], {c: 1.0}))
        if parts:
            grad: dict[int, float] = {}
            for _, _, g in parts:
                for k, v in g.items():
                    grad[k] = grad.get(k, 0.0) + v
            parts.append(("total", sum(p[1] for p in parts), grad))
        rows += [_effect_row(x, eff, est, g, std_vcov) for eff, est, g in parts]
    if b is not None:
        rows.append(_effect_row(mediator, "total", s[b], {b: 1.0}, std_vcov))
    return pd.DataFrame(rows)


def _effect_row(driver: str, effect: str, est: float, grad: Mapping[int, float], std_vcov: np.ndarray) -> dict:
    """One effect with its delta-method SE, 95% interval and two-sided p-value."""
    idx = np.array(list(grad), int)
    g = np.array(list(grad.values()), float)
    se = float(np.sqrt(max(g @ std_vcov[np.ix_(idx, idx)] @ g, 0.0)))
    z = est / se if se > 0 else math.nan
    return {"driver": driver, "effect": effect, "std_estimate": float(est), "std_se": se,
            "ci_lower": est - 1.96 * se, "ci_upper": est + 1.96 * se,
            "p_value": float(two_sided_p(z)) if np.isfinite(z) else math.nan}
