"""Mining engines of ecrm_research.association: identical results on every engine, the encoding,
the memory guard and the progress bar.

Engines: 'mlxtend' (reference, always installed), 'fim' (pyfim, optional) and 'spark' (pyspark,
optional; tests marked ``spark``). Locally a missing optional engine skips its tests; in CI
(CI=true or ECRM_REQUIRE_DATASETS=1) it fails, so that CI never passes without testing them.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pandas as pd
import pytest
from conftest import skip_or_fail

from ecrm_research import association as ar
from ecrm_research.association import encoding, memory
from ecrm_research.exceptions import AnalysisError, ParameterError
from ecrm_research.prep import baskets as prep_baskets


def _need(engine: str) -> str:
    if engine not in ar.available_engines():
        msg = {"fim": "pyfim is not installed (pip install pyfim; needs a C compiler)",
               "spark": "pyspark is not installed (pip install pyspark; needs Java 17+)"}[engine]
        skip_or_fail(f"engine '{engine}' must be tested in CI: {msg}")
    return engine


LOCAL_ENGINES = ["mlxtend", "fim"]


@pytest.fixture(params=LOCAL_ENGINES)
def engine(request) -> str:
    return _need(request.param)


@pytest.fixture(scope="module")
def spark() -> str:
    """The spark engine on local[2]; the session is started once and reused by the module."""
    return _need("spark")


def assert_same(a: ar.RuleMiningResult, b: ar.RuleMiningResult) -> None:
    """Same itemsets (sets and counts, same order) and same rules with metrics equal to 1e-9."""
    assert a.n_transactions == b.n_transactions
    pd.testing.assert_frame_equal(a.itemsets[["itemsets", "count", "length"]],
                                  b.itemsets[["itemsets", "count", "length"]], check_exact=True)
    ra, rb = a.rules, b.rules
    assert len(ra) == len(rb)
    for c in ("antecedents", "consequents", "count", "antecedent_count", "consequent_count", "length"):
        assert ra[c].tolist() == rb[c].tolist(), c
    for c in ("support", "confidence", "lift", "leverage", "conviction", "zhangs_metric"):
        np.testing.assert_allclose(ra[c].to_numpy(float), rb[c].to_numpy(float), rtol=0, atol=1e-9, err_msg=c)


# ---------------------------------------------------------------------------------------------
# a brute-force reference on small random baskets
# ---------------------------------------------------------------------------------------------

def brute_force(baskets: list[list[str]], min_count: int, max_len: int) -> dict[frozenset, int]:
    counts: dict[frozenset, int] = {}
    for basket in baskets:
        items = sorted(set(basket))
        for k in range(1, min(max_len, len(items)) + 1):
            for combo in itertools.combinations(items, k):
                key = frozenset(combo)
                counts[key] = counts.get(key, 0) + 1
    return {k: v for k, v in counts.items() if v >= min_count}


def random_baskets(seed: int) -> list[list[str]]:
    rnd = random.Random(seed)
    items = [f"p{i:02d}" for i in range(14)]
    weights = [1 / (i + 1) for i in range(14)]
    out = []
    for _ in range(rnd.randint(40, 90)):
        basket = rnd.choices(items, weights, k=rnd.randint(0, 7))  # duplicates and empty baskets
        out.append(["always"] + basket)  # one item in every basket (pyfim leaves those out without help)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("min_count, max_len", [(2, 3), (5, 4), (9, 10)])
def test_engines_match_brute_force_counts(engine, seed, min_count, max_len):
    baskets = random_baskets(seed)
    n = len(baskets)
    fi = ar.frequent_itemsets(prep_baskets.baskets_from_lists(baskets), min_count / n, max_len, engine=engine)
    assert fi.attrs["min_count"] == min_count and fi.attrs["engine"] == engine
    assert dict(zip(fi["itemsets"], fi["count"])) == brute_force(baskets, min_count, max_len)


def test_fim_finds_itemsets_of_items_in_every_basket():
    """pyfim 6.28: fim.fpgrowth([[0, 1], [0, 1]], supp=-2) returns []; the engine must still find {a, b}."""
    _need("fim")
    res = ar.mine_rules([["a", "b"], ["a", "b", "c"]], min_support=1.0, min_confidence=0.5, engine="fim")
    assert dict(zip(res.itemsets["itemsets"], res.itemsets["count"])) == {
        frozenset({"a"}): 2, frozenset({"b"}): 2, frozenset({"a", "b"}): 2}
    assert len(res.rules) == 2


def test_support_threshold_is_inclusive_at_the_exact_count(engine):
    # 30 baskets; min_support 0.1 -> ceil(3.0000000000000004) must be 3, not 4
    baskets = [["x", "y"]] * 3 + [["x", "z"]] * 2 + [["w"]] * 25
    fi = ar.frequent_itemsets(baskets, 0.1, 2, engine=engine)
    got = dict(zip(fi["itemsets"], fi["count"]))
    assert fi.attrs["min_count"] == 3
    assert got[frozenset({"x", "y"})] == 3 and frozenset({"x", "z"}) not in got


# ---------------------------------------------------------------------------------------------
# parity on Groceries (R arules) and on the bundled sample data
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def groceries(groceries_csv) -> pd.DataFrame:
    lines = groceries_csv.read_text(encoding="utf-8").splitlines()
    return prep_baskets.baskets_from_lists([line.split(",") for line in lines])


@pytest.fixture(scope="module")
def groceries_reference(groceries) -> ar.RuleMiningResult:
    return ar.mine_rules(groceries, 0.001, 0.5, engine="mlxtend")


@pytest.mark.realdata
def test_groceries_same_rules_on_every_local_engine(groceries, groceries_reference):
    """R: apriori(Groceries, parameter = list(supp = 0.001, conf = 0.5)) -> 5668 rules (13,492 itemsets)."""
    assert len(groceries_reference.rules) == 5668 and len(groceries_reference.itemsets) == 13492
    res = ar.mine_rules(groceries, 0.001, 0.5, engine=_need("fim"))
    assert res.engine == "fim" and res.params["engine"] == "fim"
    assert_same(res, groceries_reference)


@pytest.mark.realdata
@pytest.mark.spark
def test_groceries_same_rules_on_spark(groceries, groceries_reference, spark):
    res = ar.mine_rules(groceries, 0.001, 0.5, engine=spark)
    assert res.engine == "spark"
    assert_same(res, groceries_reference)


@pytest.fixture(scope="module")
def sample_baskets(sample_dir) -> pd.DataFrame:
    return prep_baskets.load_baskets(str(sample_dir), "canonical").baskets


@pytest.fixture(scope="module")
def sample_reference(sample_baskets) -> ar.RuleMiningResult:
    return ar.mine_rules(sample_baskets, 0.002, 0.1, 4, engine="mlxtend")


def test_sample_same_rules_on_every_local_engine(sample_baskets, sample_reference):
    assert len(sample_reference.rules) > 50
    assert_same(ar.mine_rules(sample_baskets, 0.002, 0.1, 4, engine=_need("fim")), sample_reference)


@pytest.mark.spark
def test_sample_same_rules_on_spark(sample_baskets, sample_reference, spark):
    assert_same(ar.mine_rules(sample_baskets, 0.002, 0.1, 4, engine=spark), sample_reference)


@pytest.mark.spark
def test_spark_min_support_fraction_gives_the_exact_count(spark):
    """Spark keeps freq >= ceil(minSupport * rows) of *its* rows; the engine must land on our count."""
    baskets = [["x", "y"]] * 3 + [["x", "z"]] * 2 + [["x"]] * 7 + [["w"]] * 18  # 30 baskets, 5 with 2+ items
    fi = ar.frequent_itemsets(baskets, 0.1, 2, engine=spark)
    got = dict(zip(fi["itemsets"], fi["count"]))
    assert got[frozenset({"x", "y"})] == 3 and frozenset({"x", "z"}) not in got
    ref = ar.frequent_itemsets(baskets, 0.1, 2, engine="mlxtend")
    assert fi[["itemsets", "count"]].equals(ref[["itemsets", "count"]])


# ---------------------------------------------------------------------------------------------
# engine choice
# ---------------------------------------------------------------------------------------------

def test_auto_picks_fim_when_installed():
    expected = "fim" if "fim" in ar.available_engines() else "mlxtend"
    assert ar.resolve_engine("auto") == expected
    assert ar.mine_rules([["a", "b"], ["a", "b"]], 0.5, 0.5).engine == expected


def test_auto_with_a_spark_master_means_spark():
    if "spark" not in ar.available_engines():
        with pytest.raises(ParameterError, match="pip install pyspark"):
            ar.resolve_engine("auto", "local[2]")
    else:
        assert ar.resolve_engine("auto", "local[2]") == "spark"


def test_unknown_engine_is_rejected():
    with pytest.raises(ParameterError, match="engine='arules'"):
        ar.frequent_itemsets([["a"]], 0.5, engine="arules")


def test_mlxtend_engine_never_builds_mlxtends_dense_item_counts(monkeypatch):
    """mlxtend's setup_fptree sums df.values: a dense baskets x items array. The engine must not call it."""
    from mlxtend.frequent_patterns import fpcommon

    def boom(*args, **kwargs):
        raise AssertionError("setup_fptree densifies the one-hot frame")

    monkeypatch.setattr(fpcommon, "setup_fptree", boom)
    b = ar.synthetic_baskets(5_000, 300, seed=1)
    fi = ar.frequent_itemsets(b, 0.005, 3, engine="mlxtend")
    assert (fi["length"] > 1).any()


