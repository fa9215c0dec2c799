"""Synthetic online shop with documented, planted truths (the bundled sample data).

The generator makes the six canonical tables of :mod:`ecrm_research.data.schema` for a believable
online shop, and plants one known structure for each analysis of the project so that every
notebook can be checked against the truth:

1. **Association** - baskets are independent product draws plus three product *bundles* that
   enter a basket as a unit, so support, confidence and lift of every bundle rule are known
   exactly (:data:`PLANTED` ``["association"]``).
2. **Churn** - each customer has a true churn time from an exponential proportional-hazards
   model with known hazard ratios for a late first delivery and membership
   (``["churn"]``).
3. **Loyalty** - a survey subsample answers Likert items generated from latent constructs with
   known standardized structural paths (``["survey"]``).
4. **Segmentation** - four behavioural segments with very different order rates, order values
   and discount use (``["segments"]``).

Customers carry latent traits (trust, service quality, perceived cost, habit, entertainment,
satisfaction, loyalty) that drive both their survey answers and their behaviour (loyalty lowers
the churn hazard, service quality raises the chance that a service contact is resolved, habit
raises the chance of using the app).

Determinism and scale
---------------------
Customers are generated in chunks of ``chunk_size`` customers. Chunk ``i`` draws from its own
stream ``SeedSequence(seed).spawn(2)[1].spawn(...)[i]``, so the same ``(seed, n_customers,
months, start, chunk_size)`` gives bit-for-bit identical tables and Parquet files, and a chunk
does not depend on how many chunks follow it. Changing ``chunk_size`` changes the draws (but not
their distribution). The product catalogue and every planted number are fixed constants
(independent of ``seed``), so :data:`PLANTED` is a module constant. :func:`write_sample` appends
chunk by chunk with :class:`pyarrow.parquet.ParquetWriter`, so memory is bounded by one chunk.

Examples
--------
>>> from ecrm_research.data.sample import generate, PLANTED
>>> tables = generate(n_customers=300, months=12, seed=1)
>>> sorted(tables)  # doctest: +NORMALIZE_WHITESPACE
['customers', 'order_items', 'orders', 'products', 'service_contacts', 'survey_responses']
>>> PLANTED["churn"]["hazard_ratios"]["first_order_late"]
1.8
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import nullcontext
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import paths
from ..exceptions import ParameterError
from . import schema

__all__ = ["PLANTED", "SEGMENTS", "SURVEY_ITEMS", "generate", "iter_chunks", "write_sample",
           "catalogue", "expected_rules"]

DAYS_PER_MONTH = 30.4375
DEFAULT_SEED = 20240101
DEFAULT_CHUNK_SIZE = 20_000
TABLE_ORDER = ("customers", "products", "orders", "order_items", "survey_responses", "service_contacts")

# --------------------------------------------------------------------------------------------
# Product catalogue (fixed: does not depend on the seed)
# --------------------------------------------------------------------------------------------

#: category -> (typical price, product names). 10 categories x 20 products.
_CATEGORIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "Phone & Tech": (25.0, (
        "phone case", "screen protector", "USB-C cable", "wall charger", "power bank",
        "wireless earbuds", "Bluetooth speaker", "smartwatch strap", "car phone mount", "laptop sleeve",
        "wireless mouse", "compact keyboard", "HDMI cable", "memory card 128GB", "USB stick 64GB",
        "webcam", "ring light", "phone tripod", "stylus pen", "charging dock")),
    "Coffee & Tea": (12.0, (
        "coffee beans 1kg", "milk frother", "ground coffee", "espresso pods", "green tea",
        "black tea", "herbal tea", "French press", "coffee grinder", "pour-over dripper",
        "paper filters", "travel mug", "ceramic mug set", "teapot", "matcha powder",
        "chai syrup", "oat milk", "descaler", "coffee scale", "tea infuser")),
    "Outdoor & Camping": (35.0, (
        "tent", "sleeping bag", "camping stove", "gas cartridge", "headlamp",
        "camping chair", "cool box", "water bottle", "hiking socks", "rain jacket",
        "trekking poles", "sleeping mat", "first aid kit", "multitool", "insect repellent",
        "camping lantern", "dry bag", "compass", "backpack 40L", "picnic blanket")),
    "Home & Kitchen": (18.0, (
        "chef knife", "cutting board", "frying pan", "saucepan set", "food containers",
        "dish towels", "kitchen scale", "blender", "toaster", "kettle",
        "oven gloves", "spice rack", "scented candle", "bath towel", "bed sheets",
        "pillow", "storage baskets", "laundry bag", "bin bags", "sponges")),
    "Beauty & Care": (9.0, (
        "shampoo", "conditioner", "shower gel", "face cream", "sunscreen SPF50",
        "lip balm", "hand cream", "toothpaste", "toothbrush heads", "deodorant",
        "razor blades", "hair dryer", "make-up remover", "face mask", "body lotion",
        "nail polish", "perfume", "cotton pads", "hair brush", "beard oil")),
    "Books & Stationery": (10.0, (
        "notebook A5", "ballpoint pens", "highlighters", "weekly planner", "paperback novel",
        "cookbook", "children's book", "puzzle book", "sticky notes", "desk organiser",
        "fountain pen", "sketchbook", "coloured pencils", "wall calendar", "bookmarks",
        "travel guide", "biography", "comic book", "gift wrap", "greeting cards")),
    "Toys & Games": (16.0, (
        "building blocks", "board game", "jigsaw puzzle", "plush bear", "toy car",
        "card game", "doll", "art set", "bubble machine", "kite",
        "water pistol", "play dough", "science kit", "remote control car", "yo-yo",
        "puzzle cube", "marbles", "bath toys", "hand puppet", "dominoes")),
    "Fashion": (22.0, (
        "t-shirt", "jeans", "socks 5-pack", "hoodie", "sneakers",
        "baseball cap", "scarf", "gloves", "belt", "sunglasses",
        "umbrella", "tote bag", "wallet", "underwear 3-pack", "pyjamas",
        "slippers", "beanie", "rain boots", "leggings", "swim shorts")),
    "Sports & Fitness": (20.0, (
        "yoga mat", "dumbbells", "resistance bands", "skipping rope", "running shorts",
        "sports bottle", "protein powder", "foam roller", "fitness tracker", "tennis balls",
        "football", "cycling gloves", "bike light", "gym bag", "sweatband",
        "kettlebell", "pull-up bar", "ab wheel", "swim goggles", "knee support")),
    "Pet Supplies": (11.0, (
        "dog food", "cat food", "cat litter", "dog treats", "chew toy",
        "pet bed", "leash", "collar", "scratching post", "pet shampoo",
        "poop bags", "bird seed", "fish food", "cat toy mouse", "pet bowl",
        "grooming brush", "flea spray", "aquarium filter", "hamster bedding", "dog coat")),
}

#: Planted bundles: products that enter a basket together with probability ``pi``.
#: ``base`` are the products' own (independent) inclusion probabilities; ``price`` their list prices.
_BUNDLES: tuple[dict[str, Any], ...] = (
    {"name": "phone protection", "pi": 0.035,
     "products": {"phone case": (0.030, 14.99), "screen protector": (0.025, 9.99)}},
    {"name": "coffee at home", "pi": 0.025,
     "products": {"coffee beans 1kg": (0.050, 18.99), "milk frother": (0.015, 34.99)}},
    {"name": "camping trip", "pi": 0.015,
     "products": {"tent": (0.010, 179.00), "sleeping bag": (0.012, 79.00), "camping stove": (0.010, 44.99)}},
)

_ZIPF_EXPONENT = 0.9     # p_j proportional to rank^-0.9 for the non-bundle products
_P_MAX = 0.16            # cap of one product's inclusion probability
_TARGET_BASE_ITEMS = 3.2  # sum of the non-bundle products' inclusion probabilities
_CATALOGUE_SEED = 7      # fixed: ranks and prices do not change with the user's seed


def _build_catalogue() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(_CATALOGUE_SEED)
    names, cats, prices = [], [], []
    for cat, (typical, items) in _CATEGORIES.items():
        for name in items:
            names.append(name)
            cats.append(cat)
            # log-normal scatter around the category's typical price, ending in .99
            p = typical * math.exp(rng.normal(0.0, 0.55))
            prices.append(max(math.floor(p), 1) + 0.99 if p >= 2 else 1.99)
    n = len(names)
    bundle_base = {name: bp for b in _BUNDLES for name, bp in b["products"].items()}
    is_bundle = np.array([nm in bundle_base for nm in names])
    p = np.zeros(n)
    ranks = rng.permutation(int((~is_bundle).sum())) + 1
    z = ranks.astype(float) ** -_ZIPF_EXPONENT
    # scale so the non-bundle inclusion probabilities sum to the target, respecting the cap
    c = _TARGET_BASE_ITEMS / z.sum()
    for _ in range(50):
        q = np.minimum(c * z, _P_MAX)
        c *= _TARGET_BASE_ITEMS / q.sum()
    p[~is_bundle] = np.round(np.minimum(c * z, _P_MAX), 5)
    for i, nm in enumerate(names):
        if nm in bundle_base:
            p[i], prices[i] = bundle_base[nm]
    products = pd.DataFrame({
        "product_id": [f"P{i + 1:03d}" for i in range(n)],
        "product_name": names,
        "category": cats,
        "list_price": np.round(prices, 2),
    })
    return products, p


_PRODUCTS, _P_BASE = _build_catalogue()
_NAME_TO_IDX = {nm: i for i, nm in enumerate(_PRODUCTS["product_name"])}
_BUNDLE_IDX = [np.array([_NAME_TO_IDX[nm] for nm in b["products"]]) for b in _BUNDLES]
_BUNDLE_PI = np.array([b["pi"] for b in _BUNDLES])
_BUNDLE_OF = np.full(len(_PRODUCTS), -1)
for _k, _idx in enumerate(_BUNDLE_IDX):
    _BUNDLE_OF[_idx] = _k


def catalogue() -> pd.DataFrame:
    """The fixed product catalogue with each product's base inclusion probability.

    Returns
    -------
    DataFrame
        Canonical ``products`` columns plus ``base_inclusion_prob`` (the independent
        per-basket draw probability ``p_j``) and ``bundle`` (bundle name or empty).
    """
    out = _PRODUCTS.copy()
    out["base_inclusion_prob"] = _P_BASE
    out["bundle"] = [(_BUNDLES[k]["name"] if k >= 0 else "") for k in _BUNDLE_OF]
    return out


def _p_empty() -> float:
    """Probability that one basket draw is empty (before rejection)."""
    free = _BUNDLE_OF < 0
    pe = float(np.prod(1.0 - _P_BASE[free]))
    for k, idx in enumerate(_BUNDLE_IDX):
        pe *= (1.0 - _BUNDLE_PI[k]) * float(np.prod(1.0 - _P_BASE[idx]))
    return pe


_P_NONEMPTY = 1.0 - _p_empty()


def _raw_support(items: list[int]) -> float:
    """P(all ``items`` in one basket draw), before conditioning on a non-empty basket."""
    out = 1.0
    by_bundle: dict[int, list[int]] = {}
    for j in items:
        k = int(_BUNDLE_OF[j])
        if k < 0:
            out *= _P_BASE[j]
        else:
            by_bundle.setdefault(k, []).append(j)
    for k, js in by_bundle.items():
        out *= _BUNDLE_PI[k] + (1.0 - _BUNDLE_PI[k]) * float(np.prod(_P_BASE[js]))
    return out


def expected_support(items: list[str]) -> float:
    """Exact expected support of an itemset (product names) among (non-empty) baskets.

    Notes
    -----
    Product ``j`` enters a basket draw independently with probability ``p_j``; bundle ``k``
    enters as a unit with probability ``pi_k``. For items ``S`` inside one bundle,
    P(S) = pi_k + (1 - pi_k) * prod_{j in S} p_j; independent parts multiply. Empty draws are
    discarded, so every support is divided by P(non-empty) = 1 - prod_j (1-p_j) prod_k (1-pi_k).
    """
    return _raw_support([_NAME_TO_IDX[n] for n in items]) / _P_NONEMPTY


def expected_rules() -> pd.DataFrame:
    """Expected support, confidence and lift of every rule inside a planted bundle.

    Returns
    -------
    DataFrame
        One row per rule ``antecedents -> consequents`` (tuples of product names) with
        ``bundle``, ``antecedent_ids``, ``consequent_ids``, ``antecedent_support``,
        ``consequent_support``, ``support``, ``confidence``, ``lift``.

    Notes
    -----
    confidence = P(A and C) / P(A); lift = P(A and C) / (P(A) P(C)). A pair of products that
    is not in the same bundle has expected lift P(non-empty) (about 0.97), not exactly 1,
    because empty basket draws are discarded.
    """
    rows = []
    names = _PRODUCTS["product_name"].tolist()
    ids = _PRODUCTS["product_id"].tolist()
    for b, idx in zip(_BUNDLES, _BUNDLE_IDX):
        members = [names[i] for i in idx]
        for size in range(2, len(members) + 1):
            for itemset in combinations(members, size):
                for r in range(1, size):
                    for ante in combinations(itemset, r):
                        cons = tuple(m for m in itemset if m not in ante)
                        s = expected_support(list(itemset))
                        sa = expected_support(list(ante))
                        sc = expected_support(list(cons))
                        rows.append({
                            "bundle": b["name"], "antecedents": ante, "consequents": cons,
                            "antecedent_ids": tuple(ids[names.index(a)] for a in ante),
                            "consequent_ids": tuple(ids[names.index(c)] for c in cons),
                            "antecedent_support": sa, "consequent_support": sc, "support": s,
                            "confidence": s / sa, "lift": s / (sa * sc)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Segments, churn, survey, realism: the planted parameters
# --------------------------------------------------------------------------------------------

#: Behavioural segments. ``orders_per_month``: rate of the (gamma, shape 4) order renewal
#: process; ``extra_qty``: quantity per line = 1 + Poisson(extra_qty); ``discount``: mean
#: order discount_rate. Product *inclusion* does not depend on the segment.
SEGMENTS: dict[str, dict[str, float]] = {
    "champions": {"share": 0.15, "orders_per_month": 3.2, "extra_qty": 1.6, "discount": 0.03},
    "regulars": {"share": 0.35, "orders_per_month": 1.2, "extra_qty": 0.3, "discount": 0.05},
    "bargain hunters": {"share": 0.25, "orders_per_month": 1.2, "extra_qty": 0.0, "discount": 0.30},
    "occasional": {"share": 0.25, "orders_per_month": 0.55, "extra_qty": 1.2, "discount": 0.15},
}
_SEG_NAMES = list(SEGMENTS)
_SEG_SHARE = np.array([s["share"] for s in SEGMENTS.values()])
_SEG_RATE = np.array([s["orders_per_month"] for s in SEGMENTS.values()])
_SEG_QTY = np.array([s["extra_qty"] for s in SEGMENTS.values()])
_SEG_DISC = np.array([s["discount"] for s in SEGMENTS.values()])
_GAP_SHAPE = 4.0            # gamma shape of inter-order gaps (regular shoppers)
_RATE_SPREAD = 0.10         # sd of log customer rate multiplier within a segment
_DISC_CONC_CUSTOMER = 60.0  # Beta concentration of a customer's discount propensity
_DISC_CONC_ORDER = 40.0     # Beta concentration of one order's discount around it

_BASE_HAZARD = 1.0 / 450.0  # per day, for late=0, member=0, loyalty=0
_BETA_LATE = math.log(1.8)
_BETA_MEMBER = math.log(0.6)
_BETA_LOYALTY = -0.2        # log-HR per SD of latent loyalty
_P_FIRST_LATE = 0.20
_P_LATE = 0.20
_P_MEMBER = 0.30
_REG_WINDOW = 0.90          # registrations uniform over the first 90% of the window
_INACTIVITY_DAYS = 180

_STATUS_P = (0.93, 0.03, 0.04)  # completed, cancelled, returned (orders after the first)
_REGIONS = ("North", "South", "East", "West", "Central")
_REGION_P = (0.18, 0.22, 0.20, 0.17, 0.23)
_AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_P = (0.14, 0.27, 0.23, 0.17, 0.12, 0.07)
_SOURCES = ("search", "social", "referral", "email", "display", "direct")
_SOURCE_P = (0.32, 0.22, 0.12, 0.10, 0.09, 0.15)

# survey --------------------------------------------------------------------------------------
_EXOGENOUS = ("trust", "service_quality", "perceived_cost", "habit", "entertainment")
_SAT_PATHS = {"trust": 0.45, "service_quality": 0.35}
_LOY_PATHS = {"satisfaction": 0.50, "habit": 0.25, "perceived_cost": -0.20, "entertainment": 0.10, "trust": 0.0}
_SAT_RESID = 1.0 - sum(v ** 2 for v in _SAT_PATHS.values())                 # 0.675
_LOY_RESID = 1.0 - sum(v ** 2 for v in _LOY_PATHS.values())                 # 0.6375 (indep. predictors)

#: construct -> list of (item column, loading, reverse-coded)
SURVEY_ITEMS: dict[str, list[tuple[str, float, bool]]] = {
    "trust": [("trust_1", 0.82, False), ("trust_2", 0.80, False), ("trust_3", 0.76, False)],
    "service_quality": [("quality_1", 0.80, False), ("quality_2", 0.78, False), ("quality_3", 0.83, False),
                        ("quality_4", 0.75, False)],
    "perceived_cost": [("cost_1", 0.80, False), ("cost_2", 0.78, False), ("cost_3_r", 0.74, True)],
    "habit": [("habit_1", 0.84, False), ("habit_2", 0.80, False), ("habit_3", 0.77, False)],
    "entertainment": [("ent_1", 0.81, False), ("ent_2", 0.79, False), ("ent_3", 0.76, False)],
    "satisfaction": [("sat_1", 0.85, False), ("sat_2", 0.82, False), ("sat_3", 0.79, False)],
    "loyalty": [("loy_1", 0.84, False), ("loy_2", 0.81, False), ("loy_3", 0.78, False), ("loy_4_r", 0.74, True)],
}
_ITEM_SHIFT = {"trust": 0.3, "service_quality": 0.2, "perceived_cost": -0.1, "habit": 0.0,
               "entertainment": -0.3, "satisfaction": 0.35, "loyalty": 0.15}
_LIKERT_CUTS = np.array([-1.8, -1.15, -0.5, 0.15, 0.8, 1.45])  # on loading*latent + noise + shift
_SURVEY_FRACTION = 0.40
_P_ITEM_MISSING = 0.03

# service contacts -------------------------------------------------------------------------
_CONTACT_P = {"base": 0.03, "late": 0.25, "returned": 0.50, "cancelled": 0.20}
_ROUTINE_REASONS = ("product question", "payment", "account")


def _planted() -> dict[str, Any]:
    rules = expected_rules()
    rule_list = [
        {k: (list(v) if isinstance(v, tuple) else (round(float(v), 6) if isinstance(v, float) else v))
         for k, v in r.items()}
        for r in rules.to_dict("records")]
    free = _BUNDLE_OF < 0
    mean_items = (float(_P_BASE[free].sum())
                  + sum(float((_BUNDLE_PI[k] + (1 - _BUNDLE_PI[k]) * _P_BASE[idx]).sum())
                        for k, idx in enumerate(_BUNDLE_IDX))) / _P_NONEMPTY
    seg_gap = {n: round(DAYS_PER_MONTH / s["orders_per_month"], 2) for n, s in SEGMENTS.items()}
    items_flat = {c: [i for i, _, _ in lst] for c, lst in SURVEY_ITEMS.items()}
    return {
        "description": "Planted truths of ecrm_research.sample (independent of the seed).",
        "association": {
            "n_products": int(len(_PRODUCTS)),
            "n_categories": len(_CATEGORIES),
            "mechanism": ("Each order's basket: product j included independently with probability p_j "
                          "(Zipf-like, exponent 0.9, capped at 0.16); bundle k added as a unit with "
                          "probability pi_k; empty draws are discarded. Inclusion is identical for all "
                          "customers, segments and order statuses."),
            "bundles": [{"name": b["name"], "pi": b["pi"],
                         "products": list(b["products"]),
                         "product_ids": [str(_PRODUCTS.loc[_NAME_TO_IDX[n], "product_id"]) for n in b["products"]],
                         "base_probs": [v[0] for v in b["products"].values()]} for b in _BUNDLES],
            "p_nonempty": round(_P_NONEMPTY, 6),
            "expected_mean_basket_size": round(mean_items, 4),
            "non_bundle_pair_lift": round(_P_NONEMPTY, 6),
            "rules": rule_list,
        },
        "churn": {
            "model": "exponential proportional hazards on days since the first order",
            "baseline_hazard_per_day": _BASE_HAZARD,
            "hazard_ratios": {"first_order_late": 1.8, "is_member": 0.6,
                              "loyalty_per_sd": round(math.exp(_BETA_LOYALTY), 6)},
            "log_hazard_ratios": {"first_order_late": round(_BETA_LATE, 6), "is_member": round(_BETA_MEMBER, 6),
                                  "loyalty_per_sd": _BETA_LOYALTY},
            "drivers_note": ("Only first_order_late, is_member and latent loyalty drive the churn time; "
                             "segment, channel, region, age, source, contacts do not."),
            "p_first_order_late": _P_FIRST_LATE,
            "p_member": _P_MEMBER,
            "registration": (f"uniform over the first {int(_REG_WINDOW * 100)}% of the window; "
                             "first order within ~1 day"),
            "recommended_inactivity_days": _INACTIVITY_DAYS,
            "max_segment_mean_gap_days": max(seg_gap.values()),
            "label_recipe": ("last = last completed order; event = (data end - last) > inactivity_days; "
                             "duration = last - first completed order in days; data end = max(ordered_at)"),
        },
        "survey": {
            "fraction_of_customers": _SURVEY_FRACTION,
            "exogenous": list(_EXOGENOUS),
            "exogenous_correlation": 0.0,
            "satisfaction_paths": _SAT_PATHS,
            "loyalty_paths": _LOY_PATHS,
            "residual_variances": {"satisfaction": round(_SAT_RESID, 6), "loyalty": round(_LOY_RESID, 6)},
            "standardized": True,
            "indirect_effects": {"trust->satisfaction->loyalty": 0.225,
                                 "service_quality->satisfaction->loyalty": 0.175},
            "items": items_flat,
            "loadings": {i: lam for lst in SURVEY_ITEMS.values() for i, lam, _ in lst},
            "reverse_coded": [i for lst in SURVEY_ITEMS.values() for i, _, r in lst if r],
            "likert": "1-7, thresholds on loading*latent + sqrt(1-loading^2)*noise (+ construct shift); "
                      "reverse-coded items stored as 8 - answer",
            "p_missing": _P_ITEM_MISSING,
        },
        "segments": {
            "k": len(SEGMENTS),
            "params": SEGMENTS,
            "mean_gap_days": seg_gap,
            "gap_distribution": f"gamma, shape {_GAP_SHAPE:g}; customer rate multiplier lognormal sd {_RATE_SPREAD}",
            "quantity": "1 + Poisson(extra_qty) per line",
            "features": ["log(orders per active month)", "log(mean order value)", "mean discount_rate"],
            "feature_recipe": ("completed orders only, customers with >= 3 completed orders; orders per active "
                               "month = (n - 1) / ((last - first) days / 30.4375); order value = "
                               "sum(quantity * unit_price); standardise, KMeans"),
            "independent_of": ["churn time", "basket composition", "latent traits", "membership"],
        },
        "realism": {
            "status_p_after_first_order": dict(zip(("completed", "cancelled", "returned"), _STATUS_P)),
            "first_order_status": "completed",
            "promised_days": "uniform integer 2-5",
            "p_late": _P_LATE,
            "late_delivery_days": "promised + 1 + Geometric(0.5) - 1",
            "on_time_delivery_days": "promised, or promised - 1 with probability 0.35 (min 1)",
            "cancelled_delivery_days": "missing",
            "returned_lines": "positive quantities; status 'returned' marks the whole order as sent back",
            "p_member": _P_MEMBER,
            "channel": "P(app) = logistic(0.2 + 0.6*habit - 0.35*(age band index - 2)); order channel = "
                       "customer's channel with probability 0.85",
            "regions": dict(zip(_REGIONS, _REGION_P)),
            "age_bands": dict(zip(_AGE_BANDS, _AGE_P)),
            "acquisition_sources": dict(zip(_SOURCES, _SOURCE_P)),
            "service_contact_p": _CONTACT_P,
            "service_resolved": "P(resolved) = logistic(1.0 + 0.7*service_quality)",
        },
    }


#: Every planted truth with its number (JSON-serialisable; also written to ``truth/planted.json``).
PLANTED: dict[str, Any] = _planted()


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

def _ids(prefix: str, start: int, n: int, width: int) -> pd.Series:
    """``prefix`` + zero-padded integers ``start .. start+n-1`` as ``string[pyarrow]``."""
    nums = pc.cast(pa.array(np.arange(start, start + n, dtype=np.int64)), pa.string())
    arr = pc.binary_join_element_wise(prefix, pc.utf8_lpad(nums, width=width, padding="0"), "")
    return pd.Series(pd.arrays.ArrowStringArray(arr.cast(pa.large_string())), dtype=schema.ID)


def _take_ids(ids: pd.Series, index: np.ndarray) -> pd.Series:
    arr = pa.array(ids.array).take(pa.array(index))
    return pd.Series(pd.arrays.ArrowStringArray(arr), dtype=schema.ID)


def _timestamps(start: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    secs = np.round(days * 86400.0).astype(np.int64)
    return (start.value + secs * 1_000_000_000).astype("datetime64[ns]")


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    cs = np.cumsum(values)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    before = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0.0)
    return cs - np.repeat(before, counts)


def _order_days(rng: np.random.Generator, first_day: np.ndarray, horizon: np.ndarray,
                mean_gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order times of a gamma renewal process per customer, strictly before ``horizon``.

    Returns (customer index per order, day per order), first order at ``first_day``.
    """
    n = len(first_day)
    cust_parts, off_parts = [np.arange(n)], [np.zeros(n)]
    reached = np.zeros(n)
    active = np.arange(n)
    while len(active):  # one round almost always suffices; the loop only tops up stragglers
        k = np.ceil((horizon[active] - reached[active]) / mean_gap[active] * 1.5 + 8).astype(np.int64)
        gaps = rng.gamma(_GAP_SHAPE, np.repeat(mean_gap[active] / _GAP_SHAPE, k))
        cum = _group_cumsum(gaps, k) + np.repeat(reached[active], k)
        owner = np.repeat(active, k)
        keep = cum < horizon[owner]
        cust_parts.append(owner[keep])
        off_parts.append(cum[keep])
        reached[active] = cum[np.cumsum(k) - 1]
        active = active[reached[active] < horizon[active]]
    cust_all = np.concatenate(cust_parts)
    day = first_day[cust_all] + np.concatenate(off_parts)
    return cust_all, day


