"""Market-basket analysis: baskets, frequent itemsets, association rules, cross-sell tables.

The pipeline, each step a plain DataFrame in and out (as in mlxtend's ``frequent_patterns``)::

    canonical tables ──baskets_from_orders──┐
    list[list[str]]  ──baskets_from_lists───┴─► baskets (long: basket_id, item[, ordered_at])
        ──frequent_itemsets──► itemsets, support, count, length        (engine: fim | mlxtend | spark)
        ──association_rules──► antecedents, consequents, support, confidence, lift, leverage,
                               conviction, zhangs_metric, count, ...
        ──cross_sell_table / holdout_check / fisher_test / is_redundant

:func:`mine_rules` runs the whole chain and returns a :class:`RuleMiningResult`.

Semantics follow R's ``arules`` by default (``semantics="arules"``):

* a rule has exactly one item in its consequent (right-hand side);
* thresholds are inclusive: a rule is kept when ``support >= min_support`` and
  ``confidence >= min_confidence``; the support threshold is applied to counts,
  ``count >= ceil(min_support * n_baskets)``;
* ``max_len`` bounds the number of items in a whole rule (antecedent + consequent),
  i.e. the size of the frequent itemset it is made from (arules' default is 10);
* rules with an empty antecedent (``{} => {x}``, which arules reports when
  ``support(x) >= min_confidence``) are left out: they recommend to everybody.

``semantics="mlxtend"`` instead calls :func:`mlxtend.frequent_patterns.association_rules`
(through the single wrapper :func:`_mlxtend_association_rules`) and keeps rules with
consequents of any size.

Baskets are *sets*: an item bought twice in one basket counts once, as in arules'
``transactions``.

Mining engines (``engine=``; all give the same itemsets, counts and rules):

* ``'fim'`` — Christian Borgelt's C FP-growth (``pip install pyfim``; from the library whose
  apriori and eclat R's arules runs); chosen by ``'auto'`` when importable. ~1 s for a million
  baskets.
* ``'mlxtend'`` — mlxtend's pure-Python FP-growth, the reference; fine up to ~10^5 baskets.
* ``'spark'`` — ``pyspark.ml.fpm.FPGrowth`` on a local or remote Spark (``spark_master=``).

Whatever the engine, the long table is integer-coded once with numpy (items below
``min_support`` dropped first, no dense one-hot matrix), only integer counts come back, and the
rules and their measures are derived from those counts in one place (:func:`association_rules`).
A memory estimate is checked before mining (``max_memory_gb``; :func:`estimate_mining_memory`).

Examples
--------
>>> from ecrm_research import association as ar
>>> b = ar.baskets_from_lists([["bread", "milk"], ["bread", "milk", "eggs"], ["eggs"]])
>>> res = ar.mine_rules(b, min_support=0.5, min_confidence=0.9)
>>> res.rules[["antecedents", "consequents", "confidence"]]  # doctest: +NORMALIZE_WHITESPACE
  antecedents consequents  confidence
0     (bread)      (milk)         1.0
1      (milk)     (bread)         1.0
"""

from __future__ import annotations

import gc
import inspect
import math
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..exceptions import AnalysisError, ParameterError
from ..infra.progress import Stages
from ..infra.spark import DEFAULT_SPARK_MASTER, SPARK_DEFAULTS, get_session
from ..prep.baskets import check_long_baskets

__all__ = [
    "RULE_COLUMNS",
    "RuleMiningResult",
    "item_frequencies",
    "basket_sizes",
    "encode_baskets",
    "ENGINES",
    "available_engines",
    "resolve_engine",
    "estimate_itemset_count",
    "estimate_mining_memory",
    "frequent_itemsets",
    "association_rules",
    "mine_rules",
    "is_redundant",
    "prune_redundant",
    "fisher_test",
    "cross_sell_table",
    "split_baskets_by_time",
    "measure_rules",
    "holdout_check",
    "rules_for_export",
    "synthetic_baskets",
]

#: The leading columns of every rules table, in this order.
RULE_COLUMNS = ["antecedents", "consequents", "support", "confidence", "lift", "leverage",
                "conviction", "zhangs_metric", "count"]
#: arules' default ``maxlen``.
DEFAULT_MAX_LEN = 10
#: Default ceiling on the number of frequent itemsets (memory guard).
DEFAULT_MAX_ITEMSETS = 1_000_000

_EPS = 1e-12


# ---------------------------------------------------------------------------------------------
# baskets
# ---------------------------------------------------------------------------------------------


def item_frequencies(baskets: pd.DataFrame | Sequence[Iterable[str]]) -> pd.DataFrame:
    """Number and share of baskets that contain each item (arules' ``itemFrequency``).

    Returns
    -------
    DataFrame
        ``item, count, support`` sorted by decreasing count (ties by item), where
        support = count / number of baskets.

    Notes
    -----
    Counted on the integer-coded baskets (:func:`_encode`), not by de-duplicating the long table.
    """
    b = check_long_baskets(baskets)
    if isinstance(b["item"].dtype, pd.CategoricalDtype):  # value_counts lists unused categories too
        n = b["basket_id"].nunique()
        counts = b.dropna(subset=["item"]).drop_duplicates(["basket_id", "item"])["item"].value_counts()
        out = counts.rename_axis("item").reset_index(name="count")
    else:
        enc = _encode(b, min_count=1)
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
    sizes = _encode(b, min_count=1).sizes
    dist = np.bincount(sizes) if len(sizes) else np.zeros(0, dtype=np.int64)
    size = np.flatnonzero(dist)
    out = pd.DataFrame({"size": size.astype(np.int64), "n_baskets": dist[size].astype(np.int64)})
    out["share"] = out["n_baskets"] / out["n_baskets"].sum()
    return out


# ---------------------------------------------------------------------------------------------
# encoding
# ---------------------------------------------------------------------------------------------

#: Mining engines accepted by :func:`frequent_itemsets` and :func:`mine_rules`.
ENGINES = ("auto", "mlxtend", "fim", "spark")
#: With ``max_memory_gb=None`` a mining call may plan to use this share of the memory that is
#: available (``MemAvailable``) when it starts.
DEFAULT_MEMORY_SHARE = 0.8


def _min_count(min_support: float, n: int) -> int:
    if not (0 < float(min_support) <= 1):
        raise ParameterError(f"min_support={min_support!r} must be in (0, 1] (a share of baskets, e.g. 0.01).")
    return max(1, int(math.ceil(float(min_support) * n - 1e-9)))


@dataclass
class _Encoded:
    """Baskets as a CSR structure over the frequent items only (built by :func:`_encode`).

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
        return _tracts(self.indptr, self.indices, min_size)


@contextmanager
def _gc_paused():
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


def _tracts(indptr: np.ndarray, indices: np.ndarray, min_size: int = 1) -> list[list[int]]:
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


def _basket_codes(col: pd.Series, want_index: bool) -> tuple[np.ndarray, int, pd.Index | None]:
    """Integer basket codes 0..n-1 (-1 for a missing id) and the number of baskets.

    A numpy integer column that is sorted (the usual case: baskets come grouped) is coded from its
    changes in one pass; anything else goes through :func:`pandas.factorize` (hashing).
    """
    if pd.api.types.is_integer_dtype(col.dtype) and not (not isinstance(col.dtype, np.dtype) and col.hasnans):
        v = col.to_numpy(dtype=np.int64) if not isinstance(col.dtype, np.dtype) else col.to_numpy()  # Int64, int64[pyarrow]
        if len(v) == 0:
            return np.zeros(0, dtype=np.int64), 0, (pd.Index(v) if want_index else None)
        if bool((v[1:] >= v[:-1]).all()):
            start = np.empty(len(v), dtype=bool)
            start[0] = True
            np.not_equal(v[1:], v[:-1], out=start[1:])
            codes = np.cumsum(start, dtype=np.int64) - 1
            return codes, int(codes[-1]) + 1, (pd.Index(v[start]) if want_index else None)
    arr = getattr(col.array, "_pa_array", None)
    if arr is not None and len(arr) > 1 and _is_arrow_text(arr.type):
        return _arrow_run_codes(arr, want_index)
    codes, uniques = pd.factorize(col, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques), (pd.Index(uniques) if want_index else None)


def _is_arrow_text(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _arrow_run_codes(arr: Any, want_index: bool) -> tuple[np.ndarray, int, pd.Index | None]:
    """:func:`pandas.factorize` codes of Arrow text, computed on its runs of equal values.

    Baskets come grouped (the lines of one order are consecutive), so only the first value of each
    run is dictionary-encoded and its code repeated over the run: the same codes (in order of first
    appearance, -1 for missing) as hashing every row, several times faster.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

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


def _encode(b: pd.DataFrame, min_support: float | None = None, *, min_count: int | None = None,
            want_index: bool = False) -> _Encoded:
    """Long basket table -> CSR over the items with ``count >= min_count``, vectorised.

    Steps (no Python loop over rows or baskets): integer codes for baskets and items; items whose
    row count is below ``min_count`` are dropped first (a row count is never below the basket
    count, so nothing frequent is lost); (basket, item) pairs are deduplicated by sorting one int64
    key; exact basket counts decide the frequent items; their codes are renumbered in the order of
    their labels as strings (within a basket, codes stay in first-seen order).
    Memory: a few int64 arrays of the length of the table; the item universe is never expanded.
    """
    bcodes, n, bindex = _basket_codes(b["basket_id"], want_index)
    if min_count is None:
        min_count = _min_count(min_support, n) if min_support else 1
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
    return _Encoded(n_baskets=n, items=flabels, counts=counts[fcodes].astype(np.int64), indptr=indptr,
                    indices=new.astype(np.int32), min_count=int(min_count), n_items=n_items, n_rows=len(b),
                    basket_index=bindex)