# ---------------------------------------------------------------------------------------------
# encoding
# ---------------------------------------------------------------------------------------------

def _naive_encoding(b: pd.DataFrame, min_count: int) -> dict:
    pairs = b.dropna(subset=["item"]).drop_duplicates(["basket_id", "item"])
    counts = pairs["item"].value_counts()
    frequent = set(counts[counts >= min_count].index)
    return {bid: frozenset(g["item"]) & frequent for bid, g in b.groupby("basket_id", sort=False)}


@pytest.mark.parametrize("ids", ["sorted-int", "shuffled-int", "str"])
def test_encoding_matches_a_naive_groupby(ids):
    b = ar.synthetic_baskets(3_000, 200, 5.0, seed=7)
    b = pd.concat([b, b.iloc[::5]])  # duplicate rows: an item twice in a basket counts once
    b = pd.concat([b, pd.DataFrame({"basket_id": [10**6], "item": [None]})])  # an empty basket
    if ids == "shuffled-int":
        b = b.sample(frac=1.0, random_state=3)
    elif ids == "str":
        b = b.assign(basket_id="o" + b["basket_id"].astype(str)).sample(frac=1.0, random_state=3)
    b = b.reset_index(drop=True)
    enc = encoding.integer_encode(b, min_count=30, want_index=True)
    assert enc.n_baskets == b["basket_id"].nunique() == 3001
    got = {bid: frozenset(enc.items[enc.indices[enc.indptr[i]:enc.indptr[i + 1]]])
           for i, bid in enumerate(enc.basket_index)}
    assert got == _naive_encoding(b, 30)
    assert list(enc.items) == sorted(enc.items, key=str)
    assert enc.counts.tolist() == [sum(it in s for s in got.values()) for it in enc.items]


