"""Comparing tables from two engines or libraries: exact where exactness is meaningful, floats to a tolerance.

Integers, text, dates and booleans must be identical; floats agree to ``rtol`` (1e-9 by default):
two engines add the same numbers in another order, so sums differ in the last bits (the
conventions: "two engines or libraries are compared with a tolerance, never bytes"). Byte identity
is only for the same engine run twice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

RTOL = 1e-9


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame, *, rtol: float = RTOL, name: str = "") -> None:
    """Same columns, dtypes, index and row order; floats within `rtol` (relative, per value; values near
    zero against the column's scale), everything else exact."""
    where = f"{name}: " if name else ""
    assert list(got.columns) == list(want.columns), f"{where}columns {list(got.columns)} != {list(want.columns)}"
    pd.testing.assert_index_equal(got.index, want.index, obj=f"{where}index")
    for col in want.columns:
        g, w = got[col], want[col]
        assert g.dtype == w.dtype, f"{where}column {col!r}: dtype {g.dtype} != {w.dtype}"
        if pd.api.types.is_float_dtype(w.dtype):
            a, b = g.to_numpy(dtype=float, na_value=np.nan), w.to_numpy(dtype=float, na_value=np.nan)
            finite = np.abs(b[np.isfinite(b)])
            scale = float(finite.max()) if finite.size else 0.0
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True,
                                       err_msg=f"{where}column {col!r}")
        else:
            pd.testing.assert_series_equal(g, w, check_exact=True, obj=f"{where}column {col!r}")


def assert_same_csv_tables(got_dir: Path, want_dir: Path, *, rtol: float = RTOL, min_tables: int = 1) -> None:
    """Every ``*.csv`` of `want_dir` exists in `got_dir` (and no other) and holds the same table
    (:func:`assert_same_table` on the parsed CSVs)."""
    got = {p.name: p for p in Path(got_dir).glob("*.csv")}
    want = {p.name: p for p in Path(want_dir).glob("*.csv")}
    assert len(want) >= min_tables and sorted(got) == sorted(want), (sorted(got), sorted(want))
    different = []
    for name, path in sorted(want.items()):
        if got[name].read_bytes() == path.read_bytes():
            continue
        try:
            assert_same_table(pd.read_csv(got[name]), pd.read_csv(path), rtol=rtol, name=name)
        except AssertionError as err:
            different.append(f"{name}: {err}")
    assert not different, f"tables that differ beyond rtol={rtol}:\n" + "\n".join(different)
