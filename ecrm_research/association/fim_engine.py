"""The ``'fim'`` engine: Christian Borgelt's C FP-growth (pyfim), from the library whose apriori
and eclat R's arules runs.

pyfim is an optional install (``pip install pyfim``); :func:`~.engines.import_fim` imports it on
first use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .encoding import EncodedBaskets
from .engines import import_fim


def fim_transactions(enc: EncodedBaskets) -> dict[tuple[int, ...], int]:
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


def _fim_args(enc: EncodedBaskets, max_len: int | None) -> dict[str, Any]:
    """``fim.fpgrowth`` arguments: itemsets (``target='s'``) of 2..max_len items, count >= min_count."""
    kw: dict[str, Any] = {"target": "s", "supp": -int(enc.min_count), "zmin": 2}
    if max_len is not None:
        kw["zmax"] = int(max_len)
    return kw


def fim_count(tracts: dict[tuple[int, ...], int], enc: EncodedBaskets, max_len: int | None) -> int:
    """Number of frequent itemsets of 2..max_len items, counted by pyfim without storing them.

    ``report='#'`` returns the pattern spectrum (itemsets per size and support) instead of the
    itemsets, so memory stays flat however many there are.
    """
    spectrum = import_fim().fpgrowth(tracts, report="#", **_fim_args(enc, max_len))
    return int(round(sum(spectrum.values()))) if spectrum else 0


def fim_itemsets(tracts: dict[tuple[int, ...], int], enc: EncodedBaskets,
                 max_len: int | None) -> tuple[list[tuple[int, ...]], list[int]]:
    """Itemsets of 2..max_len items with pyfim's FP-growth: ``(codes, counts)``.

    ``fim.fpgrowth(tracts, target='s', supp=-c, zmin=2, zmax=L, report='a')``: a negative ``supp``
    is an absolute count, and pyfim keeps sets with count >= c (inclusive, as arules).
    """
    res = import_fim().fpgrowth(tracts, report="a", **_fim_args(enc, max_len))
    if not res:
        return [], []
    sets, counts = zip(*res)
    return list(sets), list(counts)
