"""The latent-variable structural equation model of the loyalty drivers (semopy): paths,
loadings, R², standardized direct/indirect/total effects and fit indices."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .constructs import ConstructSpec
from .sem import fit_table, loadings_table, measurement_description, sem_data, semopy_fit, srmr


@dataclass
class SEMResult:
    """Latent-variable structural equation model.

    Attributes
    ----------
    paths : DataFrame
        Structural paths: lval, rval, estimate, std_estimate, se, std_se (approximate:
        se * std_estimate / estimate), z, p_value.
    loadings : DataFrame
        construct, item, estimate, std_loading, se, p_value.
    effects : DataFrame
        Standardized direct, indirect (via the mediator) and total effects on the outcome with
        first-order delta-method (Sobel) standard errors.
    fit : DataFrame
        Fit indices with thresholds (:func:`fit_table`).
    r2 : dict
        R² of the endogenous latent variables.
    """

    paths: pd.DataFrame
    loadings: pd.DataFrame
    effects: pd.DataFrame
    fit: pd.DataFrame
    r2: dict[str, float]
    description: str
    n_obs: int
    model: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> pd.DataFrame:
        return self.paths


def structural_paths(spec: ConstructSpec) -> dict[str, list[str]]:
    """Regressions of the loyalty model: mediator ~ drivers; outcome ~ mediator + drivers + direct drivers."""
    direct = list(dict.fromkeys(spec.drivers + spec.direct_drivers))
    return {spec.mediator: list(spec.drivers), spec.outcome: [spec.mediator] + direct}


def fit_sem(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]], paths: Mapping[str, Sequence[str]], *,
            mediator: str | None = None, outcome: str | None = None, missing: str = "pairwise") -> SEMResult:
    """Fit a measurement + structural model with semopy (ML).

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
    Standardized estimates are semopy's ``Est. Std`` (latent and observed variances set to 1);
    p-values are those of the unstandardized estimates (z tests), as lavaan reports them.
    """
    desc = sem_description(constructs, paths)
    data, n = sem_data(items, constructs, missing)
    model, _, table, stats = semopy_fit(desc, data, missing=missing)
    names = list(constructs)
    paths_df = _path_table(table, names)
    loadings = loadings_table(table, names)
    r2 = _latent_r2(table, paths)
    effects = _sem_effects(paths_df, paths, mediator, outcome) if mediator and outcome else pd.DataFrame()
    fit = fit_table(stats, srmr(model))
    notes = []
    improper = _improper_solution_note(r2, loadings)
    if improper:
        notes.append(improper)
        warnings.warn("The SEM has an improper solution (a standardized loading above 1 or an R² outside "
                      "[0, 1], a 'Heywood case'); its estimates are unreliable. Usual causes: two constructs "
                      "that are almost the same (see HTMT) or a construct with two weak items.", stacklevel=2)
    return SEMResult(paths_df, loadings, effects, fit, r2, desc, n, model, notes)


def sem_description(constructs: Mapping[str, Sequence[str]], paths: Mapping[str, Sequence[str]]) -> str:
    """The semopy model description: the measurement lines, then one ``lhs ~ rhs + ...`` line per regression."""
    lines = measurement_description(constructs)
    for lhs, rhs in paths.items():
        if rhs:
            lines.append(f"{lhs} ~ " + " + ".join(rhs))
    return "\n".join(lines)


def _path_table(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The regressions among latent variables, with approximate standardized SEs (se * std_estimate / estimate)."""
    st = table[(table["op"] == "~") & table["lval"].isin(names) & table["rval"].isin(names)].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        st["std_se"] = (st["se"] * st["std_estimate"] / st["estimate"]).abs()
    return st[["lval", "rval", "estimate", "std_estimate", "se", "std_se", "z", "p_value"]].reset_index(drop=True)


def _latent_r2(table: pd.DataFrame, endogenous: Iterable[str]) -> dict[str, float]:
    """R² of each endogenous latent variable: 1 - its standardized residual variance."""
    r2 = {}
    for lhs in endogenous:
        res_var = table[(table["op"] == "~~") & (table["lval"] == lhs) & (table["rval"] == lhs)]
        if len(res_var):
            r2[lhs] = float(1 - res_var["std_estimate"].iloc[0])
    return r2


def _sem_effects(paths_df: pd.DataFrame, paths: Mapping[str, Sequence[str]], mediator: str,
                 outcome: str) -> pd.DataFrame:
    """Standardized indirect (via the mediator), direct and total effects on the outcome, Sobel SEs."""
    p = paths_df.set_index(["lval", "rval"])
    b = p.loc[(outcome, mediator)] if (outcome, mediator) in p.index else None
    drivers = list(dict.fromkeys(list(paths.get(mediator, []))
                                 + [r for r in paths.get(outcome, []) if r != mediator]))
    rows = []
    for x in drivers:
        rows.extend(_driver_effects(p, x, mediator, outcome, b))
    if b is not None:
        rows.append({"driver": mediator, "effect": "total", "std_estimate": b["std_estimate"],
                     "std_se": b["std_se"], "ci_lower": b["std_estimate"] - 1.96 * b["std_se"],
                     "ci_upper": b["std_estimate"] + 1.96 * b["std_se"], "p_value": b["p_value"]})
    return pd.DataFrame(rows)


def _driver_effects(p: pd.DataFrame, x: str, mediator: str, outcome: str, b: pd.Series | None) -> list[dict]:
    """Effect rows of one driver: indirect = a b (delta-method SE), direct = c', total = a b + c'."""
    a = p.loc[(mediator, x)] if (mediator, x) in p.index else None
    c = p.loc[(outcome, x)] if (outcome, x) in p.index else None
    ind = ind_se = 0.0
    if a is not None and b is not None:
        ind = a["std_estimate"] * b["std_estimate"]
        ind_se = math.sqrt((b["std_estimate"] * a["std_se"]) ** 2 + (a["std_estimate"] * b["std_se"]) ** 2)
    d, d_se = (c["std_estimate"], c["std_se"]) if c is not None else (0.0, 0.0)
    rows = []
    for eff, est, se in (("indirect", ind, ind_se), ("direct", d, d_se), ("total", ind + d, math.nan)):
        if eff == "indirect" and a is None:
            continue
        if eff == "direct" and c is None:
            continue
        z = est / se if se and np.isfinite(se) and se > 0 else np.nan
        rows.append({"driver": x, "effect": eff, "std_estimate": est, "std_se": se,
                     "ci_lower": est - 1.96 * se if np.isfinite(se) else np.nan,
                     "ci_upper": est + 1.96 * se if np.isfinite(se) else np.nan,
                     "p_value": float(2 * (1 - _norm_cdf(abs(z)))) if np.isfinite(z) else np.nan})
    return rows


def _improper_solution_note(r2: Mapping[str, float], loadings: pd.DataFrame) -> str | None:
    """A note when the solution is improper (an R² outside [0, 0.995] or a standardized loading above 1)."""
    bad = [lv for lv, v in r2.items() if not (0 <= v <= 0.995)]
    if bad or (loadings["std_loading"].abs() > 1).any():
        return f"improper solution: R² of {bad} at or beyond 1" if bad else "improper solution: loading > 1"
    return None


def _norm_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))
