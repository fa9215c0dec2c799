"""semopy, wrapped in one place: model description, the data it is fitted on, the fit itself, and
the fit indices (CFI, TLI, RMSEA from semopy; SRMR computed here) judged against the usual cut-offs.

semopy is imported inside :func:`semopy_fit` only: importing it takes ~1.2 s, which every user of
:mod:`ecrm_research.loyalty` would pay even when no latent-variable model is fitted.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError, ParameterError

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


def semopy_fit(desc: str, data: pd.DataFrame, *, missing: str = "pairwise"):
    """Fit with semopy (ML). ``missing='pairwise'`` fits the pairwise-complete item covariance
    matrix with n = the smallest pairwise count (conservative); ``'listwise'`` the complete rows.

    Returns the fitted model, semopy's fit result, the parameter table (columns ``lval, op, rval,
    estimate, std_estimate, se, z, p_value``) and semopy's fit statistics.
    """
    import semopy  # lazy: ~1.2 s to import, paid only when a latent-variable model is fitted

    flat = [str(c) for c in data.columns if data[c].dropna().nunique() <= 1]
    if flat:  # a singular covariance matrix: semopy would fail with LinAlgError
        raise AnalysisError(f"Cannot fit the latent-variable model: item(s) {flat} have no variance (every respondent "
                            "gave the same answer). Drop them first (loyalty.drop_constant_items) or fix the data.")
    model = semopy.Model(desc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if missing == "pairwise" and data.isna().any().any():
            present = data.notna().astype(float)
            n_pair = int((present.T @ present).to_numpy().min())
            res = model.fit(cov=data.cov(), n_samples=n_pair)
        else:
            res = model.fit(data.dropna())
        table = model.inspect(std_est=True)
        try:
            stats = semopy.calc_stats(model)
        except Exception:  # pragma: no cover - semopy drift
            stats = pd.DataFrame()
    table = table.rename(columns={"Estimate": "estimate", "Est. Std": "std_estimate", "Std. Err": "se",
                                  "z-value": "z", "p-value": "p_value"})
    for c in ("estimate", "std_estimate", "se", "z", "p_value"):
        table[c] = pd.to_numeric(table[c], errors="coerce")
    return model, res, table, stats


def srmr(model) -> float:
    """Standardized root mean square residual of a fitted semopy model.

    Notes
    -----
    SRMR = sqrt(mean over i <= j of ((s_ij - sigma_ij) / sqrt(s_ii s_jj))^2), the observed
    covariances ``S`` against the model-implied ``Sigma`` (Bentler's definition, lavaan's
    ``srmr_bentler``; semopy 2.3 does not report it).
    """
    s = np.asarray(model.mx_cov, float)
    sigma = np.asarray(model.calc_sigma()[0], float)
    d = np.sqrt(np.diag(s))
    resid = (s - sigma) / np.outer(d, d)
    iu = np.triu_indices_from(resid)
    return float(np.sqrt(np.mean(resid[iu] ** 2)))


def fit_table(stats: pd.DataFrame, srmr_value: float) -> pd.DataFrame:
    """Tidy fit indices with the usual thresholds and a plain-words verdict."""
    st = stats.T.iloc[:, 0] if len(stats) else pd.Series(dtype=float)
    rows = [{"index": "chi2", "value": float(st.get("chi2", np.nan)), "threshold": "p > 0.05 (rarely met with n > 400)",
             "verdict": ("exact fit not rejected" if st.get("chi2 p-value", 0) > 0.05 else "exact fit rejected"),
             "meaning": f"Likelihood-ratio test of exact fit; df = {int(st.get('DoF', 0))}, "
                        f"p = {float(st.get('chi2 p-value', np.nan)):.3g}. Sensitive to sample size."}]
    values = {"CFI": st.get("CFI", np.nan), "TLI": st.get("TLI", np.nan), "RMSEA": st.get("RMSEA", np.nan),
              "SRMR": srmr_value}
    for name, (op, good, ok, meaning) in FIT_THRESHOLDS.items():
        v = float(values[name])
        if not np.isfinite(v):
            verdict = "not available"
        elif op == ">=":
            verdict = "good" if v >= good else ("acceptable" if v >= ok else "poor")
        else:
            verdict = "good" if v <= good else ("acceptable" if v <= ok else "poor")
        rows.append({"index": name, "value": v, "threshold": f"{op} {good} good, {op} {ok} acceptable",
                     "verdict": verdict, "meaning": meaning})
    return pd.DataFrame(rows)


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
    """The measurement loadings of a semopy parameter table: construct, item, estimate, std_loading, se, p_value."""
    lo = table[(table["op"] == "~") & table["rval"].isin(names) & ~table["lval"].isin(names)]
    return lo.rename(columns={"rval": "construct", "lval": "item", "std_estimate": "std_loading"})[
        ["construct", "item", "estimate", "std_loading", "se", "p_value"]].reset_index(drop=True)
