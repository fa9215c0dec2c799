"""Applying the churn model: holdout concordance, at-risk customers with value at risk, retention campaign sizing."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from lifelines.utils import concordance_index
from sklearn.model_selection import train_test_split

from ..exceptions import AnalysisError, ParameterError, SurvivalWarning
from ..prep.churn import ChurnData
from .cox import ChurnCoxModel


def holdout_concordance(
    data: ChurnData | pd.DataFrame,
    *,
    fraction: float = 0.3,
    seed: int = 42,
    covariates: Sequence[str] | None = None,
    duration_col: str | None = None,
    event_col: str | None = None,
    **model_kwargs: Any,
) -> dict[str, Any]:
    """Harrell's concordance of a Cox model on a seeded holdout split.

    The customers are split (stratified by event when each outcome has at least two customers,
    else plainly, with a :class:`SurvivalWarning`) into a training part (1 − ``fraction``)
    and a holdout part; the model is fitted on the first and ranks the second by predicted
    partial hazard. C = 0.5 is chance, 1 perfect ranking of churn times.

    Returns
    -------
    dict
        ``n_train``, ``n_test``, ``events_train``, ``events_test``, ``concordance_train``,
        ``concordance_test``, ``seed``, ``fraction``.
    """
    if not 0 < fraction < 1:
        raise ParameterError(f"holdout fraction must be between 0 and 1, got {fraction!r}.")
    if isinstance(data, ChurnData):
        frame = data.frame
        duration_col = duration_col or data.duration_col
        event_col = event_col or data.event_col
        covariates = list(data.covariates) if covariates is None else list(covariates)
    else:
        frame = data
        duration_col = duration_col or "duration"
        event_col = event_col or "event"
    train, test = _split(frame, event_col, fraction, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurvivalWarning)
        model = ChurnCoxModel(**model_kwargs).fit(train, duration_col, event_col, covariates)
    Xt = model.design(test)
    ok = Xt.notna().all(axis=1)
    risk = model.cph_.predict_partial_hazard(Xt.loc[ok]).to_numpy(float)
    c_test = concordance_index(test.loc[ok, duration_col], -risk, test.loc[ok, event_col])
    return {"n_train": model.n_, "n_test": int(ok.sum()), "events_train": model.n_events_,
            "events_test": int(test.loc[ok, event_col].sum()), "concordance_train": model.concordance_,
            "concordance_test": float(c_test), "seed": seed, "fraction": fraction}


def _split(frame: pd.DataFrame, event_col: str, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded train/holdout split, stratified by event when both outcomes have two customers or more."""
    counts = frame[event_col].value_counts()
    n_test = int(np.ceil(fraction * len(frame)))
    if len(frame) < 4 or n_test < 2 or len(frame) - n_test < 2:
        raise AnalysisError(f"A holdout check needs more customers: {len(frame):,} split with fraction={fraction:g} "
                            f"leaves {len(frame) - n_test:,} to fit and {n_test:,} to score. Use more data or skip "
                            "the holdout check.")
    stratify = frame[event_col] if len(counts) > 1 and counts.min() >= 2 else None
    if stratify is None:
        warnings.warn(f"holdout split not stratified by churn: the outcomes are {counts.to_dict()} "
                      "(stratifying needs two customers of each).", SurvivalWarning, stacklevel=3)
    return train_test_split(frame, test_size=fraction, random_state=seed, stratify=stratify)


def at_risk_customers(
    model: ChurnCoxModel,
    data: ChurnData | pd.DataFrame,
    horizon: float,
    *,
    top_factors: int = 3,
) -> pd.DataFrame:
    """Customers still active, with churn probability within ``horizon`` and value at risk.

    Returns
    -------
    DataFrame
        ``customer_id``, ``time_at_risk`` (duration so far), ``churn_probability``,
        ``annual_value`` (when known), ``value_at_risk`` = annual_value × churn_probability,
        ``main_risk_factors``; sorted by value at risk (else probability), highest first.
        Customers with missing covariates get no probability and are left out (count in
        ``DataFrame.attrs['n_unscored']``).
    """
    frame = data.frame if isinstance(data, ChurnData) else data
    id_col = data.id_col if isinstance(data, ChurnData) else (model.id_col or "customer_id")
    active = frame[frame[model.event_col] == 0]
    X = model.design(active)
    ok = X.notna().all(axis=1)
    act = active.loc[ok]
    out = pd.DataFrame({"customer_id": act[id_col].to_numpy() if id_col in act.columns else act.index.to_numpy(),
                        "time_at_risk": act[model.duration_col].to_numpy(float)})
    out["churn_probability"] = model.predict_churn_probability(act, horizon).to_numpy()
    if "annual_value" in act.columns:
        out["annual_value"] = act["annual_value"].to_numpy(float)
        out["value_at_risk"] = out["annual_value"] * out["churn_probability"]
        key = "value_at_risk"
    else:
        key = "churn_probability"
    out["main_risk_factors"] = model.risk_factors(act, top=top_factors).to_numpy()
    out = out.sort_values(key, ascending=False, kind="mergesort").reset_index(drop=True)
    out.attrs["n_unscored"] = int((~ok).sum())
    out.attrs["horizon"] = horizon
    return out


