"""The ``'mlxtend'`` engine: mlxtend's pure-Python FP-growth, fed from the integer-coded baskets."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
from mlxtend.frequent_patterns import fpgrowth
from scipy import sparse

from ..exceptions import AnalysisError
from ..infra.progress import Stages
from .encoding import EncodedBaskets, sparse_frame, transaction_lists
from .engines import TooManyItemsets
from .memory import memory_limit_bytes


def mlxtend_fpgrowth(enc: EncodedBaskets, max_len: int | None, limit: int | None,
                     stages: Stages) -> tuple[list[tuple[int, ...]], list[int]]:
    """The single call site of mlxtend's FP-growth: itemsets of 2..max_len items, ``(codes, counts)``.

    mlxtend's public ``fpgrowth(df, ...)`` sums ``df.values`` to count items, which turns a sparse
    frame into a dense baskets x items array (GBs at a million baskets). So the FP-tree is built
    here from the integer-coded baskets with mlxtend's own ``fpcommon.FPTree`` (items inserted by
    decreasing support, as ``setup_fptree`` does) and mined with ``fpgrowth.fpg_step`` (both stable
    since mlxtend 0.17). Itemsets are drawn from that generator; with ``limit``,
    :class:`~.engines.TooManyItemsets` stops mining once more than ``limit`` itemsets appeared.
    Only baskets with two or more frequent items are inserted, so the tree's single-item counts
    are not used (the encoding has them).
    """
    # looked up by name, so that a future mlxtend that moves its internals falls back to the public API
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
    tracts = transaction_lists(enc.indptr, enc.indices[order], 2)
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
                raise TooManyItemsets(len(sets), exact=False)
    return sets, counts


def _mlxtend_fpgrowth_public(enc: EncodedBaskets, max_len: int | None,
                             limit: int | None) -> tuple[list[tuple[int, ...]], list[int]]:  # pragma: no cover
    """Fallback through mlxtend's public ``fpgrowth`` (dense item counting; used only if its internals move)."""
    K, n = len(enc.items), enc.n_baskets
    if float(n) * K > memory_limit_bytes(None):
        raise AnalysisError(f"mlxtend's fpgrowth would build a dense {n:,} x {K:,} array; use engine='fim'.")
    X = sparse.csr_matrix((np.ones(len(enc.indices), dtype=bool), enc.indices, enc.indptr), shape=(n, K))
    onehot = sparse_frame(X, [str(j) for j in range(K)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fi = fpgrowth(onehot, min_support=(enc.min_count - 0.5) / n, use_colnames=False, max_len=max_len)
    fi = fi[fi["itemsets"].map(len) >= 2]
    if limit is not None and len(fi) > limit:
        raise TooManyItemsets(len(fi), exact=True)
    return [tuple(int(i) for i in s) for s in fi["itemsets"]], np.rint(fi["support"] * n).astype(int).tolist()
