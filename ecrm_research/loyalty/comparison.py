"""The loyalty results side by side, and tables a reader can read: the effects of the three estimators
(composite OLS, disattenuated, SEM), their structural paths, and p-values and flags in words.

A p-value is never shown as 0: below 1e-300 it reads ``< 1e-300``, otherwise it keeps three
significant digits (rounding a table to 3 decimals turned p = 1e-50 into 0). Booleans read as
``yes``/``no``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..phrasing import format_p_value
from .mediation import MediationResult
from .structural import SEMResult


def is_p_column(name: object) -> bool:
    """Whether a column holds p-values (``p_value``, ``std_p_value``, ``sem_p``, ``composite_direct_p``, ...)."""
    n = str(name).lower()
    return n in ("p", "pvalue") or n.endswith(("p_value", "_p", "pvalue"))


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for display: p-values as :func:`~ecrm_research.phrasing.format_p_value` text, yes/no flags.

    Numbers are left to the report's number format (3 significant digits); the tables written to CSV
    keep their numeric values.
    """
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if is_p_column(col) and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            out[col] = [format_p_value(v) for v in s]
        elif _is_boolean(s):
            out[col] = s.map(lambda v: "yes" if bool(v) else "no", na_action="ignore")
    return out


def _is_boolean(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s):
        return True
    values = s.dropna()
    return s.dtype == object and len(values) > 0 and all(isinstance(v, (bool, np.bool_)) for v in values)


def all_effects(mediation: MediationResult, sem: SEMResult | None, *, mediator: str, outcome: str) -> pd.DataFrame:
    """The effects on the outcome from every estimator in one table (``mediation.summary``'s columns):
    the composite and disattenuated bootstrap rows, then the SEM's delta-method rows (``method='sem'``,
    standardized only: unstandardized columns NaN)."""
    parts = [mediation.summary]
    if sem is not None and len(sem.effects):
        e = sem.effects.rename(columns={"ci_lower": "std_ci_lower", "ci_upper": "std_ci_upper"})
        e = e.assign(method="sem", mediator=np.where(e["effect"] == "indirect", mediator, ""), outcome=outcome,
                     estimate=np.nan, se=np.nan, ci_lower=np.nan, ci_upper=np.nan)
        parts.append(e[[c for c in mediation.summary.columns if c in e.columns]])
    return pd.concat(parts, ignore_index=True)


def effects_by_method(effects: pd.DataFrame) -> pd.DataFrame:
    """One row per (driver, effect), one column of standardized estimates per method, with the interval of each:
    a compact view of :func:`all_effects` (``{method}`` and ``{method}_ci``)."""
    rows = {}
    for r in effects.itertuples():
        key = (r.driver, r.effect)
        row = rows.setdefault(key, {"driver": r.driver, "effect": r.effect})
        row[r.method] = r.std_estimate
        lo, hi = r.std_ci_lower, r.std_ci_upper
        row[f"{r.method}_ci"] = f"{lo:.3f} to {hi:.3f}" if np.isfinite(lo) and np.isfinite(hi) else ""
    order = {"indirect": 0, "direct": 1, "total": 2}
    out = pd.DataFrame(list(rows.values()))
    return out.sort_values(["effect", "driver"], key=lambda s: s.map(order) if s.name == "effect" else s
                           ).reset_index(drop=True)


def robustness_paths(sem: SEMResult, mediation: MediationResult, *, mediator: str, outcome: str) -> pd.DataFrame:
    """The structural paths of the SEM next to the same paths from composite OLS and the disattenuated
    version: lval, rval, sem, sem_p, one column per mediation method, same_sign (SEM vs composite)."""
    out = sem.paths[["lval", "rval", "std_estimate", "p_value"]].rename(
        columns={"std_estimate": "sem", "p_value": "sem_p"})
    for method in mediation.summary["method"].unique():
        a = mediation.a_paths[mediation.a_paths["method"] == method]
        rows = [{"lval": mediator, "rval": r.driver, method: r.std_estimate} for r in a.itertuples()]
        d = mediation.summary[(mediation.summary["method"] == method) & (mediation.summary["effect"] == "direct")]
        rows += [{"lval": outcome, "rval": r.driver, method: r.std_estimate} for r in d.itertuples()]
        out = out.merge(pd.DataFrame(rows, columns=["lval", "rval", method]), on=["lval", "rval"], how="left")
    if "composite" in out:
        out["same_sign"] = np.sign(out["sem"]) == np.sign(out["composite"])
    return out