def _inclusions(rng: np.random.Generator, n_draws: int, prob: float) -> np.ndarray:
    """Sorted indices in ``[0, n_draws)`` each included independently with probability ``prob``."""
    if prob <= 0 or n_draws == 0:
        return np.empty(0, dtype=np.int64)
    m = int(n_draws * prob + 6 * math.sqrt(n_draws * prob) + 16)
    pos = np.cumsum(rng.geometric(prob, size=m)) - 1
    parts = [pos]
    while pos[-1] < n_draws - 1:
        pos = pos[-1] + np.cumsum(rng.geometric(prob, size=m))
        parts.append(pos)
    allpos = np.concatenate(parts)
    return allpos[allpos < n_draws]


def _baskets(rng: np.random.Generator, n_orders: int) -> tuple[np.ndarray, np.ndarray]:
    """Basket lines for ``n_orders`` non-empty baskets: (order index, product index), sorted."""
    n_prod = len(_P_BASE)
    order_parts, prod_parts = [], []
    have = 0
    while have < n_orders:
        need = n_orders - have
        m = int(math.ceil(need / _P_NONEMPTY * 1.01)) + 64
        codes = []
        for j in range(n_prod):
            codes.append(_inclusions(rng, m, float(_P_BASE[j])) * n_prod + j)
        for k, idx in enumerate(_BUNDLE_IDX):
            d = _inclusions(rng, m, float(_BUNDLE_PI[k]))
            codes.append((d[:, None] * n_prod + idx[None, :]).ravel())
        code = np.concatenate(codes)
        code.sort()
        code = code[np.concatenate(([True], code[1:] != code[:-1]))]  # a bundle item may also be drawn alone
        draw, prod = code // n_prod, code % n_prod
        new_draw = np.concatenate(([True], draw[1:] != draw[:-1]))
        rank = np.cumsum(new_draw) - 1  # 0, 1, ... over non-empty draws, in draw order
        sel = rank < need  # keep the first `need` non-empty draws
        order_parts.append(rank[sel] + have)
        prod_parts.append(prod[sel])
        nonempty = np.flatnonzero(new_draw)[:need]
        have += len(nonempty)
    return np.concatenate(order_parts), np.concatenate(prod_parts)


