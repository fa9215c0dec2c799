"""Test of proportional hazards: the exact score test of R survival ≥ 3 ``cox.zph``, vectorised.

Up to survival 2.x (and in lifelines' ``proportional_hazard_test``) the test regressed scaled
Schoenfeld residuals on g(t) with the *average* information matrix standing in for each event
time's own (Grambsch & Therneau 1994, eq. 6). R survival 3.0 (2019) replaced it by the score test
it approximates, with the full information matrix (Therneau, ``cox.zph`` and ``src/zph1.c``). On
real data the two differ by several per cent in χ² and verdicts flip, so this module implements
the exact test and pins it against R (``tests/test_ph_test.py``).

The test
--------
Add to the fitted model, for each covariate j, a time-varying term γⱼ·g(t)·xⱼ, with g the
transformed event time centred over the events (``km``: 1 − Ŝ(t−) of the pooled Kaplan-Meier curve,
R's default; ``rank``: ranks of all follow-up times; ``identity``: t; ``log``: log t; or a function).
The score test of γ = 0 at (β̂, 0) needs, per event time t with risk set R(t) and Efron or Breslow
weighting of tied events (k = 1..d, fractions fₖ = k/d of the d tied events in the sums),

    mₖ(t) = Σ_R φᵢxᵢ / Σ_R φᵢ ,   Vₖ(t) = Σ_R φᵢxᵢxᵢᵀ / Σ_R φᵢ − mₖmₖᵀ     (φᵢ = wᵢ·exp(xᵢβ̂))
    U  = Σ_t g(t) · [Σ_events(t) wᵢxᵢ − Σₖ w̄ mₖ(t)]                       (score of γ)
    I  = [[Σ V, Σ g·V], [Σ g·V, Σ g²·V]]   with V(t) = Σₖ w̄ Vₖ(t)           (2p × 2p information)

and for a set J of columns (one covariate, all dummies of a factor, or all: GLOBAL)
χ² = u_Jᵀ (I_J)⁻¹ u_J with u_J = (0, U_J), I_J the rows/columns of β and γ_J, df = |J|.

Vectorised: Σ_t h(t)·Σ_{R(t)} φᵢxᵢxᵢᵀ = Xᵀ diag(φᵢ·Σ_{t ≤ Tᵢ} h(t)) X, so no p × p matrix is ever
formed per event time; 200,000 customers take a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import DataError, ParameterError
from ..phrasing import p_text

#: R's named transforms of time (``cox.zph(transform=...)``).
TRANSFORMS = ("km", "rank", "identity", "log")

#: Columns of :attr:`PHTestResult.summary`.
PH_TEST_COLUMNS = ["term_type", "covariate", "variable", "chi_square", "df", "p_value", "method"]

#: Row layouts of the test table: R's ``terms=TRUE``, ``terms=FALSE``, or both (the report's).
TERM_LAYOUTS = (True, False, "both")

TRANSFORM_LABELS = {
    "km": "1 − Kaplan-Meier Ŝ(t−)  (km transform)",
    "rank": "rank of follow-up time  (rank transform)",
    "identity": "time  (identity transform)",
    "log": "log time  (log transform)",
}


@dataclass
class PHTestResult:
    """The proportional-hazards test of a Cox model (R ``cox.zph``).

    Attributes
    ----------
    summary : DataFrame
        ``term_type`` (covariate / factor / global), ``covariate`` (model column, factor name or
        ``GLOBAL``), ``variable``, ``chi_square``, ``df``, ``p_value``, ``method``.
    residuals : DataFrame
        Scaled Schoenfeld residuals, one row per event (index: the event rows, R's order: by
        stratum, then time), one column per model column: β̂ⱼ + (rᵢ · V̄⁻¹)ⱼ with V̄ the average
        information per event — R's ``cox.zph(..., terms=FALSE)$y``. Their smoothed trend against
        ``x`` estimates βⱼ(t).
    x : Series
        The transformed time of each event (R's ``$x``), same index as ``residuals``.
    time : Series
        The event times (R's ``$time``).
    transform : str
        Name of the transform (``"user"`` for a function without a name).
    method : str
        What was computed, in words.
    """

    summary: pd.DataFrame
    residuals: pd.DataFrame
    x: pd.Series
    time: pd.Series
    transform: str
    method: str

    @property
    def x_label(self) -> str:
        """Axis label of the transformed time."""
        return TRANSFORM_LABELS.get(self.transform, f"g(time)  ({self.transform} transform)")


def transform_time(time: np.ndarray, event: np.ndarray, transform: str | Callable[[np.ndarray], Any]
                   ) -> tuple[np.ndarray, str]:
    """g(t) for every row, as R's ``cox.zph`` computes it (before centring); returns (values, name).

    ``km``: 1 − Ŝ(t−), Ŝ the Kaplan-Meier curve of all rows pooled (no weights, no strata);
    ``rank``: average ranks of all follow-up times, censored ones included; ``identity``: t;
    ``log``: log t (times must be > 0); a callable is applied to the times.
    """
    time = np.asarray(time, dtype=float)
    if callable(transform):
        name = getattr(transform, "__name__", "user")
        g = np.asarray(transform(time), dtype=float)
        if g.shape != time.shape or not np.isfinite(g).all():
            raise ParameterError(f"the transform function {name!r} must return one finite number per time "
                                 f"({time.shape[0]:,}); it returned shape {g.shape}.")
        return g, "user" if name == "<lambda>" else name
    if transform not in TRANSFORMS:
        raise ParameterError(f"transform must be one of {list(TRANSFORMS)} or a function of time, got {transform!r}",
                             allowed=list(TRANSFORMS))
    if transform == "identity":
        return time.copy(), transform
    if transform == "log":
        if (time <= 0).any():
            raise ParameterError(f"transform='log' needs positive times; {int((time <= 0).sum()):,} are ≤ 0. "
                                 "Use transform='km' or 'rank'.", allowed=list(TRANSFORMS))
        return np.log(time), transform
    if transform == "rank":
        return stats.rankdata(time), transform
    ut, inv = np.unique(time, return_inverse=True)
    deaths = np.bincount(inv, weights=np.asarray(event, float), minlength=len(ut))
    at_risk = np.cumsum(np.bincount(inv, minlength=len(ut))[::-1])[::-1]
    surv = np.cumprod(1.0 - deaths / at_risk)
    return 1.0 - np.r_[1.0, surv[:-1]][inv], transform


def _reverse_cumsum(a: np.ndarray) -> np.ndarray:
    """Reverse cumulative sum along axis 0 with a trailing zero row: out[i] = Σ_{k ≥ i} a[k]."""
    out = np.zeros((a.shape[0] + 1, *a.shape[1:]))
    out[:-1] = np.cumsum(a[::-1], axis=0)[::-1]
    return out


@dataclass
class _Sorted:
    """Rows sorted by (stratum, time) and their tie groups (one group per distinct time in a stratum)."""

    order: np.ndarray
    X: np.ndarray
    time: np.ndarray
    event: np.ndarray
    weight: np.ndarray
    stratum: np.ndarray
    phi: np.ndarray
    group: np.ndarray          # group of each row
    starts: np.ndarray         # first row of each group
    stratum_end: np.ndarray    # one past the last row of each group's stratum
    first_group: np.ndarray    # first group of each group's stratum


def _sort_rows(X: np.ndarray, time: np.ndarray, event: np.ndarray, weight: np.ndarray, stratum: np.ndarray,
               beta: np.ndarray) -> _Sorted:
    order = np.lexsort((time, stratum))           # stable: ties keep the input order, as R's order()
    Xs = X[order] - X.mean(axis=0)                # centred, as zph1.c, for a stable variance
    t, s = time[order], stratum[order]
    eta = Xs @ beta
    phi = weight[order] * np.exp(eta - eta.max())  # a common factor cancels in every ratio
    n = len(t)
    new = np.r_[True, (t[1:] != t[:-1]) | (s[1:] != s[:-1])]
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    s_new = np.r_[True, s[1:] != s[:-1]]
    s_starts = np.flatnonzero(s_new)
    s_id = np.cumsum(s_new) - 1
    s_end = np.r_[s_starts[1:], n]
    g_sid = s_id[starts]
    first_group = group[s_starts][g_sid]
    return _Sorted(order, Xs, t, event[order].astype(bool), weight[order], s, phi, group, starts,
                   s_end[g_sid], first_group)


def _score_and_information(d: _Sorted, gtime: np.ndarray, efron: bool
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """U (2p), I (2p × 2p), the Schoenfeld residuals x − x̄(t) of the events, and g of each event's group."""
    X, phi, ev, w = d.X, d.phi, d.event, d.weight
    n, p = X.shape
    ng = len(d.starts)
    rc0 = _reverse_cumsum(phi)
    rc1 = _reverse_cumsum(phi[:, None] * X)
    S0 = rc0[d.starts] - rc0[d.stratum_end]                    # risk-set sums, deaths included
    S1 = rc1[d.starts] - rc1[d.stratum_end]
    ge = d.group[ev]
    D0 = np.bincount(ge, weights=phi[ev], minlength=ng)         # sums over the tied events
    D1 = np.zeros((ng, p))
    np.add.at(D1, ge, phi[ev, None] * X[ev])
    n_dead = np.bincount(ge, minlength=ng)
    dead_wt = np.bincount(ge, weights=w[ev], minlength=ng)
    g_grp = gtime[d.order][d.starts]                             # g(t) of each group (same t in a group)
    has = np.flatnonzero(n_dead > 0)
    if efron:                                                    # one step per tied event, fractions k/d
        dg = n_dead[has]
        r_grp = np.repeat(has, dg)
        k = np.arange(len(r_grp)) - np.repeat(np.cumsum(dg) - dg, dg) + 1
        frac = k / n_dead[r_grp]
        r_wt = dead_wt[r_grp] / n_dead[r_grp]
    else:                                                        # Breslow: all tied events in, once
        r_grp, frac, r_wt = has, np.ones(len(has)), dead_wt[has]
    denom = S0[r_grp] - (1.0 - frac) * D0[r_grp]
    M = (S1[r_grp] - (1.0 - frac)[:, None] * D1[r_grp]) / denom[:, None]
    h = r_wt / denom
    H = np.bincount(r_grp, weights=h, minlength=ng)
    B = np.bincount(r_grp, weights=h * (1.0 - frac), minlength=ng)
    g_r = g_grp[r_grp]
    blocks = []
    for power in (0, 1, 2):                                      # Σ V, Σ g·V, Σ g²·V
        gp = g_grp ** power
        cum = np.cumsum(H * gp)
        cum_row = cum[d.group] - np.where(d.first_group > 0, cum[d.first_group - 1], 0.0)[d.group]
        omega = phi * (cum_row - np.where(ev, (B * gp)[d.group], 0.0))
        A = X.T @ (omega[:, None] * X) - M.T @ ((r_wt * g_r ** power)[:, None] * M)
        blocks.append((A + A.T) / 2)
    imat = np.block([[blocks[0], blocks[1]], [blocks[1], blocks[2]]])
    wx = np.zeros((ng, p))
    np.add.at(wx, ge, w[ev, None] * X[ev])
    u_beta = wx.sum(axis=0) - (r_wt[:, None] * M).sum(axis=0)
    u_gamma = (g_grp[:, None] * wx).sum(axis=0) - ((r_wt * g_r)[:, None] * M).sum(axis=0)
    xbar = np.zeros((ng, p))
    np.add.at(xbar, r_grp, M)
    xbar /= np.maximum(1, n_dead if efron else np.minimum(n_dead, 1))[:, None]
    schoen = X[ev] - xbar[ge]
    return np.r_[u_beta, u_gamma], imat, schoen, g_grp[ge]


def _scaled_residuals(d: _Sorted, schoen: np.ndarray, info: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """R's ``cox.zph`` ``y`` (terms=FALSE): β̂ + r · V̄⁻¹, V̄ the information per event of the strata
    where the covariate varies; NaN for a covariate constant within the event's stratum."""
    n, p = d.X.shape
    s_ev = d.stratum[d.event]
    strata = np.unique(d.stratum)
    used = np.zeros((len(strata), p))
    for i, s in enumerate(strata):
        rows = d.stratum == s
        varies = (d.X[rows] != d.X[rows][:1]).any(axis=0)
        used[i] = np.where(varies, np.count_nonzero(d.event[rows]), 0)
    wtmat = sum(np.minimum.outer(u, u) for u in used)
    vmean = info / np.where(wtmat == 0, 1, wtmat)
    out = np.full_like(schoen, np.nan)
    for i, s in enumerate(strata):
        k = used[i] > 0
        rows = s_ev == s
        if k.any() and rows.any():
            out[np.ix_(rows, k)] = np.linalg.solve(vmean[np.ix_(k, k)], schoen[np.ix_(rows, k)].T).T
    return out + beta


def _chi_square(u: np.ndarray, imat: np.ndarray, cols: Sequence[int], p: int) -> float:
    """uᵀ I⁻¹ u over β (all) and γ of ``cols``."""
    kk = np.r_[np.arange(p), p + np.asarray(cols, dtype=int)]
    uk = np.r_[np.zeros(p), u[p + np.asarray(cols, dtype=int)]]
    try:
        return float(uk @ np.linalg.solve(imat[np.ix_(kk, kk)], uk))
    except np.linalg.LinAlgError:
        return float(uk @ np.linalg.lstsq(imat[np.ix_(kk, kk)], uk, rcond=None)[0])


def _term_rows(columns: list[str], factors: Mapping[str, Sequence[str]], terms: bool | str
               ) -> list[tuple[str, str, str, list[int]]]:
    """(term_type, name, variable, column positions) of the rows the layout asks for."""
    pos = {c: i for i, c in enumerate(columns)}
    var_of = {c: v for v, cs in factors.items() for c in cs}
    rows: list[tuple[str, str, str, list[int]]] = []
    if terms in (False, "both"):
        rows += [("covariate", c, var_of.get(c, c), [pos[c]]) for c in columns]
    seen = set()
    for c in columns if terms in (True, "both") else []:
        v = var_of.get(c, c)
        if v in seen:
            continue
        seen.add(v)
        cols = [pos[x] for x in factors.get(v, [c]) if x in pos]
        if len(cols) > 1:
            rows.append(("factor", v, v, cols))
        elif terms is True:
            rows.append(("covariate", c, v, cols))
    if terms is True:  # R's order: the terms as they come in the model
        order = {v: i for i, v in enumerate(dict.fromkeys(var_of.get(c, c) for c in columns))}
        rows.sort(key=lambda r: order[r[2]])
    return rows


def _check_inputs(X: np.ndarray, time: np.ndarray, event: np.ndarray, beta: np.ndarray, weight: np.ndarray,
                  ties: str, terms: bool | str) -> None:
    n, p = X.shape
    if ties not in ("efron", "breslow"):
        raise ParameterError(f"ties must be 'efron' or 'breslow', got {ties!r}", allowed=["efron", "breslow"])
    if terms not in TERM_LAYOUTS:
        raise ParameterError(f"terms must be True, False or 'both', got {terms!r}",
                             allowed=list(map(str, TERM_LAYOUTS)))
    if len(time) != n or len(event) != n or len(weight) != n or beta.shape != (p,):
        raise DataError(f"shapes do not agree: X {X.shape}, time {len(time)}, event {len(event)}, "
                        f"weights {len(weight)}, beta {beta.shape}.")
    bad = ~np.isfinite(X).all(axis=1) | ~np.isfinite(time)
    if bad.any():
        raise DataError(f"{int(bad.sum()):,} rows have missing or infinite covariates or times; drop them "
                        "before the test (the Cox fit must use the same rows).")
    if not np.isin(event, (0, 1)).all():
        raise DataError("event must be 0/1 (or False/True).")
    if not event.any():
        raise DataError("no events: the proportional-hazards test needs at least one.")


def cox_zph(X: pd.DataFrame | np.ndarray, time: Sequence[float], event: Sequence[Any], beta: Sequence[float], *,
            strata: Sequence[Any] | None = None, weights: Sequence[float] | None = None, ties: str = "efron",
            transform: str | Callable[[np.ndarray], Any] = "km", terms: bool | str = "both",
            factors: Mapping[str, Sequence[str]] | None = None, global_test: bool = True) -> PHTestResult:
    """Exact score test of proportional hazards (R survival ≥ 3 ``cox.zph``) for a fitted Cox model.

    Parameters
    ----------
    X : DataFrame or array (n × p)
        The model columns the Cox model was fitted on (rows used by the fit only).
    time, event : array-like
        Follow-up time and event indicator (0/1) per row.
    beta : array-like
        Fitted coefficients, in the order of ``X``'s columns.
    strata : array-like, optional
        Stratum of each row for a stratified model (risk sets within strata; g(t) pooled, as R).
    weights : array-like, optional
        Case weights (default 1).
    ties : {'efron', 'breslow'}
        Tie handling the model was fitted with (R ``coxph`` and lifelines: Efron).
    transform : {'km', 'rank', 'identity', 'log'} or callable
        g(t); see :func:`transform_time`. R's default is ``km``.
    terms : True, False or 'both'
        Rows of the table: ``True`` one per term as R ``terms=TRUE`` (a multi-level factor's dummies
        jointly, df = number of dummies), ``False`` one per model column as R ``terms=FALSE``,
        ``'both'`` one per model column plus one per multi-column factor. A GLOBAL row ends each.
    factors : mapping, optional
        Variable → its model columns (e.g. ``{"Contract": ["Contract_One year", "Contract_Two year"]}``);
        other columns are their own term.
    global_test : bool
        Add the GLOBAL row (all columns jointly, df = p).

    Returns
    -------
    PHTestResult
        ``summary`` (the test table), the scaled Schoenfeld ``residuals`` and their ``x`` axis.

    Notes
    -----
    See the module docstring for the statistic. χ² ~ χ²(df) under proportional hazards; a small
    p-value means the hazard ratio changes with g(t). With many events tiny drifts are
    significant: look at the residual plot to judge their size.
    """
    columns = list(X.columns) if isinstance(X, pd.DataFrame) else [f"x{j}" for j in range(np.shape(X)[1])]
    index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(X))
    Xa = np.asarray(X, dtype=float)
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    b = np.asarray(beta, dtype=float)
    w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=float)
    _check_inputs(Xa, t, e, b, w, ties, terms)
    s = np.zeros(len(t), dtype=int) if strata is None else pd.factorize(pd.Series(list(strata)), sort=True)[0]
    g, tname = transform_time(t, e, transform)
    gtime = g - g[e == 1].mean()
    d = _sort_rows(Xa, t, e, w, s, b)
    u, imat, schoen, _ = _score_and_information(d, gtime, ties == "efron")
    p = Xa.shape[1]
    method = (f"exact score test (R survival ≥ 3 cox.zph, transform {tname}, {ties.capitalize()} ties"
              + (f", {len(np.unique(s))} strata" if strata is not None else "") + ")")
    rows = []
    for kind, name, var, cols in _term_rows(columns, dict(factors or {}), terms):
        rows.append((kind, name, var, _chi_square(u, imat, cols, p), len(cols)))
    if global_test:
        rows.append(("global", "GLOBAL", "GLOBAL", _chi_square(u, imat, range(p), p), p))
    summary = pd.DataFrame(rows, columns=["term_type", "covariate", "variable", "chi_square", "df"])
    summary["df"] = summary["df"].astype(int)
    summary["p_value"] = stats.chi2.sf(summary["chi_square"].clip(lower=0), summary["df"])
    summary["method"] = method
    ev_index = index[d.order][d.event]
    resid = pd.DataFrame(_scaled_residuals(d, schoen, imat[:p, :p], b), index=ev_index, columns=columns)
    return PHTestResult(summary=summary[PH_TEST_COLUMNS], residuals=resid,
                        x=pd.Series(g[d.order][d.event], index=ev_index, name="x"),
                        time=pd.Series(d.time[d.event], index=ev_index, name="time"),
                        transform=tname, method=method)


def ph_caveat(ph: pd.DataFrame, covariate: str) -> str | None:
    """The caveat a hazard ratio of ``covariate`` must carry, or None when its effect passes the PH test.

    ``ph`` is :meth:`ChurnCoxModel.check_proportional_hazards` (needs ``covariate``, ``variable``,
    ``term_type``, ``p_value``, ``ph_violated``). The covariate's own row counts, and for a dummy
    of a multi-level factor the factor's joint row too (the smaller p-value is quoted).
    """
    own = ph[(ph["covariate"] == covariate) & (ph["term_type"] == "covariate")]
    var = own["variable"].iloc[0] if len(own) else covariate
    rows = pd.concat([own, ph[(ph["term_type"] == "factor") & (ph["variable"] == var)]])
    bad = rows[rows["ph_violated"].astype(bool)]
    if bad.empty:
        return None
    p = float(bad["p_value"].min())
    return f"but this effect changes over time (PH test {p_text(p)})"
