"""Pre-flight checks of a Cox model: the known causes of failed or misleading fits, found before fitting.

Each finding is a row of a diagnostics table (``check``, ``covariate``, ``severity``,
``message``); :class:`~ecrm_research.survival.cox.ChurnCoxModel` raises on errors, or drops the
covariates concerned, and warns about the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

#: Columns of a diagnostics table (:func:`preflight_checks`, ``ChurnCoxModel.diagnostics_``).
DIAGNOSTIC_COLUMNS = ["check", "covariate", "severity", "message"]


def diagnostic(check: str, covariate: str | None, severity: str, message: str) -> dict[str, Any]:
    """One row of a diagnostics table (see :data:`DIAGNOSTIC_COLUMNS`)."""
    return {"check": check, "covariate": covariate, "severity": severity, "message": message}


def preflight_checks(
    X: pd.DataFrame,
    duration: pd.Series,
    event: pd.Series,
    *,
    min_events_per_covariate: float = 10,
    near_constant_share: float = 0.99,
    encoding: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Known causes of failed or misleading Cox fits, checked before fitting.

    Checks, with severity ``error`` (the fit would fail or give infinite estimates) or
    ``warning`` (the fit runs but needs care):

    * missing values in durations, events or covariates (error);
    * durations ≤ 0, events other than 0/1, no events at all (error);
    * constant covariates (error) and near-constant ones — the most common value in ≥ 99 % of
      rows (warning);
    * complete separation (error): at every churn time the churner has the highest (or lowest)
      value of the covariate among those still at risk, e.g. a level with no churners — the
      likelihood keeps rising as the hazard ratio goes to 0 or ∞;
    * collinearity (error): a column that is an exact linear combination of earlier ones
      (e.g. Telco's ``OnlineSecurity_No internet service`` duplicates ``InternetService_No``);
    * fewer than ``min_events_per_covariate`` events per model column (warning; the usual
      rule of thumb is 10);
    * a covariate whose rank correlation with the duration is ≥ 0.8 (warning): it is probably
      measured at the end of follow-up (look-ahead), like a running total.

    Returns
    -------
    DataFrame
        ``check``, ``covariate``, ``severity``, ``message`` (empty when all is well).
    """
    d = pd.Series(np.asarray(duration, float))
    e = pd.Series(np.asarray(event, float))
    n_events = int(e.sum())
    out = _outcome_problems(d, e, n_events)
    out += _missing_covariates(X)
    complete = X.notna().all(axis=1).to_numpy()
    Xc = X.loc[complete]
    dc, ec = d[complete].reset_index(drop=True), e[complete].reset_index(drop=True)
    variation, usable = _variation_problems(X.columns, Xc, near_constant_share)
    out += variation
    if n_events > 0 and len(Xc):
        out += _separation_problems(Xc, usable, dc, ec, n_events, encoding)
    if len(usable) > 1 and len(Xc) > 1:
        out += _collinearity_problems(Xc, usable)
    out += _events_per_covariate_problems(X.shape[1], n_events, min_events_per_covariate)
    if len(Xc) > 10:
        out += _lookahead_problems(Xc, usable, dc)
    return pd.DataFrame(out, columns=DIAGNOSTIC_COLUMNS)


def _outcome_problems(d: pd.Series, e: pd.Series, n_events: int) -> list[dict[str, Any]]:
    """Missing, non-positive durations; event flags that are not 0/1; no events at all."""
    out = []
    if d.isna().any() or e.isna().any():
        out.append(diagnostic("missing values", None, "error",
                              f"{int(d.isna().sum()):,} missing durations and {int(e.isna().sum()):,} missing event "
                              "flags; drop those rows before fitting."))
    if (d <= 0).any():
        out.append(diagnostic("duration", None, "error",
                              f"{int((d <= 0).sum()):,} durations are ≤ 0; a customer needs some time at risk. "
                              "Drop those rows (prepare_customer_table does and counts them)."))
    if e.notna().any() and not e.dropna().isin([0, 1]).all():
        out.append(diagnostic("event", None, "error", "the event column must be 0/1."))
    if n_events == 0:
        out.append(diagnostic("no events", None, "error",
                              "no customer churned in these data, so churn risk cannot be modelled."))
    return out


def _missing_covariates(X: pd.DataFrame) -> list[dict[str, Any]]:
    """Covariates with missing values (the first one's row is named)."""
    out = []
    for c in X.columns:
        x = X[c]
        nm = int(x.isna().sum())
        if nm:
            first = int(np.flatnonzero(x.isna().to_numpy())[0])
            out.append(diagnostic("missing values", c, "error",
                                  f"'{c}' has {nm:,} missing value(s) (first at row {first + 1}). Impute them, drop "
                                  "the rows, or fit with missing='drop' (rows are dropped and counted)."))
    return out


def _variation_problems(columns: pd.Index, Xc: pd.DataFrame, near_constant_share: float
                        ) -> tuple[list[dict[str, Any]], list[str]]:
    """Constant (error) and near-constant (warning) covariates on the complete rows, and the usable rest."""
    out, usable = [], []
    for c in columns:
        x = Xc[c].to_numpy(float)
        if len(x) == 0:
            continue
        vals, counts = np.unique(x, return_counts=True)
        if len(vals) <= 1:
            out.append(diagnostic("constant", c, "error",
                                  f"'{c}' has the same value ({vals[0] if len(vals) else 'n/a'}) for every customer, "
                                  "so it cannot explain differences in churn. Remove it from the covariates."))
            continue
        usable.append(c)
        share = counts.max() / counts.sum()
        if share >= near_constant_share:
            out.append(diagnostic("near-constant", c, "warning",
                                  f"'{c}' is nearly constant: {share:.1%} of customers share one value and only "
                                  f"{counts.sum() - counts.max():,} differ. Its hazard ratio will be imprecise; "
                                  "consider removing it or merging rare levels."))
    return out, usable