def _likert(rng: np.random.Generator, latent: np.ndarray, loading: float, shift: float) -> np.ndarray:
    y = loading * latent + math.sqrt(1 - loading ** 2) * rng.standard_normal(len(latent)) + shift
    return (1 + np.searchsorted(_LIKERT_CUTS, y)).astype(float)


class _Counters:
    def __init__(self) -> None:
        self.customers = self.orders = self.contacts = self.respondents = 0


def _chunk(ss: np.random.SeedSequence, n: int, ctr: _Counters, start: pd.Timestamp,
           window_days: float) -> dict[str, pd.DataFrame]:
    """Generate one chunk of ``n`` customers with everything they do.

    Customers, orders, baskets, service contacts and survey answers each draw from their own
    child stream of ``ss``, so changing one mechanism does not reshuffle the others.
    """
    T = window_days
    rng, rng_o, rng_b, rng_s, rng_v = (np.random.default_rng(c) for c in ss.spawn(5))
    # ---- customers and latent traits --------------------------------------------------
    seg = rng.choice(len(_SEG_NAMES), size=n, p=_SEG_SHARE)
    exo = rng.standard_normal((n, len(_EXOGENOUS)))
    trust, quality, cost, habit, ent = exo.T
    sat = 0.45 * trust + 0.35 * quality + math.sqrt(_SAT_RESID) * rng.standard_normal(n)
    loy = (0.50 * sat + 0.25 * habit - 0.20 * cost + 0.10 * ent
           + math.sqrt(_LOY_RESID) * rng.standard_normal(n))
    member = rng.random(n) < _P_MEMBER
    first_late = rng.random(n) < _P_FIRST_LATE
    reg_day = rng.uniform(0.0, _REG_WINDOW * T, size=n)
    first_day = reg_day + np.minimum(rng.exponential(0.5, size=n), 3.0)
    hazard = _BASE_HAZARD * np.exp(_BETA_LATE * first_late + _BETA_MEMBER * member + _BETA_LOYALTY * loy)
    tau = rng.exponential(1.0 / hazard)
    region = rng.choice(len(_REGIONS), size=n, p=_REGION_P)
    age = rng.choice(len(_AGE_BANDS), size=n, p=_AGE_P)
    source = rng.choice(len(_SOURCES), size=n, p=_SOURCE_P)
    app = rng.random(n) < _logistic(0.2 + 0.6 * habit - 0.35 * (age - 2))
    rate_mult = np.exp(_RATE_SPREAD * rng.standard_normal(n))
    mean_gap = DAYS_PER_MONTH / (_SEG_RATE[seg] * rate_mult)
    dm = _SEG_DISC[seg]
    disc_c = rng.beta(dm * _DISC_CONC_CUSTOMER, (1 - dm) * _DISC_CONC_CUSTOMER)

    cust_ids = _ids("C", ctr.customers + 1, n, 7)
    channel = np.where(app, "app", "web")
    customers = pd.DataFrame({
        "customer_id": cust_ids,
        "registered_at": _timestamps(start, reg_day),
        "channel": channel,
        "region": np.asarray(_REGIONS)[region],
        "age_band": np.asarray(_AGE_BANDS)[age],
        "acquisition_source": np.asarray(_SOURCES)[source],
        "is_member": member,
    })

    # ---- orders -------------------------------------------------------------------------
    horizon = np.minimum(tau, T - first_day)
    o_cust, o_day = _order_days(rng_o, first_day, horizon, mean_gap)
    is_first = np.zeros(len(o_cust), dtype=bool)
    is_first[:n] = True  # _order_days puts each customer's first order first
    order = np.lexsort((o_cust, o_day))
    o_cust, o_day, is_first = o_cust[order], o_day[order], is_first[order]
    m = len(o_cust)
    status = rng_o.choice(3, size=m, p=_STATUS_P)
    status[is_first] = 0
    promised = rng_o.integers(2, 6, size=m).astype(float)
    late = rng_o.random(m) < _P_LATE
    late[is_first] = first_late[o_cust[is_first]]
    delay = rng_o.geometric(0.5, size=m).astype(float)
    early = (rng_o.random(m) < 0.35).astype(float)
    delivery = np.where(late, promised + delay, np.maximum(promised - early, 1.0))
    delivery[status == 1] = np.nan
    dc = disc_c[o_cust]
    discount = np.round(rng_o.beta(dc * _DISC_CONC_ORDER, (1 - dc) * _DISC_CONC_ORDER), 2)
    same_channel = rng_o.random(m) < 0.85
    o_app = np.where(same_channel, app[o_cust], ~app[o_cust])
    order_ids = _ids("O", ctr.orders + 1, m, 9)
    statuses = np.asarray(schema.ORDER_STATUSES)
    orders = pd.DataFrame({
        "order_id": order_ids,
        "customer_id": _take_ids(cust_ids, o_cust),
        "ordered_at": _timestamps(start, o_day),
        "status": statuses[status],
        "promised_days": promised,
        "delivery_days": delivery,
        "discount_rate": discount,
        "channel": np.where(o_app, "app", "web"),
    })

    # ---- order items ------------------------------------------------------------------------
    l_order, l_prod = _baskets(rng_b, m)
    line_no = _group_cumsum(np.ones(len(l_order)), np.bincount(l_order, minlength=m)).astype(np.int64)
    qty = 1.0 + rng_b.poisson(_SEG_QTY[seg[o_cust[l_order]]]).astype(float)
    items = pd.DataFrame({
        "order_id": _take_ids(order_ids, l_order),
        "line_no": line_no,
        "product_id": _take_ids(pd.Series(_PRODUCTS["product_id"], dtype=schema.ID), l_prod),
        "quantity": qty,
        "unit_price": _PRODUCTS["list_price"].to_numpy()[l_prod],
        "source_row": np.full(len(l_order), np.nan),
    })

    # ---- service contacts --------------------------------------------------------------
    was_late = late & (status != 1)
    p_contact = (_CONTACT_P["base"] + _CONTACT_P["late"] * was_late
                 + _CONTACT_P["returned"] * (status == 2) + _CONTACT_P["cancelled"] * (status == 1))
    contact = rng_s.random(m) < np.minimum(p_contact, 0.95)
    u = rng_s.random(m)
    routine = rng_s.integers(0, len(_ROUTINE_REASONS), size=m)
    lag = rng_s.exponential(1.5, size=m)
    ci = np.flatnonzero(contact)
    base_share = _CONTACT_P["base"] / p_contact[ci]
    is_routine = u[ci] < base_share
    reason = np.where(status[ci] == 2, "return",
                      np.where(status[ci] == 1, "cancellation",
                               np.where(was_late[ci], "late delivery", "product question")))
    reason = np.where(is_routine, np.asarray(_ROUTINE_REASONS)[routine[ci]], reason)
    c_day = o_day[ci] + np.where(status[ci] == 1, 0.2, np.nan_to_num(delivery[ci], nan=0.0)) + lag[ci]
    c_cust = o_cust[ci]
    resolved_draw = rng_s.random(m)[ci] < _logistic(1.0 + 0.7 * quality[c_cust])
    inside = c_day < T
    c_order = np.argsort(c_day[inside], kind="stable")
    c_day, c_cust = c_day[inside][c_order], c_cust[inside][c_order]
    reason, resolved_draw = reason[inside][c_order], resolved_draw[inside][c_order]
    k = len(c_day)
    contacts = pd.DataFrame({
        "contact_id": _ids("S", ctr.contacts + 1, k, 8),
        "customer_id": _take_ids(cust_ids, c_cust),
        "contacted_at": _timestamps(start, c_day),
        "reason": reason,
        "resolved": resolved_draw,
    })

    # ---- survey ----------------------------------------------------------------------------
    resp = np.flatnonzero(rng_v.random(n) < _SURVEY_FRACTION)
    r = len(resp)
    latent = {"trust": trust, "service_quality": quality, "perceived_cost": cost, "habit": habit,
              "entertainment": ent, "satisfaction": sat, "loyalty": loy}
    ans_day = reg_day[resp] + rng_v.random(r) * (T - reg_day[resp])
    survey: dict[str, Any] = {
        "respondent_id": _ids("R", ctr.respondents + 1, r, 7),
        "customer_id": _take_ids(cust_ids, resp),
        "answered_at": _timestamps(start, ans_day),
    }
    for construct, item_list in SURVEY_ITEMS.items():
        for name, lam, rev in item_list:
            x = _likert(rng_v, latent[construct][resp], lam, _ITEM_SHIFT[construct])
            if rev:
                x = 8.0 - x
            x[rng_v.random(r) < _P_ITEM_MISSING] = np.nan
            survey[name] = x
    survey_df = pd.DataFrame(survey)

    # ---- truth ----------------------------------------------------------------------------
    is_resp = np.zeros(n, dtype=bool)
    is_resp[resp] = True
    truth = pd.DataFrame({
        "customer_id": cust_ids,
        "segment": pd.Categorical(np.asarray(_SEG_NAMES)[seg], categories=_SEG_NAMES),
        "trust": trust, "service_quality": quality, "perceived_cost": cost, "habit": habit,
        "entertainment": ent, "satisfaction": sat, "loyalty": loy,
        "first_order_late": first_late,
        "is_member": member,
        "first_order_at": _timestamps(start, first_day),
        "churn_days": tau,
        "churn_at": _timestamps(start, first_day + np.minimum(tau, 50 * 365.25)),
        "churned_in_window": first_day + tau < T,
        "orders_per_month": DAYS_PER_MONTH / mean_gap,
        "mean_discount_propensity": disc_c,
        "is_respondent": is_resp,
    })

    ctr.customers += n
    ctr.orders += m
    ctr.contacts += k
    ctr.respondents += r
    with pd.option_context("mode.string_storage", "pyarrow"):
        out = {
            "customers": schema.coerce_table(customers, "customers"),
            "products": None,
            "orders": schema.coerce_table(orders, "orders"),
            "order_items": schema.coerce_table(items, "order_items"),
            "survey_responses": schema.coerce_table(survey_df, "survey_responses"),
            "service_contacts": schema.coerce_table(contacts, "service_contacts"),
        }
    out["truth"] = truth
    return out


