"""Construct scores from survey items: reverse coding, the missing-answer policy, item means."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError, DataError

#: Share of a construct's items that must be answered for the construct to be scored.
MIN_ANSWERED_SHARE = 2 / 3


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
                     scale_max: float | None = None, min_share: float = MIN_ANSWERED_SHARE,
                     source: str = "survey") -> ScaleScores:
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
    source : str, default "survey"
        The survey's file name, for error messages.

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
                raise DataError(f"{source}: item '{col}' has {int(bad.sum()):,} answer(s) that are not numbers "
                                f"(non-numeric) "
                                f"(first: {first!r}). Recode the answers as numbers (e.g. 1-7).",
                                source=source, column=col, n_rows=int(bad.sum()), example=first)
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


#: Columns of the table :func:`drop_constant_items` returns (those of the item review).
CONSTANT_ITEM_COLUMNS = ["construct", "item", "mean", "sd", "loading", "decision", "reason"]


def constant_items(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Items without variance: every respondent gave the same answer (or nobody answered).

    Returns
    -------
    DataFrame
        ``construct, item, value, n_answered``, one row per zero-variance item (empty when all vary).
    """
    rows = []
    for name, its in constructs.items():
        for item in its:
            answers = items[item].dropna()
            if answers.nunique() <= 1:
                rows.append({"construct": name, "item": item,
                             "value": float(answers.iloc[0]) if len(answers) else np.nan, "n_answered": len(answers)})
    return pd.DataFrame(rows, columns=["construct", "item", "value", "n_answered"])


def _constant_reason(r) -> str:
    if r.n_answered == 0:
        return "no variance: nobody answered this item"
    return f"no variance: all {r.n_answered:,} respondents answered {r.value:g}"


def drop_constant_items(items: pd.DataFrame, constructs: Mapping[str, Sequence[str]], *, min_items: int = 2,
                        source: str = "survey") -> tuple[dict[str, list[str]], pd.DataFrame]:
    """Remove zero-variance items before any correlation, CFA or SEM is computed.

    An item every respondent answered the same way carries no information and makes the item
    covariance matrix singular (semopy then fails with ``LinAlgError``). Such an item is dropped
    with a warning when its construct keeps at least ``min_items`` items; otherwise the analysis
    cannot proceed and an :class:`AnalysisError` names the items and what to check.

    Parameters
    ----------
    items : DataFrame
        Item answers (:attr:`ScaleScores.items`).
    constructs : mapping
        Construct -> item columns.
    min_items : int, default 2
        Fewest items a construct must keep (a CFA needs two indicators per construct).
    source : str, default "survey"
        The survey's file name, for the message.

    Returns
    -------
    constructs : dict
        The constructs without the constant items (unchanged when every item varies).
    review : DataFrame
        ``construct, item, mean, sd, loading, decision ('drop'), reason``: one row per dropped
        item, to append to the item review.

    Raises
    ------
    AnalysisError
        When a construct would keep fewer than ``min_items`` items.
    """
    const = constant_items(items, constructs)
    kept = {k: [i for i in v if i not in set(const["item"])] for k, v in constructs.items()}
    if const.empty:
        return kept, pd.DataFrame(columns=CONSTANT_ITEM_COLUMNS)
    reasons = {r.item: _constant_reason(r) for r in const.itertuples(index=False)}
    broken = [k for k, v in kept.items() if len(v) < min_items and len(v) < len(constructs[k])]
    if broken:
        detail = "; ".join(f"{k}: {', '.join(f'{i} ({reasons[i]})' for i in constructs[k] if i in reasons)}"
                           f" -> {len(kept[k])} item(s) left" for k in broken)
        raise AnalysisError(
            f"{source}: survey items without variance leave {len(broken)} construct(s) with fewer than {min_items} "
            f"items: {detail}. A construct whose answers never differ cannot be related to loyalty. Check that "
            f"the construct mapping names the right columns (constructs=...), that the answers were not "
            f"overwritten by a default value in the export, or remove the construct from the model "
            f"(constructs and drivers).")
    msg = "; ".join(f"{r.item} ({r.construct}): {reasons[r.item]}" for r in const.itertuples(index=False))
    warnings.warn(f"Dropped {len(const)} survey item(s) without variance before fitting: {msg}.", stacklevel=2)
    review = pd.DataFrame({"construct": const["construct"], "item": const["item"], "mean": const["value"],
                           "sd": np.where(const["n_answered"] > 1, 0.0, np.nan), "loading": np.nan,
                           "decision": "drop", "reason": [reasons[i] for i in const["item"]]})
    return kept, review[CONSTANT_ITEM_COLUMNS]
