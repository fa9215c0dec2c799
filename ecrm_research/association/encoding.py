"""Integer-coded baskets: the one encoding every engine, measure and table starts from.

The long basket table (``basket_id, item``) becomes a CSR structure over the frequent items
(:class:`EncodedBaskets`, built by :func:`integer_encode` with numpy, no dense one-hot matrix);
:func:`encode_baskets` gives mlxtend's sparse one-hot frame; :func:`item_frequencies` and
:func:`basket_sizes` describe the baskets.
"""

from __future__ import annotations

import gc
import math
import warnings
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from ..exceptions import AnalysisError, ParameterError
from ..prep.baskets import check_long_baskets


def min_support_count(min_support: float, n: int) -> int:
    """Minimum basket count for ``min_support`` of ``n`` baskets: ``ceil(min_support * n)``, at least 1."""
    if not (0 < float(min_support) <= 1):
        raise ParameterError(f"min_support={min_support!r} must be in (0, 1] (a share of baskets, e.g. 0.01).")
    return max(1, int(math.ceil(float(min_support) * n - 1e-9)))


@dataclass
class EncodedBaskets:
    """Baskets as a CSR structure over the frequent items only (built by :func:`integer_encode`).

    Item code ``j`` is ``items[j]``; codes follow the order of the labels as strings, so that a
    sorted tuple of codes sorts like the sorted labels. Every basket is a row (also those left
    without frequent items), so ``n_baskets`` is the support denominator.
    """

    n_baskets: int
    items: np.ndarray            # object array: labels of the frequent items
    counts: np.ndarray           # int64: number of baskets holding each frequent item
    indptr: np.ndarray           # int64, n_baskets + 1
    indices: np.ndarray          # int32: frequent-item codes of each basket (in no particular order)
    min_count: int
    n_items: int                 # distinct items in the input, at any support
    n_rows: int                  # rows of the long table
    basket_index: pd.Index | None = None

    @property
    def sizes(self) -> np.ndarray:
        """Number of frequent items in each basket."""
        return np.diff(self.indptr)

    def transactions(self, min_size: int = 1) -> list[list[int]]:
        """Baskets with at least ``min_size`` frequent items as lists of item codes."""
        return transaction_lists(self.indptr, self.indices, min_size)


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while many containers are made.

    Building a million transaction lists (or an FP-tree of Python nodes) triggers a collection
    every few hundred allocations, each walking everything alive: that made building pyfim's input
    3-4x slower than the lists themselves. Nothing made here needs the collector meanwhile; it
    runs again afterwards.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def transaction_lists(indptr: np.ndarray, indices: np.ndarray, min_size: int = 1) -> list[list[int]]:
    """Python lists from a CSR structure without a Python loop over baskets.

    Baskets of one size k are gathered as an (n_k, k) array and turned into lists by numpy's
    ``tolist`` (in C); there are only as many sizes as distinct basket lengths.
    """
    sizes = np.diff(indptr)
    starts = indptr[:-1]
    out: list[list[int]] = []
    for k in np.unique(sizes[sizes >= max(1, min_size)]):
        s = starts[sizes == k]
        out.extend(indices[s[:, None] + np.arange(int(k))].tolist())
    return out


def basket_codes(col: pd.Series, want_index: bool) -> tuple[np.ndarray, int, pd.Index | None]:
    """Integer basket codes 0..n-1 (-1 for a missing id) and the number of baskets.

    A numpy integer column that is sorted (the usual case: baskets come grouped) is coded from its
    changes in one pass; anything else goes through :func:`pandas.factorize` (hashing).
    """
    numpy_dtype = isinstance(col.dtype, np.dtype)
    if pd.api.types.is_integer_dtype(col.dtype) and not (not numpy_dtype and col.hasnans):
        v = col.to_numpy() if numpy_dtype else col.to_numpy(dtype=np.int64)  # Int64, int64[pyarrow]
        if len(v) == 0:
            return np.zeros(0, dtype=np.int64), 0, (pd.Index(v) if want_index else None)
        if bool((v[1:] >= v[:-1]).all()):
            start = np.empty(len(v), dtype=bool)
            start[0] = True
            np.not_equal(v[1:], v[:-1], out=start[1:])
            codes = np.cumsum(start, dtype=np.int64) - 1
            return codes, int(codes[-1]) + 1, (pd.Index(v[start]) if want_index else None)
    if isinstance(col.array, pd.arrays.ArrowExtensionArray):  # string[pyarrow] and ArrowDtype columns
        arr = col.array.__arrow_array__()  # the pyarrow protocol: the column's own ChunkedArray, no copy
        if len(arr) > 1 and _is_arrow_text(arr.type):
            return _arrow_run_codes(arr, want_index)
    codes, uniques = pd.factorize(col, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques), (pd.Index(uniques) if want_index else None)


