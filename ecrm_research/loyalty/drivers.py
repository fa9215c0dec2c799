"""Driver regressions: OLS of an outcome construct on its drivers (statsmodels) with standardized
coefficients, VIF, cross-validated R² and residual diagnostics."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_predict

# the modules themselves, not statsmodels.api: that one also imports time series and
# graphics (~0.3 s of a notebook's start-up)
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.diagnostic import het_breuschpagan
from statsmodels.stats.stattools import jarque_bera
from statsmodels.tools.tools import add_constant

from ..exceptions import AnalysisError, ParameterError


def check_design(df: pd.DataFrame, outcome: str, predictors: Sequence[str]) -> pd.DataFrame:
    """The complete rows of ``outcome`` and ``predictors``, after checking there are enough and none is constant."""
    cols = [outcome] + list(predictors)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ParameterError(f"column(s) {missing} not in the construct scores {list(df.columns)}",
                             allowed=list(df.columns))
    data = df[cols].dropna()
    if len(data) < len(cols) + 10:
        raise AnalysisError(f"Only {len(data)} respondents have scores for {cols}; too few for a regression "
                            f"with {len(predictors)} predictors.")
    const = [c for c in cols if data[c].std() == 0]
    if const:
        raise AnalysisError(f"Score(s) {const} are constant (everyone gave the same answer): a constant "
                            f"cannot explain or be explained. Drop them from the model.")
    return data


@dataclass
class DriverModel:
    """An OLS driver regression.

    ``summary``: outcome, predictor, estimate, std_estimate, se, ci_lower, ci_upper,
    std_ci_lower, std_ci_upper, p_value, vif (intercept left out). ``diagnostics``: test,
    statistic, p_value, conclusion. Scalars ``r2``, ``adj_r2``, ``cv_r2``, ``n_obs``.
    """

    outcome: str
    predictors: list[str]
    summary: pd.DataFrame
    diagnostics: pd.DataFrame
    r2: float
    adj_r2: float
    cv_r2: float
    n_obs: int
    cov_type: str
    model: Any = None


def vif(frame: pd.DataFrame) -> pd.Series:
    """Variance inflation factors, VIF_j = 1 / (1 - R²_j); above 5 signals troublesome collinearity."""
    r = np.corrcoef(frame.to_numpy(float), rowvar=False)
    inv = np.linalg.pinv(np.atleast_2d(r))
    return pd.Series(np.diag(inv), index=frame.columns, name="vif")


def fit_drivers(scores: pd.DataFrame, outcome: str, predictors: Sequence[str], *, robust: bool = False,
                cv_folds: int = 5, seed: int = 42, alpha: float = 0.05) -> DriverModel:
    """OLS of an outcome construct on its drivers (statsmodels).

    Parameters
    ----------
    scores : DataFrame
        Construct scores; respondents missing any of the variables are left out.
    outcome : str
    predictors : sequence of str
    robust : bool
        Heteroscedasticity-consistent (HC3) standard errors.
    cv_folds : int
        Folds of the seeded, shuffled KFold used for the cross-validated R² (pooled out-of-fold
        predictions: 1 - SSE_oof / SST).
    seed : int
    alpha : float
        1 - confidence level of the intervals.

    Notes
    -----
    Standardized coefficients come from the same regression on z-scored variables
    (beta_std = b * sd(x) / sd(y)); their intervals use the same covariance type.
    Diagnostics: Jarque-Bera (normal residuals), Breusch-Pagan (constant variance).
    """
    predictors = list(predictors)
    data = check_design(scores, outcome, predictors)
    cov_type = "HC3" if robust else "nonrobust"
    X = add_constant(data[predictors], has_constant="add")
    fit = OLS(data[outcome], X).fit(cov_type=cov_type)
    z = (data - data.mean()) / data.std(ddof=1)
    fit_z = OLS(z[outcome], add_constant(z[predictors], has_constant="add")).fit(cov_type=cov_type)
    v = vif(data[predictors]) if len(predictors) > 1 else pd.Series(1.0, index=predictors)
    summary = _coefficient_table(fit, fit_z, v, outcome, predictors, alpha)
    high = summary.loc[summary["vif"] > 5, "predictor"].tolist()
    if high:
        warnings.warn(f"{outcome} model: VIF > 5 for {high}; their separate effects are poorly determined "
                      f"(the drivers move together). Interpret their sum, or use relative importance.",
                      stacklevel=2)
    cv_r2 = _cross_validated_r2(data[predictors].to_numpy(), data[outcome].to_numpy(), cv_folds=cv_folds, seed=seed)
    diag = _residual_diagnostics(fit, X, v, high)
    return DriverModel(outcome, predictors, summary, diag, float(fit.rsquared), float(fit.rsquared_adj), cv_r2,
                       int(fit.nobs), cov_type, fit)


def _coefficient_table(fit: Any, fit_z: Any, v: pd.Series, outcome: str, predictors: list[str],
                       alpha: float) -> pd.DataFrame:
    """Raw and standardized coefficients with their intervals, p-values and VIF (intercept left out)."""
    ci, ciz = fit.conf_int(alpha), fit_z.conf_int(alpha)
    return pd.DataFrame({
        "outcome": outcome, "predictor": predictors,
        "estimate": fit.params[predictors].to_numpy(), "std_estimate": fit_z.params[predictors].to_numpy(),
        "se": fit.bse[predictors].to_numpy(),
        "ci_lower": ci.loc[predictors, 0].to_numpy(), "ci_upper": ci.loc[predictors, 1].to_numpy(),
        "std_ci_lower": ciz.loc[predictors, 0].to_numpy(), "std_ci_upper": ciz.loc[predictors, 1].to_numpy(),
        "p_value": fit.pvalues[predictors].to_numpy(), "vif": v[predictors].to_numpy()})


def _cross_validated_r2(x: np.ndarray, y: np.ndarray, *, cv_folds: int, seed: int) -> float:
    """Out-of-fold R² of a linear regression (seeded, shuffled KFold): 1 - SSE_oof / SST."""
    kf = KFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    pred = cross_val_predict(LinearRegression(), x, y, cv=kf)
    return float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def _residual_diagnostics(fit: Any, X: pd.DataFrame, v: pd.Series, high: list[str]) -> pd.DataFrame:
    """Jarque-Bera (normal residuals), Breusch-Pagan (constant variance) and the largest VIF, in plain words."""
    jb, jb_p, skew, kurt = jarque_bera(fit.resid)
    bp, bp_p, _, _ = het_breuschpagan(fit.resid, X)
    return pd.DataFrame([
        {"test": "Jarque-Bera (residual normality)", "statistic": float(jb), "p_value": float(jb_p),
         "conclusion": ("residuals look normal" if jb_p > 0.05 else
                        f"residuals not normal (skew {skew:.2f}, kurtosis {kurt:.2f}); with n = {int(fit.nobs)} the "
                        f"coefficient tests still hold approximately")},
        {"test": "Breusch-Pagan (heteroscedasticity)", "statistic": float(bp), "p_value": float(bp_p),
         "conclusion": ("constant residual variance not rejected" if bp_p > 0.05 else
                        "residual variance changes with the drivers: prefer robust (HC3) errors")},
        {"test": "max VIF", "statistic": float(v.max()), "p_value": np.nan,
         "conclusion": "no troublesome collinearity" if v.max() <= 5 else f"collinear drivers: {high}"},
    ])
