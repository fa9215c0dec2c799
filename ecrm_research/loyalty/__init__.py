"""Loyalty drivers from a customer survey: scales, reliability, driver regression, mediation,
relative importance, SEM with latent variables and importance-performance analysis.

The analysis answers *which levers raise loyalty, and by how much?* on any survey whose items
are grouped into constructs by a mapping ``{construct: [item, ...]}``:

1. :func:`score_constructs` — reverse-code items, apply the missing-answer policy (a construct
   is scored when at least 2/3 of its items are answered), average the items;
2. :func:`item_analysis`, :func:`measurement_model`, :func:`htmt` — Cronbach's alpha (raw and
   standardized), corrected item-total correlations, alpha-if-item-deleted, composite
   reliability and AVE from a CFA, Fornell-Larcker and HTMT discriminant validity;
3. :func:`fit_drivers` — OLS driver regressions (statsmodels) with standardized coefficients,
   optional HC3 errors, VIF, cross-validated R² and residual diagnostics;
4. :func:`mediation_analysis` — indirect, direct and total effects with seeded bootstrap
   percentile intervals, on composite scores and corrected for measurement error;
5. :func:`relative_importance` — exact Shapley decomposition (general dominance) of R²;
6. :func:`fit_sem` — measurement + structural model with semopy, standardized paths, fit
   indices (CFI, TLI, RMSEA and SRMR, computed here) judged against the usual cut-offs;
7. :func:`importance_performance` and :func:`lever_ranking` — the IPA map and the expected
   loyalty gain per one-point improvement of each lever;
8. :func:`stated_vs_actual` — does stated loyalty predict real repurchase (canonical data)?

Examples
--------
>>> from ecrm_research import loyalty                                   # doctest: +SKIP
>>> spec = loyalty.load_constructs("data/mappings/ecsi_mobi_constructs.yaml")  # doctest: +SKIP
>>> sc = loyalty.score_constructs(frame, spec.constructs, scale_min=1, scale_max=10)  # doctest: +SKIP
>>> loyalty.item_analysis(sc.items, spec.constructs).summary            # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError, DataError, ParameterError

#: Share of a construct's items that must be answered for the construct to be scored.
MIN_ANSWERED_SHARE = 2 / 3

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

#: Default constructs of the bundled sample survey (item-name prefix -> construct).
SAMPLE_PREFIXES = {
    "trust": "trust", "quality": "service_quality", "cost": "perceived_cost", "habit": "habit",
    "ent": "entertainment", "sat": "satisfaction", "loy": "loyalty",
}

_ITEM_RE = re.compile(r"^(?P<prefix>.+?)_?(?P<num>\d+)(?P<rev>_r)?$")


# --------------------------------------------------------------------------------------------
# construct specification
# --------------------------------------------------------------------------------------------
@dataclass
class ConstructSpec:
    """A survey's constructs and the roles they play in the loyalty model.

    Attributes
    ----------
    constructs : dict
        Construct name -> list of item columns.
    reverse_items : list of str
        Items to reverse-code (``min + max - x``).
    scale_min, scale_max : float or None
        Answer scale; ``None`` means inferred from the data.
    outcome, mediator : str
        Outcome (loyalty) and mediator (satisfaction) construct names.
    drivers : list of str
        Constructs that drive the mediator (and may also act directly on the outcome).
    direct_drivers : list of str
        Constructs that act on the outcome only.
    labels : dict
        Optional display labels.
    source : str
        Where the specification came from.
    """

    constructs: dict[str, list[str]]
    reverse_items: list[str] = field(default_factory=list)
    scale_min: float | None = None
    scale_max: float | None = None
    outcome: str = "loyalty"
    mediator: str = "satisfaction"
    drivers: list[str] = field(default_factory=list)
    direct_drivers: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    source: str = "inline"

    def label(self, name: str) -> str:
        return self.labels.get(name, name.replace("_", " "))


def infer_constructs(columns: Iterable[str], prefixes: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Group item columns named ``<prefix>_<n>`` (optionally ``_r`` for reverse-coded) by prefix.

    Parameters
    ----------
    columns : iterable of str
        Column names; non-item columns (ids, dates) are ignored.
    prefixes : mapping, optional
        Prefix -> construct name (default :data:`SAMPLE_PREFIXES`; unknown prefixes keep their name).

    Returns
    -------
    dict
        Construct -> items, in column order; only groups with at least two items.
    """
    prefixes = dict(SAMPLE_PREFIXES if prefixes is None else prefixes)
    groups: dict[str, list[str]] = {}
    for col in columns:
        if col in ("respondent_id", "customer_id", "answered_at"):
            continue
        m = _ITEM_RE.match(str(col))
        if not m:
            continue
        name = prefixes.get(m.group("prefix"), m.group("prefix"))
        groups.setdefault(name, []).append(str(col))
    return {k: v for k, v in groups.items() if len(v) >= 2}


def load_constructs(spec: str | Path | Mapping[str, Any] | None = None, *, columns: Iterable[str] | None = None,
                    **overrides: Any) -> ConstructSpec:
    """Read a construct specification from a YAML file, a dict, or infer it from item names.

    Parameters
    ----------
    spec : str, Path, dict or None
        * path to a YAML file with ``constructs:`` (name -> items) and optionally
          ``reverse_items``, ``scale: {min, max}``, ``roles: {outcome, mediator, drivers,
          direct_drivers}``, ``labels``;
        * a dict of that shape, or a plain ``{construct: [items]}`` dict;
        * ``None``: constructs are inferred from ``columns`` named ``<prefix>_<n>[_r]``
          (the sample survey's convention; items ending in ``_r`` are reverse-coded).
    columns : iterable of str, optional
        The survey's columns (needed when ``spec`` is None).
    **overrides
        Non-None values replace the file's (``reverse_items``, ``scale_min``, ``scale_max``,
        ``outcome``, ``mediator``, ``drivers``, ``direct_drivers``).

    Returns
    -------
    ConstructSpec
        With default roles filled in: drivers = every construct that is neither outcome nor
        mediator nor a direct driver.
    """
    source = "inline"
    if spec is None:
        if columns is None:
            raise ParameterError("constructs=None needs the survey's columns to infer the constructs from "
                                 "item names like 'trust_1'. Pass constructs={'trust': ['t1', 't2'], ...} "
                                 "or a YAML file.")
        cols = list(columns)
        raw: dict[str, Any] = {"constructs": infer_constructs(cols),
                               "reverse_items": [c for c in cols if str(c).endswith("_r")]}
        source = "inferred from item names"
        if not raw["constructs"]:
            raise ParameterError(f"No item columns named like 'trust_1' found among {cols[:20]}. Pass "
                                 f"constructs= (name -> items) or a YAML file such as "
                                 f"data/mappings/ecsi_mobi_constructs.yaml.")
    elif isinstance(spec, (str, Path)):
        import yaml

        path = Path(spec)
        if not path.exists():
            raise ParameterError(f"constructs file {str(path)!r} not found. Pass a YAML file with a "
                                 f"'constructs:' section or an inline dict.")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        source = str(path)
    else:
        raw = dict(spec)
    if "constructs" not in raw:
        raw = {"constructs": raw}
    constructs = {str(k): [str(i) for i in (v if isinstance(v, (list, tuple)) else [v])]
                  for k, v in dict(raw["constructs"]).items()}
    roles = dict(raw.get("roles") or {})
    scale = dict(raw.get("scale") or {})
    out = ConstructSpec(
        constructs=constructs,
        reverse_items=[str(i) for i in (raw.get("reverse_items") or [])],
        scale_min=scale.get("min"), scale_max=scale.get("max"),
        outcome=roles.get("outcome", "loyalty"), mediator=roles.get("mediator", "satisfaction"),
        drivers=list(roles.get("drivers") or []), direct_drivers=list(roles.get("direct_drivers") or []),
        labels=dict(raw.get("labels") or {}), source=source,
    )
    for key, value in overrides.items():
        if value is None:
            continue
        if not hasattr(out, key):
            raise ParameterError(f"unknown construct-spec option {key!r}",
                                 allowed=["reverse_items", "scale_min", "scale_max", "outcome", "mediator",
                                          "drivers", "direct_drivers"])
        setattr(out, key, list(value) if isinstance(value, (list, tuple)) else value)
    for role in ("outcome", "mediator"):
        name = getattr(out, role)
        if name not in out.constructs:
            raise ParameterError(f"{role} construct {name!r} is not among the constructs "
                                 f"{list(out.constructs)}. Pass {role}='<one of them>'.",
                                 allowed=list(out.constructs))
    if not out.drivers and not (overrides.get("drivers") is not None):
        out.drivers = [c for c in out.constructs
                       if c not in (out.outcome, out.mediator) and c not in out.direct_drivers]
    unknown = [c for c in out.drivers + out.direct_drivers if c not in out.constructs]
    if unknown:
        raise ParameterError(f"driver(s) {unknown} are not constructs; known: {list(out.constructs)}",
                             allowed=list(out.constructs))
    return out


