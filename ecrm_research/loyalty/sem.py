"""semopy, wrapped in one place: model description, the data it is fitted on, the fit itself (finished
to the ML optimum by :mod:`.mlfit`), and the fit indices (χ², CFI, TLI, RMSEA, SRMR as lavaan 0.6
computes them) judged against the usual cut-offs.

semopy is imported inside :func:`semopy_fit` only: importing it takes ~1.2 s, which every user of
:mod:`ecrm_research.loyalty` would pay even when no latent-variable model is fitted.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..exceptions import AnalysisError, ParameterError
from ..phrasing import p_text
from .mlfit import (
    GRADIENT_TOLERANCE,
    MLSolution,
    fit_statistics,
    parameter_table,
    reach_ml_optimum,
    srmr_bentler,
)

#: Usual cut-offs for SEM fit indices (Hu & Bentler 1999; Browne & Cudeck 1993; Kline 2016).
FIT_THRESHOLDS = {
    "CFI": (">=", 0.95, 0.90, "Comparative fit: improvement over the independence model; "
            ">= 0.95 good (Hu & Bentler 1999), >= 0.90 acceptable."),
    "TLI": (">=", 0.95, 0.90, "Tucker-Lewis index: like CFI with a penalty for complexity; "
            ">= 0.95 good, >= 0.90 acceptable."),
    "RMSEA": ("<=", 0.06, 0.08, "Root mean square error of approximation: misfit per degree of "
              "freedom; <= 0.06 good, <= 0.08 acceptable, > 0.10 poor (Browne & Cudeck 1993)."),
    "SRMR": ("<=", 0.08, 0.10, "Standardized root mean square residual: average gap between observed "
             "and model correlations; <= 0.08 good (Hu & Bentler 1999)."),
}


def semopy_fit(desc: str, data: pd.DataFrame, *, missing: str = "pairwise"
                ) -> tuple[Any, MLSolution, pd.DataFrame, dict[str, float]]:
    """Fit with semopy (ML), make sure the fit reached the ML optimum, and compute lavaan's inference.

    ``missing='pairwise'`` fits the pairwise-complete item covariance matrix with n = the smallest
    pairwise count (conservative); ``'listwise'`` the complete rows (their covariance with divisor N,
    as lavaan's ``likelihood="normal"``).

    Returns the fitted model (holding the kept solution), the :class:`~.mlfit.MLSolution` (optimiser,
    objective, gradient norm, converged, the runs compared), the parameter table of
    :func:`~.mlfit.parameter_table` (unstandardized and std.all estimates with lavaan's standard
    errors) and the fit statistics of :func:`~.mlfit.fit_statistics`.
    """
    import semopy  # lazy: ~1.2 s to import, paid only when a latent-variable model is fitted

    flat = [str(c) for c in data.columns if data[c].dropna().nunique() <= 1]
    if flat:  # a singular covariance matrix: semopy would fail with LinAlgError
        raise AnalysisError(f"Cannot fit the latent-variable model: item(s) {flat} have no variance (every respondent "
                            "gave the same answer). Drop them first (loyalty.drop_constant_items) or fix the data.")
    model = semopy.Model(desc)
    # small matrices (p ~ 20): one BLAS thread is fastest, and several threads on a busy machine
    # made each 20 x 20 Cholesky take ~50 ms instead of ~20 us
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        if missing == "pairwise" and data.isna().any().any():
            present = data.notna().astype(float)
            n = int((present.T @ present).to_numpy().min())
            source = {"cov": data.cov(), "n_samples": n}
        else:
            complete = data.dropna()
            n = len(complete)
            source = {"data": complete}
        model.load(**source)
        start = np.asarray(model.param_vals, float).copy()
        model.fit(**source)  # semopy's default: SLSQP from its starting values
        solution = reach_ml_optimum(model, start, n)
        table = parameter_table(model, solution)
        stats = fit_statistics(model, solution)
    return model, solution, table, stats


def srmr(model: Any) -> float:
    """Standardized root mean square residual of a fitted semopy model (:func:`~.mlfit.srmr_bentler`).

    Notes
    -----
    SRMR = sqrt(mean over i <= j of ((s_ij - sigma_ij) / sqrt(s_ii s_jj))^2), the observed
    covariances ``S`` against the model-implied ``Sigma`` (Bentler's definition, lavaan's
    ``srmr`` without a mean structure; semopy 2.3 does not report it).
    """
    return srmr_bentler(model)


def _verdict(value: float, op: str, good: float, ok: float) -> str:
    if not np.isfinite(value):
        return "not available"
    if op == ">=":
        return "good" if value >= good else ("acceptable" if value >= ok else "poor")
    return "good" if value <= good else ("acceptable" if value <= ok else "poor")


def fit_table(stats: Mapping[str, float], solution: MLSolution | None = None) -> pd.DataFrame:
    """Tidy fit indices with the usual thresholds and a plain-words verdict, then how the fit was reached.

    Rows: ``chi2``, ``CFI``, ``TLI``, ``RMSEA`` (lavaan's, with N), ``RMSEA_n_minus_1`` (the same with
    N − 1, semopy's convention), ``SRMR`` (from :func:`~.mlfit.fit_statistics`); with a solution also
    ``objective`` (F_ML = 2 × lavaan's ``fmin``), ``gradient_norm``, ``converged`` and ``optimiser``
    (their words in ``verdict``).
    """
    chi2, df, pv = float(stats.get("chi2", np.nan)), int(stats.get("df", 0)), float(stats.get("chi2_p_value", np.nan))
    rows = [{"index": "chi2", "value": chi2, "threshold": "p > 0.05 (rarely met with n > 400)",
             "verdict": "exact fit not rejected" if pv > 0.05 else "exact fit rejected",
             "meaning": f"Likelihood-ratio test of exact fit; df = {df}, {p_text(pv, 3)}, "
                        f"N = {int(stats.get('n_obs', 0)):,} (chi2 = N x F_ML, as lavaan). Sensitive to sample size."}]
    for name, (op, good, ok, meaning) in FIT_THRESHOLDS.items():
        v = float(stats.get(name, np.nan))
        rows.append({"index": name, "value": v, "threshold": f"{op} {good} good, {op} {ok} acceptable",
                     "verdict": _verdict(v, op, good, ok),
                     "meaning": meaning + (" With N in the denominator, as lavaan 0.6." if name == "RMSEA" else "")})
        if name == "RMSEA" and "RMSEA_n_minus_1" in stats:
            v1 = float(stats["RMSEA_n_minus_1"])
            rows.append({"index": "RMSEA_n_minus_1", "value": v1,
                         "threshold": f"{op} {good} good, {op} {ok} acceptable", "verdict": _verdict(v1, op, good, ok),
                         "meaning": "RMSEA with N - 1 in the denominator (semopy's and older software's convention)."})
    if solution is not None:
        rows += convergence_rows(solution)
    return pd.DataFrame(rows)


def convergence_rows(solution: MLSolution) -> list[dict]:
    """The ``objective``, ``gradient_norm``, ``converged`` and ``optimiser`` rows of :func:`fit_table`."""
    runs = "; ".join(f"{r.optimiser}: F_ML {r.objective:.10g}" for r in solution.attempts.itertuples())
    return [
        {"index": "objective", "value": solution.objective, "threshold": "lowest of the runs",
         "verdict": "minimum of F_ML", "meaning": "ML fit function F_ML = log|Sigma| + tr(S Sigma^-1) - log|S| - p at "
         "the solution (= 2 x lavaan's fmin; chi2 = N x F_ML). Runs compared: " + runs + "."},
        {"index": "gradient_norm", "value": solution.gradient_norm, "threshold": f"<= {GRADIENT_TOLERANCE:g}",
         "verdict": "at a minimum" if solution.gradient_norm <= GRADIENT_TOLERANCE else "not at a minimum",
         "meaning": "Largest absolute gradient of F_ML over the free parameters at the solution."},
        {"index": "converged", "value": np.nan, "threshold": "yes",
         "verdict": "yes" if solution.converged else "no",
         "meaning": "Gradient at most the tolerance and the model identified (expected information positive "
                    "definite)" + (": " + "; ".join(solution.notes) if solution.notes else ".")},
        {"index": "optimiser", "value": np.nan, "threshold": "", "verdict": solution.optimiser,
         "meaning": "The run whose solution was kept (lowest F_ML; semopy's own SLSQP when no other run beat it)."},
    ]


def measurement_description(constructs: Mapping[str, Sequence[str]]) -> list[str]:
    """The measurement part of a semopy model description: one ``construct =~ item + item`` line each."""
    lines = []
    for name, its in constructs.items():
        if len(its) < 2:
            raise ParameterError(f"construct {name!r} has {len(its)} item(s); a latent variable needs at least 2.")
        lines.append(f"{name} =~ " + " + ".join(its))
    return lines


def sem_data(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]],
              missing: str = "pairwise") -> tuple[pd.DataFrame, int]:
    """The items a latent-variable model is fitted on, and its n (complete rows, or the smallest
    pairwise count); too few respondents raise :class:`AnalysisError`."""
    if missing not in ("pairwise", "listwise"):
        raise ParameterError(f"missing={missing!r}; use 'pairwise' or 'listwise'.", allowed=["pairwise", "listwise"])
    used = list(dict.fromkeys(i for its in constructs.values() for i in its))
    data = items[used]
    if missing == "listwise":
        data = data.dropna()
        n = len(data)
    else:
        data = data.dropna(how="all")
        present = data.notna().astype(float)
        n = int((present.T @ present).to_numpy().min())
    if n < 10 * len(constructs):
        raise AnalysisError(f"Only {n} respondents answered the items needed (missing={missing!r}); the "
                            f"latent-variable model needs more. Drop items with many missing answers or collect "
                            f"more responses.")
    return data, n


def latent_correlations(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Standardized covariances among the latent variables ``names`` of a semopy parameter table, as a matrix."""
    corr = pd.DataFrame(np.eye(len(names)), index=list(names), columns=list(names))
    cov = table[(table["op"] == "~~") & table["lval"].isin(names) & table["rval"].isin(names)
                & (table["lval"] != table["rval"])]
    for _, r in cov.iterrows():
        corr.loc[r["lval"], r["rval"]] = corr.loc[r["rval"], r["lval"]] = r["std_estimate"]
    return corr


def loadings_table(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The measurement loadings of a parameter table: construct, item, estimate, se, p_value, std_loading and
    its delta-method std_se (the first item's loading is fixed to 1, so its se and p_value are NaN)."""
    lo = table[(table["op"] == "~") & table["rval"].isin(names) & ~table["lval"].isin(names)]
    return lo.rename(columns={"rval": "construct", "lval": "item", "std_estimate": "std_loading"})[
        ["construct", "item", "estimate", "se", "p_value", "std_loading", "std_se"]].reset_index(drop=True)