def _sparse_matrix(b: pd.DataFrame, min_count: int) -> tuple[sparse.csr_matrix, pd.Index, pd.Index, np.ndarray]:
    """CSR basket x item matrix of the items with count >= min_count (all baskets kept)."""
    enc = _encode(b, min_count=min_count, want_index=True)
    X = sparse.csr_matrix((np.ones(len(enc.indices), dtype=bool), enc.indices, enc.indptr),
                          shape=(enc.n_baskets, len(enc.items)), dtype=bool)
    X.sort_indices()
    return X, pd.Index(enc.items, dtype=object), enc.basket_index, enc.counts


def _sparse_frame(X: sparse.spmatrix, columns: list[str], index: Any = None) -> pd.DataFrame:
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
    n = _basket_codes(b["basket_id"], False)[1]
    min_count = _min_count(min_support, n) if min_support else 1
    X, items, index, _ = _sparse_matrix(b, min_count)
    return _sparse_frame(X, [str(c) for c in items], index=index)


def estimate_itemset_count(basket_item_counts: np.ndarray, n_frequent_items: int, min_count: int,
                           max_len: int | None) -> int:
    """Upper bound on the number of frequent itemsets, from frequent-item counts per basket.

    Parameters
    ----------
    basket_item_counts : array of int
        Number of frequent items in each basket.
    n_frequent_items : int
        Number of frequent items m.
    min_count : int
        Minimum support as a basket count c.
    max_len : int or None
        Largest itemset size L (None: no limit).

    Returns
    -------
    int
        Σ_k min( C(m, k), Σ_i C(b_i, k) / c, Σ_{i ranked ≥ c} C(b_i, k) ), k = 1..L.

    Notes
    -----
    A frequent k-itemset lies in at least c baskets, so (i) the k-subsets of all baskets, counted
    with multiplicity, number at least c times the frequent ones; (ii) at least one of its
    baskets is not among the c − 1 largest. Both are true upper bounds; they are loose when a
    few baskets are very large.
    """
    sizes = np.sort(np.asarray(basket_item_counts, dtype=np.int64))[::-1]
    sizes = sizes[sizes > 0]
    m = int(n_frequent_items)
    L = m if max_len is None else min(int(max_len), m)
    if m == 0 or len(sizes) == 0:
        return 0
    tail = sizes[min_count - 1:] if min_count - 1 < len(sizes) else sizes[:0]
    total = 0.0
    uniq, mult = np.unique(sizes, return_counts=True)
    uniq_t, mult_t = np.unique(tail, return_counts=True) if len(tail) else (np.array([], dtype=int), np.array([], dtype=int))
    for k in range(1, L + 1):
        comb_m = math.comb(m, k)
        a = float(sum(int(c) * math.comb(int(s), k) for s, c in zip(uniq, mult) if s >= k)) / min_count
        b = float(sum(int(c) * math.comb(int(s), k) for s, c in zip(uniq_t, mult_t) if s >= k))
        bound = min(float(comb_m), a, b)
        if bound < 1:
            break
        total += bound
        if total > 1e18:
            break
    return int(min(total, 1e18))


# ---------------------------------------------------------------------------------------------
# memory guard
# ---------------------------------------------------------------------------------------------

#: Bytes per unit in the memory estimate, per engine: per row of the long table (encoding), per
#: item occurrence and per basket handed to the engine (baskets with >= 2 frequent items), per
#: frequent itemset (engine output, labelled itemsets and the rules made from them). Calibrated on
#: the peak resident memory of fresh processes (benchmarks/bench_association.py and
#: benchmarks/README.md): pyfim needs ~50-100 B per occurrence including the encoding; mlxtend's
#: FP-tree of Python objects ~310 B per occurrence when baskets share no prefix (uniform items),
#: far less with Zipf popularity. Rounded up, so the estimate errs on the safe side.
_MEMORY_MODEL = {
    "fim": {"row": 40, "pair": 40, "basket": 100, "itemset": 1500},
    "mlxtend": {"row": 40, "pair": 300, "basket": 300, "itemset": 2500},
    "spark": {"row": 40, "pair": 40, "basket": 16, "itemset": 2500},
}
_SPARK_LOCAL_OVERHEAD = 0.6e9  # JVM beyond its heap: metaspace, threads, off-heap Arrow buffers


