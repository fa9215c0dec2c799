"""Covariates of the churn models: the default behaviour covariates and the design-matrix encoding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ParameterError

#: Behaviour covariates :func:`label_churn` builds, in the order the notebook uses by default.
DEFAULT_COVARIATES = ("first_order_late", "late_share", "return_share", "n_contacts", "mean_discount",
                      "n_orders_window", "is_member", "channel", "region")


def encode_covariates(
    df: pd.DataFrame,
    covariates: Sequence[str],
    reference_levels: Mapping[str, Any] | None = None,
    *,
    levels: Mapping[str, list] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric design matrix from raw covariates.

    Numbers stay as they are; booleans become 0/1; text and categorical columns become
    indicator columns ``<column>_<level>`` for every level except the *reference* level
    (the first level — category order, else sorted — unless set in ``reference_levels``).
    A missing category gives missing indicators (reported by the pre-flight checks).

    Returns
    -------
    X : DataFrame
        Float design matrix, index of ``df``.
    encoding : DataFrame
        ``variable``, ``column``, ``level``, ``reference`` — which model column came from where.
    """
    reference_levels = dict(reference_levels or {})
    levels = dict(levels or {})
    cols: dict[str, pd.Series] = {}
    rows = []
    for c in covariates:
        s = df[c]
        if c in levels:
            lv = levels[c]
            kind = "categorical" if lv is not None else "numeric"
        elif pd.api.types.is_bool_dtype(s):
            lv, kind = None, "numeric"
        elif pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            lv, kind = None, "numeric"
        else:
            kind = "categorical"
            if isinstance(s.dtype, pd.CategoricalDtype):
                present = set(s.dropna().astype(object))
                lv = [x for x in s.cat.categories if x in present]
            else:
                lv = sorted(s.dropna().astype(str).unique())
            ref = reference_levels.get(c)
            if ref is not None:
                if str(ref) not in map(str, lv):
                    raise ParameterError(f"reference level {ref!r} for '{c}' is not one of its levels {lv}.",
                                         allowed=[str(x) for x in lv])
                lv = [x for x in lv if str(x) == str(ref)] + [x for x in lv if str(x) != str(ref)]
        if kind == "numeric":
            if pd.api.types.is_bool_dtype(s) or s.dtype == object:
                v = pd.to_numeric(s.astype("Float64") if pd.api.types.is_bool_dtype(s) else s, errors="coerce")
            else:
                v = s
            cols[c] = pd.Series(np.asarray(v, dtype=float), index=df.index)
            rows.append({"variable": c, "column": c, "level": None, "reference": None})
            levels[c] = None
            continue
        levels[c] = list(lv)
        txt = s.astype(object).where(s.notna(), None)
        txt = txt.map(lambda x: None if x is None else str(x))
        miss = txt.isna().to_numpy()
        for level in lv[1:]:
            name = f"{c}_{level}"
            ind = (txt == str(level)).to_numpy(float)
            ind[miss] = np.nan
            cols[name] = pd.Series(ind, index=df.index)
            rows.append({"variable": c, "column": name, "level": str(level), "reference": str(lv[0])})
    X = pd.DataFrame(cols, index=df.index)
    enc = pd.DataFrame(rows, columns=["variable", "column", "level", "reference"])
    enc.attrs["levels"] = levels
    return X, enc