def _window(start: str | pd.Timestamp, months: int) -> tuple[pd.Timestamp, float]:
    t0 = pd.Timestamp(start).normalize()
    t1 = t0 + pd.DateOffset(months=int(months))
    return t0, float((t1 - t0).days)


def products_table() -> pd.DataFrame:
    """The canonical ``products`` table (fixed catalogue)."""
    with pd.option_context("mode.string_storage", "pyarrow"):
        return schema.coerce_table(_PRODUCTS, "products")


def iter_chunks(n_customers: int = 5000, months: int = 24, seed: int = DEFAULT_SEED,
                start: str = "2023-01-01", chunk_size: int = DEFAULT_CHUNK_SIZE,
                progress: bool = False) -> Iterator[dict[str, pd.DataFrame]]:
    """Yield the tables chunk by chunk (bounded memory).

    Parameters
    ----------
    n_customers, months, seed, start :
        As in :func:`generate`.
    chunk_size : int
        Customers per chunk. Part of the determinism key (see the module notes).
    progress : bool
        Show a tqdm progress bar over customers.

    Yields
    ------
    dict
        ``customers``, ``orders``, ``order_items``, ``survey_responses``, ``service_contacts``
        (canonical) and ``truth`` (one row per customer) for one chunk; ``products`` is
        ``None`` (use :func:`products_table`). Ids continue across chunks.
    """
    if n_customers < 1:
        raise ParameterError(f"n_customers must be at least 1 (got {n_customers}).")
    if months < 3:
        raise ParameterError(f"months must be at least 3 so customers can order and churn (got {months}).")
    if chunk_size < 1:
        raise ParameterError(f"chunk_size must be positive (got {chunk_size}).")
    t0, T = _window(start, months)
    n_chunks = math.ceil(n_customers / chunk_size)
    root = np.random.SeedSequence(seed).spawn(2)[1]
    streams = root.spawn(n_chunks)
    ctr = _Counters()
    if progress:
        from tqdm.auto import tqdm  # lazy: tqdm.auto imports IPython to detect a notebook; only for a bar

        bar = tqdm(total=n_customers, unit="customer", desc="sample")
    else:
        bar = nullcontext()
    with bar:
        for i, ss in enumerate(streams):
            n = min(chunk_size, n_customers - i * chunk_size)
            yield _chunk(ss, n, ctr, t0, T)
            if progress:
                bar.update(n)