def _available_memory_bytes() -> float:
    """Memory available to a new allocation now (Linux ``MemAvailable``; psutil; total RAM)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _memory_limit_bytes(max_memory_gb: float | None) -> float:
    if max_memory_gb is None:
        return DEFAULT_MEMORY_SHARE * _available_memory_bytes()
    if not float(max_memory_gb) > 0:
        raise ParameterError(f"max_memory_gb={max_memory_gb!r} must be > 0 (GB), or None for "
                             f"{DEFAULT_MEMORY_SHARE:.0%} of the available memory.")
    return float(max_memory_gb) * 1e9


def _parse_size(text: str) -> float:
    """Bytes in a JVM size such as '2g', '512m'."""
    t = str(text).strip().lower().rstrip("b")
    mult = {"k": 1e3 * 1.024, "m": 1.048576e6, "g": 1.073741824e9, "t": 1.099511627776e12}
    if t and t[-1] in mult:
        return float(t[:-1]) * mult[t[-1]]
    return float(t)


def _spark_is_local(master: str | None) -> bool:
    return (master or DEFAULT_SPARK_MASTER).startswith("local")


def _estimate_parts(sizes: np.ndarray, n_frequent: int, min_count: int, max_len: int | None, n_rows: int,
                    engine: str, max_itemsets: int, *, n_sets: int | None = None, spark_master: str | None = None,
                    spark_conf: Mapping[str, str] | None = None) -> dict[str, float]:
    """Bytes a mining call needs, by component (see :data:`_MEMORY_MODEL`).

    ``n_sets``: the number of itemsets when known (pyfim counts them exactly); otherwise the upper
    bound of :func:`estimate_itemset_count`, capped at ``max_itemsets`` (the guard stops beyond).
    """
    cost = _MEMORY_MODEL[engine]
    multi = sizes >= 2
    pairs, nb = float(sizes[multi].sum()), float(multi.sum())
    if n_sets is None:
        n_sets = min(estimate_itemset_count(sizes, n_frequent, min_count, max_len), int(max_itemsets) + 1)
    parts = {"encoding": cost["row"] * float(n_rows),
             f"{engine} input": cost["pair"] * pairs + cost["basket"] * nb,
             "itemsets and rules": cost["itemset"] * float(n_sets)}
    if engine == "spark" and _spark_is_local(spark_master):
        heap = (spark_conf or {}).get("spark.driver.memory", SPARK_DEFAULTS["spark.driver.memory"])
        parts["spark JVM (local)"] = _parse_size(heap) + _SPARK_LOCAL_OVERHEAD
    return parts


def _nice_ceil(x: float) -> float:
    """Round x up to a 'nice' value (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten)."""
    if x <= 0:
        return 0.0
    e = math.floor(math.log10(x))
    for s in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if s * 10 ** e >= x * (1 - 1e-12):
            return float(f"{s * 10 ** e:.12g}")
    return float(10 ** (e + 1))  # pragma: no cover


def _fitting_settings(enc: _Encoded, min_support: float, max_len: int | None, engine: str, max_itemsets: int,
                      limit: float, **spark: Any) -> tuple[tuple[float, float] | None, tuple[int, float] | None]:
    """A higher min_support and a lower max_len that fit in ``limit`` bytes (with their estimates)."""
    n = enc.n_baskets
    rows = np.repeat(np.arange(n), enc.sizes)
    supp = None
    for f in (1.5, 2, 3, 5, 10, 20, 50, 100, 300, 1000):
        ms = _nice_ceil(min_support * f)
        if ms > 1:
            break
        mc = _min_count(ms, n)
        keep = enc.counts >= mc
        if not keep.any():
            break
        sizes = np.bincount(rows[keep[enc.indices]], minlength=n)
        est = sum(_estimate_parts(sizes, int(keep.sum()), mc, max_len, enc.n_rows, engine, max_itemsets,
                                  **spark).values())
        if est <= limit:
            supp = (ms, est)
            break
    length = None
    top = len(enc.items) if max_len is None else int(max_len) - 1
    for L in range(min(top, 6), 1, -1):
        est = sum(_estimate_parts(enc.sizes, len(enc.items), enc.min_count, L, enc.n_rows, engine, max_itemsets,
                                  **spark).values())
        if est <= limit:
            length = (L, est)
            break
    return supp, length


def estimate_mining_memory(baskets: pd.DataFrame | Sequence[Iterable[str]], min_support: float,
                           max_len: int | None = DEFAULT_MAX_LEN, *, engine: str = "auto",
                           max_itemsets: int = DEFAULT_MAX_ITEMSETS, spark_master: str | None = None,
                           spark_conf: Mapping[str, str] | None = None) -> pd.Series:
    """Memory a :func:`frequent_itemsets` / :func:`mine_rules` call would need, in GB by component.

    Parameters
    ----------
    baskets, min_support, max_len, max_itemsets :
        As for :func:`frequent_itemsets`.
    engine : {'auto', 'mlxtend', 'fim', 'spark'}
        The engine to estimate for (``'auto'``: the one :func:`resolve_engine` picks).

    Returns
    -------
    Series
        GB per component (``encoding``, ``<engine> input``, ``itemsets and rules`` and, for a local
        Spark, the JVM), indexed by component; ``attrs``: ``engine``, ``itemsets`` (the count
        used) and ``itemsets_exact`` (True when pyfim counted them).

    Notes
    -----
    With R rows in the long table, P item occurrences in B baskets that hold at least two frequent
    items, and S itemsets: bytes ≈ a·R + p·P + b·B + s·S, with per-engine constants measured by
    ``benchmarks/bench_association.py`` (pyfim ≈ 40 B per occurrence, mlxtend's Python FP-tree
    ≈ 300 B per occurrence at worst). S is the upper bound of :func:`estimate_itemset_count`
    capped at ``max_itemsets`` or, for ``engine='fim'``, the exact count from pyfim's pattern
    spectrum (mined without storing the itemsets; :func:`frequent_itemsets` does the same when
    the bound is above ``max_itemsets`` or above the memory limit). The data already in memory
    (the long table) is not counted.
    """
    b = check_long_baskets(baskets)
    eng = resolve_engine(engine, spark_master)
    enc = _encode(b, min_support)
    L = None if max_len is None else int(max_len)
    n_sets, exact = None, False
    bound = estimate_itemset_count(enc.sizes, len(enc.items), enc.min_count, L)
    if eng == "fim" and (L is None or L >= 2) and bool((enc.sizes >= 2).any()):
        with _gc_paused():
            n_sets, exact = _fim_count(_fim_tracts(enc), enc, L) + len(enc.items), True
    parts = _estimate_parts(enc.sizes, len(enc.items), enc.min_count, L, enc.n_rows, eng, max_itemsets,
                            n_sets=n_sets, spark_master=spark_master, spark_conf=spark_conf)
    out = pd.Series({k: v / 1e9 for k, v in parts.items()}, name="gb", dtype=float)
    out.index.name = "component"
    out.attrs.update(engine=eng, itemsets=int(n_sets if n_sets is not None else min(bound, max_itemsets + 1)),
                     itemsets_exact=exact)
    return out


def _check_memory(enc: _Encoded, min_support: float, max_len: int | None, engine: str, max_itemsets: int,
                  limit: float, max_memory_gb: float | None, *, n_sets: int | None = None,
                  spark_master: str | None = None, spark_conf: Mapping[str, str] | None = None) -> float:
    """Raise AnalysisError when the estimate exceeds ``limit`` bytes; return the estimate in bytes."""
    spark = {"spark_master": spark_master, "spark_conf": spark_conf}
    parts = _estimate_parts(enc.sizes, len(enc.items), enc.min_count, max_len, enc.n_rows, engine, max_itemsets,
                            n_sets=n_sets, **spark)
    need = sum(parts.values())
    if need <= limit:
        return need
    supp, length = _fitting_settings(enc, min_support, max_len, engine, max_itemsets, limit, **spark)
    hints = []
    if supp:
        hints.append(f"raise min_support (min_support={supp[0]:g} needs about {supp[1] / 1e9:.2g} GB)")
    if length:
        hints.append(f"lower max_len (max_len={length[0]} needs about {length[1] / 1e9:.2g} GB)")
    if engine == "mlxtend" and _import_fim() is not None:
        fim_need = sum(_estimate_parts(enc.sizes, len(enc.items), enc.min_count, max_len, enc.n_rows, "fim",
                                       max_itemsets).values())
        hints.append(f"use engine='fim' (about {fim_need / 1e9:.2g} GB)")
    if not hints:
        hints.append("raise min_support or lower max_len")
    lim = f"max_memory_gb=None, i.e. {DEFAULT_MEMORY_SHARE:.0%} of the memory available now" \
        if max_memory_gb is None else f"max_memory_gb={max_memory_gb:g}"
    detail = ", ".join(f"{k} {v / 1e9:.2g} GB" for k, v in parts.items())
    err = AnalysisError(
        f"Mining would need about {need / 1e9:.2g} GB with engine='{engine}' ({detail}) for "
        f"{len(enc.items):,} frequent items in {enc.n_baskets:,} baskets at min_support={min_support:g}, "
        f"max_len={max_len}; the limit is {limit / 1e9:.2g} GB ({lim}). To go on, "
        + " or ".join(hints) + "; or raise max_memory_gb if the machine has the memory.")
    err.needed_gb = need / 1e9
    err.limit_gb = limit / 1e9
    err.suggested_min_support = supp[0] if supp else None
    err.suggested_max_len = length[0] if length else None
    raise err


# ---------------------------------------------------------------------------------------------
# mining engines
# ---------------------------------------------------------------------------------------------

class _TooMany(Exception):
    def __init__(self, count: int, exact: bool):
        super().__init__(count)
        self.count = int(count)
        self.exact = exact


def _import_fim() -> Any:
    try:
        import fim  # pyfim: Christian Borgelt's C library (arules' apriori and eclat come from it)
    except ImportError:
        return None
    return fim


def _spark_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyspark") is not None


def available_engines() -> list[str]:
    """Mining engines that can run in this environment (``'mlxtend'`` always)."""
    out = ["mlxtend"]
    if _import_fim() is not None:
        out.append("fim")
    if _spark_importable():
        out.append("spark")
    return out


def resolve_engine(engine: str = "auto", spark_master: str | None = None) -> str:
    """The engine a mining call with these arguments runs.

    ``'auto'`` is ``'spark'`` when a ``spark_master`` is given, else ``'fim'`` when pyfim is
    importable, else ``'mlxtend'``. An explicit engine that is not installed raises
    :class:`~ecrm_research.exceptions.ParameterError` with the install line.
    """
    if engine not in ENGINES:
        raise ParameterError(f"engine={engine!r}; use one of {list(ENGINES)} ('auto' picks the fastest installed).",
                             allowed=list(ENGINES))
    if engine == "auto":
        if spark_master:
            engine = "spark"
        else:
            return "fim" if _import_fim() is not None else "mlxtend"
    if engine == "fim" and _import_fim() is None:
        raise ParameterError("engine='fim' needs pyfim (Borgelt's C FP-growth): `pip install pyfim` (it compiles; "
                             "a C compiler is needed). Or use engine='mlxtend' (slower, pure Python).",
                             allowed=available_engines())
    if engine == "spark" and not _spark_importable():
        raise ParameterError("engine='spark' needs pyspark and Java 17+: `pip install pyspark`. Or use engine='fim' "
                             "or 'mlxtend' on one machine.", allowed=available_engines())
    if spark_master and engine != "spark":
        warnings.warn(f"spark_master={spark_master!r} is ignored with engine={engine!r}.", stacklevel=3)
    return engine


def _fim_tracts(enc: _Encoded) -> dict[tuple[int, ...], int]:
    """pyfim's input: the distinct baskets with two or more frequent items and how often each occurs.

    Baskets with fewer than two frequent items cannot hold a 2-itemset (single items are counted
    by the encoding), so they are not handed over. pyfim takes a dictionary {transaction:
    multiplicity}; baskets reduced to their frequent items repeat a lot (a few dozen frequent
    items), so this is a fraction of a list of every basket, and identical counts. Transactions
    of one size are sorted and counted as one (n, k) array (``np.unique(axis=0)``).
    """
    sizes = enc.sizes
    starts = enc.indptr[:-1]
    K = max(len(enc.items), 2)
    tracts: dict[tuple[int, ...], int] = {}
    for k in np.unique(sizes[sizes >= 2]).tolist():
        mat = enc.indices[starts[sizes == k][:, None] + np.arange(k)]
        mat.sort(axis=1)
        if k * math.log2(K) < 62:  # one int64 per transaction (base K digits): a fast 1-D unique
            key = mat[:, 0].astype(np.int64)
            for j in range(1, k):
                key *= K
                key += mat[:, j]
            key, mult = np.unique(key, return_counts=True)
            uniq = np.empty((len(key), k), dtype=np.int64)
            for j in range(k - 1, -1, -1):
                key, uniq[:, j] = np.divmod(key, K)
        else:
            uniq, mult = np.unique(mat, axis=0, return_counts=True)
        tracts.update(zip(map(tuple, uniq.tolist()), mult.tolist()))
    # pyfim 6.28 leaves out every itemset made only of items that are in *all* transactions (they
    # are perfect extensions of the empty set, which it does not report): fim.fpgrowth([[0, 1],
    # [0, 1]], supp=-2) is []. One empty transaction changes no count and avoids that.
    tracts[()] = 1
    return tracts


def _fim_args(enc: _Encoded, max_len: int | None) -> dict[str, Any]:
    kw: dict[str, Any] = {"target": "s", "supp": -int(enc.min_count), "zmin": 2}
    if max_len is not None:
        kw["zmax"] = int(max_len)
    return kw


def _fim_count(tracts: dict[tuple[int, ...], int], enc: _Encoded, max_len: int | None) -> int:
    """Number of frequent itemsets of 2..max_len items, counted by pyfim without storing them.

    ``report='#'`` returns the pattern spectrum (itemsets per size and support) instead of the
    itemsets, so memory stays flat however many there are.
    """
    spectrum = _import_fim().fpgrowth(tracts, report="#", **_fim_args(enc, max_len))
    return int(round(sum(spectrum.values()))) if spectrum else 0


def _fim_itemsets(tracts: dict[tuple[int, ...], int], enc: _Encoded,
                  max_len: int | None) -> tuple[list[tuple[int, ...]], list[int]]:
    """Itemsets of 2..max_len items with pyfim's FP-growth: ``(codes, counts)``.

    ``fim.fpgrowth(tracts, target='s', supp=-c, zmin=2, zmax=L, report='a')``: a negative ``supp``
    is an absolute count, and pyfim keeps sets with count >= c (inclusive, as arules).
    """
    res = _import_fim().fpgrowth(tracts, report="a", **_fim_args(enc, max_len))
    if not res:
        return [], []
    sets, counts = zip(*res)
    return list(sets), list(counts)


def _mlxtend_fpgrowth(enc: _Encoded, max_len: int | None, limit: int | None,
                      stages: Stages) -> tuple[list[tuple[int, ...]], list[int]]:
    """The single call site of mlxtend's FP-growth: itemsets of 2..max_len items, ``(codes, counts)``.

    mlxtend's public ``fpgrowth(df, ...)`` sums ``df.values`` to count items, which turns a sparse
    frame into a dense baskets x items array (GBs at a million baskets). So the FP-tree is built
    here from the integer-coded baskets with mlxtend's own ``fpcommon.FPTree`` (items inserted by
    decreasing support, as ``setup_fptree`` does) and mined with ``fpgrowth.fpg_step`` (both stable
    since mlxtend 0.17). Itemsets are drawn from that generator; with ``limit``, :class:`_TooMany`
    stops mining once more than ``limit`` itemsets appeared. Only baskets with two or more frequent
    items are inserted, so the tree's single-item counts are not used (the encoding has them).
    """
    import importlib

    try:
        fpc = importlib.import_module("mlxtend.frequent_patterns.fpcommon")
        fpg = importlib.import_module("mlxtend.frequent_patterns.fpgrowth")  # the module, not the function
        FPTree, step = fpc.FPTree, fpg.fpg_step
    except (ImportError, AttributeError):  # pragma: no cover - a future mlxtend
        return _mlxtend_fpgrowth_public(enc, max_len, limit)
    K = len(enc.items)
    # rank: 0 = least frequent; baskets are inserted most frequent item first
    rank = np.empty(K, dtype=np.int64)
    rank[np.argsort(enc.counts, kind="stable")] = np.arange(K)
    sizes = enc.sizes
    rows = np.repeat(np.arange(enc.n_baskets, dtype=np.int64), sizes)
    order = np.lexsort((-rank[enc.indices], rows))
    tracts = _tracts(enc.indptr, enc.indices[order], 2)
    stages.note(baskets=len(tracts), engine="mlxtend")
    tree = FPTree({int(j): int(rank[j]) for j in range(K)})
    for t in tracts:
        tree.insert_itemset(t)
    del tracts
    sets: list[tuple[int, ...]] = []
    counts: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for sup, iset in step(tree, int(enc.min_count), None, max_len, 0):
            if len(iset) < 2:
                continue
            sets.append(tuple(iset))
            counts.append(int(sup))
            if len(sets) % 20000 == 0:
                stages.note(itemsets=len(sets), engine="mlxtend")
            if limit is not None and len(sets) > limit:
                raise _TooMany(len(sets), exact=False)
    return sets, counts


def _mlxtend_fpgrowth_public(enc: _Encoded, max_len: int | None,
                             limit: int | None) -> tuple[list[tuple[int, ...]], list[int]]:  # pragma: no cover
    """Fallback through mlxtend's public ``fpgrowth`` (dense item counting; used only if its internals move)."""
    from mlxtend.frequent_patterns import fpgrowth

    K, n = len(enc.items), enc.n_baskets
    if float(n) * K > _memory_limit_bytes(None):
        raise AnalysisError(f"mlxtend's fpgrowth would build a dense {n:,} x {K:,} array; use engine='fim'.")
    X = sparse.csr_matrix((np.ones(len(enc.indices), dtype=bool), enc.indices, enc.indptr), shape=(n, K))
    onehot = _sparse_frame(X, [str(j) for j in range(K)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fi = fpgrowth(onehot, min_support=(enc.min_count - 0.5) / n, use_colnames=False, max_len=max_len)
    fi = fi[fi["itemsets"].map(len) >= 2]
    if limit is not None and len(fi) > limit:
        raise _TooMany(len(fi), exact=True)
    return [tuple(int(i) for i in s) for s in fi["itemsets"]], np.rint(fi["support"] * n).astype(int).tolist()


def _spark_itemsets(enc: _Encoded, max_len: int | None, limit: int | None, stages: Stages,
                    master: str | None, conf: Mapping[str, str] | None) -> tuple[list[tuple[int, ...]], list[int]]:
    """Itemsets of 2..max_len items with ``pyspark.ml.fpm.FPGrowth`` (PFP): ``(codes, counts)``.

    Baskets with two or more frequent items go to Spark as (basket, item) integer pairs through
    Arrow and are grouped there. Spark's ``minSupport`` is a fraction of *its* rows and keeps
    itemsets with ``freq >= ceil(minSupport * rows)``; passing (c − ½)/rows makes that exactly c.
    Spark has no maximum itemset size, so longer itemsets are dropped in Spark before anything is
    collected; the itemsets are counted in the cluster first (``limit``) and only then collected.
    Spark's own ``associationRules`` are not used: rules come from the counts, as for every engine.
    """
    from pyspark.ml.fpm import FPGrowth
    from pyspark.sql import functions as F

    sizes = enc.sizes
    multi = sizes >= 2
    n_rows = int(multi.sum())
    if n_rows < enc.min_count:
        return [], []
    stages.note(engine="spark", step="starting session")
    spark = get_session(master, conf)
    rows = np.repeat(np.arange(enc.n_baskets, dtype=np.int64), sizes)
    keep = multi[rows]
    pairs = pd.DataFrame({"b": rows[keep], "i": enc.indices[keep]})
    del rows, keep
    stages.note(engine="spark", baskets=n_rows, step="fit")
    tx = spark.createDataFrame(pairs).groupBy("b").agg(F.collect_list("i").alias("items"))
    del pairs
    fp = FPGrowth(itemsCol="items", minSupport=(enc.min_count - 0.5) / n_rows, minConfidence=1.0)
    model = fp.fit(tx)
    fi = model.freqItemsets.where(F.size("items") >= 2)
    if max_len is not None:
        fi = fi.where(F.size("items") <= int(max_len))
    fi = fi.persist()
    try:
        if limit is not None:
            total = fi.count()
            if total > limit:
                raise _TooMany(total, exact=True)
        stages.note(engine="spark", step="collect")
        got = fi.toPandas()
    finally:
        fi.unpersist()
    sets = [tuple(int(i) for i in s) for s in got["items"]]
    counts = [int(c) for c in got["freq"]]
    low = [c for c in counts if c < enc.min_count]
    if low:  # pragma: no cover - would mean Spark changed its threshold rule
        raise AnalysisError(f"Spark FPGrowth returned {len(low)} itemsets below the minimum count {enc.min_count} "
                            f"(lowest {min(low)}); its minSupport rounding changed. Use engine='fim'.")
    return sets, counts


# ---------------------------------------------------------------------------------------------
# frequent itemsets
# ---------------------------------------------------------------------------------------------

def frequent_itemsets(baskets: pd.DataFrame | Sequence[Iterable[str]], min_support: float,
                      max_len: int | None = DEFAULT_MAX_LEN, *,
                      max_itemsets: int = DEFAULT_MAX_ITEMSETS, engine: str = "auto",
                      spark_master: str | None = None, spark_conf: Mapping[str, str] | None = None,
                      max_memory_gb: float | None = None, progress: bool = False) -> pd.DataFrame:
    """Frequent itemsets with FP-growth, on the engine of your choice; identical results on each.

    Parameters
    ----------
    baskets : DataFrame or list of lists
        Long basket table (``basket_id``, ``item``) or list of baskets.
    min_support : float
        Minimum share of baskets; an itemset is frequent when
        ``count >= ceil(min_support * n_baskets)`` (inclusive, as in arules).
    max_len : int or None
        Largest itemset size (arules' ``maxlen``, default 10). None = no limit.
    max_itemsets : int
        Guard: more itemsets than this raise an
        :class:`~ecrm_research.exceptions.AnalysisError` that says which threshold to raise.
    engine : {'auto', 'mlxtend', 'fim', 'spark'}
        ``'fim'``: Christian Borgelt's C FP-growth (``pyfim``; arules' apriori and eclat come from
        the same library; fastest, optional install). ``'mlxtend'``: mlxtend's pure-Python FP-growth (the reference; slow at
        scale). ``'spark'``: ``pyspark.ml.fpm.FPGrowth`` on ``spark_master`` (optional install,
        Java 17+). ``'auto'`` (default): spark when ``spark_master`` is given, else fim when
        importable, else mlxtend (see :func:`resolve_engine`).
    spark_master : str, optional
        Spark master URL for ``engine='spark'`` (default ``'local[2]'``; e.g.
        ``'spark://host:7077'`` or ``'yarn'``).
    spark_conf : mapping, optional
        Extra Spark settings for the session this module starts (over :data:`SPARK_DEFAULTS`,
        e.g. ``{"spark.driver.memory": "8g"}``).
    max_memory_gb : float, optional
        Memory this call may plan to use. Before mining, the need is estimated from the encoded
        baskets (:func:`estimate_mining_memory`); above the limit an AnalysisError suggests a
        ``min_support`` or ``max_len`` that fits. None (default): 80% of the memory available.
    progress : bool
        Show a stage-level tqdm progress bar on stderr (encode → mine → label).

    Returns
    -------
    DataFrame
        ``itemsets`` (frozenset), ``support``, ``count``, ``length``; sorted by length, then by
        decreasing count, then by the sorted item labels (the same order for every engine).
        ``attrs``: ``n_transactions``, ``min_count``, ``n_items``, ``engine``, ``timings`` (seconds
        per stage), ``memory_estimate_gb``.

    Raises
    ------
    AnalysisError
        No item reaches ``min_support`` (the message gives the largest item support and a
        threshold that would work), the estimated memory is above ``max_memory_gb``, or there
        are more than ``max_itemsets`` itemsets.
    ParameterError
        Bad thresholds, an unknown engine, or an engine that is not installed.

    Notes
    -----
    support(X) = |{baskets ⊇ X}| / n. Every engine gets the same integer-coded baskets: items
    below ``min_support`` are dropped before encoding (they cannot be in a frequent itemset), and
    only baskets with two or more frequent items are mined; single items are counted by the
    encoding. Only counts come back from an engine, so thresholds are exact integers and every
    measure derived from them is identical across engines.

    Guard on the itemset count: the upper bound of :func:`estimate_itemset_count` is computed first;
    when it is above ``max_itemsets`` (the bound is loose when a few baskets are large) the
    engine counts before it stores: pyfim counts without storing (its pattern spectrum), Spark
    counts in the cluster, mlxtend's generator stops once ``max_itemsets`` is exceeded.
    """
    b = check_long_baskets(baskets)
    eng = resolve_engine(engine, spark_master)
    stages = Stages(progress, total=3, desc=f"frequent itemsets ({eng})")
    try:
        return _frequent_itemsets(b, min_support, max_len, max_itemsets, eng, spark_master, spark_conf,
                                  max_memory_gb, stages)
    finally:
        stages.close()


def _frequent_itemsets(b: pd.DataFrame, min_support: float, max_len: int | None, max_itemsets: int, engine: str,
                       spark_master: str | None, spark_conf: Mapping[str, str] | None,
                       max_memory_gb: float | None, stages: Stages) -> pd.DataFrame:
    if max_len is not None and int(max_len) < 1:
        raise ParameterError(f"max_len={max_len!r} must be >= 1 (items per itemset; a rule needs 2).")
    _min_count(min_support, 1)  # validates the range before any work
    limit_bytes = _memory_limit_bytes(max_memory_gb)
    stages.stage("encode baskets")
    enc = _encode(b, min_support)
    n, min_count = enc.n_baskets, enc.min_count
    if n == 0:
        raise AnalysisError("No baskets: the basket table is empty. Check the data and the filters in step 2.")
    if len(enc.items) == 0:
        _raise_nothing_frequent(b, n, min_support, min_count)
    K = len(enc.items)
    L = None if max_len is None else int(max_len)
    bound = estimate_itemset_count(enc.sizes, K, min_count, L)
    guard = bound > max_itemsets  # the bound says the guard may trip: count before storing
    capped = min(bound, max_itemsets + 1)
    if K > max_itemsets:
        raise _too_many(K, max_itemsets, min_support, max_len, n, K, exact=True)
    mem = {"min_support": min_support, "max_len": L, "engine": engine, "max_itemsets": max_itemsets,
           "limit": limit_bytes, "max_memory_gb": max_memory_gb, "spark_master": spark_master,
           "spark_conf": spark_conf}
    mining = (L is None or L >= 2) and bool((enc.sizes >= 2).any())

    stages.stage(f"mine itemsets ({engine})")
    sets: list[tuple[int, ...]] = []
    counts: list[int] = []
    if not mining:
        need = _check_memory(enc, n_sets=K, **mem)
    elif engine == "fim":
        # pyfim returns everything at once: check the input first, then, if the itemsets may be
        # many (or too big for memory by the bound), count them exactly without storing them
        _check_memory(enc, n_sets=K, **mem)
        with _gc_paused():
            tracts = _fim_tracts(enc)
            n_tracts = int((enc.sizes >= 2).sum())
            stages.note(baskets=n_tracts, distinct=len(tracts) - 1)
            n_sets = None
            by_bound = _estimate_parts(enc.sizes, K, min_count, L, enc.n_rows, engine, max_itemsets, n_sets=capped)
            if guard or sum(by_bound.values()) > limit_bytes:
                stages.note(baskets=n_tracts, step="counting")
                n_sets = _fim_count(tracts, enc, L) + K
                if n_sets > max_itemsets:
                    raise _too_many(n_sets, max_itemsets, min_support, max_len, n, K, exact=True)
            need = _check_memory(enc, n_sets=n_sets, **mem)
            stages.note(baskets=n_tracts, step="mining")
            sets, counts = _fim_itemsets(tracts, enc, L)
            del tracts
    else:
        need = _check_memory(enc, n_sets=capped, **mem)
        limit = max_itemsets - K if guard else None
        try:
            if engine == "spark":
                sets, counts = _spark_itemsets(enc, L, limit, stages, spark_master, spark_conf)
            else:
                with _gc_paused():
                    sets, counts = _mlxtend_fpgrowth(enc, L, limit, stages)
        except _TooMany as exc:
            raise _too_many(exc.count + K if exc.exact else bound, max_itemsets, min_support, max_len, n, K,
                            exact=exc.exact) from None
    if len(sets) + K > max_itemsets:  # counted exactly after the fact (the bound did not trip the guard)
        raise _too_many(len(sets) + K, max_itemsets, min_support, max_len, n, K, exact=True)

    stages.stage("label itemsets")
    with _gc_paused():
        out = _itemset_frame(enc, sets, counts, L)
    stages.end()  # the label stage's time goes into the timings below
    out.attrs.update(n_transactions=n, min_count=min_count, n_items=enc.n_items, engine=engine,
                     memory_estimate_gb=need / 1e9)
    out.attrs["timings"] = dict(stages.timings)
    return out


def _itemset_frame(enc: _Encoded, sets: list[tuple[int, ...]], counts: list[int], max_len: int | None) -> pd.DataFrame:
    """Itemsets table: frequent single items (from the encoding) plus the engine's larger itemsets.

    Itemsets of one size are handled as one (n, k) integer array: sorted within rows, filtered
    (count >= min_count, defensive), ordered, and labelled with numpy fancy indexing. The order is
    the same for every engine: length, decreasing count, then the item codes (which follow the
    labels' order as strings).
    """
    K = len(enc.items)
    labels = enc.items
    cnt_all = np.asarray(counts, dtype=np.int64)
    lens = np.fromiter(map(len, sets), dtype=np.int64, count=len(sets))
    blocks = [(np.arange(K, dtype=np.int64)[:, None], enc.counts)]
    top = int(lens.max()) if len(lens) else 1
    if max_len is not None:
        top = min(top, int(max_len))
    for k in range(2, top + 1):
        idx = np.flatnonzero(lens == k)
        if len(idx) == 0:
            continue
        mat = np.array([sets[i] for i in idx], dtype=np.int64).reshape(len(idx), k)
        mat.sort(axis=1)
        blocks.append((mat, cnt_all[idx]))
    itemsets: list[frozenset] = []
    cnt_out, len_out = [], []
    for mat, cnt in blocks:
        keep = cnt >= enc.min_count
        mat, cnt = mat[keep], cnt[keep]
        order = np.lexsort(tuple(mat[:, j] for j in range(mat.shape[1] - 1, -1, -1)) + (-cnt,))
        mat, cnt = mat[order], cnt[order]
        itemsets.extend(map(frozenset, labels[mat].tolist()))
        cnt_out.append(cnt)
        len_out.append(np.full(len(cnt), mat.shape[1], dtype=np.int64))
    col = np.empty(len(itemsets), dtype=object)
    col[:] = itemsets
    out = pd.DataFrame({"itemsets": col})
    out["count"] = np.concatenate(cnt_out)
    out["support"] = out["count"] / enc.n_baskets
    out["length"] = np.concatenate(len_out)
    return out[["itemsets", "support", "count", "length"]]


def _raise_nothing_frequent(b: pd.DataFrame, n: int, min_support: float, min_count: int) -> None:
    full = _encode(b, min_count=1)
    if len(full.items) == 0:
        raise AnalysisError(f"No items: all {n:,} baskets are empty. Check the data and the filters in step 2.")
    j = int(np.argmax(full.counts))
    top, name = int(full.counts[j]), full.items[j]
    suggest = _nice_floor(top / n)
    raise AnalysisError(
        f"No item reaches min_support={min_support:g} (needs {min_count:,} of {n:,} baskets). The most frequent "
        f"item, {name!r}, is in {top:,} baskets (support {top / n:.4g}). Lower min_support to at most "
        f"{suggest:g}, e.g. min_support={_nice_floor(top / n / 5):g}.")


def _mlxtend_association_rules(itemsets: pd.DataFrame, n_transactions: int, min_confidence: float) -> pd.DataFrame:
    """The single call site of mlxtend's ``association_rules``.

    mlxtend >= 0.23.2 needs ``num_itemsets`` (the number of transactions); older versions do
    not accept it. Thresholds are inclusive in every version.
    """
    from mlxtend.frequent_patterns import association_rules as _ar

    kwargs: dict[str, Any] = {"metric": "confidence", "min_threshold": min_confidence}
    if "num_itemsets" in inspect.signature(_ar).parameters:
        kwargs["num_itemsets"] = n_transactions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _ar(itemsets[["support", "itemsets"]], **kwargs)


def _nice_floor(x: float) -> float:
    """Round x down to 1 or 2 significant digits (for suggested thresholds)."""
    if x <= 0:
        return 0.0
    e = math.floor(math.log10(x))
    return math.floor(x / 10 ** (e - 1)) * 10 ** (e - 1) if x / 10 ** e < 2 else math.floor(x / 10 ** e) * 10 ** e


def _too_many(projected: float, limit: int, min_support: float, max_len: int | None, n: int,
              m: int, *, exact: bool = False) -> AnalysisError:
    lower = "" if max_len is None or max_len <= 2 else f" or lower max_len (now {max_len}, e.g. max_len={max(2, min(4, max_len - 1))})"
    nolen = " or set max_len (e.g. max_len=4)" if max_len is None else ""
    found = (f"there are {int(projected):,} frequent itemsets, more than max_itemsets={limit:,} (a memory guard)"
             if exact else
             f"mining found more than max_itemsets={limit:,} itemsets (a memory guard) and stopped; the projection "
             f"from the frequent-item counts per basket is up to {int(projected):,}")
    err = AnalysisError(
        f"Too many frequent itemsets: at min_support={min_support:g} ({m:,} frequent items in {n:,} baskets) "
        f"{found}. Raise min_support (e.g. "
        f"min_support={_nice_floor(min_support * 2):g}){lower}{nolen}, or raise max_itemsets if you have the memory.")
    err.projected = int(projected)
    err.limit = int(limit)
    return err


def synthetic_baskets(n_baskets: int, n_items: int = 10_000, mean_size: float = 4.0, *,
                      zipf_exponent: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Random baskets with Zipf item popularity, for benchmarks and scale tests.

    Basket sizes are 1 + Poisson(mean_size − 1); items are drawn with probability ∝ 1/rank^s
    (``s = zipf_exponent``); an item drawn twice in a basket counts once, so baskets hold
    slightly fewer than ``mean_size`` distinct items on average.

    Returns
    -------
    DataFrame
        Long basket table: ``basket_id`` (int64, sorted), ``item`` (str such as ``'i00042'``,
        object dtype, as read from a CSV).
    """
    rng = np.random.default_rng(seed)
    sizes = 1 + rng.poisson(max(mean_size - 1.0, 0.0), int(n_baskets))
    p = 1.0 / np.arange(1, n_items + 1, dtype=float) ** zipf_exponent
    p /= p.sum()
    codes = rng.choice(n_items, size=int(sizes.sum()), p=p)
    bid = np.repeat(np.arange(int(n_baskets), dtype=np.int64), sizes)
    key = np.unique(bid * n_items + codes)  # distinct items per basket, sorted by basket
    width = len(str(n_items - 1))
    labels = np.array([f"i{i:0{width}d}" for i in range(n_items)], dtype=object)
    return pd.DataFrame({"basket_id": key // n_items, "item": labels[key % n_items]})

# ---------------------------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------------------------

def _add_metrics(df: pd.DataFrame, n: int) -> pd.DataFrame:
    """Fill the interest measures from integer counts ``count, antecedent_count, consequent_count``."""
    c_ac = df["count"].to_numpy(dtype=float)
    c_a = df["antecedent_count"].to_numpy(dtype=float)
    c_c = df["consequent_count"].to_numpy(dtype=float)
    s_ac, s_a, s_c = c_ac / n, c_a / n, c_c / n
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(c_a > 0, c_ac / c_a, np.nan)
        lift = conf / s_c
        lev = s_ac - s_a * s_c
        conv = np.where(conf >= 1 - _EPS, np.inf, (1 - s_c) / (1 - conf))
        denom = np.maximum(s_ac * (1 - s_a), s_a * (s_c - s_ac))
        zhang = np.where(denom > 0, lev / denom, np.nan)
    df["support"] = s_ac
    df["confidence"] = conf
    df["lift"] = lift
    df["leverage"] = lev
    df["conviction"] = conv
    df["zhangs_metric"] = zhang
    df["antecedent_support"] = s_a
    df["consequent_support"] = s_c
    return df


def association_rules(itemsets: pd.DataFrame, n_transactions: int | None = None, min_confidence: float = 0.8, *,
                      min_lift: float | None = None, semantics: str = "arules") -> pd.DataFrame:
    """Association rules X ⇒ Y from frequent itemsets, with their interest measures.

    Parameters
    ----------
    itemsets : DataFrame
        Output of :func:`frequent_itemsets` (``itemsets``, ``support``, ``count``).
    n_transactions : int, optional
        Number of baskets (default: ``itemsets.attrs['n_transactions']``).
    min_confidence : float
        Keep rules with ``confidence >= min_confidence`` (inclusive).
    min_lift : float, optional
        Also require ``lift >= min_lift``.
    semantics : {'arules', 'mlxtend'}
        ``'arules'`` (default): one-item consequents, as R's ``apriori``. ``'mlxtend'``:
        consequents of any size, via :func:`mlxtend.frequent_patterns.association_rules`.

    Returns
    -------
    DataFrame
        :data:`RULE_COLUMNS` (``antecedents``, ``consequents`` as frozensets, ``support``,
        ``confidence``, ``lift``, ``leverage``, ``conviction``, ``zhangs_metric``, ``count``)
        then ``antecedent_support``, ``consequent_support``, ``antecedent_count``,
        ``consequent_count``, ``length`` (items in the rule). Sorted by decreasing lift, then
        confidence, then support. Empty (with these columns) when no rule passes.

    Notes
    -----
    With s(·) the share of baskets containing an itemset, and n baskets:

    * support(X⇒Y) = s(X∪Y); count = n·s(X∪Y)
    * confidence = s(X∪Y) / s(X)
    * lift = confidence / s(Y)  (1 = independence)
    * leverage = s(X∪Y) − s(X)·s(Y)
    * conviction = (1 − s(Y)) / (1 − confidence)  (∞ when confidence = 1)
    * Zhang's metric = leverage / max(s(X∪Y)(1 − s(X)), s(X)(s(Y) − s(X∪Y))), in [−1, 1]

    All measures are computed from integer counts, so confidence thresholds are exact.
    """
    if semantics not in ("arules", "mlxtend"):
        raise ParameterError(f"semantics={semantics!r}; use 'arules' or 'mlxtend'.", allowed=["arules", "mlxtend"])
    if not (0 <= float(min_confidence) <= 1):
        raise ParameterError(f"min_confidence={min_confidence!r} must be in [0, 1].")
    n = int(n_transactions if n_transactions is not None else itemsets.attrs.get("n_transactions", 0))
    if n <= 0:
        raise ParameterError("association_rules: pass n_transactions (the number of baskets).")
    counts: dict[frozenset, int] = dict(zip(itemsets["itemsets"], itemsets["count"].astype("int64")))
    if semantics == "arules":
        ants: list[frozenset] = []
        cons: list[frozenset] = []
        c_ac: list[int] = []
        c_a: list[int] = []
        c_c: list[int] = []
        thr = float(min_confidence) - _EPS
        for s, c in counts.items():
            if len(s) < 2:
                continue
            for y in s:
                a = s - {y}
                ca = counts[a]
                if c / ca >= thr:
                    ants.append(a)
                    cons.append(frozenset((y,)))
                    c_ac.append(c)
                    c_a.append(ca)
                    c_c.append(counts[frozenset((y,))])
        df = pd.DataFrame({"antecedents": pd.Series(ants, dtype=object), "consequents": pd.Series(cons, dtype=object),
                           "count": np.asarray(c_ac, dtype="int64"), "antecedent_count": np.asarray(c_a, dtype="int64"),
                           "consequent_count": np.asarray(c_c, dtype="int64")})
    else:
        if not any(len(s) >= 2 for s in counts):
            df = pd.DataFrame({"antecedents": pd.Series([], dtype=object), "consequents": pd.Series([], dtype=object),
                               "count": [], "antecedent_count": [], "consequent_count": []})
        else:
            raw = _mlxtend_association_rules(itemsets, n, float(min_confidence))
            df = pd.DataFrame({"antecedents": raw["antecedents"].to_numpy(), "consequents": raw["consequents"].to_numpy()})
            df["count"] = [counts[a | c] for a, c in zip(df["antecedents"], df["consequents"])]
            df["antecedent_count"] = [counts[a] for a in df["antecedents"]]
            df["consequent_count"] = [counts[c] for c in df["consequents"]]
            df = df[df["count"] / df["antecedent_count"] >= float(min_confidence) - _EPS]
        for c in ("count", "antecedent_count", "consequent_count"):
            df[c] = df[c].astype("int64")
    df = _add_metrics(df, n)
    if min_lift is not None:
        df = df[df["lift"] >= float(min_lift) - _EPS]
    df["length"] = (df["antecedents"].map(len) + df["consequents"].map(len)).astype("int64")
    cols = RULE_COLUMNS + ["antecedent_support", "consequent_support", "antecedent_count", "consequent_count", "length"]
    df = df[cols]
    key = df["antecedents"].map(_set_key) + " => " + df["consequents"].map(_set_key)
    df = df.assign(_key=key).sort_values(["lift", "confidence", "support", "_key"],
                                         ascending=[False, False, False, True], kind="stable")
    df = df.drop(columns="_key").reset_index(drop=True)
    df.attrs["n_transactions"] = n
    return df


def _set_key(s: Iterable) -> str:
    return "{" + ", ".join(sorted(map(str, s))) + "}"


@dataclass
class RuleMiningResult:
    """Frequent itemsets and rules of one mining run.

    Attributes
    ----------
    itemsets : DataFrame
        See :func:`frequent_itemsets`.
    rules : DataFrame
        See :func:`association_rules` (redundant rules removed when ``prune=True``).
    n_transactions : int
    params : dict
        The thresholds used.
    summary : DataFrame
        Tidy ``measure, value`` table (baskets, items, itemsets by size, rules by length...).
    seconds : float
        Wall time of itemset + rule mining (including the encoding of the baskets).
    engine : str
        The mining engine that ran (``'fim'``, ``'mlxtend'`` or ``'spark'``).
    timings : dict
        Seconds per stage (encode baskets, mine itemsets, label itemsets, derive rules, ...).
    """

    itemsets: pd.DataFrame
    rules: pd.DataFrame
    n_transactions: int
    params: dict
    summary: pd.DataFrame
    seconds: float = 0.0
    engine: str = ""
    timings: dict = field(default_factory=dict)

    def rule_lengths(self) -> pd.Series:
        """Number of rules per rule length (antecedent + consequent items), as arules' summary."""
        return self.rules["length"].value_counts().sort_index()


def mine_rules(baskets: pd.DataFrame | Sequence[Iterable[str]], min_support: float = 0.01,
               min_confidence: float = 0.5, max_len: int | None = DEFAULT_MAX_LEN, *,
               min_lift: float | None = None, prune: bool = False, fisher: bool = False,
               p_adjust: str = "holm", semantics: str = "arules",
               max_itemsets: int = DEFAULT_MAX_ITEMSETS, engine: str = "auto",
               spark_master: str | None = None, spark_conf: Mapping[str, str] | None = None,
               max_memory_gb: float | None = None, progress: bool = False) -> RuleMiningResult:
    """Mine frequent itemsets and association rules in one call.

    Parameters
    ----------
    baskets : DataFrame or list of lists
        Long basket table or list of baskets.
    min_support, min_confidence, max_len :
        arules' ``supp``, ``conf`` and ``maxlen`` (see :func:`frequent_itemsets`,
        :func:`association_rules`).
    min_lift : float, optional
        Extra lift threshold.
    prune : bool
        Drop redundant rules (:func:`is_redundant`).
    fisher : bool
        Add one-sided Fisher exact test p-values (:func:`fisher_test`).
    p_adjust : str
        Multiple-testing correction for ``fisher`` (statsmodels ``multipletests`` method).
    semantics : {'arules', 'mlxtend'}
    max_itemsets : int
        Guard on the number of itemsets, see :func:`frequent_itemsets`.
    engine, spark_master, spark_conf, max_memory_gb :
        Mining engine and memory guard, see :func:`frequent_itemsets`. The rules do not depend
        on the engine: they are derived from the itemset counts by :func:`association_rules`.
    progress : bool
        Stage-level tqdm progress bar on stderr.

    Examples
    --------
    R: ``apriori(Groceries, parameter = list(supp = 0.001, conf = 0.8))`` gives 410 rules;
    ``mine_rules(groceries, 0.001, 0.8)`` gives the same 410 with every engine.
    """
    import time

    t0 = time.perf_counter()
    b = check_long_baskets(baskets)
    eng = resolve_engine(engine, spark_master)
    stages = Stages(progress, total=4 + bool(prune) + bool(fisher), desc=f"association rules ({eng})")
    try:
        fi = _frequent_itemsets(b, min_support, max_len, max_itemsets, eng, spark_master, spark_conf,
                                max_memory_gb, stages)
        n = int(fi.attrs["n_transactions"])
        stages.stage("derive rules")
        rules = association_rules(fi, n, min_confidence, min_lift=min_lift, semantics=semantics)
        n_all = len(rules)
        if prune:
            stages.stage("prune redundant rules")
            if len(rules):
                rules = rules[~is_redundant(rules)].reset_index(drop=True)
        if fisher:
            stages.stage("Fisher tests")
            rules = fisher_test(rules, n, method=p_adjust)
    finally:
        stages.close()
    rules.attrs["n_transactions"] = n
    secs = time.perf_counter() - t0
    rows = [("baskets", n), ("items", int(fi.attrs["n_items"])),
            ("frequent items", int((fi["length"] == 1).sum())),
            ("frequent itemsets", len(fi)), ("min_support count", int(fi.attrs["min_count"])),
            ("rules", n_all)]
    if prune:
        rows.append(("non-redundant rules", len(rules)))
    for k, v in fi["length"].value_counts().sort_index().items():
        rows.append((f"itemsets of size {k}", int(v)))
    for k, v in rules["length"].value_counts().sort_index().items():
        rows.append((f"rules of length {k}", int(v)))
    summary = pd.DataFrame(rows, columns=["measure", "value"])
    params = {"min_support": min_support, "min_confidence": min_confidence, "max_len": max_len,
              "min_lift": min_lift, "prune": prune, "semantics": semantics, "engine": eng,
              "spark_master": spark_master if eng == "spark" else None}
    return RuleMiningResult(itemsets=fi, rules=rules, n_transactions=n, params=params, summary=summary, seconds=secs,
                            engine=eng, timings=dict(stages.timings))


def is_redundant(rules: pd.DataFrame, measure: str = "confidence") -> pd.Series:
    """Flag redundant rules, as arules' ``is.redundant`` (improvement <= 0).

    A rule X ⇒ Y is redundant when a more general rule in ``rules`` with the same consequent,
    X' ⇒ Y with X' a proper subset of X, has at least the same ``measure``:
    ∃ X' ⊂ X : conf(X' ⇒ Y) ≥ conf(X ⇒ Y).

    Parameters
    ----------
    rules : DataFrame
        Rules with ``antecedents``, ``consequents`` and ``measure``.
    measure : str
        Column compared (confidence by default, as Bayardo's improvement).

    Returns
    -------
    Series of bool
        Aligned with ``rules``.
    """
    ants = rules["antecedents"].tolist()
    cons = rules["consequents"].tolist()
    val = rules[measure].to_numpy(dtype=float)
    best: dict[tuple[frozenset, frozenset], float] = {}
    for a, c, v in zip(ants, cons, val):
        k = (frozenset(a), frozenset(c))
        best[k] = max(v, best.get(k, -np.inf))
    out = np.zeros(len(rules), dtype=bool)
    from itertools import combinations

    for i, (a, c, v) in enumerate(zip(ants, cons, val)):
        a = frozenset(a)
        c = frozenset(c)
        if len(a) <= 0:
            continue
        hit = False
        for r in range(len(a) - 1, -1, -1):
            for sub in combinations(a, r):
                w = best.get((frozenset(sub), c))
                if w is not None and w >= v - _EPS:
                    hit = True
                    break
            if hit:
                break
        out[i] = hit
    return pd.Series(out, index=rules.index, name="redundant")


def prune_redundant(rules: pd.DataFrame, measure: str = "confidence") -> pd.DataFrame:
    """``rules`` without the redundant ones (see :func:`is_redundant`)."""
    return rules[~is_redundant(rules, measure)].reset_index(drop=True)


def fisher_test(rules: pd.DataFrame, n_transactions: int | None = None, method: str = "holm") -> pd.DataFrame:
    """Add one-sided Fisher exact test p-values, as arules' ``interestMeasure(.., "fishersExactTest")``.

    Parameters
    ----------
    rules : DataFrame
        Rules with ``count``, ``antecedent_count``, ``consequent_count`` (from
        :func:`association_rules`).
    n_transactions : int, optional
        Number of baskets (default ``rules.attrs['n_transactions']``).
    method : str
        Correction for multiple testing (any :func:`statsmodels.stats.multitest.multipletests`
        method: ``'holm'``, ``'bonferroni'``, ``'fdr_bh'`` ...; ``'none'`` to skip).

    Returns
    -------
    DataFrame
        ``rules`` with ``p_value`` and ``p_adjusted``.

    Notes
    -----
    H0: X and Y are independent; alternative: positive association. With f11 = count(X∪Y),
    f1x = count(X), fx1 = count(Y), p = P[F ≥ f11] for F hypergeometric(N=n, K=fx1, draws=f1x),
    the same as ``scipy.stats.fisher_exact(table, alternative='greater')``.
    """
    from scipy.stats import hypergeom

    n = int(n_transactions if n_transactions is not None else rules.attrs.get("n_transactions", 0))
    out = rules.copy()
    if len(out) == 0:
        out["p_value"] = pd.Series(dtype=float)
        out["p_adjusted"] = pd.Series(dtype=float)
        return out
    f11 = out["count"].to_numpy()
    f1x = out["antecedent_count"].to_numpy()
    fx1 = out["consequent_count"].to_numpy()
    p = hypergeom.sf(f11 - 1, n, fx1, f1x)
    p = np.clip(p, 0.0, 1.0)
    out["p_value"] = p
    if method in (None, "none"):
        out["p_adjusted"] = p
    elif method == "holm":
        from ..multiple_testing import holm

        out["p_adjusted"] = holm(p)
    else:
        from statsmodels.stats.multitest import multipletests

        out["p_adjusted"] = multipletests(p, method=method)[1]
    out.attrs.update(rules.attrs)
    return out


# ---------------------------------------------------------------------------------------------
# using the rules
# ---------------------------------------------------------------------------------------------

def cross_sell_table(rules: pd.DataFrame, top_n: int = 5, *, min_lift: float = 1.0,
                     single_antecedent: bool = True) -> pd.DataFrame:
    """For each product, the top-N items to recommend with it.

    Parameters
    ----------
    rules : DataFrame
        Rules from :func:`association_rules` (one-item consequents).
    top_n : int
        Recommendations per product.
    min_lift : float
        Only rules with lift above this (default 1: positive association).
    single_antecedent : bool
        True (default): one row per *product* — rules whose antecedent is that one item
        (what a product page or a basket with that item can show). False: the antecedent
        may be an itemset (``"a|b"``).

    Returns
    -------
    DataFrame
        ``product, rank, recommend, confidence, lift, support, count`` — ranked by confidence,
        then lift, within each product.
    """
    cols = ["product", "rank", "recommend", "confidence", "lift", "support", "count"]
    r = rules[(rules["lift"] > min_lift) & (rules["consequents"].map(len) == 1)]
    if single_antecedent:
        r = r[r["antecedents"].map(len) == 1]
    if len(r) == 0:
        return pd.DataFrame(columns=cols)
    r = r.assign(product=r["antecedents"].map(lambda s: "|".join(sorted(map(str, s)))),
                 recommend=r["consequents"].map(lambda s: next(iter(s))))
    r = r.sort_values(["product", "confidence", "lift", "recommend"], ascending=[True, False, False, True], kind="stable")
    r = r.groupby("product", sort=False).head(int(top_n))
    r["rank"] = r.groupby("product", sort=False).cumcount() + 1
    return r[cols].reset_index(drop=True)


def split_baskets_by_time(baskets: pd.DataFrame, holdout_fraction: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split baskets in time: the earliest ``1 - holdout_fraction`` for mining, the latest for checking.

    Parameters
    ----------
    baskets : DataFrame
        Long basket table with ``ordered_at``.
    holdout_fraction : float
        Share of baskets (by time) in the later period, in (0, 1).

    Returns
    -------
    (train, test) : tuple of DataFrame
        Baskets before and from the cut-off time (``attrs['cutoff']``); a basket is never split.
    """
    if "ordered_at" not in baskets.columns or baskets["ordered_at"].isna().all():
        raise AnalysisError("The holdout check needs basket timestamps (ordered_at); basket files have none. "
                            "Use order data (canonical or lines) for a holdout check.")
    if not (0 < float(holdout_fraction) < 1):
        raise ParameterError(f"holdout_fraction={holdout_fraction!r} must be between 0 and 1 (e.g. 0.3).")
    # baskets by first order time (ties: in the order they first appear), on integer codes
    codes, n_b, _ = _basket_codes(baskets["basket_id"], False)
    valid = codes >= 0
    ts = baskets["ordered_at"].reset_index(drop=True)
    t = (ts if valid.all() else ts[valid]).groupby(codes[valid]).min().sort_values(kind="stable")
    del ts
    n_train = int(round(len(t) * (1 - float(holdout_fraction))))
    if n_train < 1 or n_train >= len(t):
        raise AnalysisError(f"Cannot split {len(t):,} baskets with holdout_fraction={holdout_fraction}: one side "
                            "would be empty.")
    cutoff = t.iloc[n_train]
    is_train = np.zeros(n_b + 1, dtype=bool)  # the last slot: rows without a basket id (code -1)
    is_train[t.index.to_numpy()[:n_train]] = True
    mask = is_train[codes]
    del codes, valid, t
    train, test = baskets.loc[mask], baskets.loc[~mask]  # new frames: renumbered in place, not copied again
    train.index, test.index = pd.RangeIndex(len(train)), pd.RangeIndex(len(test))
    train.attrs["cutoff"] = test.attrs["cutoff"] = cutoff
    return train, test


def measure_rules(rules: pd.DataFrame, baskets: pd.DataFrame | Sequence[Iterable[str]],
                  chunk: int = 2000) -> pd.DataFrame:
    """Re-measure given rules on other baskets.

    Returns
    -------
    DataFrame
        ``antecedents, consequents, count, antecedent_count, consequent_count, support,
        confidence, lift`` on ``baskets`` (confidence/lift are NaN when the antecedent or
        consequent never occurs there).
    """
    b = check_long_baskets(baskets)
    n = int(b["basket_id"].nunique())
    ants = rules["antecedents"].tolist()
    cons = rules["consequents"].tolist()
    # only the rows of the rules' items are encoded: a basket without any of them counts for no set
    used = set().union(*ants, *cons) if len(ants) else set()
    X, items, _, _ = _sparse_matrix(b.loc[b["item"].isin(used).to_numpy(dtype=bool), ["basket_id", "item"]], 1)
    col = {it: j for j, it in enumerate(items)}
    m = len(items)
    X = X.astype(np.int32).tocsc()

    def count_sets(sets: list[frozenset]) -> np.ndarray:
        out = np.zeros(len(sets), dtype=np.int64)
        for start in range(0, len(sets), chunk):
            part = sets[start:start + chunk]
            rows, cols, lens, missing = [], [], [], np.zeros(len(part), dtype=bool)
            for r, s in enumerate(part):
                idx = [col.get(i) for i in s]
                if any(j is None for j in idx):
                    missing[r] = True
                    idx = [j for j in idx if j is not None]
                rows.extend([r] * len(idx))
                cols.extend(idx)
                lens.append(len(s))
            R = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (cols, rows)), shape=(m, len(part)))
            hits = (X @ R).tocsc()
            lens_a = np.asarray(lens)
            for r in range(len(part)):
                if missing[r]:
                    continue
                colvals = hits.data[hits.indptr[r]:hits.indptr[r + 1]]
                out[start + r] = int((colvals == lens_a[r]).sum()) if lens_a[r] > 0 else n
        return out

    c_ac = count_sets([frozenset(a) | frozenset(c) for a, c in zip(ants, cons)])
    c_a = count_sets([frozenset(a) for a in ants])
    c_c = count_sets([frozenset(c) for c in cons])
    with np.errstate(divide="ignore", invalid="ignore"):
        supp = c_ac / n
        conf = np.where(c_a > 0, c_ac / np.maximum(c_a, 1), np.nan)
        lift = np.where(c_c > 0, conf / (c_c / n), np.nan)
    return pd.DataFrame({"antecedents": ants, "consequents": cons, "count": c_ac, "antecedent_count": c_a,
                         "consequent_count": c_c, "support": supp, "confidence": conf, "lift": lift},
                        index=rules.index)


def holdout_check(rules: pd.DataFrame, test_baskets: pd.DataFrame | Sequence[Iterable[str]]) -> pd.DataFrame:
    """Do rules mined on an earlier period hold on a later one?

    Parameters
    ----------
    rules : DataFrame
        Rules mined on the earlier baskets.
    test_baskets : DataFrame or list of lists
        The later baskets.

    Returns
    -------
    DataFrame
        ``antecedents, consequents, support, confidence, lift`` (mined) and ``holdout_support,
        holdout_confidence, holdout_lift, holdout_count``, ``lift_ratio`` (holdout/mined) and
        ``holds`` (holdout lift > 1), in the order of ``rules``.
    """
    m = measure_rules(rules, test_baskets)
    out = rules[["antecedents", "consequents", "support", "confidence", "lift"]].copy()
    out["holdout_support"] = m["support"].to_numpy()
    out["holdout_confidence"] = m["confidence"].to_numpy()
    out["holdout_lift"] = m["lift"].to_numpy()
    out["holdout_count"] = m["count"].to_numpy()
    out["lift_ratio"] = out["holdout_lift"] / out["lift"]
    out["holds"] = (out["holdout_lift"] > 1).fillna(False).astype(bool)
    return out.reset_index(drop=True)


def rules_for_export(rules: pd.DataFrame) -> pd.DataFrame:
    """Rules with itemsets as sorted lists (Parquet/CSV friendly), :data:`RULE_COLUMNS` first."""
    out = rules.copy()
    for c in ("antecedents", "consequents"):
        if c in out.columns:
            out[c] = out[c].map(lambda s: sorted(map(str, s)))
    if "itemsets" in out.columns:
        out["itemsets"] = out["itemsets"].map(lambda s: sorted(map(str, s)))
    return out