def resolve_constructs(constructs: str | Path | Mapping[str, Any] | None, columns: Iterable[str],
                       **overrides: Any) -> ConstructSpec:
    """The notebook's rule for ``constructs=None``: the sample survey's mapping
    (``data/mappings/sample_constructs.yaml``) when the survey has its items, otherwise
    constructs inferred from item names ``<prefix>_<n>[_r]``. Otherwise :func:`load_constructs`."""
    from ..paths import MAPPINGS_DIR

    cols = list(columns)
    if constructs is None:
        sample_yaml = MAPPINGS_DIR / "sample_constructs.yaml"
        if sample_yaml.exists():
            spec = load_constructs(sample_yaml, **overrides)
            if all(i in cols for its in spec.constructs.values() for i in its):
                return spec
        return load_constructs(None, columns=cols, **overrides)
    return load_constructs(constructs, **overrides)


def survey_from_dataset(ds: Any) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The survey frame (and the orders, for canonical data) of an :class:`ecrm_research.data.io.Dataset`.

    Raises
    ------
    FormatError
        The dataset is neither ``survey`` nor ``canonical``.
    AnalysisError
        Canonical data without a ``survey_responses`` table.
    """
    ds.require(["survey", "canonical"], "loyalty-driver")
    if ds.format == "survey":
        return ds.frame, None
    survey = ds.tables.get("survey_responses")
    if survey is None or len(survey) == 0:
        raise AnalysisError(f"{ds.source}: the canonical data has no survey_responses table, so there are no "
                            f"answers to analyse. Add survey_responses.parquet/csv (respondent_id, customer_id, "
                            f"answered_at, one column per item) or pass a survey file with data_format='survey'.")
    return survey, ds.tables.get("orders")


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


# --------------------------------------------------------------------------------------------
# scales: reverse coding, missing answers, scores
# --------------------------------------------------------------------------------------------
@dataclass
class ScaleScores:
    """Construct scores and the bookkeeping of how they were made.

    Attributes
    ----------
    scores : DataFrame
        One column per construct (mean of answered items; NaN when unscored), index = survey rows.
    items : DataFrame
        The item columns after reverse coding and out-of-range values set to missing.
    coverage : DataFrame
        One row per construct: ``construct, n_items, items, n_respondents, n_scored, n_unscored,
        n_complete, min_answered`` -- nothing is lost silently.
    scale_min, scale_max : float
        The answer scale used for reverse coding and for rescaling to 0-100.
    scale_inferred : bool
        True when the scale was inferred from the observed answers.
    reversed_items : list of str
        Items that were reverse-coded.
    n_out_of_range : int
        Answers outside the stated scale, set to missing (with a warning).
    """

    scores: pd.DataFrame
    items: pd.DataFrame
    coverage: pd.DataFrame
    constructs: dict[str, list[str]]
    scale_min: float
    scale_max: float
    scale_inferred: bool
    reversed_items: list[str]
    n_out_of_range: int = 0

    @property
    def summary(self) -> pd.DataFrame:
        return self.coverage

    def rescale(self, values: Any) -> Any:
        """Map scale values to 0-100: ``100 (x - min) / (max - min)``."""
        return 100.0 * (values - self.scale_min) / (self.scale_max - self.scale_min)


def reverse_code(values: pd.Series | pd.DataFrame, scale_min: float, scale_max: float):
    """Reverse-code answers: ``x' = min + max - x`` (1..7 -> 7..1)."""
    return scale_min + scale_max - values


def _min_answered(k: int, share: float) -> int:
    return max(1, int(math.ceil(k * share - 1e-9)))


def score_constructs(frame: pd.DataFrame, constructs: Mapping[str, Sequence[str]], *,
                     reverse_items: Sequence[str] = (), scale_min: float | None = None,
                     scale_max: float | None = None, min_share: float = MIN_ANSWERED_SHARE) -> ScaleScores:
    """Score constructs as the mean of their (reverse-coded) items.

    Parameters
    ----------
    frame : DataFrame
        Survey, one row per respondent, one numeric column per item.
    constructs : mapping
        Construct -> item columns.
    reverse_items : sequence of str
        Items to reverse-code with ``min + max - x``.
    scale_min, scale_max : float, optional
        Answer scale. When not given, it is inferred as the smallest and largest answer over all
        the items (stated in the result and warned about when reverse coding depends on it).
        Answers outside a stated scale are set to missing with a warning (e.g. 99 = "don't know").
    min_share : float
        Missing-answer policy: a respondent's construct score is computed when at least
        ``ceil(min_share * k)`` of its ``k`` items are answered (default 2/3: 2 of 3, 3 of 4,
        both of 2); otherwise it is missing. Counts are in ``coverage``.

    Returns
    -------
    ScaleScores

    Raises
    ------
    DataError
        Unknown item columns or non-numeric answers.
    """
    all_items = list(dict.fromkeys(i for items in constructs.values() for i in items))
    missing = [i for i in all_items if i not in frame.columns]
    if missing:
        raise DataError(f"survey: item column(s) {missing} of the construct mapping are not in the data. "
                        f"Columns present: {list(frame.columns)[:30]}. Fix the construct mapping "
                        f"(constructs=...) or the column names.", column=missing[0])
    bad_rev = [i for i in reverse_items if i not in all_items]
    if bad_rev:
        raise DataError(f"reverse_items {bad_rev} are not items of any construct; items are {all_items}.",
                        column=bad_rev[0])
    items = pd.DataFrame(index=frame.index)
    for col in all_items:
        s = frame[col]
        if not pd.api.types.is_numeric_dtype(s):
            conv = pd.to_numeric(s, errors="coerce")
            bad = s.notna() & conv.isna()
            if bad.any():
                first = s[bad].iloc[0]
                raise DataError(f"survey: item '{col}' has {int(bad.sum()):,} non-numeric answer(s) "
                                f"(first: {first!r}). Recode the answers as numbers (e.g. 1-7).",
                                column=col, n_rows=int(bad.sum()), example=first)
            s = conv
        items[col] = s.astype("float64")
    inferred = scale_min is None or scale_max is None
    obs_min, obs_max = float(np.nanmin(items.values)), float(np.nanmax(items.values))
    lo = obs_min if scale_min is None else float(scale_min)
    hi = obs_max if scale_max is None else float(scale_max)
    if hi <= lo:
        raise DataError(f"survey: the answer scale [{lo}, {hi}] is empty; pass scale_min/scale_max.")
    n_oor = 0
    if not inferred:
        oor = (items < lo) | (items > hi)
        n_oor = int(oor.values.sum())
        if n_oor:
            first_col = oor.any()[lambda s: s].index[0]
            warnings.warn(f"{n_oor} answer(s) outside the scale [{lo:g}, {hi:g}] set to missing "
                          f"(first in '{first_col}': {items.loc[oor[first_col], first_col].iloc[0]!r}).",
                          stacklevel=2)
            items = items.mask(oor)
    if inferred and reverse_items:
        warnings.warn(f"Reverse coding uses the scale inferred from the answers [{lo:g}, {hi:g}]; "
                      f"pass scale_min/scale_max if nobody used the extreme answers.", stacklevel=2)
    for col in reverse_items:
        items[col] = reverse_code(items[col], lo, hi)
    scores = pd.DataFrame(index=frame.index)
    rows = []
    for name, its in constructs.items():
        its = list(its)
        k = len(its)
        need = _min_answered(k, min_share)
        answered = items[its].notna().sum(axis=1)
        score = items[its].mean(axis=1).where(answered >= need)
        scores[name] = score
        rows.append({"construct": name, "n_items": k, "items": " ".join(its),
                     "reversed": " ".join(i for i in its if i in reverse_items),
                     "n_respondents": len(frame), "n_scored": int(score.notna().sum()),
                     "n_unscored": int(score.isna().sum()), "n_complete": int((answered == k).sum()),
                     "min_answered": need})
    return ScaleScores(scores=scores, items=items, coverage=pd.DataFrame(rows),
                       constructs={k: list(v) for k, v in constructs.items()},
                       scale_min=lo, scale_max=hi, scale_inferred=inferred,
                       reversed_items=list(reverse_items), n_out_of_range=n_oor)