def generate(n_customers: int = 5000, months: int = 24, seed: int = DEFAULT_SEED,
             start: str = "2023-01-01", progress: bool = False, *,
             chunk_size: int = DEFAULT_CHUNK_SIZE, truth: bool = False,
             validate: bool = True) -> dict[str, pd.DataFrame]:
    """Generate the canonical tables of a synthetic online shop.

    Parameters
    ----------
    n_customers : int, default 5000
        Number of customers (registrations staggered over the first 90% of the window).
    months : int, default 24
        Length of the data window, starting at ``start``.
    seed : int, default 20240101
        Master seed; the same arguments give identical tables.
    start : str, default "2023-01-01"
        First day of the window.
    progress : bool, default False
        Show a tqdm progress bar.
    chunk_size : int, default 20000
        Customers per chunk (see the module notes on determinism).
    truth : bool, default False
        Also return ``customers_truth`` (planted segment, latent traits, true churn time).
    validate : bool, default True
        Run :func:`ecrm_research.data.schema.validate_tables` on the result.

    Returns
    -------
    dict of DataFrame
        ``customers``, ``products``, ``orders``, ``order_items``, ``survey_responses``,
        ``service_contacts`` with canonical columns and dtypes (+ ``customers_truth``).

    See Also
    --------
    PLANTED : the planted truths and their numbers.
    write_sample : write the tables as Parquet with the truths.
    """
    parts: dict[str, list[pd.DataFrame]] = {}
    for ch in iter_chunks(n_customers, months, seed, start, chunk_size, progress):
        for name, df in ch.items():
            if df is not None:
                parts.setdefault(name, []).append(df)
    out = {"customers": None, "products": products_table()}
    for name, frames in parts.items():
        df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        out["customers_truth" if name == "truth" else name] = df
    tables = {n: out[n] for n in TABLE_ORDER}
    if validate:
        schema.validate_tables(tables)
    if truth:
        tables["customers_truth"] = out["customers_truth"]
    return tables