def test_transactions_drop_baskets_too_small_to_hold_a_pair():
    b = prep_baskets.baskets_from_lists([["a", "b", "c"], ["a"], [], ["b", "c"]])
    enc = encoding.integer_encode(b, min_count=1)
    tracts = sorted(sorted(enc.items[t].tolist()) for t in enc.transactions(2))
    assert tracts == [["a", "b", "c"], ["b", "c"]]


def test_synthetic_baskets_are_zipf_and_about_four_items():
    b = ar.synthetic_baskets(20_000, 1_000, seed=1)
    sizes = b.groupby("basket_id").size()
    assert len(sizes) == 20_000 and 3.5 < sizes.mean() < 4.0
    freq = b["item"].value_counts()
    assert freq.index[0] == "i000" and 1.6 < freq.iloc[0] / freq.iloc[1] < 2.4  # p1/p2 = 2 under Zipf(1)


# ---------------------------------------------------------------------------------------------
# guards
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_20k() -> pd.DataFrame:
    return ar.synthetic_baskets(20_000, 2_000, seed=5)


def test_memory_guard_refuses_with_a_threshold_that_fits(engine, synthetic_20k):
    need = ar.estimate_mining_memory(synthetic_20k, 0.001, 3, engine=engine)
    assert need.attrs["engine"] == engine and (need > 0).all()
    limit = float(need.sum()) * 0.6
    with pytest.raises(AnalysisError, match=r"Mining would need about .* GB .* raise min_support \(min_support=") as e:
        ar.frequent_itemsets(synthetic_20k, 0.001, 3, engine=engine, max_memory_gb=limit)
    assert e.value.needed_gb > limit and e.value.suggested_min_support > 0.001
    fi = ar.frequent_itemsets(synthetic_20k, e.value.suggested_min_support, 3, engine=engine, max_memory_gb=limit)
    assert fi.attrs["memory_estimate_gb"] <= limit


