"""Frequent itemsets: encode, check memory, mine with an engine, label (:func:`frequent_itemsets`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError, ParameterError
from ..infra.progress import Stages
from ..prep.baskets import check_long_baskets
from .encoding import EncodedBaskets, gc_paused, integer_encode, min_support_count
from .engines import DEFAULT_MAX_ITEMSETS, DEFAULT_MAX_LEN, TooManyItemsets, resolve_engine
from .fim_engine import fim_count, fim_itemsets, fim_transactions
from .memory import check_memory, estimate_itemset_count, memory_limit_bytes, memory_parts
from .mlxtend_engine import mlxtend_fpgrowth
from .spark_engine import spark_itemsets


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
        the same library; fastest, optional install). ``'mlxtend'``: mlxtend's pure-Python
        FP-growth (the reference; slow at scale). ``'spark'``: ``pyspark.ml.fpm.FPGrowth`` on
        ``spark_master`` (optional install, Java 17+). ``'auto'`` (default): spark when
        ``spark_master`` is given, else fim when importable, else mlxtend (see
        :func:`~.engines.resolve_engine`).
    spark_master : str, optional
        Spark master URL for ``engine='spark'`` (default ``'local[2]'``; e.g.
        ``'spark://host:7077'`` or ``'yarn'``).
    spark_conf : mapping, optional
        Extra Spark settings for the session this module starts (over
        :data:`ecrm_research.infra.spark.SPARK_DEFAULTS`, e.g. ``{"spark.driver.memory": "8g"}``).
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
        return mine_itemsets(b, min_support, max_len, max_itemsets, eng, spark_master, spark_conf,
                                  max_memory_gb, stages)
    finally:
        stages.close()


def mine_itemsets(b: pd.DataFrame, min_support: float, max_len: int | None, max_itemsets: int, engine: str,
                  spark_master: str | None, spark_conf: Mapping[str, str] | None,
                  max_memory_gb: float | None, stages: Stages) -> pd.DataFrame:
    """:func:`frequent_itemsets` on a checked basket table with a resolved engine, timed by ``stages``.

    Shared by :func:`frequent_itemsets` and :func:`~.mining.mine_rules` (which adds its own stages
    to the same progress bar). Encodes, checks the itemset and memory guards, mines, labels.
    """
    if max_len is not None and int(max_len) < 1:
        raise ParameterError(f"max_len={max_len!r} must be >= 1 (items per itemset; a rule needs 2).")
    min_support_count(min_support, 1)  # validates the range before any work
    limit_bytes = memory_limit_bytes(max_memory_gb)
    stages.stage("encode baskets")
    enc = integer_encode(b, min_support)
    n, min_count = enc.n_baskets, enc.min_count
    if n == 0:
        raise AnalysisError("No baskets: the basket table is empty. Check the data and the filters in step 2.")
    if len(enc.items) == 0:
        _raise_nothing_frequent(b, n, min_support, min_count)
    K = len(enc.items)
    L = None if max_len is None else int(max_len)
    too_many = partial(_too_many, limit=max_itemsets, min_support=min_support, max_len=max_len, n=n, m=K)
    bound = estimate_itemset_count(enc.sizes, K, min_count, L)
    if K > max_itemsets:
        raise too_many(K, exact=True)
    mem = {"min_support": min_support, "max_len": L, "engine": engine, "max_itemsets": max_itemsets,
           "limit": limit_bytes, "max_memory_gb": max_memory_gb, "spark_master": spark_master,
           "spark_conf": spark_conf}
    mining = (L is None or L >= 2) and bool((enc.sizes >= 2).any())

    stages.stage(f"mine itemsets ({engine})")
    if not mining:
        sets, counts, need = [], [], check_memory(enc, n_sets=K, **mem)
    elif engine == "fim":
        sets, counts, need = _mine_with_fim(enc, bound, mem, stages, too_many)
    else:
        sets, counts, need = _mine_with_limit(enc, bound, mem, stages, too_many)
    if len(sets) + K > max_itemsets:  # counted exactly after the fact (the bound did not trip the guard)
        raise too_many(len(sets) + K, exact=True)

    stages.stage("label itemsets")
    with gc_paused():
        out = _itemset_frame(enc, sets, counts, L)
    stages.end()  # the label stage's time goes into the timings below
    out.attrs.update(n_transactions=n, min_count=min_count, n_items=enc.n_items, engine=engine,
                     memory_estimate_gb=need / 1e9)
    out.attrs["timings"] = dict(stages.timings)
    return out


def _mine_with_fim(enc: EncodedBaskets, bound: int, mem: dict[str, Any], stages: Stages,
                   too_many: Callable[..., AnalysisError]) -> tuple[list[tuple[int, ...]], list[int], float]:
    """Mine with pyfim: ``(itemsets as codes, counts, memory estimate in bytes)``.

    pyfim returns everything at once: the input is checked first, then, if the itemsets may be
    many (by the bound: above ``max_itemsets`` or too big for memory), they are counted exactly
    without being stored before they are mined.
    """
    K, L, max_itemsets = len(enc.items), mem["max_len"], mem["max_itemsets"]
    check_memory(enc, n_sets=K, **mem)
    with gc_paused():
        tracts = fim_transactions(enc)
        n_tracts = int((enc.sizes >= 2).sum())
        stages.note(baskets=n_tracts, distinct=len(tracts) - 1)
        n_sets = None
        by_bound = memory_parts(enc.sizes, K, enc.min_count, L, enc.n_rows, mem["engine"], max_itemsets,
                                n_sets=min(bound, max_itemsets + 1))
        if bound > max_itemsets or sum(by_bound.values()) > mem["limit"]:
            stages.note(baskets=n_tracts, step="counting")
            n_sets = fim_count(tracts, enc, L) + K
            if n_sets > max_itemsets:
                raise too_many(n_sets, exact=True)
        need = check_memory(enc, n_sets=n_sets, **mem)
        stages.note(baskets=n_tracts, step="mining")
        sets, counts = fim_itemsets(tracts, enc, L)
        del tracts
    return sets, counts, need


def _mine_with_limit(enc: EncodedBaskets, bound: int, mem: dict[str, Any], stages: Stages,
                     too_many: Callable[..., AnalysisError]) -> tuple[list[tuple[int, ...]], list[int], float]:
    """Mine with Spark or mlxtend, which stop once ``max_itemsets`` is exceeded when the bound says
    the guard may trip: ``(itemsets as codes, counts, memory estimate in bytes)``."""
    K, L, max_itemsets = len(enc.items), mem["max_len"], mem["max_itemsets"]
    need = check_memory(enc, n_sets=min(bound, max_itemsets + 1), **mem)
    limit = max_itemsets - K if bound > max_itemsets else None
    try:
        if mem["engine"] == "spark":
            sets, counts = spark_itemsets(enc, L, limit, stages, mem["spark_master"], mem["spark_conf"])
        else:
            with gc_paused():
                sets, counts = mlxtend_fpgrowth(enc, L, limit, stages)
    except TooManyItemsets as exc:
        raise too_many(exc.count + K if exc.exact else bound, exact=exc.exact) from None
    return sets, counts, need


def _itemset_frame(enc: EncodedBaskets, sets: list[tuple[int, ...]], counts: list[int],
                   max_len: int | None) -> pd.DataFrame:
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
    """Raise the AnalysisError for no frequent item, naming the most frequent one and a threshold that works."""
    full = integer_encode(b, min_count=1)
    if len(full.items) == 0:
        raise AnalysisError(f"No items: all {n:,} baskets are empty. Check the data and the filters in step 2.")
    j = int(np.argmax(full.counts))
    top, name = int(full.counts[j]), full.items[j]
    suggest = _nice_floor(top / n)
    raise AnalysisError(
        f"No item reaches min_support={min_support:g} (needs {min_count:,} of {n:,} baskets). The most frequent "
        f"item, {name!r}, is in {top:,} baskets (support {top / n:.4g}). Lower min_support to at most "
        f"{suggest:g}, e.g. min_support={_nice_floor(top / n / 5):g}.")


def _nice_floor(x: float) -> float:
    """Round x down to 1 or 2 significant digits (for suggested thresholds)."""
    if x <= 0:
        return 0.0
    e = math.floor(math.log10(x))
    return math.floor(x / 10 ** (e - 1)) * 10 ** (e - 1) if x / 10 ** e < 2 else math.floor(x / 10 ** e) * 10 ** e


def _too_many(projected: float, limit: int, min_support: float, max_len: int | None, n: int,
              m: int, *, exact: bool = False) -> AnalysisError:
    """The AnalysisError for more than ``limit`` itemsets, with thresholds that would give fewer."""
    lower = ("" if max_len is None or max_len <= 2 else
             f" or lower max_len (now {max_len}, e.g. max_len={max(2, min(4, max_len - 1))})")
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
