"""The memory model of a mining call: estimate before mining, refuse a job that would not fit.

:func:`estimate_itemset_count` bounds the number of frequent itemsets from the basket sizes;
:func:`memory_parts` turns the encoded baskets into bytes per component with per-engine
constants; :func:`check_memory` raises an :class:`~ecrm_research.exceptions.AnalysisError` that
suggests a ``min_support`` or ``max_len`` that fits; :func:`estimate_mining_memory` is the public
estimate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError, ParameterError
from ..infra.spark import DEFAULT_SPARK_MASTER, SPARK_DEFAULTS
from ..prep.baskets import check_long_baskets
from .encoding import EncodedBaskets, gc_paused, integer_encode, min_support_count
from .engines import DEFAULT_MAX_ITEMSETS, DEFAULT_MAX_LEN, import_fim, resolve_engine
from .fim_engine import fim_count, fim_transactions

#: With ``max_memory_gb=None`` a mining call may plan to use this share of the memory that is
#: available (``MemAvailable``) when it starts.
DEFAULT_MEMORY_SHARE = 0.8


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
    none = np.array([], dtype=int)
    uniq_t, mult_t = np.unique(tail, return_counts=True) if len(tail) else (none, none)
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


def available_memory_bytes() -> float:
    """Memory available to a new allocation now (Linux ``MemAvailable``; psutil; total RAM)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # optional (the bench extra); only where /proc/meminfo is missing

        return float(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def memory_limit_bytes(max_memory_gb: float | None) -> float:
    """Bytes a mining call may plan to use: ``max_memory_gb``, or a share of the memory available now."""
    if max_memory_gb is None:
        return DEFAULT_MEMORY_SHARE * available_memory_bytes()
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
    """True when the Spark driver runs on this machine (its JVM then counts against our memory)."""
    return (master or DEFAULT_SPARK_MASTER).startswith("local")


def memory_parts(sizes: np.ndarray, n_frequent: int, min_count: int, max_len: int | None, n_rows: int,
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


def _fitting_settings(enc: EncodedBaskets, min_support: float, max_len: int | None, engine: str, max_itemsets: int,
                      limit: float, **spark: Any) -> tuple[tuple[float, float] | None, tuple[int, float] | None]:
    """A higher min_support and a lower max_len that fit in ``limit`` bytes (with their estimates)."""
    n = enc.n_baskets
    rows = np.repeat(np.arange(n), enc.sizes)
    supp = None
    for f in (1.5, 2, 3, 5, 10, 20, 50, 100, 300, 1000):
        ms = _nice_ceil(min_support * f)
        if ms > 1:
            break
        mc = min_support_count(ms, n)
        keep = enc.counts >= mc
        if not keep.any():
            break
        sizes = np.bincount(rows[keep[enc.indices]], minlength=n)
        est = sum(memory_parts(sizes, int(keep.sum()), mc, max_len, enc.n_rows, engine, max_itemsets,
                               **spark).values())
        if est <= limit:
            supp = (ms, est)
            break
    length = None
    top = len(enc.items) if max_len is None else int(max_len) - 1
    for L in range(min(top, 6), 1, -1):
        est = sum(memory_parts(enc.sizes, len(enc.items), enc.min_count, L, enc.n_rows, engine, max_itemsets,
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
    enc = integer_encode(b, min_support)
    L = None if max_len is None else int(max_len)
    n_sets, exact = None, False
    bound = estimate_itemset_count(enc.sizes, len(enc.items), enc.min_count, L)
    if eng == "fim" and (L is None or L >= 2) and bool((enc.sizes >= 2).any()):
        with gc_paused():
            n_sets, exact = fim_count(fim_transactions(enc), enc, L) + len(enc.items), True
    parts = memory_parts(enc.sizes, len(enc.items), enc.min_count, L, enc.n_rows, eng, max_itemsets,
                         n_sets=n_sets, spark_master=spark_master, spark_conf=spark_conf)
    out = pd.Series({k: v / 1e9 for k, v in parts.items()}, name="gb", dtype=float)
    out.index.name = "component"
    out.attrs.update(engine=eng, itemsets=int(n_sets if n_sets is not None else min(bound, max_itemsets + 1)),
                     itemsets_exact=exact)
    return out


def check_memory(enc: EncodedBaskets, min_support: float, max_len: int | None, engine: str, max_itemsets: int,
                 limit: float, max_memory_gb: float | None, *, n_sets: int | None = None,
                 spark_master: str | None = None, spark_conf: Mapping[str, str] | None = None) -> float:
    """Raise AnalysisError when the estimate exceeds ``limit`` bytes; return the estimate in bytes."""
    spark = {"spark_master": spark_master, "spark_conf": spark_conf}
    parts = memory_parts(enc.sizes, len(enc.items), enc.min_count, max_len, enc.n_rows, engine, max_itemsets,
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
    if engine == "mlxtend" and import_fim() is not None:
        fim_need = sum(memory_parts(enc.sizes, len(enc.items), enc.min_count, max_len, enc.n_rows, "fim",
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
