"""The measurement model: a CFA of the constructs (semopy) with composite reliability, AVE and
Fornell-Larcker discriminant validity, and the per-construct reliability table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .mlfit import MLSolution, improper_solution
from .reliability import ItemAnalysis, composite_reliability, fornell_larcker
from .sem import fit_table, latent_correlations, loadings_table, measurement_description, sem_data, semopy_fit


@dataclass
class MeasurementModel:
    """Confirmatory factor analysis of the constructs.

    ``loadings``: construct, item, estimate, std_loading, se, p_value. ``summary``: construct,
    composite_reliability, ave. ``latent_corr``: latent correlations. ``fornell_larcker``,
    ``fit``: see :func:`fornell_larcker` and :func:`fit_table` (with the convergence rows).
    ``solution``: how the ML optimum was reached (:class:`~.mlfit.MLSolution`); ``warnings_``:
    plain-words notes on an improper or unconverged solution.
    """

    loadings: pd.DataFrame
    summary: pd.DataFrame
    latent_corr: pd.DataFrame
    fornell_larcker: pd.DataFrame
    fit: pd.DataFrame
    n_obs: int
    model: Any = None
    solution: MLSolution | None = None
    warnings_: list[str] = field(default_factory=list)


def measurement_model(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]], *,
                      missing: str = "pairwise") -> MeasurementModel:
    """Fit a CFA (all constructs correlated) with semopy and derive composite reliability, AVE and
    the Fornell-Larcker table from its standardized loadings.

    ``missing='pairwise'`` (default) fits the pairwise-complete covariance matrix of the items
    with n = the smallest pairwise count; ``'listwise'`` keeps only respondents who answered
    every item.
    """
    data, n = sem_data(items, constructs, missing)
    model, solution, table, stats = semopy_fit("\n".join(measurement_description(constructs)), data, missing=missing)
    names = list(constructs)
    loadings = loadings_table(table, names)
    summary = composite_reliability(loadings)
    corr = latent_correlations(table, names)
    fl = fornell_larcker(summary.set_index("construct")["ave"], corr)
    notes = improper_solution(table) + ([] if solution.converged else [
        f"the CFA did not converge (largest gradient {solution.gradient_norm:.2g})"])
    return MeasurementModel(loadings, summary, corr, fl, fit_table(stats, solution), n, model, solution, notes)


def reliability_table(analysis: ItemAnalysis, measurement: MeasurementModel | None = None) -> pd.DataFrame:
    """One row per construct: construct, n_items, cronbach_alpha, standardized_alpha,
    composite_reliability, ave (the last two from the CFA when given), n_complete."""
    out = analysis.summary[["construct", "n_items", "cronbach_alpha", "standardized_alpha", "n_complete"]].copy()
    if measurement is not None:
        out = out.merge(measurement.summary, on="construct", how="left")
    else:
        out["composite_reliability"] = np.nan
        out["ave"] = np.nan
    return out[["construct", "n_items", "cronbach_alpha", "standardized_alpha", "composite_reliability", "ave",
                "n_complete"]]