def _separation_problems(Xc: pd.DataFrame, usable: list[str], dc: pd.Series, ec: pd.Series, n_events: int,
                         encoding: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Complete separation (monotone likelihood), one covariate at a time."""
    var_of: Mapping[str, str] = {}
    lvl_of: Mapping[str, Any] = {}
    if encoding is not None and len(encoding):
        var_of = dict(zip(encoding["column"], encoding["variable"]))
        lvl_of = dict(zip(encoding["column"], encoding["level"]))
    order = np.argsort(dc.to_numpy(), kind="mergesort")
    ts = dc.to_numpy()[order]
    es = ec.to_numpy()[order] == 1
    start = np.searchsorted(ts, ts, side="left")
    out = []
    for c in usable:
        x = Xc[c].to_numpy(float)[order]
        smax = np.maximum.accumulate(x[::-1])[::-1]
        smin = np.minimum.accumulate(x[::-1])[::-1]
        hi = np.all(x[es] >= smax[start[es]])
        lo = np.all(x[es] <= smin[start[es]])
        if hi or lo:
            direction = "infinite" if hi else "zero"
            detail = _separation_detail(c, x, es, hi, n_events, var_of, lvl_of)
            out.append(diagnostic("complete separation", c, "error",
                                  f"Complete separation on '{c}': {detail}, so its hazard ratio would be {direction}. "
                                  "Remove the covariate, merge its levels, or fit with a penalizer (e.g. 0.1)."))
    return out


def _separation_detail(c: str, x: np.ndarray, es: np.ndarray, hi: bool, n_events: int,
                       var_of: Mapping[str, str], lvl_of: Mapping[str, Any]) -> str:
    """Plain words for a separated covariate: churners per level, or 'every churner had the highest'."""
    if c in var_of and lvl_of.get(c) is not None:
        n1 = int((x == 1).sum())
        ev1 = int(((x == 1) & es).sum())
        return (f"level '{lvl_of[c]}' of '{var_of[c]}' has {ev1:,} churners among {n1:,} customers "
                f"while the other levels have {n_events - ev1:,}")
    if set(np.unique(x)) <= {0.0, 1.0}:
        n1 = int((x == 1).sum())
        ev1 = int(((x == 1) & es).sum())
        return (f"customers with '{c}' = 1 have {ev1:,} churners among {n1:,}, customers with "
                f"'{c}' = 0 have {n_events - ev1:,}")
    return (f"every churner had the {'highest' if hi else 'lowest'} '{c}' among the customers "
            "still active at that time")


def _collinearity_problems(Xc: pd.DataFrame, usable: list[str]) -> list[dict[str, Any]]:
    """Collinearity: keep a column only if it adds rank; name its twin when it duplicates one."""
    Z = Xc[usable].to_numpy(float)
    Z = Z - Z.mean(axis=0)
    sd = Z.std(axis=0)
    sd[sd == 0] = 1
    Z = Z / sd
    kept: list[int] = []
    out = []
    for j, c in enumerate(usable):
        trial = Z[:, kept + [j]]
        if np.linalg.matrix_rank(trial, tol=1e-8 * np.sqrt(len(Z))) < len(kept) + 1:
            twin = next((usable[k] for k in kept if np.allclose(np.abs(Z[:, k]), np.abs(Z[:, j]))
                         and abs(np.corrcoef(Z[:, k], Z[:, j])[0, 1]) > 0.999999), None)
            why = (f"carries the same information as '{twin}'" if twin
                   else "is an exact linear combination of earlier covariates")
            out.append(diagnostic("collinear", c, "error",
                                  f"'{c}' {why}, so the two effects cannot be told apart. Remove '{c}'."))
        else:
            kept.append(j)
    return out


def _events_per_covariate_problems(p: int, n_events: int, min_events_per_covariate: float
                                   ) -> list[dict[str, Any]]:
    """Fewer than ``min_events_per_covariate`` churn events per model column (warning)."""
    if p and n_events / p < min_events_per_covariate:
        return [diagnostic("events per covariate", None, "warning",
                           f"only {n_events:,} churn events for {p} model columns ({n_events / p:.1f} per column; "
                           f"at least {min_events_per_covariate:g} are advised). Estimates may be unstable: use fewer "
                           "covariates or more data.")]
    return []


def _lookahead_problems(Xc: pd.DataFrame, usable: list[str], dc: pd.Series) -> list[dict[str, Any]]:
    """Covariates whose rank correlation with the duration is ≥ 0.8: probably measured at the end (warning)."""
    out = []
    for c in usable:
        r = pd.Series(Xc[c].to_numpy(float)).corr(pd.Series(dc.to_numpy()), method="spearman")
        if pd.notna(r) and abs(r) >= 0.8:
            out.append(diagnostic("look-ahead", c, "warning",
                                  f"'{c}' has rank correlation {r:.2f} with the duration: it looks measured at the end "
                                  "of follow-up (e.g. a running total), which leaks the outcome. Use a value measured "
                                  "at the start or in a fixed early window."))
    return out
