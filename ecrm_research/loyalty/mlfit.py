"""Maximum likelihood that reaches the optimum, and lavaan's inference on top of a semopy model.

semopy's default optimiser (SLSQP) can stop before the ML optimum when two constructs are
almost the same (an ill-conditioned likelihood with a flat valley): the objective is then only
a few thousandths of a χ² point too high, but structural paths can be off by several hundredths,
sometimes with the wrong sign, and nothing says so. This module

* checks and finishes the fit (:func:`reach_ml_optimum`): the gradient at semopy's solution, a
  second optimiser (L-BFGS-B) from there, a restart from the starting values, and Fisher scoring
  (Newton steps with the expected information) to polish each; the lowest ML objective wins and
  its gradient norm says whether it is a minimum;
* computes what lavaan 0.6 reports with its defaults (``estimator="ML"``, ``likelihood="normal"``,
  ``information="expected"``, ``se="standard"``): standard errors from the expected information
  (:func:`parameter_table`), the completely standardized solution with delta-method standard
  errors like ``standardizedSolution()`` (:func:`standardized_solution`), and χ², CFI, TLI,
  RMSEA (with N, and with N − 1) and SRMR (:func:`fit_statistics`);
* names improper solutions (:func:`improper_solution`): negative variances (Heywood cases) and
  standardized values beyond ±1.

The objective is F_ML = log|Σ| + tr(S Σ⁻¹) − log|S| − p (semopy's ``MLW``), which is 2 × lavaan's
``fmin``; χ² = N · F_ML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

#: A solution is taken as converged when no free parameter's gradient of F_ML exceeds this.
GRADIENT_TOLERANCE = 1e-5
#: Objectives within this of the lowest count as the same minimum (the earlier optimiser is kept).
OBJECTIVE_TIE = 1e-10


@dataclass
class MLSolution:
    """The kept ML solution of a semopy model and how it was reached.

    Attributes
    ----------
    params : ndarray
        Free parameters at the solution (semopy's order, ``model.param_vals``).
    objective : float
        F_ML at the solution (= 2 × lavaan's ``fmin``).
    gradient_norm : float
        Largest absolute gradient of F_ML over the free parameters.
    optimiser : str
        The run that reached the kept solution.
    converged : bool
        ``gradient_norm <= GRADIENT_TOLERANCE`` and the expected information is positive definite.
    attempts : DataFrame
        One row per run: optimiser, objective, gradient_norm, chi2 (N · objective), kept.
    information : ndarray
        Expected information per observation at the solution (lavaan's ``information="expected"``).
    n_obs : int
    """

    params: np.ndarray
    objective: float
    gradient_norm: float
    optimiser: str
    converged: bool
    attempts: pd.DataFrame
    information: np.ndarray
    n_obs: int
    notes: list[str] = field(default_factory=list)

    @property
    def vcov(self) -> np.ndarray:
        """Covariance of the free parameters: the inverse expected information over N."""
        return np.linalg.pinv(self.information) / self.n_obs


def objective(model: Any, x: np.ndarray) -> float:
    """F_ML at ``x`` (semopy's ``MLW``; infinite when Σ is not positive definite)."""
    return float(model.obj_mlw(np.asarray(x, float)))


def gradient(model: Any, x: np.ndarray) -> np.ndarray:
    """Gradient of F_ML at ``x``."""
    return np.asarray(model.grad_mlw(np.asarray(x, float)), float)


def unit_information(model: Any, x: np.ndarray) -> np.ndarray:
    """Expected information per observation of the free parameters at ``x``.

    Notes
    -----
    I_ij = ½ tr(Σ⁻¹ ∂Σ/∂θ_i Σ⁻¹ ∂Σ/∂θ_j) (normal theory, Σ the model-implied covariance: lavaan's
    ``information="expected"`` with a structured h1). The expected Hessian of F_ML is 2 I, and the
    covariance of the estimates is I⁻¹ / N.
    """
    model.update_matrices(np.asarray(x, float))
    sigma, (m, c) = model.calc_sigma()
    inv = np.linalg.inv(sigma)
    a = np.stack([inv @ np.asarray(g, float) for g in model.calc_sigma_grad(m, c)])
    return 0.5 * np.einsum("iab,jba->ij", a, a)


def fisher_scoring(model: Any, x: np.ndarray, *, max_iter: int = 100, tol: float = 1e-12) -> np.ndarray:
    """Newton steps with the expected Hessian 2 I (Fisher scoring) and step halving, from ``x``.

    Stops when the largest gradient is below ``tol``, when no step lowers F_ML, or after ``max_iter``.
    Near the optimum it converges fast even in the flat valleys where quasi-Newton methods stall.
    """
    x = np.asarray(x, float).copy()
    f = objective(model, x)
    for _ in range(max_iter):
        g = gradient(model, x)
        if not np.all(np.isfinite(g)) or np.abs(g).max() < tol:
            break
        try:
            step = np.linalg.solve(2 * unit_information(model, x), g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(2 * unit_information(model, x), g, rcond=None)[0]
        t, improved = 1.0, False
        while t > 1e-8:
            cand = x - t * step
            fc = objective(model, cand)
            if np.isfinite(fc) and fc <= f:
                improved = fc < f or np.abs(gradient(model, cand)).max() < np.abs(g).max()
                x, f = (cand, fc) if improved else (x, f)
                break
            t /= 2
        if not improved:
            break
    return x


def _lbfgs(model: Any, x0: np.ndarray) -> np.ndarray:
    """Unbounded L-BFGS-B from ``x0`` (lavaan does not bound variances either), tight tolerances."""
    res = optimize.minimize(lambda z: objective(model, z), np.asarray(x0, float), jac=lambda z: gradient(model, z),
                            method="L-BFGS-B", options={"maxiter": 10_000, "maxcor": 30, "ftol": 1e-15,
                                                        "gtol": 1e-10})
    return np.asarray(res.x, float)


def reach_ml_optimum(model: Any, start: np.ndarray, n_obs: int) -> MLSolution:
    """Check a fitted semopy model's solution and finish the fit where semopy stopped early.

    Runs, all on the ML objective F_ML:

    1. ``semopy SLSQP``: semopy's own solution (``model.param_vals``) as it stands;
    2. ``L-BFGS-B from SLSQP, then Fisher scoring``: a second optimiser from that solution;
    3. ``L-BFGS-B from the starting values, then Fisher scoring``: a restart.

    The solution with the lowest objective is kept (ties within ``OBJECTIVE_TIE``: the earlier run)
    and loaded into ``model``. It counts as converged when its largest gradient is at most
    ``GRADIENT_TOLERANCE`` and the expected information is positive definite (identified).
    """
    runs: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("semopy SLSQP", lambda: np.asarray(model.param_vals, float).copy()),
        ("L-BFGS-B from SLSQP, then Fisher scoring",
         lambda: fisher_scoring(model, _lbfgs(model, np.asarray(model.param_vals, float)))),
        ("L-BFGS-B from the starting values, then Fisher scoring",
         lambda: fisher_scoring(model, _lbfgs(model, start))),
    ]
    xs, rows = [], []
    slsqp = np.asarray(model.param_vals, float).copy()
    for name, run in runs:
        model.update_matrices(slsqp)
        model.param_vals = slsqp.copy()
        x = run()
        f = objective(model, x)
        g = gradient(model, x)
        xs.append(x)
        rows.append({"optimiser": name, "objective": f, "gradient_norm": float(np.abs(g).max()) if len(g) else 0.0,
                     "chi2": n_obs * f})
    attempts = pd.DataFrame(rows)
    fmin = attempts["objective"].min()
    best = int(np.flatnonzero(attempts["objective"].to_numpy() <= fmin + OBJECTIVE_TIE)[0])
    attempts["kept"] = np.arange(len(attempts)) == best
    x = xs[best]
    info = unit_information(model, x)
    model.param_vals = x.copy()
    model.update_matrices(x)
    notes = []
    eig = np.linalg.eigvalsh(info).min() if len(info) else 1.0
    if eig <= 1e-10 * max(1.0, np.abs(info).max()):
        notes.append("the expected information is singular: the model is not identified (standard errors invalid)")
    g_norm = float(attempts.loc[best, "gradient_norm"])
    return MLSolution(x, float(attempts.loc[best, "objective"]), g_norm, str(attempts.loc[best, "optimiser"]),
                      bool(g_norm <= GRADIENT_TOLERANCE and not notes), attempts, info, int(n_obs), notes)


# --- the parameter table ---------------------------------------------------------------------------------------

def _locations(model: Any) -> list[dict]:
    """One entry per parameter cell: lval, op, rval, semopy parameter name, free index, matrix, cell."""
    mats = [("beta", "~", model.mx_beta, model.names_beta), ("lambda", "~", model.mx_lambda, model.names_lambda),
            ("psi", "~~", model.mx_psi, model.names_psi), ("theta", "~~", model.mx_theta, model.names_theta)]
    free = [k for k, p in model.parameters.items() if p.active]
    out = []
    for key, op, mx, names in mats:
        for name, param in model.parameters.items():
            for loc in param.locations:
                if loc.matrix is mx:
                    i, j = loc.indices
                    out.append({"lval": names[0][i], "op": op, "rval": names[1][j], "param": name,
                                "free": free.index(name) if param.active else -1, "matrix": key, "cell": (i, j)})
    return out


def _std_factors(model: Any) -> dict[str, float]:
    """Model-implied standard deviation of every variable: inner (latent) from C Ψ C', observed from Σ."""
    sigma, (_, c) = model.calc_sigma()
    inner = c @ model.mx_psi @ c.T
    sd = dict(zip(model.names_psi[0], np.sqrt(np.clip(np.diag(inner), 0, None))))
    sd.update(zip(model.names_theta[0], np.sqrt(np.clip(np.diag(sigma), 0, None))))
    return sd


def _values_and_std(model: Any, locs: list[dict], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's value and its completely standardized value (lavaan's ``std.all``) at ``x``."""
    model.update_matrices(np.asarray(x, float))
    mats = {"beta": model.mx_beta, "lambda": model.mx_lambda, "psi": model.mx_psi, "theta": model.mx_theta}
    sd = _std_factors(model)
    vals = np.array([mats[loc["matrix"]][loc["cell"]] for loc in locs], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        std = np.array([v * sd[loc["rval"]] / sd[loc["lval"]] if loc["op"] == "~"
                        else v / (sd[loc["lval"]] * sd[loc["rval"]]) for v, loc in zip(vals, locs)], float)
    return vals, std


def standardization_jacobian(model: Any, locs: list[dict], x: np.ndarray, *, rel_step: float = 1e-6) -> np.ndarray:
    """Jacobian of the standardized values of the cells ``locs`` with respect to the free parameters
    (central differences, step ``rel_step · max(1, |x_k|)``)."""
    x = np.asarray(x, float)
    jac = np.zeros((len(locs), len(x)))
    for k in range(len(x)):
        h = rel_step * max(1.0, abs(x[k]))
        up, dn = x.copy(), x.copy()
        up[k] += h
        dn[k] -= h
        jac[:, k] = (_values_and_std(model, locs, up)[1] - _values_and_std(model, locs, dn)[1]) / (2 * h)
    model.update_matrices(x)
    return jac


def two_sided_p(z: np.ndarray | float) -> np.ndarray:
    """Two-sided normal p-value 2·(1 − Φ(|z|)) from the upper tail (exact down to ~1e-300, never a rounded 0)."""
    return 2 * stats.norm.sf(np.abs(np.asarray(z, float)))


def standardized_vcov(model: Any, solution: MLSolution) -> np.ndarray:
    """Delta-method covariance J V J' of the standardized values of every cell of :func:`parameter_table`
    (same row order), J the Jacobian of the standardization map and V = I⁻¹/N."""
    jac = standardization_jacobian(model, _locations(model), solution.params)
    return jac @ solution.vcov @ jac.T


def parameter_table(model: Any, solution: MLSolution, *, conf_level: float = 0.95) -> pd.DataFrame:
    """lavaan's ``parameterEstimates()`` and ``standardizedSolution()`` side by side.

    Columns: lval, op, rval (semopy's orientation: ``item ~ construct`` is a loading,
    ``construct ~ construct`` a regression, ``~~`` a (residual) (co)variance), free,
    estimate, se, z, p_value, ci_lower, ci_upper (unstandardized, expected-information SEs),
    std_estimate (``std.all``), std_se, std_z, std_p_value, std_ci_lower, std_ci_upper.

    Notes
    -----
    std.all divides by model-implied standard deviations: a loading λ·sd(η)/sd(y), a regression
    β·sd(x)/sd(y), a (residual) covariance ψ/(sd_i sd_j) with total (not residual) variances, so a
    residual variance standardizes to 1 − R². Its standard error is the delta method
    se = sqrt(diag(J V J')), J the numerical Jacobian of the standardization map and V = I⁻¹/N
    (lavaan's ``standardizedSolution(se=TRUE)``); fixed cells (a loading fixed to 1) get one too, and
    a value that is 1 by construction (an exogenous latent variance) has se 0 and no z or p.
    """
    locs = _locations(model)
    x = solution.params
    vals, std = _values_and_std(model, locs, x)
    vcov = solution.vcov
    std_se = np.sqrt(np.clip(np.diag(standardized_vcov(model, solution)), 0, None))
    std_se = np.where(std_se < 1e-8 * np.maximum(1.0, np.abs(std)), 0.0, std_se)  # numerical noise: exactly 0
    free = np.array([loc["free"] for loc in locs])
    se = np.where(free >= 0, np.sqrt(np.clip(np.diag(vcov), 0, None))[np.clip(free, 0, None)], np.nan)
    q = stats.norm.ppf(0.5 + conf_level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = vals / se
        std_z = np.where(std_se > 0, std / std_se, np.nan)
    table = pd.DataFrame({
        "lval": [loc["lval"] for loc in locs], "op": [loc["op"] for loc in locs], "rval": [loc["rval"] for loc in locs],
        "free": free >= 0, "estimate": vals, "se": se, "z": z, "p_value": two_sided_p(z),
        "ci_lower": np.where(free >= 0, vals - q * se, vals), "ci_upper": np.where(free >= 0, vals + q * se, vals),
        "std_estimate": std, "std_se": std_se, "std_z": std_z, "std_p_value": two_sided_p(std_z),
        "std_ci_lower": std - q * std_se, "std_ci_upper": std + q * std_se})
    model.update_matrices(x)
    return table


# --- fit statistics ---------------------------------------------------------------------------------------------

def fit_statistics(model: Any, solution: MLSolution) -> dict[str, float]:
    """χ², df, p, baseline χ², CFI, TLI, RMSEA (N and N − 1) and SRMR as lavaan 0.6 computes them.

    Notes
    -----
    χ² = N · F_ML; the baseline (independence) model has F_B = Σ log s_ii − log|S| and
    df_B = p(p − 1)/2. CFI = 1 − max(χ² − df, 0) / max(χ² − df, χ²_B − df_B, 0);
    TLI = (χ²_B/df_B − χ²/df) / (χ²_B/df_B − 1); RMSEA = sqrt(max(χ² − df, 0) / (df · N)) — lavaan's
    (``likelihood="normal"``), with ``RMSEA_n_minus_1`` the older convention (semopy's) with N − 1;
    SRMR as :func:`srmr_bentler`.
    """
    n = solution.n_obs
    s = np.asarray(model.mx_cov, float)
    p = s.shape[0]
    chi2 = n * solution.objective
    df = p * (p + 1) // 2 - len(solution.params)
    logdet_s = np.linalg.slogdet(s)[1]
    chi2_b = n * (np.log(np.diag(s)).sum() - logdet_s)
    df_b = p * (p - 1) // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = max(chi2 - df, chi2_b - df_b, 0.0)
        cfi = 1 - max(chi2 - df, 0.0) / denom if denom > 0 else 1.0
        tli = ((chi2_b / df_b - chi2 / df) / (chi2_b / df_b - 1)) if df > 0 else np.nan
        rmsea = float(np.sqrt(max(chi2 - df, 0.0) / (df * n))) if df > 0 else np.nan
        rmsea1 = float(np.sqrt(max(chi2 - df, 0.0) / (df * (n - 1)))) if df > 0 else np.nan
    return {"chi2": float(chi2), "df": int(df), "chi2_p_value": float(stats.chi2.sf(chi2, df)) if df > 0 else np.nan,
            "baseline_chi2": float(chi2_b), "baseline_df": int(df_b), "CFI": float(cfi), "TLI": float(tli),
            "RMSEA": rmsea, "RMSEA_n_minus_1": rmsea1, "SRMR": srmr_bentler(model), "n_obs": int(n)}


def srmr_bentler(model: Any) -> float:
    """Standardized root mean square residual of a fitted semopy model.

    Notes
    -----
    SRMR = sqrt(mean over i <= j of ((s_ij − σ_ij) / sqrt(s_ii s_jj))²), the observed covariances S
    against the model-implied Σ (Bentler's definition, lavaan's ``srmr`` without a mean structure).
    """
    s = np.asarray(model.mx_cov, float)
    sigma = np.asarray(model.calc_sigma()[0], float)
    d = np.sqrt(np.diag(s))
    resid = (s - sigma) / np.outer(d, d)
    iu = np.triu_indices_from(resid)
    return float(np.sqrt(np.mean(resid[iu] ** 2)))


# --- improper solutions -----------------------------------------------------------------------------------------

def improper_solution(table: pd.DataFrame) -> list[str]:
    """Plain-words notes on an improper solution in a :func:`parameter_table`: negative variances
    (Heywood cases) and standardized loadings, regressions or correlations beyond ±1."""
    notes = []
    var = table[(table["op"] == "~~") & (table["lval"] == table["rval"])]
    neg = var[var["estimate"] < 0]
    if len(neg):
        notes.append("negative variance (Heywood case): " + ", ".join(
            f"{r.lval} {r.estimate:.3g}" for r in neg.itertuples()))
    beyond = table[(table["std_estimate"].abs() > 1) & ~((table["op"] == "~~") & (table["lval"] == table["rval"]))]
    if len(beyond):
        notes.append("standardized value beyond ±1: " + ", ".join(
            f"{r.lval} {r.op} {r.rval} {r.std_estimate:.3f}" for r in beyond.itertuples()))
    return notes