def test_default_memory_limit_is_a_share_of_available_memory(synthetic_20k):
    fi = ar.frequent_itemsets(synthetic_20k, 0.01, 3)
    assert 0 < fi.attrs["memory_estimate_gb"] < ar.DEFAULT_MEMORY_SHARE * memory.available_memory_bytes() / 1e9
    with pytest.raises(ParameterError, match="max_memory_gb"):
        ar.frequent_itemsets(synthetic_20k, 0.01, 3, max_memory_gb=0)


def test_itemset_guard_stops_every_local_engine(engine):
    # 40 baskets of the same 12 items: 2^12 - 1 = 4095 frequent itemsets, the bound says so too
    baskets = [[f"i{j}" for j in range(12)]] * 40
    with pytest.raises(AnalysisError, match="max_itemsets=500"):
        ar.frequent_itemsets(baskets, 0.5, None, max_itemsets=500, engine=engine)
    assert len(ar.frequent_itemsets(baskets, 0.5, None, max_itemsets=5000, engine=engine)) == 4095


def test_itemset_guard_counts_exactly_when_the_bound_is_loose():
    """Groceries-like: a few big baskets make the bound huge; pyfim counts exactly before storing."""
    _need("fim")
    rng = np.random.default_rng(0)
    baskets = [list(rng.choice(60, size=30, replace=False).astype(str)) for _ in range(5)]
    baskets += [list(rng.choice(60, size=3, replace=False).astype(str)) for _ in range(400)]
    b = prep_baskets.baskets_from_lists(baskets)
    enc = encoding.integer_encode(b, 0.01)
    assert ar.estimate_itemset_count(enc.sizes, len(enc.items), enc.min_count, 10) > 10_000
    fi = ar.frequent_itemsets(b, 0.01, 10, max_itemsets=10_000, engine="fim")
    assert len(fi) < 10_000
    assert fi[["itemsets", "count"]].equals(
        ar.frequent_itemsets(b, 0.01, 10, max_itemsets=10_000, engine="mlxtend")[["itemsets", "count"]])


# ---------------------------------------------------------------------------------------------
# progress and reporting
# ---------------------------------------------------------------------------------------------

def test_progress_bar_shows_the_stages(capsys):
    res = ar.mine_rules(ar.synthetic_baskets(2_000, 100, seed=2), 0.01, 0.2, 3, progress=True)
    err = capsys.readouterr().err
    assert f"association rules ({res.engine})" in err and "done" in err
    assert list(res.timings) == ["encode baskets", f"mine itemsets ({res.engine})", "label itemsets", "derive rules"]
    assert res.seconds >= sum(res.timings.values()) * 0.99


def test_no_progress_output_by_default(capsys):
    ar.mine_rules([["a", "b"], ["a", "b"]], 0.5, 0.5)
    assert capsys.readouterr().err == ""