def campaign_sizing(
    at_risk: pd.DataFrame,
    *,
    cost_ratio: float = 0.2,
    save_rate: float = 0.4,
    acquisition_cost: float | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Size a retention campaign: whom is it worth contacting?

    Parameters
    ----------
    at_risk : DataFrame
        From :func:`at_risk_customers` (``churn_probability``, optional ``value_at_risk``).
    cost_ratio : float
        Cost of a retention offer as a share of the cost A of winning a new customer
        (0.2: keeping a customer costs about a fifth of winning one).
    save_rate : float
        Share of would-be churners the offer keeps.
    acquisition_cost : float, optional
        A in money; when given, costs and gains are also reported in money.

    Returns
    -------
    curve : DataFrame
        Customers ranked by expected net gain; cumulative ``contacted``, ``expected_churners``,
        ``expected_saved``, ``cost`` and ``net_gain`` (in units of A), ``value_at_risk_covered``.
    summary : dict
        ``threshold_probability`` = cost_ratio / save_rate, ``recommended_size`` (customers with
        positive expected gain), ``expected_saved``, ``cost``, ``net_gain``, ``value_saved``.

    Notes
    -----
    Contacting customer i costs cost_ratio·A; with probability pᵢ·save_rate it keeps a
    customer who would otherwise have to be replaced at cost A. Expected net gain
    = A·(pᵢ·save_rate − cost_ratio) > 0 ⇔ pᵢ > cost_ratio / save_rate. Expected value saved
    = Σ pᵢ·save_rate·annual_valueᵢ (a year of the saved customers' spend).
    """
    if not 0 < save_rate <= 1:
        raise ParameterError(f"save_rate must be in (0, 1], got {save_rate!r}.")
    if cost_ratio < 0:
        raise ParameterError(f"cost_ratio must be ≥ 0, got {cost_ratio!r}.")
    p = at_risk["churn_probability"].to_numpy(float)
    gain = p * save_rate - cost_ratio
    order = np.lexsort((-at_risk.get("value_at_risk", pd.Series(p)).to_numpy(float), -gain))
    c = pd.DataFrame({"customer_id": at_risk["customer_id"].to_numpy()[order], "churn_probability": p[order],
                      "expected_gain": gain[order]})
    c["contacted"] = np.arange(1, len(c) + 1)
    c["expected_churners"] = np.cumsum(p[order])
    c["expected_saved"] = c["expected_churners"] * save_rate
    c["cost"] = c["contacted"] * cost_ratio
    c["net_gain"] = np.cumsum(gain[order])
    if "value_at_risk" in at_risk.columns:
        c["value_at_risk_covered"] = np.cumsum(at_risk["value_at_risk"].to_numpy(float)[order])
        c["value_saved"] = c["value_at_risk_covered"] * save_rate
    if acquisition_cost is not None:
        for k in ("cost", "net_gain"):
            c[f"{k}_money"] = c[k] * acquisition_cost
    n_rec = int((gain > 0).sum())
    last = c.iloc[n_rec - 1] if n_rec else None
    summary = {"threshold_probability": cost_ratio / save_rate, "cost_ratio": cost_ratio, "save_rate": save_rate,
               "candidates": int(len(c)), "recommended_size": n_rec,
               "expected_saved": float(last["expected_saved"]) if n_rec else 0.0,
               "cost": float(last["cost"]) if n_rec else 0.0,
               "net_gain": float(last["net_gain"]) if n_rec else 0.0,
               "value_saved": float(last["value_saved"]) if n_rec and "value_saved" in c else 0.0}
    if acquisition_cost is not None:
        summary["net_gain_money"] = summary["net_gain"] * acquisition_cost
    return c, summary