def _to_arrow(df: pd.DataFrame, schema_: pa.Schema | None = None) -> pa.Table:
    t = pa.Table.from_pandas(df, preserve_index=False)
    if schema_ is not None and not t.schema.equals(schema_):
        t = t.cast(schema_)
    return t


_PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 9, "use_dictionary": True,
                    "write_statistics": True}


def write_sample(out_dir: str | Path | None = None, n_customers: int = 5000, months: int = 24,
                 seed: int = DEFAULT_SEED, progress: bool = False, *, start: str = "2023-01-01",
                 chunk_size: int = DEFAULT_CHUNK_SIZE, validate: bool = True) -> dict[str, Path]:
    """Write the sample as Parquet, chunk by chunk, with the planted truths.

    Parameters
    ----------
    out_dir : path, optional
        Target folder (default :data:`ecrm_research.paths.SAMPLE_DIR`). Receives
        ``<table>.parquet`` for the six canonical tables, ``truth/customers_truth.parquet``
        and ``truth/planted.json`` (= :data:`PLANTED`).
    n_customers, months, seed, progress, start, chunk_size :
        As in :func:`generate`.
    validate : bool, default True
        Validate each chunk with :func:`ecrm_research.data.schema.validate_tables` before writing
        (key uniqueness is checked within a chunk; ids never repeat across chunks).

    Returns
    -------
    dict of Path
        Table name (and ``customers_truth``, ``planted``) to the written file.

    Notes
    -----
    Files are written deterministically (fixed zstd level, no timestamps in the metadata), so
    the same arguments give byte-identical files with the same library versions. Memory is
    bounded by one chunk of ``chunk_size`` customers.
    """
    out = Path(out_dir) if out_dir is not None else paths.SAMPLE_DIR
    (out / "truth").mkdir(parents=True, exist_ok=True)
    files = {n: out / f"{n}.parquet" for n in TABLE_ORDER}
    files["customers_truth"] = out / "truth" / "customers_truth.parquet"
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        pq.write_table(_to_arrow(products_table()), files["products"], **_PARQUET_OPTIONS)
        for ch in iter_chunks(n_customers, months, seed, start, chunk_size, progress):
            ch["products"] = products_table()
            if validate:
                schema.validate_tables({k: v for k, v in ch.items() if k != "truth"})
            for name, df in ch.items():
                if name == "products":
                    continue
                key = "customers_truth" if name == "truth" else name
                if key not in writers:
                    t = _to_arrow(df)
                    writers[key] = pq.ParquetWriter(files[key], t.schema, **_PARQUET_OPTIONS)
                else:
                    t = _to_arrow(df, writers[key].schema)
                writers[key].write_table(t, row_group_size=1 << 20)
    finally:
        for w in writers.values():
            w.close()
    files["planted"] = out / "truth" / "planted.json"
    files["planted"].write_text(json.dumps(PLANTED, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return files