def _is_arrow_text(t: Any) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _arrow_run_codes(arr: Any, want_index: bool) -> tuple[np.ndarray, int, pd.Index | None]:
    """:func:`pandas.factorize` codes of Arrow text, computed on its runs of equal values.

    Baskets come grouped (the lines of one order are consecutive), so only the first value of each
    run is dictionary-encoded and its code repeated over the run: the same codes (in order of first
    appearance, -1 for missing) as hashing every row, several times faster.
    """
    n = len(arr)
    same = pc.fill_null(pc.equal(arr.slice(1), arr.slice(0, n - 1)), False)
    heads = np.r_[0, np.flatnonzero(~same.to_numpy(zero_copy_only=False)) + 1]
    del same
    enc = pc.dictionary_encode(pc.take(arr, pa.array(heads)))
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    head_codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    codes = np.repeat(head_codes, np.diff(np.r_[heads, n]))
    uniques = pd.Index(pd.arrays.ArrowStringArray(pa.chunked_array([enc.dictionary.cast(pa.large_string())])))
    return codes, len(uniques), (uniques if want_index else None)


def _item_codes(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer item codes (-1 for a missing item) and the labels, by hashing (pd.factorize)."""
    codes, uniques = pd.factorize(col, sort=False)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def integer_encode(b: pd.DataFrame, min_support: float | None = None, *, min_count: int | None = None,
                   want_index: bool = False) -> EncodedBaskets:
    """Long basket table -> CSR over the items with ``count >= min_count``, vectorised.

    Steps (no Python loop over rows or baskets): integer codes for baskets and items; items whose
    row count is below ``min_count`` are dropped first (a row count is never below the basket
    count, so nothing frequent is lost); (basket, item) pairs are deduplicated by sorting one int64
    key; exact basket counts decide the frequent items; their codes are renumbered in the order of
    their labels as strings (within a basket, codes stay in first-seen order).
    Memory: a few int64 arrays of the length of the table; the item universe is never expanded.
    """
    bcodes, n, bindex = basket_codes(b["basket_id"], want_index)
    if min_count is None:
        min_count = min_support_count(min_support, n) if min_support else 1
    icodes, labels = _item_codes(b["item"])
    m = len(labels)
    # the code arrays are this function's own: filtered and combined in place, each intermediate
    # freed as soon as it is used (peak ~4 int64 arrays of the table's length, not ~8)
    ok = (icodes >= 0) & (bcodes >= 0)
    if not ok.all():
        icodes, bcodes = icodes[ok], bcodes[ok]
    del ok
    raw = np.bincount(icodes, minlength=m)
    n_items = int((raw > 0).sum())
    if min_count > 1:
        sel = (raw >= min_count)[icodes]
        if not sel.all():
            icodes, bcodes = icodes[sel], bcodes[sel]
        del sel
    key = bcodes  # key = basket * m + item
    del bcodes
    if m:
        key *= m
        key += icodes
    del icodes
    key.sort(kind="stable")  # baskets usually come grouped: long sorted runs
    if len(key) > 1:
        first = np.empty(len(key), dtype=bool)
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        if not first.all():
            key = key[first]
        del first
    rows, cols = np.divmod(key, max(m, 1))
    del key
    counts = np.bincount(cols, minlength=m)
    fcodes = np.flatnonzero(counts >= min_count)
    flabels = labels[fcodes]
    order = np.argsort(np.array([str(x) for x in flabels], dtype=object), kind="stable")
    fcodes, flabels = fcodes[order], flabels[order]
    K = len(fcodes)
    remap = np.full(m, -1, dtype=np.int64)
    remap[fcodes] = np.arange(K)
    new = remap[cols]
    del cols
    keep = new >= 0
    if not keep.all():
        rows, new = rows[keep], new[keep]
    del keep
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    del rows
    return EncodedBaskets(n_baskets=n, items=flabels, counts=counts[fcodes].astype(np.int64), indptr=indptr,
                          indices=new.astype(np.int32), min_count=int(min_count), n_items=n_items, n_rows=len(b),
                          basket_index=bindex)


def sparse_matrix(b: pd.DataFrame, min_count: int) -> tuple[sparse.csr_matrix, pd.Index, pd.Index, np.ndarray]:
    """CSR basket x item matrix of the items with count >= min_count (all baskets kept)."""
    enc = integer_encode(b, min_count=min_count, want_index=True)
    X = sparse.csr_matrix((np.ones(len(enc.indices), dtype=bool), enc.indices, enc.indptr),
                          shape=(enc.n_baskets, len(enc.items)), dtype=bool)
    X.sort_indices()
    return X, pd.Index(enc.items, dtype=object), enc.basket_index, enc.counts


def sparse_frame(X: sparse.spmatrix, columns: list[str], index: Any = None) -> pd.DataFrame:
    """Sparse[bool] DataFrame from a boolean scipy matrix, built without a dense intermediate."""
    with warnings.catch_warnings():
        # pandas 2.x warns about the integer fill value it picks itself for bool matrices
        warnings.filterwarnings("ignore", message=".*fill_value.*", category=FutureWarning)
        return pd.DataFrame.sparse.from_spmatrix(X, index=index, columns=columns)


def encode_baskets(baskets: pd.DataFrame | Sequence[Iterable[str]], min_support: float | None = None) -> pd.DataFrame:
    """One-hot encode baskets as a *sparse* boolean DataFrame (mlxtend's input format).

    Parameters
    ----------
    baskets : DataFrame or list of lists
        Long basket table or a list of baskets.
    min_support : float, optional
        Items in fewer than ``ceil(min_support * n_baskets)`` baskets are dropped *before*
        encoding (they cannot be part of any frequent itemset), so the matrix never spans the
        whole item universe. All baskets are kept as rows, even those left without items, so
        supports keep the right denominator.

    Returns
    -------
    DataFrame
        Index = basket ids, one ``Sparse[bool]`` column per kept item (sorted by label).

    Notes
    -----
    Mining does not use this frame: :func:`frequent_itemsets` hands each engine the same
    integer-coded baskets directly. Do not pass this frame to ``mlxtend.fpgrowth`` at scale:
    it sums ``df.values``, a dense baskets x items array.
    """
    b = check_long_baskets(baskets)
    n = basket_codes(b["basket_id"], False)[1]
    min_count = min_support_count(min_support, n) if min_support else 1
    X, items, index, _ = sparse_matrix(b, min_count)
    return sparse_frame(X, [str(c) for c in items], index=index)


def item_frequencies(baskets: pd.DataFrame | Sequence[Iterable[str]]) -> pd.DataFrame:
    """Number and share of baskets that contain each item (arules' ``itemFrequency``).

    Returns
    -------
    DataFrame
        ``item, count, support`` sorted by decreasing count (ties by item), where
        support = count / number of baskets.

    Notes
    -----
    Counted on the integer-coded baskets (:func:`integer_encode`), not by de-duplicating the long
    table.
    """
    b = check_long_baskets(baskets)
    if isinstance(b["item"].dtype, pd.CategoricalDtype):  # value_counts lists unused categories too
        n = b["basket_id"].nunique()
        counts = b.dropna(subset=["item"]).drop_duplicates(["basket_id", "item"])["item"].value_counts()
        out = counts.rename_axis("item").reset_index(name="count")
    else:
        enc = integer_encode(b, min_count=1)
        n = enc.n_baskets
        out = pd.DataFrame({"item": enc.items, "count": enc.counts})
    out = out.sort_values(["count", "item"], ascending=[False, True], kind="stable").reset_index(drop=True)
    out["support"] = out["count"] / n if n else np.nan
    return out


def basket_sizes(baskets: pd.DataFrame | Sequence[Iterable[str]]) -> pd.DataFrame:
    """Distribution of basket sizes (distinct items per basket).

    Returns
    -------
    DataFrame
        ``size, n_baskets, share`` for every observed size.
    """
    b = check_long_baskets(baskets)
    sizes = integer_encode(b, min_count=1).sizes
    dist = np.bincount(sizes) if len(sizes) else np.zeros(0, dtype=np.int64)
    size = np.flatnonzero(dist)
    out = pd.DataFrame({"size": size.astype(np.int64), "n_baskets": dist[size].astype(np.int64)})
    out["share"] = out["n_baskets"] / out["n_baskets"].sum()
    return out


def require_baskets(n_baskets: int, exclusions: pd.DataFrame, source: str) -> None:
    """Raise a clear :class:`~ecrm_research.exceptions.AnalysisError` when there is no basket to mine.

    Parameters
    ----------
    n_baskets : int
        Baskets left after step 2.
    exclusions : DataFrame
        ``step, reason, rows`` as in :class:`~ecrm_research.prep.baskets.BasketData` (what was left out).
    source : str
        The data, for the message.

    Notes
    -----
    Without this check an empty basket table fails later with a division by zero (average basket
    size) or an empty plot. The message names the largest exclusions, e.g. every order cancelled.
    """
    if int(n_baskets) > 0:
        return
    if len(exclusions):
        top = exclusions.sort_values("rows", ascending=False, kind="stable").head(4)
        why = "; ".join(f"{r.reason} in {r.step}: {int(r.rows):,} rows" for r in top.itertuples())
        detail = f" Everything was excluded in step 2 ({why})."
    else:
        detail = " The data hold no item."
    raise AnalysisError(
        f"No baskets to mine in {source}: no completed order with products is left.{detail} "
        f"Association rules need completed orders with products "
        f"(or a basket file with items). If completed orders are recorded under another status value, map it "
        f"to 'completed' in the column mapping (value map of 'status'); otherwise use data with completed orders.")
