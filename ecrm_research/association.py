"""Market-basket analysis: baskets, frequent itemsets, association rules, cross-sell tables.

The pipeline, each step a plain DataFrame in and out (as in mlxtend's ``frequent_patterns``)::

    canonical tables ──baskets_from_orders──┐
    list[list[str]]  ──baskets_from_lists───┴─► baskets (long: basket_id, item[, ordered_at])
        ──encode_baskets──► sparse one-hot DataFrame (frequent items only)
        ──frequent_itemsets──► itemsets, support, count, length        (mlxtend fpgrowth)
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

import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from .exceptions import AnalysisError, ParameterError

__all__ = [
    "RULE_COLUMNS",
    "RuleMiningResult",
    "BasketData",
    "baskets_from_orders",
    "baskets_from_lists",
    "load_baskets",
    "aggregate_items",
    "item_frequencies",
    "basket_sizes",
    "encode_baskets",
    "estimate_itemset_count",
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

def _check_long(baskets: pd.DataFrame) -> pd.DataFrame:
    if isinstance(baskets, pd.DataFrame):
        missing = [c for c in ("basket_id", "item") if c not in baskets.columns]
        if missing:
            raise ParameterError(
                f"baskets: column(s) {missing} missing; a basket table has one row per (basket_id, item). "
                f"Columns present: {list(baskets.columns)}. Build it with baskets_from_orders() or "
                "baskets_from_lists().")
        return baskets
    if isinstance(baskets, (list, tuple)):
        return baskets_from_lists(baskets)
    raise ParameterError(f"baskets: expected a DataFrame (basket_id, item) or a list of lists, "
                         f"got {type(baskets).__name__}")


def baskets_from_lists(baskets: Sequence[Iterable[str]]) -> pd.DataFrame:
    """Turn a list of baskets (as read from a basket file) into the long basket table.

    Parameters
    ----------
    baskets : sequence of iterables of str
        One inner sequence per basket (transaction). Duplicate items within a basket are
        counted once; empty baskets are kept (they count in the number of baskets, as an empty
        line is a transaction in arules' ``read.transactions``).

    Returns
    -------
    DataFrame
        Columns ``basket_id`` (int, position in the list) and ``item`` (str), one row per
        distinct item of each basket. Empty baskets contribute a row with ``item`` missing, so
        that they are still counted.

    Notes
    -----
    Item labels are kept exactly as given (Groceries has labels with a trailing space, such as
    ``"cream cheese "``; stripping them would break parity with arules' labels).
    """
    ids: list[int] = []
    items: list[Any] = []
    for i, basket in enumerate(baskets):
        if isinstance(basket, str):
            raise ParameterError(f"baskets_from_lists: basket {i} is a string ({basket!r}), not a list of items. "
                                 "Split basket lines into items first (io.read_baskets does this).")
        seen = list(dict.fromkeys(str(x) for x in basket if x is not None and not (isinstance(x, float) and math.isnan(x))))
        if not seen:
            ids.append(i)
            items.append(None)
        for it in seen:
            ids.append(i)
            items.append(it)
    return pd.DataFrame({"basket_id": np.asarray(ids, dtype="int64"),
                         "item": pd.Series(items, dtype="object")})


def _period_key(ts: pd.Series, window: str) -> pd.Series:
    try:
        return ts.dt.to_period(window).astype(str)
    except (ValueError, TypeError):
        try:
            return ts.dt.floor(window).astype(str)
        except (ValueError, TypeError):
            raise ParameterError(f"window={window!r} is not a pandas frequency; use e.g. 'M' (calendar month), "
                                 "'W' (week), 'Q' (quarter) or '30D' (30-day blocks).") from None


def _product_labels(products: pd.DataFrame | None, ids: pd.Series, item_label: str) -> pd.Series:
    """Map product ids to readable item labels."""
    if item_label == "id" or products is None or "product_name" not in products.columns:
        if item_label == "name":
            raise ParameterError("item_label='name' needs a products table with product_name.")
        return ids.astype(str)
    if item_label not in ("auto", "name"):
        raise ParameterError(f"item_label={item_label!r}; use 'auto', 'name' or 'id'.", allowed=["auto", "name", "id"])
    prod = products[["product_id", "product_name"]].dropna(subset=["product_id"]).drop_duplicates("product_id")
    prod = prod[prod["product_id"].isin(ids.unique())]
    name = prod["product_name"].astype("string").str.strip()
    name = name.where(name.notna() & (name != ""), prod["product_id"].astype("string"))
    # a name shared by several product ids is made unique with the id, so counts never merge
    dup = name.duplicated(keep=False)
    name = name.where(~dup, name + " [" + prod["product_id"].astype("string") + "]")
    lookup = pd.Series(name.astype(str).to_numpy(), index=prod["product_id"].astype(str).to_numpy())
    out = ids.astype(str).map(lookup)
    return out.fillna(ids.astype(str))


def baskets_from_orders(
    tables: Mapping[str, pd.DataFrame],
    *,
    item_level: str = "product",
    basket_by: str = "order",
    window: str | None = None,
    statuses: Sequence[str] | None = ("completed",),
    item_label: str = "auto",
) -> pd.DataFrame:
    """Build baskets from canonical ``orders`` and ``order_items``.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Canonical tables (see :mod:`ecrm_research.schema`); ``orders`` and ``order_items`` are
        needed, ``products`` for names and categories. Usually ``quality.clean(...).tables``.
    item_level : {'product', 'category'}
        What an item is: a product, or its ``products.category`` (an item hierarchy as in
        arules' ``aggregate``; products without a category become ``"(no category)"``).
    basket_by : {'order', 'customer'}
        ``'order'``: one basket per order. ``'customer'``: everything a customer bought,
        over the whole period or per ``window``.
    window : str, optional
        With ``basket_by='customer'``, a pandas frequency that cuts the customer's history into
        baskets (``'M'`` calendar month, ``'Q'`` quarter, ``'30D'`` 30-day blocks).
    statuses : sequence of str or None
        Order statuses to keep (default: completed orders only); None keeps all.
    item_label : {'auto', 'name', 'id'}
        Product items are labelled by name when the products table has names (``'auto'``;
        a name shared by several ids gets ``" [id]"`` appended) or by ``product_id``.

    Returns
    -------
    DataFrame
        ``basket_id`` (str), ``item`` (str), ``ordered_at`` (the basket's first order time),
        ``customer_id``; one row per distinct item of each basket. Lines with non-positive
        quantity (returns) are not purchases and are left out.
    """
    for t in ("orders", "order_items"):
        if t not in tables:
            raise ParameterError(f"baskets_from_orders: table '{t}' missing; have {sorted(tables)}.")
    if item_level not in ("product", "category"):
        raise ParameterError(f"item_level={item_level!r}; use 'product' or 'category'.",
                             allowed=["product", "category"])
    if basket_by not in ("order", "customer"):
        raise ParameterError(f"basket_by={basket_by!r}; use 'order' or 'customer'.", allowed=["order", "customer"])
    orders = tables["orders"]
    lines = tables["order_items"]
    products = tables.get("products")
    if statuses is not None:
        orders = orders[orders["status"].astype(str).isin(list(statuses))]
    lines = lines[lines["quantity"] > 0] if "quantity" in lines.columns else lines
    df = lines[["order_id", "product_id"]].merge(
        orders[["order_id", "customer_id", "ordered_at"]], on="order_id", how="inner")
    if item_level == "category":
        if products is None or "category" not in products.columns:
            raise ParameterError("item_level='category' needs a products table with a category column.")
        cat = products.drop_duplicates("product_id").set_index("product_id")["category"].astype("string")
        item = df["product_id"].map(cat).fillna("(no category)")
        df["item"] = item.astype(str).to_numpy()
    else:
        df["item"] = _product_labels(products, df["product_id"], item_label).to_numpy()
    if basket_by == "order":
        df["basket_id"] = df["order_id"].astype(str)
    else:
        if df["customer_id"].isna().any():
            n = int(df["customer_id"].isna().sum())
            warnings.warn(f"{n:,} order lines have no customer_id and are left out of customer baskets.",
                          stacklevel=2)
            df = df[df["customer_id"].notna()]
        key = df["customer_id"].astype(str)
        if window:
            key = key + "@" + _period_key(df["ordered_at"], window)
        df["basket_id"] = key.to_numpy()
    first = df.groupby("basket_id", sort=False)["ordered_at"].transform("min")
    df["ordered_at"] = first
    out = df[["basket_id", "item", "ordered_at", "customer_id"]].drop_duplicates(["basket_id", "item"])
    out["customer_id"] = out["customer_id"].astype("string")
    return out.sort_values(["ordered_at", "basket_id"], kind="stable").reset_index(drop=True)


def aggregate_items(baskets: pd.DataFrame, hierarchy: pd.DataFrame | Mapping[str, str], level: str | None = None,
                    *, item_column: str = "labels") -> pd.DataFrame:
    """Replace items by a coarser level of an item hierarchy (arules' ``aggregate``).

    Parameters
    ----------
    baskets : DataFrame
        Long basket table (``basket_id``, ``item``).
    hierarchy : DataFrame or mapping
        A table with one row per item (``item_column``) and one column per level (Groceries'
        ``groceries_iteminfo.csv``: ``labels, level2, level1``), or a plain item → group mapping.
    level : str, optional
        Column of ``hierarchy`` to use (required when ``hierarchy`` is a DataFrame).

    Returns
    -------
    DataFrame
        Same columns, items replaced, duplicates within a basket removed. Items missing from
        the hierarchy keep their own label (with a warning naming the first few).
    """
    baskets = _check_long(baskets)
    if isinstance(hierarchy, pd.DataFrame):
        if level is None or level not in hierarchy.columns or item_column not in hierarchy.columns:
            raise ParameterError(f"aggregate_items: need item column {item_column!r} and a level column; "
                                 f"hierarchy has {list(hierarchy.columns)} (level={level!r}).",
                                 allowed=[c for c in hierarchy.columns if c != item_column])
        lookup = dict(zip(hierarchy[item_column].astype(str), hierarchy[level].astype(str)))
    else:
        lookup = {str(k): str(v) for k, v in hierarchy.items()}
    items = baskets["item"]
    mapped = items.map(lookup)
    unmapped = items.notna() & mapped.isna()
    if unmapped.any():
        first = list(dict.fromkeys(items[unmapped].astype(str)))[:5]
        warnings.warn(f"{unmapped.sum():,} basket rows have items not in the hierarchy (first: {first}); "
                      "they keep their own label.", stacklevel=2)
    out = baskets.copy()
    out["item"] = mapped.where(~unmapped, items).where(items.notna(), None)
    return out.drop_duplicates(["basket_id", "item"]).reset_index(drop=True)


@dataclass
class BasketData:
    """Baskets ready for mining plus what was excluded on the way (for step 2 of a report).

    Attributes
    ----------
    baskets : DataFrame
        Long basket table (``basket_id``, ``item`` [, ``ordered_at``, ``customer_id``]).
    format : str
        Data format of the source (``canonical``, ``lines`` or ``baskets``).
    source : str
        Where the data came from.
    has_timestamps : bool
        True when baskets carry ``ordered_at`` (needed for the holdout check).
    exclusions : DataFrame
        ``step, reason, rows`` — what was left out and why (quality quarantine counts, orders
        with another status, return lines, empty baskets).
    policy : list of str
        The cleaning filters in plain words (empty for basket files).
    """

    baskets: pd.DataFrame
    format: str
    source: str
    has_timestamps: bool
    exclusions: pd.DataFrame
    policy: list[str] = field(default_factory=list)

    @property
    def n_baskets(self) -> int:
        return int(self.baskets["basket_id"].nunique())


def load_baskets(data: Any = None, data_format: str | None = None, mapping: Any = None, *,
                 item_level: str = "product", basket_by: str = "order", window: str | None = None,
                 hierarchy: pd.DataFrame | Mapping[str, str] | None = None, hierarchy_level: str | None = None,
                 policy: Any = None) -> BasketData:
    """Load the user's data and turn it into baskets (step 2 for the association notebook).

    Accepts the data formats ``canonical`` and ``lines`` (cleaned with :func:`quality.prepare`;
    the quarantine counts explain what was dropped) and ``baskets`` (a basket file; no
    timestamps, so no holdout check). Other formats raise ``FormatError`` via
    ``Dataset.require``.

    Parameters
    ----------
    data, data_format, mapping :
        As for :func:`ecrm_research.io.load_dataset` (``data=None`` is the bundled sample).
    item_level, basket_by, window :
        See :func:`baskets_from_orders`. For basket files ``item_level='category'`` needs a
        ``hierarchy`` (e.g. Groceries' item info) and ``basket_by`` must be ``'order'``.
    hierarchy, hierarchy_level :
        Optional item hierarchy for :func:`aggregate_items`.
    policy : quality.CleaningPolicy, optional
        Cleaning filters for canonical/lines data. Default: the standard filters, except that
        orders without a customer id are kept for order baskets (a guest's basket is still a
        basket) and non-product codes (postage, fees; the mapping's ``non_product_codes``) are
        dropped.
    """
    from . import io  # imported lazily: io/quality are separate modules with their own deps

    ds = io.load_dataset(data, data_format, mapping)
    ds.require(["canonical", "lines", "baskets"], "association")
    rows: list[dict[str, Any]] = []
    descr: list[str] = []
    if ds.format == "baskets":
        if basket_by != "order":
            raise ParameterError("basket_by='customer' needs order data with customer ids; a basket file has "
                                 "one basket per line. Use basket_by='order'.", allowed=["order"])
        b = baskets_from_lists(ds.baskets or [])
        n_empty = int(b["item"].isna().sum())
        if n_empty:
            rows.append({"step": "baskets", "reason": "empty basket line (kept in the basket count)", "rows": n_empty})
        has_ts = False
        if item_level == "category" and hierarchy is None:
            raise ParameterError("item_level='category' on a basket file needs an item hierarchy "
                                 "(hierarchy=..., hierarchy_level=...), e.g. Groceries' groceries_iteminfo.csv.")
    else:
        from . import quality

        if policy is None:
            # guest orders are still baskets; postage/fees are not products anyone cross-sells
            policy = quality.CleaningPolicy(drop_missing_customer=(basket_by == "customer"), drop_non_product=True)
        cleaned = quality.clean(ds.tables, policy, non_product_codes=_non_product_codes(ds))
        descr = list(policy.describe())
        q = cleaned.quarantine
        if q is not None and len(q):
            counts = q.groupby(["table", "reason"]).size().reset_index(name="rows")
            for r in counts.itertuples(index=False):
                rows.append({"step": f"cleaning ({r.table})", "reason": str(r.reason), "rows": int(r.rows)})
        tables = cleaned.tables
        orders = tables["orders"]
        other = orders[orders["status"].astype(str) != "completed"]
        if len(other):
            for status, n in other["status"].astype(str).value_counts().items():
                rows.append({"step": "baskets", "reason": f"order status '{status}' (only completed orders form baskets)",
                             "rows": int(n)})
        nonpos = int((tables["order_items"]["quantity"] <= 0).sum())
        if nonpos:
            rows.append({"step": "baskets", "reason": "order line with quantity <= 0 (a return, not a purchase)",
                         "rows": nonpos})
        b = baskets_from_orders(tables, item_level=item_level, basket_by=basket_by, window=window)
        has_ts = True
    if hierarchy is not None:
        b = aggregate_items(b, hierarchy, hierarchy_level)
    excl = pd.DataFrame(rows, columns=["step", "reason", "rows"])
    return BasketData(baskets=b, format=ds.format, source=str(ds.source), has_timestamps=has_ts,
                      exclusions=excl, policy=descr)


def _non_product_codes(ds: Any) -> tuple:
    m = getattr(ds, "mapping", None)
    for attr in ("non_product_codes",):
        v = getattr(m, attr, None) if m is not None else None
        if v:
            return tuple(v)
    rules = getattr(m, "rules", None) if m is not None else None
    if isinstance(rules, Mapping) and rules.get("non_product_codes"):
        return tuple(rules["non_product_codes"])
    return ()


def item_frequencies(baskets: pd.DataFrame | Sequence[Iterable[str]]) -> pd.DataFrame:
    """Number and share of baskets that contain each item (arules' ``itemFrequency``).

    Returns
    -------
    DataFrame
        ``item, count, support`` sorted by decreasing count (ties by item), where
        support = count / number of baskets.
    """
    b = _check_long(baskets)
    n = b["basket_id"].nunique()
    counts = b.dropna(subset=["item"]).drop_duplicates(["basket_id", "item"])["item"].value_counts()
    out = counts.rename_axis("item").reset_index(name="count")
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
    b = _check_long(baskets)
    sizes = b.groupby("basket_id", sort=False)["item"].nunique()
    dist = sizes.value_counts().sort_index()
    out = dist.rename_axis("size").reset_index(name="n_baskets")
    out["share"] = out["n_baskets"] / out["n_baskets"].sum()
    return out


# ---------------------------------------------------------------------------------------------
# encoding and itemsets
# ---------------------------------------------------------------------------------------------

def _min_count(min_support: float, n: int) -> int:
    if not (0 < float(min_support) <= 1):
        raise ParameterError(f"min_support={min_support!r} must be in (0, 1] (a share of baskets, e.g. 0.01).")
    return max(1, int(math.ceil(float(min_support) * n - 1e-9)))


def _sparse_matrix(b: pd.DataFrame, min_count: int) -> tuple[sparse.csr_matrix, pd.Index, pd.Index, np.ndarray]:
    """CSR basket x item matrix of the items with count >= min_count (all baskets kept)."""
    basket_codes, basket_index = pd.factorize(b["basket_id"], sort=False)
    n = len(basket_index)
    has_item = b["item"].notna().to_numpy()
    pairs = pd.DataFrame({"row": basket_codes[has_item], "item": b["item"].to_numpy()[has_item]}).drop_duplicates()
    counts = pairs["item"].value_counts()
    keep = counts[counts >= min_count]
    items = pd.Index(sorted(keep.index, key=str))
    pairs = pairs[pairs["item"].isin(items)]
    col = items.get_indexer(pairs["item"])
    X = sparse.csr_matrix((np.ones(len(pairs), dtype=bool), (pairs["row"].to_numpy(), col)),
                          shape=(n, len(items)), dtype=bool)
    X.sort_indices()
    return X, items, basket_index, counts.to_numpy()


def _sparse_frame(X: sparse.spmatrix, columns: list[str], index: Any = None) -> pd.DataFrame:
    """Sparse[bool] DataFrame from a boolean scipy matrix, built without a dense intermediate.

    Note: mlxtend's ``fpgrowth`` sums ``df.values`` once to count items, which materialises
    the kept columns densely; dropping infrequent items first keeps that to baskets x frequent items.
    """
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
    """
    b = _check_long(baskets)
    n = b["basket_id"].nunique()
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


class _LimitReached(Exception):
    pass


def _mlxtend_fpgrowth(onehot: pd.DataFrame, min_support: float, max_len: int | None,
                      limit: int | None = None) -> pd.DataFrame | None:
    """The single call site of mlxtend's FP-growth (its API drift is handled here).

    Without ``limit`` this is ``fpgrowth(onehot, min_support, use_colnames=True, max_len=...)``.
    With ``limit`` the itemsets are drawn from mlxtend's FP-growth generator
    (``fpcommon.setup_fptree`` + ``fpgrowth.fpg_step``, stable since mlxtend 0.17) and mining stops
    as soon as more than ``limit`` itemsets appear: the function then returns None, so memory never
    exceeds ``limit`` itemsets. If those internals are missing, it returns None straight away.
    """
    from mlxtend.frequent_patterns import fpgrowth

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if limit is None:
            return fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=max_len)
        try:
            import importlib

            _fpc = importlib.import_module("mlxtend.frequent_patterns.fpcommon")
            _fpg_mod = importlib.import_module("mlxtend.frequent_patterns.fpgrowth")  # the module, not the function

            setup, step = _fpc.setup_fptree, _fpg_mod.fpg_step
        except (ImportError, AttributeError):  # pragma: no cover - future mlxtend
            return None
        n = len(onehot.index)
        tree, _, _ = setup(onehot, min_support)
        gen = step(tree, math.ceil(min_support * n), None, max_len, 0)
        cols = list(onehot.columns)
        sets: list[frozenset] = []
        sups: list[float] = []
        try:
            for sup, iset in gen:
                sets.append(frozenset(cols[i] for i in iset))
                sups.append(sup / n)
                if len(sets) > limit:
                    raise _LimitReached
        except _LimitReached:
            return None
        return pd.DataFrame({"support": sups, "itemsets": sets})


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


def frequent_itemsets(baskets: pd.DataFrame | Sequence[Iterable[str]], min_support: float,
                      max_len: int | None = DEFAULT_MAX_LEN, *,
                      max_itemsets: int = DEFAULT_MAX_ITEMSETS) -> pd.DataFrame:
    """Frequent itemsets with FP-growth (mlxtend) on a sparse one-hot encoding.

    Parameters
    ----------
    baskets : DataFrame or list of lists
        Long basket table or list of baskets.
    min_support : float
        Minimum share of baskets; an itemset is frequent when
        ``count >= ceil(min_support * n_baskets)`` (inclusive, as in arules).
    max_len : int or None
        Largest itemset size (arules' ``maxlen``, default 10). None = no limit.
    max_itemsets : int
        Memory guard: if the projected number of itemsets exceeds it, an
        :class:`~ecrm_research.exceptions.AnalysisError` says which threshold to raise.

    Returns
    -------
    DataFrame
        ``itemsets`` (frozenset), ``support``, ``count``, ``length``; sorted by length, then by
        decreasing support. ``attrs['n_transactions']`` holds the number of baskets.

    Raises
    ------
    AnalysisError
        No item reaches ``min_support`` (the message gives the largest item support and a
        threshold that would work) or the projected itemset count exceeds ``max_itemsets``.

    Notes
    -----
    support(X) = |{baskets ⊇ X}| / n. Memory guard: the upper bound of
    :func:`estimate_itemset_count` is computed first; when it is above ``max_itemsets`` (the bound is
    loose when a few baskets are large) FP-growth runs as a generator that stops once
    ``max_itemsets`` is exceeded, and the error quotes the bound.
    """
    b = _check_long(baskets)
    n = int(b["basket_id"].nunique())
    if n == 0:
        raise AnalysisError("No baskets: the basket table is empty. Check the data and the filters in step 2.")
    if max_len is not None and int(max_len) < 1:
        raise ParameterError(f"max_len={max_len!r} must be >= 1 (items per itemset; a rule needs 2).")
    min_count = _min_count(min_support, n)
    X, items, _, all_counts = _sparse_matrix(b, min_count)
    if len(items) == 0:
        top = int(all_counts.max()) if len(all_counts) else 0
        top_item = b["item"].dropna().value_counts()
        name = top_item.index[0] if len(top_item) else None
        if top == 0:
            raise AnalysisError(f"No items: all {n:,} baskets are empty. Check the data and the filters in step 2.")
        suggest = _nice_floor(top / n)
        raise AnalysisError(
            f"No item reaches min_support={min_support:g} (needs {min_count:,} of {n:,} baskets). The most frequent "
            f"item, {name!r}, is in {top:,} baskets (support {top / n:.4g}). Lower min_support to at most "
            f"{suggest:g}, e.g. min_support={_nice_floor(top / n / 5):g}.")
    onehot = _sparse_frame(X, [str(c) for c in items])
    label = {str(c): c for c in items}
    mlx_support = (min_count - 0.5) / n  # exact integer threshold inside mlxtend (it uses ceil(min_support*n))
    per_basket = np.diff(X.indptr)
    bound = estimate_itemset_count(per_basket, len(items), min_count, max_len)
    L = len(items) if max_len is None else int(max_len)
    if bound <= max_itemsets:
        fi = _mlxtend_fpgrowth(onehot, mlx_support, L)
    else:
        # the bound is loose when a few baskets are large: mine, but stop at max_itemsets
        fi = _mlxtend_fpgrowth(onehot, mlx_support, L, limit=max_itemsets)
        if fi is None:
            raise _too_many(bound, max_itemsets, min_support, max_len, n, len(items))
    out = pd.DataFrame({"itemsets": [frozenset(label[i] for i in s) for s in fi["itemsets"]]})
    out["count"] = np.rint(fi["support"].to_numpy() * n).astype("int64")
    out["support"] = out["count"] / n
    out["length"] = out["itemsets"].map(len).astype("int64")
    out = out[["itemsets", "support", "count", "length"]]
    out = out.sort_values(["length", "count"], ascending=[True, False], kind="stable").reset_index(drop=True)
    out.attrs["n_transactions"] = n
    out.attrs["min_count"] = min_count
    return out


def _nice_floor(x: float) -> float:
    """Round x down to 1 or 2 significant digits (for suggested thresholds)."""
    if x <= 0:
        return 0.0
    e = math.floor(math.log10(x))
    return math.floor(x / 10 ** (e - 1)) * 10 ** (e - 1) if x / 10 ** e < 2 else math.floor(x / 10 ** e) * 10 ** e


def _too_many(projected: float, limit: int, min_support: float, max_len: int | None, n: int,
              m: int) -> AnalysisError:
    lower = "" if max_len is None or max_len <= 2 else f" or lower max_len (now {max_len}, e.g. max_len={max(2, min(4, max_len - 1))})"
    nolen = " or set max_len (e.g. max_len=4)" if max_len is None else ""
    err = AnalysisError(
        f"Too many frequent itemsets: at min_support={min_support:g} ({m:,} frequent items in {n:,} baskets) "
        f"mining found more than max_itemsets={limit:,} itemsets (a memory guard) and stopped; the projection "
        f"from the frequent-item counts per basket is up to {int(projected):,}. Raise min_support (e.g. "
        f"min_support={_nice_floor(min_support * 2):g}){lower}{nolen}, or raise max_itemsets if you have the memory.")
    err.projected = int(projected)
    err.limit = int(limit)
    return err


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
        Wall time of itemset + rule mining.
    """

    itemsets: pd.DataFrame
    rules: pd.DataFrame
    n_transactions: int
    params: dict
    summary: pd.DataFrame
    seconds: float = 0.0

    def rule_lengths(self) -> pd.Series:
        """Number of rules per rule length (antecedent + consequent items), as arules' summary."""
        return self.rules["length"].value_counts().sort_index()


def mine_rules(baskets: pd.DataFrame | Sequence[Iterable[str]], min_support: float = 0.01,
               min_confidence: float = 0.5, max_len: int | None = DEFAULT_MAX_LEN, *,
               min_lift: float | None = None, prune: bool = False, fisher: bool = False,
               p_adjust: str = "holm", semantics: str = "arules",
               max_itemsets: int = DEFAULT_MAX_ITEMSETS) -> RuleMiningResult:
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
        Memory guard, see :func:`frequent_itemsets`.

    Examples
    --------
    R: ``apriori(Groceries, parameter = list(supp = 0.001, conf = 0.8))`` gives 410 rules;
    ``mine_rules(groceries, 0.001, 0.8)`` gives the same 410.
    """
    import time

    t0 = time.perf_counter()
    b = _check_long(baskets)
    fi = frequent_itemsets(b, min_support, max_len, max_itemsets=max_itemsets)
    n = int(fi.attrs["n_transactions"])
    rules = association_rules(fi, n, min_confidence, min_lift=min_lift, semantics=semantics)
    n_all = len(rules)
    if prune and len(rules):
        rules = rules[~is_redundant(rules)].reset_index(drop=True)
    if fisher:
        rules = fisher_test(rules, n, method=p_adjust)
    rules.attrs["n_transactions"] = n
    secs = time.perf_counter() - t0
    rows = [("baskets", n), ("items", int(b["item"].nunique())),
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
              "min_lift": min_lift, "prune": prune, "semantics": semantics}
    return RuleMiningResult(itemsets=fi, rules=rules, n_transactions=n, params=params, summary=summary, seconds=secs)


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
    t = baskets.groupby("basket_id", sort=False)["ordered_at"].min().sort_values(kind="stable")
    n_train = int(round(len(t) * (1 - float(holdout_fraction))))
    if n_train < 1 or n_train >= len(t):
        raise AnalysisError(f"Cannot split {len(t):,} baskets with holdout_fraction={holdout_fraction}: one side "
                            "would be empty.")
    train_ids = set(t.index[:n_train])
    cutoff = t.iloc[n_train]
    mask = baskets["basket_id"].isin(train_ids)
    train, test = baskets[mask].reset_index(drop=True), baskets[~mask].reset_index(drop=True)
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
    b = _check_long(baskets)
    n = int(b["basket_id"].nunique())
    X, items, _, _ = _sparse_matrix(b, 1)
    col = {it: j for j, it in enumerate(items)}
    m = len(items)
    X = X.astype(np.int32).tocsc()
    ants = rules["antecedents"].tolist()
    cons = rules["consequents"].tolist()

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