# --------------------------------------------------------------------------------------------
# reliability
# --------------------------------------------------------------------------------------------
def cronbach_alpha(items: pd.DataFrame) -> float:
    """Raw Cronbach's alpha on complete rows.

    Notes
    -----
    alpha = k / (k - 1) * (1 - sum(var(item_i)) / var(sum of items)), variances with ddof=1.
    """
    x = items.dropna().to_numpy(float)
    k = x.shape[1]
    if k < 2:
        return float("nan")
    total = x.sum(axis=1).var(ddof=1)
    return float(k / (k - 1) * (1 - x.var(axis=0, ddof=1).sum() / total)) if total > 0 else float("nan")


def standardized_alpha(items: pd.DataFrame) -> float:
    """Standardized alpha (alpha of the z-scored items) on complete rows.

    Notes
    -----
    alpha_std = k r / (1 + (k - 1) r) with r the mean inter-item correlation.
    """
    x = items.dropna()
    k = x.shape[1]
    if k < 2:
        return float("nan")
    r = x.corr().to_numpy()
    rbar = (r.sum() - k) / (k * (k - 1))
    return float(k * rbar / (1 + (k - 1) * rbar))


@dataclass
class ItemAnalysis:
    """Per-construct and per-item reliability.

    ``summary``: construct, n_items, n_complete, cronbach_alpha, standardized_alpha,
    mean_inter_item_r. ``items``: construct, item, mean, sd, item_total_r (corrected: item vs the
    sum of the other items), alpha_if_deleted, flag.
    """

    summary: pd.DataFrame
    items: pd.DataFrame


def item_analysis(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]], *,
                  min_item_total: float = 0.30) -> ItemAnalysis:
    """Cronbach's alpha (raw and standardized), corrected item-total correlations and
    alpha-if-item-deleted, per construct on the respondents who answered all its items.

    Parameters
    ----------
    items : DataFrame
        Reverse-coded items (:attr:`ScaleScores.items`).
    constructs : mapping
        Construct -> items.
    min_item_total : float
        Items whose corrected item-total correlation is below this (0.30, Nunnally & Bernstein
        1994) are flagged.
    """
    srows, irows = [], []
    for name, its in constructs.items():
        x = items[list(its)].dropna()
        k = len(its)
        a = cronbach_alpha(x)
        sa = standardized_alpha(x)
        r = x.corr().to_numpy()
        srows.append({"construct": name, "n_items": k, "n_complete": len(x), "cronbach_alpha": a,
                      "standardized_alpha": sa,
                      "mean_inter_item_r": float((r.sum() - k) / (k * (k - 1))) if k > 1 else np.nan})
        for it in its:
            rest = [j for j in its if j != it]
            itr = float(np.corrcoef(x[it], x[rest].sum(axis=1))[0, 1]) if rest else np.nan
            aid = cronbach_alpha(x[rest]) if len(rest) >= 2 else np.nan
            flags = []
            if np.isfinite(itr) and itr < min_item_total:
                flags.append(f"item-total r {itr:.2f} < {min_item_total:.2f}")
            if np.isfinite(aid) and aid > a + 0.01:
                flags.append(f"alpha rises to {aid:.3f} without it")
            irows.append({"construct": name, "item": it, "mean": float(x[it].mean()), "sd": float(x[it].std()),
                          "item_total_r": itr, "alpha_if_deleted": aid, "flag": "; ".join(flags)})
    return ItemAnalysis(pd.DataFrame(srows), pd.DataFrame(irows))


def review_items(analysis: ItemAnalysis, loadings: pd.DataFrame | None = None, *, min_item_total: float = 0.30,
                 min_loading: float = 0.40, min_items: int = 2) -> pd.DataFrame:
    """Decide, with reasons, which items to keep.

    An item is dropped when its corrected item-total correlation is below ``min_item_total``
    *and* alpha rises without it (or its standardized CFA loading is below ``min_loading``),
    as long as its construct keeps ``min_items`` items. Everything else is kept.

    Returns
    -------
    DataFrame
        construct, item, item_total_r, alpha_if_deleted, loading, decision ('keep'/'drop'), reason.
    """
    alphas = analysis.summary.set_index("construct")["cronbach_alpha"]
    lmap = {} if loadings is None else loadings.set_index("item")["std_loading"].to_dict()
    rows = []
    for name, grp in analysis.items.groupby("construct", sort=False):
        n_left = len(grp)
        for _, r in grp.sort_values("item_total_r").iterrows():
            lam = lmap.get(r["item"], np.nan)
            weak_itr = np.isfinite(r["item_total_r"]) and r["item_total_r"] < min_item_total
            alpha_up = np.isfinite(r["alpha_if_deleted"]) and r["alpha_if_deleted"] > alphas[name]
            weak_lam = np.isfinite(lam) and lam < min_loading
            if weak_itr and (alpha_up or weak_lam) and n_left > min_items:
                decision = "drop"
                reason = (f"corrected item-total r = {r['item_total_r']:.2f} < {min_item_total:.2f}"
                          + (f"; alpha rises from {alphas[name]:.3f} to {r['alpha_if_deleted']:.3f} without it"
                             if alpha_up else "")
                          + (f"; CFA loading {lam:.2f} < {min_loading:.2f}" if weak_lam else ""))
                n_left -= 1
            else:
                decision = "keep"
                if weak_itr or weak_lam:
                    reason = "weak item kept: its construct would have too few items left" \
                        if n_left <= min_items else "weak item kept: alpha would not improve without it"
                else:
                    reason = (f"item-total r = {r['item_total_r']:.2f} >= {min_item_total:.2f}"
                              if np.isfinite(r["item_total_r"]) else "two-item construct: kept")
            rows.append({"construct": name, "item": r["item"], "item_total_r": r["item_total_r"],
                         "alpha_if_deleted": r["alpha_if_deleted"], "loading": lam,
                         "decision": decision, "reason": reason})
    out = pd.DataFrame(rows)
    order = {it: i for i, it in enumerate(analysis.items["item"])}
    return out.sort_values("item", key=lambda s: s.map(order)).reset_index(drop=True)


def apply_item_review(constructs: Mapping[str, Sequence[str]], review: pd.DataFrame) -> dict[str, list[str]]:
    """Constructs without the items that :func:`review_items` dropped."""
    dropped = set(review.loc[review["decision"] == "drop", "item"])
    return {k: [i for i in v if i not in dropped] for k, v in constructs.items()}


