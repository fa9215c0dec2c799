"""Stated vs actual loyalty: does the survey's loyalty score predict real repurchase (canonical data)?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sst
from sklearn.metrics import roc_auc_score
from statsmodels.discrete.discrete_model import Logit
from statsmodels.tools.tools import add_constant

from ..exceptions import AnalysisError


@dataclass
class RepurchaseCheck:
    """Does stated loyalty predict real repurchase?

    ``summary``: measure, value, ci_lower, ci_upper, p_value, meaning. ``linked``: one row per
    linked respondent with the score and ``repurchased``.
    """

    summary: pd.DataFrame
    linked: pd.DataFrame
    window_days: int
    n_linked: int


def stated_vs_actual(scores: pd.DataFrame, survey: pd.DataFrame, orders: pd.DataFrame, *, score: str = "loyalty",
                     window_days: int = 90) -> RepurchaseCheck:
    """Link respondents to their orders and test whether stated loyalty predicts repurchase.

    ``repurchased`` = at least one completed order within ``window_days`` after the answer date
    (``answered_at``); without answer dates, within the last ``window_days`` of the order data.
    Respondents whose window runs past the end of the order data are left out (their outcome
    is not yet known). Reported: point-biserial correlation, logistic regression odds ratio per
    standard deviation of the score (statsmodels Logit) and the AUC.

    Raises
    ------
    AnalysisError
        No customer ids in the survey, or fewer than 30 linked respondents / no variation.
    """
    if "customer_id" not in survey.columns or survey["customer_id"].notna().sum() == 0:
        raise AnalysisError("The survey has no customer ids, so stated loyalty cannot be linked to orders.")
    df, has_dates = _link_repurchases(scores[score], survey, orders, window_days)
    if len(df) < 30 or df["repurchased"].nunique() < 2:
        raise AnalysisError(f"Only {len(df)} respondents could be linked with a complete {window_days}-day window "
                            f"(or all had the same outcome); too few to test stated vs actual loyalty.")
    summary = _repurchase_tests(df, score=score, window_days=window_days, has_dates=has_dates)
    return RepurchaseCheck(summary, df.reset_index(drop=True), window_days, len(df))


def _link_repurchases(score: pd.Series, survey: pd.DataFrame, orders: pd.DataFrame,
                      window_days: int) -> tuple[pd.DataFrame, bool]:
    """Respondents with a complete window (customer_id, score, start, repurchased), and whether the
    windows start at the answer dates (else at ``window_days`` before the end of the order data)."""
    o = orders
    if "status" in o.columns:
        o = o[o["status"].astype("string") == "completed"]
    o = o[["customer_id", "ordered_at"]].dropna()
    end = o["ordered_at"].max()
    df = pd.DataFrame({"customer_id": survey["customer_id"], "score": score}, index=survey.index)
    has_dates = "answered_at" in survey.columns and survey["answered_at"].notna().any()
    if has_dates:
        df["start"] = pd.to_datetime(survey["answered_at"])
    else:
        df["start"] = end - pd.Timedelta(days=window_days)
    df = df.dropna(subset=["customer_id", "score", "start"])
    df = df[df["start"] + pd.Timedelta(days=window_days) <= end]
    m = df.reset_index().merge(o, on="customer_id", how="left")
    m["hit"] = (m["ordered_at"] > m["start"]) & (m["ordered_at"] <= m["start"] + pd.Timedelta(days=window_days))
    hit = m.groupby("index")["hit"].any()
    df["repurchased"] = hit.reindex(df.index).fillna(False).astype(int)
    return df, has_dates


def _repurchase_tests(df: pd.DataFrame, *, score: str, window_days: int, has_dates: bool) -> pd.DataFrame:
    """Point-biserial r, logistic odds ratio per SD and AUC of the score against ``repurchased``."""
    z = (df["score"] - df["score"].mean()) / df["score"].std()
    r, r_p = sst.pearsonr(df["score"], df["repurchased"])
    logit = Logit(df["repurchased"], add_constant(z.rename("score_z"))).fit(disp=0)
    ci = logit.conf_int().loc["score_z"]
    auc = roc_auc_score(df["repurchased"], df["score"])
    when = "after answering" if has_dates else "at the end of the order data"
    return pd.DataFrame([
        {"measure": "n_linked", "value": len(df), "ci_lower": np.nan, "ci_upper": np.nan, "p_value": np.nan,
         "meaning": f"respondents linked to orders with a full {window_days}-day window {when}"},
        {"measure": "repurchase_rate", "value": df["repurchased"].mean(), "ci_lower": np.nan, "ci_upper": np.nan,
         "p_value": np.nan, "meaning": f"share with a completed order within {window_days} days"},
        {"measure": "point_biserial_r", "value": r, "ci_lower": np.nan, "ci_upper": np.nan, "p_value": r_p,
         "meaning": f"correlation of stated {score} with repurchase"},
        {"measure": "odds_ratio_per_sd", "value": float(np.exp(logit.params["score_z"])),
         "ci_lower": float(np.exp(ci[0])), "ci_upper": float(np.exp(ci[1])), "p_value": float(logit.pvalues["score_z"]),
         "meaning": f"logistic regression: odds of repurchase per +1 SD of stated {score}"},
        {"measure": "auc", "value": auc, "ci_lower": np.nan, "ci_upper": np.nan, "p_value": np.nan,
         "meaning": "0.5 = stated loyalty does not rank buyers above non-buyers; 1 = perfectly"},
    ])