def composite_reliability(loadings: pd.DataFrame) -> pd.DataFrame:
    """Composite reliability and AVE from standardized loadings.

    Parameters
    ----------
    loadings : DataFrame
        ``construct, item, std_loading`` (e.g. :attr:`MeasurementModel.loadings`).

    Notes
    -----
    CR = (sum l)^2 / ((sum l)^2 + sum(1 - l^2)) (Joreskog's rho; >= 0.70 wanted);
    AVE = mean(l^2) (Fornell & Larcker 1981; >= 0.50 wanted).
    """
    rows = []
    for name, g in loadings.groupby("construct", sort=False):
        lam = g["std_loading"].to_numpy(float)
        s = lam.sum() ** 2
        rows.append({"construct": name, "composite_reliability": float(s / (s + (1 - lam ** 2).sum())),
                     "ave": float((lam ** 2).mean())})
    return pd.DataFrame(rows)


def htmt(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Heterotrait-monotrait ratio of correlations (Henseler, Ringle & Sarstedt 2015).

    Notes
    -----
    HTMT_ij = mean(r between items of i and items of j) /
    sqrt(mean(r among items of i) * mean(r among items of j)); item correlations are pairwise.
    Values above 0.85 (strict) or 0.90 (lenient) signal poor discriminant validity.
    Single-item constructs give NaN.
    """
    r = items.corr()
    names = list(constructs)
    out = pd.DataFrame(np.nan, index=names, columns=names)

    def mono(its: Sequence[str]) -> float:
        k = len(its)
        if k < 2:
            return np.nan
        sub = r.loc[list(its), list(its)].to_numpy()
        return float((sub.sum() - np.trace(sub)) / (k * (k - 1)))

    m = {n: mono(constructs[n]) for n in names}
    for a, b in itertools.combinations(names, 2):
        het = float(r.loc[list(constructs[a]), list(constructs[b])].to_numpy().mean())
        val = het / math.sqrt(m[a] * m[b]) if m[a] > 0 and m[b] > 0 else np.nan
        out.loc[a, b] = out.loc[b, a] = val
    for n in names:
        out.loc[n, n] = 1.0
    out.index.name = "construct"
    return out


def fornell_larcker(ave: pd.Series, latent_corr: pd.DataFrame) -> pd.DataFrame:
    """Fornell-Larcker table: sqrt(AVE) on the diagonal, latent correlations off it.

    Discriminant validity holds for a construct when its sqrt(AVE) exceeds its absolute
    correlation with every other construct; the extra column ``fl_ok`` says so.
    """
    names = list(latent_corr.index)
    tab = latent_corr.loc[names, names].copy().astype(float)
    ok = []
    for n in names:
        tab.loc[n, n] = math.sqrt(ave[n])
        others = latent_corr.loc[n, [m for m in names if m != n]].abs()
        ok.append(bool((others < math.sqrt(ave[n])).all()))
    tab["fl_ok"] = ok
    tab.index.name = "construct"
    return tab


# --------------------------------------------------------------------------------------------
# SEM (semopy), one place that knows its API
# --------------------------------------------------------------------------------------------
def _semopy_fit(desc: str, data: pd.DataFrame, *, missing: str = "pairwise"):
    """Fit with semopy (ML). ``missing='pairwise'`` fits the pairwise-complete item covariance
    matrix with n = the smallest pairwise count (conservative); ``'listwise'`` the complete rows."""
    import semopy

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


def _measurement_desc(constructs: Mapping[str, Sequence[str]]) -> list[str]:
    lines = []
    for name, its in constructs.items():
        if len(its) < 2:
            raise ParameterError(f"construct {name!r} has {len(its)} item(s); a latent variable needs at least 2.")
        lines.append(f"{name} =~ " + " + ".join(its))
    return lines


def _sem_data(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]],
              missing: str = "pairwise") -> tuple[pd.DataFrame, int]:
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


def _latent_corr(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    corr = pd.DataFrame(np.eye(len(names)), index=list(names), columns=list(names))
    cov = table[(table["op"] == "~~") & table["lval"].isin(names) & table["rval"].isin(names)
                & (table["lval"] != table["rval"])]
    for _, r in cov.iterrows():
        corr.loc[r["lval"], r["rval"]] = corr.loc[r["rval"], r["lval"]] = r["std_estimate"]
    return corr


@dataclass
class MeasurementModel:
    """Confirmatory factor analysis of the constructs.

    ``loadings``: construct, item, estimate, std_loading, se, p_value. ``summary``: construct,
    composite_reliability, ave. ``latent_corr``: latent correlations. ``fornell_larcker``,
    ``fit``: see :func:`fornell_larcker` and :func:`fit_table`.
    """

    loadings: pd.DataFrame
    summary: pd.DataFrame
    latent_corr: pd.DataFrame
    fornell_larcker: pd.DataFrame
    fit: pd.DataFrame
    n_obs: int
    model: Any = None


def measurement_model(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]], *,
                      missing: str = "pairwise") -> MeasurementModel:
    """Fit a CFA (all constructs correlated) with semopy and derive composite reliability, AVE and
    the Fornell-Larcker table from its standardized loadings.

    ``missing='pairwise'`` (default) fits the pairwise-complete covariance matrix of the items
    with n = the smallest pairwise count; ``'listwise'`` keeps only respondents who answered
    every item.
    """
    data, n = _sem_data(items, constructs, missing)
    model, _, table, stats = _semopy_fit("\n".join(_measurement_desc(constructs)), data, missing=missing)
    names = list(constructs)
    lo = table[(table["op"] == "~") & table["rval"].isin(names) & ~table["lval"].isin(names)]
    loadings = lo.rename(columns={"rval": "construct", "lval": "item", "std_estimate": "std_loading"})[
        ["construct", "item", "estimate", "std_loading", "se", "p_value"]].reset_index(drop=True)
    summary = composite_reliability(loadings)
    corr = _latent_corr(table, names)
    fl = fornell_larcker(summary.set_index("construct")["ave"], corr)
    return MeasurementModel(loadings, summary, corr, fl, fit_table(stats, srmr(model)), n, model)


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
    names = list(constructs)
    lines = _measurement_desc(constructs)
    for lhs, rhs in paths.items():
        if rhs:
            lines.append(f"{lhs} ~ " + " + ".join(rhs))
    desc = "\n".join(lines)
    data, n = _sem_data(items, constructs, missing)
    model, _, table, stats = _semopy_fit(desc, data, missing=missing)
    st = table[(table["op"] == "~") & table["lval"].isin(names) & table["rval"].isin(names)].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        st["std_se"] = (st["se"] * st["std_estimate"] / st["estimate"]).abs()
    paths_df = st[["lval", "rval", "estimate", "std_estimate", "se", "std_se", "z", "p_value"]].reset_index(drop=True)
    lo = table[(table["op"] == "~") & table["rval"].isin(names) & ~table["lval"].isin(names)]
    loadings = lo.rename(columns={"rval": "construct", "lval": "item", "std_estimate": "std_loading"})[
        ["construct", "item", "estimate", "std_loading", "se", "p_value"]].reset_index(drop=True)
    r2 = {}
    for lhs in paths:
        res_var = table[(table["op"] == "~~") & (table["lval"] == lhs) & (table["rval"] == lhs)]
        if len(res_var):
            r2[lhs] = float(1 - res_var["std_estimate"].iloc[0])
    effects = pd.DataFrame()
    if mediator and outcome:
        p = paths_df.set_index(["lval", "rval"])
        b = p.loc[(outcome, mediator)] if (outcome, mediator) in p.index else None
        rows = []
        for x in list(dict.fromkeys(list(paths.get(mediator, [])) + [r for r in paths.get(outcome, []) if r != mediator])):
            a = p.loc[(mediator, x)] if (mediator, x) in p.index else None
            c = p.loc[(outcome, x)] if (outcome, x) in p.index else None
            ind = ind_se = 0.0
            if a is not None and b is not None:
                ind = a["std_estimate"] * b["std_estimate"]
                ind_se = math.sqrt((b["std_estimate"] * a["std_se"]) ** 2 + (a["std_estimate"] * b["std_se"]) ** 2)
            d, d_se = (c["std_estimate"], c["std_se"]) if c is not None else (0.0, 0.0)
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
        if b is not None:
            rows.append({"driver": mediator, "effect": "total", "std_estimate": b["std_estimate"],
                         "std_se": b["std_se"], "ci_lower": b["std_estimate"] - 1.96 * b["std_se"],
                         "ci_upper": b["std_estimate"] + 1.96 * b["std_se"], "p_value": b["p_value"]})
        effects = pd.DataFrame(rows)
    fit = fit_table(stats, srmr(model))
    bad = [lv for lv, v in r2.items() if not (0 <= v <= 0.995)]
    notes = []
    if bad or (loadings["std_loading"].abs() > 1).any():
        notes.append(f"improper solution: R² of {bad} at or beyond 1" if bad else "improper solution: loading > 1")
        warnings.warn("The SEM has an improper solution (a standardized loading above 1 or an R² outside "
                      "[0, 1], a 'Heywood case'); its estimates are unreliable. Usual causes: two constructs "
                      "that are almost the same (see HTMT) or a construct with two weak items.", stacklevel=2)
    return SEMResult(paths_df, loadings, effects, fit, r2, desc, n, model, notes)


def _norm_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


# --------------------------------------------------------------------------------------------
# driver regression
# --------------------------------------------------------------------------------------------
def _check_design(df: pd.DataFrame, outcome: str, predictors: Sequence[str]) -> pd.DataFrame:
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
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_predict

    # the modules themselves, not statsmodels.api: that one also imports time series and
    # graphics (~0.3 s of a notebook's start-up)
    from statsmodels.regression.linear_model import OLS
    from statsmodels.stats.diagnostic import het_breuschpagan
    from statsmodels.stats.stattools import jarque_bera
    from statsmodels.tools.tools import add_constant

    predictors = list(predictors)
    data = _check_design(scores, outcome, predictors)
    cov_type = "HC3" if robust else "nonrobust"
    X = add_constant(data[predictors], has_constant="add")
    fit = OLS(data[outcome], X).fit(cov_type=cov_type)
    z = (data - data.mean()) / data.std(ddof=1)
    fit_z = OLS(z[outcome], add_constant(z[predictors], has_constant="add")).fit(cov_type=cov_type)
    ci, ciz = fit.conf_int(alpha), fit_z.conf_int(alpha)
    v = vif(data[predictors]) if len(predictors) > 1 else pd.Series(1.0, index=predictors)
    summary = pd.DataFrame({
        "outcome": outcome, "predictor": predictors,
        "estimate": fit.params[predictors].to_numpy(), "std_estimate": fit_z.params[predictors].to_numpy(),
        "se": fit.bse[predictors].to_numpy(),
        "ci_lower": ci.loc[predictors, 0].to_numpy(), "ci_upper": ci.loc[predictors, 1].to_numpy(),
        "std_ci_lower": ciz.loc[predictors, 0].to_numpy(), "std_ci_upper": ciz.loc[predictors, 1].to_numpy(),
        "p_value": fit.pvalues[predictors].to_numpy(), "vif": v[predictors].to_numpy()})
    high = summary.loc[summary["vif"] > 5, "predictor"].tolist()
    if high:
        warnings.warn(f"{outcome} model: VIF > 5 for {high}; their separate effects are poorly determined "
                      f"(the drivers move together). Interpret their sum, or use relative importance.",
                      stacklevel=2)
    kf = KFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    pred = cross_val_predict(LinearRegression(), data[predictors].to_numpy(), data[outcome].to_numpy(), cv=kf)
    y = data[outcome].to_numpy()
    cv_r2 = float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    jb, jb_p, skew, kurt = jarque_bera(fit.resid)
    bp, bp_p, _, _ = het_breuschpagan(fit.resid, X)
    diag = pd.DataFrame([
        {"test": "Jarque-Bera (residual normality)", "statistic": float(jb), "p_value": float(jb_p),
         "conclusion": ("residuals look normal" if jb_p > 0.05 else
                        f"residuals not normal (skew {skew:.2f}, kurtosis {kurt:.2f}); with n = {len(data)} the "
                        f"coefficient tests still hold approximately")},
        {"test": "Breusch-Pagan (heteroscedasticity)", "statistic": float(bp), "p_value": float(bp_p),
         "conclusion": ("constant residual variance not rejected" if bp_p > 0.05 else
                        "residual variance changes with the drivers: prefer robust (HC3) errors")},
        {"test": "max VIF", "statistic": float(v.max()), "p_value": np.nan,
         "conclusion": "no troublesome collinearity" if v.max() <= 5 else f"collinear drivers: {high}"},
    ])
    return DriverModel(outcome, predictors, summary, diag, float(fit.rsquared), float(fit.rsquared_adj), cv_r2,
                       int(fit.nobs), cov_type, fit)


# --------------------------------------------------------------------------------------------
# mediation (bootstrap)
# --------------------------------------------------------------------------------------------
def _one_factor_reliability(cov: np.ndarray, n_iter: int = 50) -> float:
    """Reliability of the unit-weighted sum of items under a one-factor (congeneric) model.

    Loadings from iterated principal-axis factoring of the item correlations; omega =
    (sum l_i s_i)^2 / var(sum). Two-item constructs use alpha (the one-factor model is not
    identified with two items).
    """
    k = cov.shape[0]
    if k == 1:
        return 1.0
    total = cov.sum()
    if k == 2:
        return float(2 * (1 - np.trace(cov) / total))
    sd = np.sqrt(np.diag(cov))
    r = cov / np.outer(sd, sd)
    h = 1 - 1 / np.diag(np.linalg.pinv(r))  # SMC starting communalities
    for _ in range(n_iter):
        rr = r.copy()
        np.fill_diagonal(rr, h)
        w, v = np.linalg.eigh(rr)
        lam = v[:, -1] * math.sqrt(max(w[-1], 0))
        h_new = np.clip(lam ** 2, 1e-4, 0.999)
        if np.max(np.abs(h_new - h)) < 1e-6:
            h = h_new
            break
        h = h_new
    lam = np.abs(lam)
    return float(min((lam * sd).sum() ** 2 / total, 1.0))


def _resample_counts(draws: Sequence[np.ndarray], n: int) -> np.ndarray:
    """How often each bootstrap resample (row indices) draws each of `n` rows: a (resamples, n) array."""
    flat = np.concatenate([np.asarray(r) + i * n for i, r in enumerate(draws)])
    return np.bincount(flat, minlength=len(draws) * n).reshape(len(draws), n).astype(float)


def _resample_covs(z: np.ndarray, counts: np.ndarray, ok: np.ndarray | None = None, *,
                   max_bytes: float = 2e8) -> np.ndarray:
    """Covariance matrices of bootstrap resamples of the rows of `z`, each restricted to the rows
    marked `ok` (all by default): ``np.cov(z[r[ok[r]]], rowvar=False)`` for each resample ``r``,
    given as its row counts (:func:`_resample_counts`).

    With counts ``w`` (zero for rows not ok) and ``m = sum(w)`` a resample's covariance is
    ``(z' diag(w) z - m u u') / (m - 1)``, ``u = z' w / m``, so all of them come from one matrix
    product with the row-wise outer products of `z` (centred first, so the difference keeps full
    precision) instead of one ``np.cov`` call each (8,000 calls took 0.6 s on the sample survey).
    When the outer products would need more than `max_bytes`, ``np.cov`` with the counts as
    frequency weights, one resample at a time.
    """
    n, q = z.shape
    ok = np.ones(n, dtype=bool) if ok is None else np.asarray(ok, dtype=bool)
    if n * q * q * 8 > max_bytes:
        zo = z[ok]
        return np.stack([np.cov(zo, rowvar=False, fweights=w[ok].astype(np.int64)) for w in counts])
    zc = np.where(ok[:, None], z - z[ok].mean(axis=0), 0.0)  # rows not ok: weight 0 (and no NaN)
    w = np.where(ok, counts, 0.0)
    m = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # < 2 usable rows in a resample: NaN, as np.cov
        mean = w @ zc / m[:, None]
        second = (w @ (zc[:, :, None] * zc[:, None, :]).reshape(n, q * q)).reshape(len(w), q, q)
        return (second - m[:, None, None] * mean[:, :, None] * mean[:, None, :]) / (m - 1)[:, None, None]


def _one_factor_reliability_batch(covs: np.ndarray, n_iter: int = 50) -> np.ndarray:
    """:func:`_one_factor_reliability` for a stack of covariance matrices ``(B, k, k)``.

    The same iteration run on all matrices at once (stacked ``eigh``); a matrix stops
    iterating when it converges, exactly as the one-matrix version does.
    """
    B, k = covs.shape[0], covs.shape[-1]
    if k == 1:
        return np.ones(B)
    total = covs.sum(axis=(1, 2))
    if k == 2:
        return 2 * (1 - np.trace(covs, axis1=1, axis2=2) / total)
    sd = np.sqrt(np.diagonal(covs, axis1=1, axis2=2))
    r = covs / (sd[:, :, None] * sd[:, None, :])
    h = 1 - 1 / np.diagonal(np.linalg.pinv(r), axis1=1, axis2=2)
    lam = np.zeros((B, k))
    active = np.ones(B, dtype=bool)
    diag = np.arange(k)
    for _ in range(n_iter):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        rr = r[idx].copy()
        rr[:, diag, diag] = h[idx]
        w, v = np.linalg.eigh(rr)
        lam_i = v[:, :, -1] * np.sqrt(np.maximum(w[:, -1], 0))[:, None]
        h_new = np.clip(lam_i ** 2, 1e-4, 0.999)
        conv = np.max(np.abs(h_new - h[idx]), axis=1) < 1e-6
        h[idx] = h_new
        lam[idx] = lam_i
        active[idx[conv]] = False
    lam = np.abs(lam)
    return np.minimum((lam * sd).sum(axis=1) ** 2 / total, 1.0)


@dataclass
class _MedDesign:
    drivers: list[str]
    direct: list[str]          # predictors of the outcome besides the mediator
    mediator: str
    outcome: str


def _effects_from_cov(cov: np.ndarray, names: list[str], d: _MedDesign) -> dict[tuple[str, str], Any]:
    """Indirect/direct/total effects (unstandardized and standardized) from a covariance matrix.

    ``cov`` may be one matrix ``(p, p)`` (values are floats) or a stack ``(B, p, p)`` (values
    are arrays of length B: one bootstrap resample each, solved together).
    """
    single = cov.ndim == 2
    cv = cov[None] if single else cov
    idx = {n: i for i, n in enumerate(names)}
    sd = np.sqrt(np.diagonal(cv, axis1=1, axis2=2))
    ia = [idx[x] for x in d.drivers]
    im, io = idx[d.mediator], idx[d.outcome]
    a = (np.linalg.solve(cv[:, ia][:, :, ia], cv[:, ia, im][..., None])[..., 0] if ia
         else np.zeros((cv.shape[0], 0)))
    ob = [im] + [idx[x] for x in d.direct]
    bc = np.linalg.solve(cv[:, ob][:, :, ob], cv[:, ob, io][..., None])[..., 0]
    b = bc[:, 0]
    c = {x: bc[:, 1 + j] for j, x in enumerate(d.direct)}
    zero = np.zeros(cv.shape[0])
    out = {}
    for j, x in enumerate(d.drivers):
        ind = a[:, j] * b
        dir_ = c.get(x, zero)
        s = sd[:, idx[x]] / sd[:, io]
        out.update({(x, "a"): a[:, j], (x, "a_std"): a[:, j] * sd[:, idx[x]] / sd[:, im],
                    (x, "indirect"): ind, (x, "indirect_std"): ind * s,
                    (x, "direct"): dir_, (x, "direct_std"): dir_ * s,
                    (x, "total"): ind + dir_, (x, "total_std"): (ind + dir_) * s})
    for x in d.direct:
        if x in d.drivers:
            continue
        s = sd[:, idx[x]] / sd[:, io]
        out.update({(x, "direct"): c[x], (x, "direct_std"): c[x] * s, (x, "total"): c[x],
                    (x, "total_std"): c[x] * s})
    sm = sd[:, im] / sd[:, io]
    out.update({(d.mediator, "direct"): b, (d.mediator, "direct_std"): b * sm,
                (d.mediator, "total"): b, (d.mediator, "total_std"): b * sm})
    if single:
        return {k: float(v[0]) for k, v in out.items()}
    return out


def _true_score_cov(scores: np.ndarray, item_blocks: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    cov = np.cov(scores, rowvar=False)
    rel = np.ones(cov.shape[0])
    if item_blocks is not None:
        for j, block in enumerate(item_blocks):
            blk = block[~np.isnan(block).any(axis=1)]
            rel[j] = _one_factor_reliability(np.cov(blk, rowvar=False)) if blk.shape[1] > 1 else 1.0
        cov = cov.copy()
        cov[np.diag_indices_from(cov)] *= rel
    return cov, rel


@dataclass
class MediationResult:
    """Indirect, direct and total effects on the outcome with bootstrap percentile intervals.

    ``summary`` has one row per (method, driver, effect): method ('composite' = OLS on the
    construct scores; 'disattenuated' = the same paths on the scores' true-score covariance,
    i.e. corrected for each construct's reliability), driver, mediator, outcome, effect
    ('indirect', 'direct', 'total'), estimate, se, ci_lower, ci_upper (unstandardized),
    std_estimate, std_ci_lower, std_ci_upper, p_value (bootstrap, two-sided). ``reliability``:
    the constructs' one-factor reliabilities used for the correction; ``notes``: diagnostics
    (e.g. constructs that are indistinguishable once corrected).
    """

    summary: pd.DataFrame
    a_paths: pd.DataFrame
    reliability: pd.Series
    n_obs: int
    n_boot: int
    seed: int
    conf_level: float
    boot: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)

    def effects(self, effect: str = "indirect", method: str = "composite") -> pd.DataFrame:
        s = self.summary
        return s[(s["effect"] == effect) & (s["method"] == method)].reset_index(drop=True)


def mediation_analysis(scores: pd.DataFrame, drivers: Sequence[str], mediator: str, outcome: str, *,
                       direct_drivers: Sequence[str] = (), items: pd.DataFrame | None = None,
                       constructs: Mapping[str, Sequence[str]] | None = None, n_boot: int = 1000,
                       seed: int = 42, conf_level: float = 0.95, progress: bool = False) -> MediationResult:
    """Indirect effects ``driver -> mediator -> outcome`` with seeded bootstrap percentile CIs.

    Model (all linear, estimated by OLS)::

        mediator = a_1 driver_1 + ... + a_k driver_k + e_m
        outcome  = b mediator + c'_1 driver_1 + ... + c'_k driver_k + (direct drivers) + e_o

    indirect(x) = a_x b, direct(x) = c'_x, total(x) = a_x b + c'_x; the mediator's total effect
    is b, a direct driver's is its c'.

    Parameters
    ----------
    scores : DataFrame
        Construct scores; respondents missing any model variable are left out.
    drivers : sequence of str
        Constructs acting through the mediator (and directly).
    mediator, outcome : str
    direct_drivers : sequence of str
        Constructs acting on the outcome only.
    items, constructs : optional
        Reverse-coded items and the construct mapping. When given, every effect is also
        estimated on the true-score covariance of the scores (variances multiplied by each
        construct's one-factor reliability, omega; errors assumed uncorrelated across constructs).
        This is path analysis with single indicators whose error variance is fixed to
        (1 - reliability) * variance (Bollen 1989, ch. 5; Cole & Preacher 2014), and it removes
        the bias that measurement error puts on composite-score regressions (a too-small b and a
        spurious direct effect of drivers correlated with an unreliable mediator).
    n_boot : int
        Bootstrap resamples of respondents (reliabilities are re-estimated in each).
    seed : int
    conf_level : float
    progress : bool
        Show a tqdm progress bar.
    """
    drivers, direct_drivers = list(drivers), list(direct_drivers)
    direct = list(dict.fromkeys(drivers + direct_drivers))
    design = _MedDesign(drivers, direct, mediator, outcome)
    names = list(dict.fromkeys(drivers + direct_drivers + [mediator, outcome]))
    data = _check_design(scores, outcome, [n for n in names if n != outcome])
    x = data[names].to_numpy(float)
    blocks = None
    if items is not None and constructs is not None:
        it = items.loc[data.index]
        blocks = [it[list(constructs[n])].to_numpy(float) for n in names]
    methods = ["composite"] + (["disattenuated"] if blocks is not None else [])

    def estimate(rows: np.ndarray | None) -> dict[str, dict]:
        xs = x if rows is None else x[rows]
        res = {}
        cov, _ = _true_score_cov(xs, None)
        res["composite"] = _effects_from_cov(cov, names, design)
        if blocks is not None:
            bl = blocks if rows is None else [b[rows] for b in blocks]
            cov_t, _ = _true_score_cov(xs, bl)
            res["disattenuated"] = _effects_from_cov(cov_t, names, design)
        return res

    point = estimate(None)
    notes: list[str] = []
    if blocks is not None:
        cov_t, rel = _true_score_cov(x, blocks)
        sd_t = np.sqrt(np.diag(cov_t))
        corr_t = cov_t / np.outer(sd_t, sd_t)
        for i, j in zip(*np.triu_indices(len(names), 1)):
            if abs(corr_t[i, j]) > 0.95:
                notes.append(f"{names[i]} and {names[j]} correlate {corr_t[i, j]:.2f} after correcting for "
                             f"measurement error: practically the same construct, so their separate "
                             f"disattenuated effects are unstable (wide intervals).")
        if np.linalg.eigvalsh(corr_t).min() <= 0:
            notes.append("The corrected correlation matrix is not positive definite; the disattenuated "
                         "estimates are not interpretable.")
        for note in notes:
            warnings.warn(note, stacklevel=2)
    else:
        rel = np.ones(len(names))
    keys = list(point["composite"].keys())
    rng = np.random.default_rng(seed)
    n = len(x)
    boot = {m: np.full((n_boot, len(keys)), np.nan) for m in methods}
    it_range: Iterable[int] = range(n_boot)
    if progress:
        from tqdm.auto import tqdm

        it_range = tqdm(it_range, desc="bootstrap", unit="resample")
    # Resamples are drawn in the same order as one at a time (same seed, same resamples); each
    # resample costs one covariance matrix of [scores | items], and the reliabilities and path
    # solves then run on the stacked matrices at once (numpy batched eigh/solve).
    complete_blocks = blocks is not None and not any(np.isnan(b).any() for b in blocks)
    complete = [~np.isnan(b).any(axis=1) for b in blocks] if blocks is not None else []
    z = np.hstack([x] + list(blocks)) if complete_blocks else x
    p = x.shape[1]
    spans = np.cumsum([p] + [b.shape[1] for b in blocks]) if complete_blocks else None
    n_fail = 0
    chunk = max(1, min(n_boot, 250, int(2e8 // (16 * n))))  # resamples at a time: draws + counts ~200 MB
    done = 0
    it = iter(it_range)
    while done < n_boot:
        ids = [i for _, i in zip(range(chunk), it)]
        if not ids:
            break
        done += len(ids)
        draws = [rng.integers(0, n, n) for _ in ids]
        counts = _resample_counts(draws, n)
        zc = _resample_covs(z, counts)
        covs = zc[:, :p, :p]
        try:
            est_c = _effects_from_cov(covs, names, design)
            est = {"composite": est_c}
            if blocks is not None:
                if complete_blocks:
                    rel_b = np.stack([_one_factor_reliability_batch(zc[:, spans[j]:spans[j + 1], spans[j]:spans[j + 1]])
                                      if blocks[j].shape[1] > 1 else np.ones(len(ids)) for j in range(len(blocks))],
                                     axis=1)
                else:  # each construct's reliability from its own complete rows, as _true_score_cov does
                    rel_b = np.ones((len(ids), len(blocks)))
                    for j, (blk, ok) in enumerate(zip(blocks, complete)):
                        if blk.shape[1] > 1:
                            rel_b[:, j] = _one_factor_reliability_batch(_resample_covs(blk, counts, ok))
                cov_t = covs.copy()
                dg = np.arange(p)
                cov_t[:, dg, dg] *= rel_b
                est["disattenuated"] = _effects_from_cov(cov_t, names, design)
            for m in methods:
                boot[m][ids] = np.column_stack([est[m][k] for k in keys])
        except np.linalg.LinAlgError:  # a singular resample in the chunk: fall back to one at a time
            for i, rows in zip(ids, draws):
                try:
                    one = estimate(rows)
                except np.linalg.LinAlgError:
                    n_fail += 1
                    continue
                for m in methods:
                    boot[m][i] = [one[m][k] for k in keys]
    if n_fail:
        warnings.warn(f"{n_fail} of {n_boot} bootstrap resamples were singular and skipped.", stacklevel=2)
    lo_q, hi_q = (1 - conf_level) / 2, 1 - (1 - conf_level) / 2
    rows_out = []
    for m in methods:
        B = boot[m]
        col = {k: j for j, k in enumerate(keys)}
        for x_name, kind in keys:
            if kind.endswith("_std") or kind in ("a",):
                continue
            b_raw = B[:, col[(x_name, kind)]]
            b_std = B[:, col[(x_name, kind + "_std")]]
            ok = np.isfinite(b_raw)
            b_raw, b_std = b_raw[ok], b_std[ok]
            p = 2 * min((b_raw <= 0).mean(), (b_raw >= 0).mean())
            rows_out.append({
                "method": m, "driver": x_name, "mediator": mediator if kind == "indirect" else "",
                "outcome": outcome, "effect": kind,
                "estimate": point[m][(x_name, kind)], "se": float(b_raw.std(ddof=1)),
                "ci_lower": float(np.quantile(b_raw, lo_q)), "ci_upper": float(np.quantile(b_raw, hi_q)),
                "std_estimate": point[m][(x_name, kind + "_std")],
                "std_ci_lower": float(np.quantile(b_std, lo_q)), "std_ci_upper": float(np.quantile(b_std, hi_q)),
                "p_value": float(max(p, 1 / (len(b_raw) + 1)))})
    summary = pd.DataFrame(rows_out)
    order = {"indirect": 0, "direct": 1, "total": 2}
    summary = summary.sort_values(["method", "effect", "driver"], key=lambda s: s.map(order) if s.name == "effect"
                                  else s).reset_index(drop=True)
    a_rows = [{"method": m, "driver": xn, "mediator": mediator, "estimate": point[m][(xn, "a")],
               "std_estimate": point[m][(xn, "a_std")]} for m in methods for xn in drivers]
    return MediationResult(summary, pd.DataFrame(a_rows), pd.Series(rel, index=names, name="reliability"),
                           n, n_boot, seed, conf_level, boot, notes)


# --------------------------------------------------------------------------------------------
# relative importance
# --------------------------------------------------------------------------------------------
def _r2_from_corr(r: np.ndarray, subset: Sequence[int], y: int) -> float:
    if not subset:
        return 0.0
    s = list(subset)
    rxy = r[s, y]
    return float(rxy @ np.linalg.solve(r[np.ix_(s, s)], rxy))


@dataclass
class RelativeImportance:
    """Shapley decomposition (general dominance weights) of R².

    ``summary``: predictor, shapley_r2, share (of R²), rank. ``by_size``: conditional dominance,
    the mean R² gain of each predictor when added to subsets of each size. ``r2``: full-model R².
    """

    summary: pd.DataFrame
    by_size: pd.DataFrame
    r2: float
    method: str


def relative_importance(scores: pd.DataFrame, outcome: str, predictors: Sequence[str], *,
                        max_exact: int = 10, n_permutations: int = 2000, seed: int = 42) -> RelativeImportance:
    """Dominance analysis / Shapley value decomposition of R² (Budescu 1993; Lindeman, Merenda & Gold 1980).

    Notes
    -----
    phi_j = sum over subsets S of the other predictors of |S|! (p - |S| - 1)! / p! *
    (R²(S + j) - R²(S)); the phi_j sum to the full R² exactly. All 2^p subsets are evaluated
    for p <= ``max_exact`` (R² from the correlation matrix); beyond that, ``n_permutations``
    random orders (seeded) estimate the values, which then still sum to R² exactly.
    """
    predictors = list(predictors)
    data = _check_design(scores, outcome, predictors)
    cols = predictors + [outcome]
    r = np.corrcoef(data[cols].to_numpy(float), rowvar=False)
    p, y = len(predictors), len(predictors)
    full = _r2_from_corr(r, list(range(p)), y)
    phi = np.zeros(p)
    gains = np.zeros((p, p))
    counts = np.zeros((p, p))
    if p <= max_exact:
        method = "exact (all subsets)"
        cache = {(): 0.0}
        for size in range(1, p + 1):
            for s in itertools.combinations(range(p), size):
                cache[s] = _r2_from_corr(r, s, y)
        for j in range(p):
            others = [i for i in range(p) if i != j]
            for size in range(p):
                w = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
                for s in itertools.combinations(others, size):
                    g = cache[tuple(sorted(s + (j,)))] - cache[s]
                    phi[j] += w * g
                    gains[j, size] += g
                    counts[j, size] += 1
    else:
        method = f"Monte Carlo ({n_permutations} permutations)"
        rng = np.random.default_rng(seed)
        for _ in range(n_permutations):
            order = rng.permutation(p)
            prev = 0.0
            for size, j in enumerate(order):
                cur = _r2_from_corr(r, sorted(order[: size + 1]), y)
                phi[j] += cur - prev
                gains[j, size] += cur - prev
                counts[j, size] += 1
                prev = cur
        phi /= n_permutations
    summary = pd.DataFrame({"outcome": outcome, "predictor": predictors, "shapley_r2": phi,
                            "share": phi / full if full > 0 else np.nan})
    summary["rank"] = summary["shapley_r2"].rank(ascending=False, method="min").astype(int)
    by_size = pd.DataFrame(np.where(counts > 0, gains / np.maximum(counts, 1), np.nan), index=predictors,
                           columns=[f"size_{k}" for k in range(p)])
    by_size.index.name = "predictor"
    return RelativeImportance(summary.sort_values("rank").reset_index(drop=True), by_size, full, method)


# --------------------------------------------------------------------------------------------
# importance-performance
# --------------------------------------------------------------------------------------------
QUADRANT_ACTIONS = {
    (True, False): ("concentrate here", "matters a lot for loyalty but customers rate it low"),
    (True, True): ("keep up", "matters a lot and is rated high"),
    (False, False): ("low priority", "matters little and is rated low"),
    (False, True): ("possible overkill", "rated high but matters little for loyalty"),
}


def importance_performance(total_effects: pd.DataFrame, scores: ScaleScores, *, cut: str = "mean") -> pd.DataFrame:
    """Importance-performance map of the levers.

    Parameters
    ----------
    total_effects : DataFrame
        ``driver, estimate`` (+ ``ci_lower, ci_upper``): unstandardized total effects on the
        outcome (rows with ``effect == 'total'`` of :attr:`MediationResult.summary`).
    scores : ScaleScores
        For performance: the mean construct score rescaled to 0-100.
    cut : {'mean', 'median'}
        Where the quadrant lines are drawn (over the levers).

    Returns
    -------
    DataFrame
        lever, total_effect, ci_lower, ci_upper, importance (= |total effect|), performance
        (0-100, oriented so that higher is better: a lever that *lowers* loyalty, such as
        perceived cost, is shown as 100 - its rescaled mean, "low cost = good"), reversed,
        quadrant, action, why, expected_gain_per_point.

    Notes
    -----
    Importance and expected gain are unstandardized total effects: loyalty points per one
    scale point of the lever (all constructs share one answer scale). For a lever with a
    negative effect, the gain is obtained by *lowering* it by one point.
    """
    te = total_effects.copy()
    rows = []
    for _, r in te.iterrows():
        lever = r["driver"]
        perf = float(scores.rescale(scores.scores[lever].mean()))
        rev = r["estimate"] < 0
        rows.append({"lever": lever, "total_effect": r["estimate"], "ci_lower": r.get("ci_lower", np.nan),
                     "ci_upper": r.get("ci_upper", np.nan), "importance": abs(r["estimate"]),
                     "performance": 100 - perf if rev else perf, "reversed": bool(rev),
                     "expected_gain_per_point": abs(r["estimate"])})
    out = pd.DataFrame(rows)
    agg = np.mean if cut == "mean" else np.median
    imp_cut, perf_cut = agg(out["importance"]), agg(out["performance"])
    q = [QUADRANT_ACTIONS[(i >= imp_cut, pf >= perf_cut)] for i, pf in zip(out["importance"], out["performance"])]
    out["quadrant"] = [("high" if i >= imp_cut else "low") + " importance, " + ("high" if pf >= perf_cut else "low")
                       + " performance" for i, pf in zip(out["importance"], out["performance"])]
    out["action"] = [a for a, _ in q]
    out["why"] = [w for _, w in q]
    out.attrs.update(importance_cut=float(imp_cut), performance_cut=float(perf_cut), cut=cut)
    return out.sort_values("importance", ascending=False).reset_index(drop=True)


def lever_ranking(ipa: pd.DataFrame, *, outcome: str = "loyalty", scale: tuple[float, float] | None = None,
                  labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Levers ranked by expected loyalty gain per one-point improvement, with a sentence each."""
    labels = dict(labels or {})
    out = ipa.sort_values("expected_gain_per_point", ascending=False).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    rng = f" (on the {scale[0]:g}-{scale[1]:g} scale)" if scale else ""
    sig = (out["ci_lower"] > 0) | (out["ci_upper"] < 0)
    out["significant"] = sig
    advice = []
    for r, s in zip(out.itertuples(), sig):
        lo, hi = (-r.ci_upper, -r.ci_lower) if r.reversed else (r.ci_lower, r.ci_upper)
        name = labels.get(r.lever, r.lever.replace("_", " "))
        advice.append(f"{'Lowering' if r.reversed else 'Raising'} {name} by one point{rng} is expected to "
                      f"raise {outcome} by {r.expected_gain_per_point:.3f} points (95% CI {lo:.3f} to {hi:.3f}"
                      + ("" if s else ", not distinguishable from 0") + f"); quadrant: {r.action}.")
    out["advice"] = advice
    return out


# --------------------------------------------------------------------------------------------
# stated vs actual loyalty (canonical data)
# --------------------------------------------------------------------------------------------
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
    from scipy import stats as sst
    from sklearn.metrics import roc_auc_score
    from statsmodels.discrete.discrete_model import Logit
    from statsmodels.tools.tools import add_constant

    if "customer_id" not in survey.columns or survey["customer_id"].notna().sum() == 0:
        raise AnalysisError("The survey has no customer ids, so stated loyalty cannot be linked to orders.")
    o = orders
    if "status" in o.columns:
        o = o[o["status"].astype("string") == "completed"]
    o = o[["customer_id", "ordered_at"]].dropna()
    end = o["ordered_at"].max()
    df = pd.DataFrame({"customer_id": survey["customer_id"], "score": scores[score]}, index=survey.index)
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
    if len(df) < 30 or df["repurchased"].nunique() < 2:
        raise AnalysisError(f"Only {len(df)} respondents could be linked with a complete {window_days}-day window "
                            f"(or all had the same outcome); too few to test stated vs actual loyalty.")
    z = (df["score"] - df["score"].mean()) / df["score"].std()
    r, r_p = sst.pearsonr(df["score"], df["repurchased"])
    logit = Logit(df["repurchased"], add_constant(z.rename("score_z"))).fit(disp=0)
    ci = logit.conf_int().loc["score_z"]
    auc = roc_auc_score(df["repurchased"], df["score"])
    when = "after answering" if has_dates else "at the end of the order data"
    summary = pd.DataFrame([
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
    return RepurchaseCheck(summary, df.reset_index(drop=True), window_days, len(df))
