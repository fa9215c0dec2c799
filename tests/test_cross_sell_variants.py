"""Cross-sell a merchandiser would accept: variants of one product set aside, ranked by expected value.

Variants are the same description apart from a colour or size word, or one stock-code stem
(``ecrm_research.association.variants``); the cross-sell table ranks significant rules by expected extra
baskets, count(A) · (confidence − support(B)) (``ecrm_research.association.crm.cross_sell_table``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ecrm_research import association as ar
from ecrm_research import prep
from ecrm_research.data import quality
from ecrm_research.exceptions import ParameterError
from ecrm_research.paths import MAPPINGS_DIR
from ecrm_research.prep.baskets import baskets_from_orders

# --------------------------------------------------------------------------- variants of one product


@pytest.mark.parametrize(("a", "b", "why"), [
    ("ALARM CLOCK BAKELIKE RED", "ALARM CLOCK BAKELIKE GREEN", "colour/size of ALARM CLOCK BAKELIKE"),
    ("PINK REGENCY TEACUP AND SAUCER", "GREEN REGENCY TEACUP AND SAUCER", "colour/size of REGENCY TEACUP AND SAUCER"),
    ("HEART OF WICKER LARGE", "HEART OF WICKER SMALL", "colour/size of HEART OF WICKER"),
    ("Mini Jam Jar  ivory", "jam jar, jumbo, Ivory", "colour/size of JAM JAR"),  # case, punctuation, spaces
    ("light blue mug", "DARK GREEN MUG", "colour/size of MUG"),  # a shade modifier goes with its colour
    ("WHITE HANGING HEART T-LIGHT HOLDER [85123A]", "RED HANGING HEART T-LIGHT HOLDER",
     "colour/size of HANGING HEART T LIGHT HOLDER"),  # the " [code]" of a shared name is no word
    ("RED HEART CUSHION", "CUSHION HEART WHITE", "colour/size of CUSHION HEART"),  # word order does not matter
    ("PARTY BUNTING [47566]", "PARTY BUNTING [21035]", "same description PARTY BUNTING"),
])
def test_colour_and_size_variants_are_found(a, b, why):
    assert ar.variant_family(a, b) == why
    assert bool(ar.variant_family(b, a))  # symmetric (the reason names the second item's family words)


@pytest.mark.parametrize(("a", "b"), [
    ("RED RETROSPOT CAKE STAND", "RED RETROSPOT CHARLOTTE BAG"),  # same colour, different products
    ("JUMBO BAG RED RETROSPOT", "LUNCH BAG RED RETROSPOT"),
    ("ROSES REGENCY TEACUP AND SAUCER", "GREEN REGENCY TEACUP AND SAUCER"),  # a print, not a colour word
    ("LIGHT BULB", "BULB"),  # LIGHT is a family word unless a colour follows
    ("WHITE HANGING HEART T-LIGHT HOLDER", "WHITE HANGING HEART T-DARK HOLDER"),
    ("RED", "GREEN"),  # nothing left but the colour: no family
    ("ALARM CLOCK BAKELIKE RED", "ALARM CLOCK BAKELIKE RED"),  # an item is no variant of itself
    ("22726", "22727"),  # neighbouring stock codes are different products
])
def test_different_products_are_not_variants(a, b):
    assert ar.variant_family(a, b) == ""


@pytest.mark.parametrize(("code", "stem"), [
    ("85123A", "85123"), ("85123b", "85123"), ("15056BL", "15056"), ("47566", "47566"), (" 84029E ", "84029"),
    ("P001", None), ("DCGS0003", None), ("gift_0001_10", None), ("85123ABCD", None), ("", None), (None, None),
    (float("nan"), None), (pd.NA, None),
])
def test_code_stem(code, stem):
    assert ar.code_stem(code) == stem


def test_stock_code_stems_from_labels_suffixes_and_lookups():
    assert ar.variant_family("85123A", "85123B") == "stock code stem 85123"
    assert ar.variant_family("47566", "47566B") == "stock code stem 47566"  # the bare code and its variant
    assert ar.variant_family("15056bl", "15056BL") == "stock code stem 15056"  # two products in the data
    assert ar.variant_family("85099C", "22386") == ""
    # names made unique with their code, and names with a code lookup (Online Retail's jumbo bags)
    assert ar.variant_family("JUMBO BAG STRAWBERRY [85099F]", "JUMBO BAG RED RETROSPOT [85099B]") \
        == "stock code stem 85099"
    codes = {"JUMBO BAG STRAWBERRY": "85099F", "JUMBO BAG RED RETROSPOT": "85099B", "JUMBO BAG APPLES": "22386"}
    assert ar.variant_family("JUMBO BAG STRAWBERRY", "JUMBO BAG RED RETROSPOT", codes=codes) == "stock code stem 85099"
    assert ar.variant_family("JUMBO BAG STRAWBERRY", "JUMBO BAG RED RETROSPOT") == ""  # no codes, no stem
    assert ar.variant_family("JUMBO BAG APPLES", "JUMBO BAG RED RETROSPOT", codes=codes) == ""
    # items labelled by code, with a description lookup: the colour words of the descriptions count
    desc = {"22726": "ALARM CLOCK BAKELIKE GREEN", "22727": "ALARM CLOCK BAKELIKE RED", "22728": pd.NA,
            "22729": None}
    assert ar.variant_family("22726", "22727", descriptions=desc) == "colour/size of ALARM CLOCK BAKELIKE"
    assert ar.variant_family("22728", "22729", descriptions=desc) == ""  # missing descriptions are no family


def test_word_lists_live_in_one_place():
    assert {"RED", "GREEN", "BLUE", "PINK", "BLACK", "WHITE", "IVORY"} <= ar.COLOUR_WORDS
    assert {"SMALL", "LARGE", "MINI", "JUMBO"} <= ar.SIZE_WORDS
    assert not (ar.COLOUR_WORDS & ar.SIZE_WORDS) and not (ar.MODIFIER_WORDS & (ar.COLOUR_WORDS | ar.SIZE_WORDS))
    assert all(w == w.upper() for w in ar.COLOUR_WORDS | ar.SIZE_WORDS | ar.MODIFIER_WORDS)
    assert ar.family_words("Alarm clock Bakelike  light-blue") == ("ALARM", "CLOCK", "BAKELIKE")


def test_item_codes_covers_every_label_the_baskets_can_carry():
    products = pd.DataFrame({"product_id": ["85123A", "85123B", "21035", "47566", "99999"],
                             "product_name": ["WHITE HEART HOLDER", "RED HEART HOLDER", "PARTY BUNTING",
                                              "PARTY BUNTING", None]})
    codes = ar.item_codes(products)
    assert codes["WHITE HEART HOLDER"] == "85123A" and codes["RED HEART HOLDER"] == "85123B"
    assert codes["PARTY BUNTING [21035]"] == "21035" and codes["PARTY BUNTING [47566]"] == "47566"
    assert "PARTY BUNTING" not in codes  # shared by two products: which one is unknown
    assert codes["99999"] == "99999" and codes["85123A"] == "85123A"  # labels that are ids
    labels = baskets_from_orders(_tiny_tables(products))["item"].unique()
    assert set(labels) <= set(codes)  # every label the baskets made from this table is covered


def test_basket_data_carries_the_products_so_every_item_label_has_its_code(sample_dir):
    bd = prep.engine("pandas").baskets(None)
    assert list(bd.products.columns) == ["product_id", "product_name"]
    codes = ar.item_codes(bd.products)
    labels = set(bd.baskets["item"].dropna().astype(str))
    assert labels and labels <= set(codes), sorted(labels - set(codes))[:5]
    assert prep.engine("pandas").baskets(None, item_level="category").products is not None
    assert ar.item_codes(bd.products) == ar.item_codes(prep.engine("pandas").load(None).tables["products"])


def _tiny_tables(products: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Canonical tables with one completed order holding each product."""
    from ecrm_research.data import schema

    ids = list(products["product_id"])
    orders = pd.DataFrame({"order_id": ["o1"], "customer_id": ["c1"], "ordered_at": [pd.Timestamp("2024-01-02")],
                           "status": ["completed"]})
    items = pd.DataFrame({"order_id": ["o1"] * len(ids), "line_no": range(1, len(ids) + 1), "product_id": ids,
                          "quantity": 1.0, "unit_price": 2.0})
    return {"orders": schema.coerce_table(orders, "orders"), "order_items": schema.coerce_table(items, "order_items"),
            "products": schema.coerce_table(products, "products")}


def test_flag_variants_marks_every_rule():
    rules = pd.DataFrame({
        "antecedents": [frozenset({"ALARM CLOCK BAKELIKE RED"}), frozenset({"RED RETROSPOT CAKE STAND"}),
                        frozenset({"SPACEBOY LUNCH BOX", "HEART OF WICKER SMALL"}), frozenset({"85123A"})],
        "consequents": [frozenset({"ALARM CLOCK BAKELIKE GREEN"}), frozenset({"RED RETROSPOT CHARLOTTE BAG"}),
                        frozenset({"HEART OF WICKER LARGE"}), frozenset({"85123B"})]}, index=[10, 11, 12, 13])
    rules.attrs["n_transactions"] = 99
    f = ar.flag_variants(rules)
    assert f["same_product_family"].dtype == bool and list(f.index) == [10, 11, 12, 13]
    assert f["same_product_family"].tolist() == [True, False, True, True]
    assert f["variant_of"].tolist() == ["colour/size of ALARM CLOCK BAKELIKE", "", "colour/size of HEART OF WICKER",
                                        "stock code stem 85123"]
    assert f.attrs["n_transactions"] == 99 and "same_product_family" not in rules  # a copy
    assert ar.flag_variants(rules.iloc[:0])["same_product_family"].dtype == bool
    with pytest.raises(ParameterError, match="antecedents"):
        ar.flag_variants(pd.DataFrame({"item": ["a"]}))


# --------------------------------------------------------------------------- ranking by expected value

N = 1000


def _rule(a: str, c: str, n_ac: int, n_a: int, n_c: int, p: float = 1e-6) -> dict:
    """One planted rule from its counts in N baskets, measures as association_rules computes them."""
    conf = n_ac / n_a
    return {"antecedents": frozenset({a}), "consequents": frozenset({c}), "support": n_ac / N, "confidence": conf,
            "lift": conf / (n_c / N), "count": n_ac, "antecedent_count": n_a, "consequent_count": n_c,
            "consequent_support": n_c / N, "p_adjusted": p}


def _planted() -> pd.DataFrame:
    """A in 100 baskets: B is popular (600 baskets; confidence 0.70, only 0.10 above its base rate), C rare
    (50 baskets; confidence 0.40, 0.35 above). Extra baskets: B 100·0.10 = 10, C 100·0.35 = 35."""
    rows = [_rule("A", "B", 70, 100, 600), _rule("A", "C", 40, 100, 50),
            _rule("A", "D", 12, 100, 30, p=0.2),  # lift 4 but not significant
            _rule("A", "A XL", 30, 100, 40),  # a size variant of A: 20 extra baskets
            _rule("E", "F", 60, 200, 100),  # 60·(1 − 1/3) = 40 extra: E's list comes first
            _rule("G", "H", 20, 100, 100), _rule("G", "K", 16, 80, 50),  # 10 and 12 extra baskets
            _rule("Q", "R", 5, 100, 60)]  # lift < 1
    rules = pd.DataFrame(rows)
    rules.attrs["n_transactions"] = N
    return rules


def test_cross_sell_ranks_by_expected_extra_baskets():
    cs = ar.cross_sell_table(_planted())
    assert list(cs.columns) == ar.CROSS_SELL_COLUMNS
    got = list(zip(cs["product"], cs["rank"], cs["recommend"]))
    # products by their best recommendation: E (40 extra baskets), A (35), G (12); within A, C (35) before
    # B (10) although B is the more confident (0.70 against 0.40): most A-baskets would hold B anyway
    assert got == [("E", 1, "F"), ("A", 1, "C"), ("A", 2, "B"), ("G", 1, "K"), ("G", 2, "H")]
    np.testing.assert_allclose(cs["extra_baskets"], [40, 35, 10, 12, 10], rtol=1e-12)
    np.testing.assert_allclose(cs.set_index("recommend").loc[["C", "B"], "added_chance"], [0.35, 0.10], rtol=1e-12)
    assert "D" not in set(cs["recommend"])  # not significant
    assert "A XL" not in set(cs["recommend"])  # a variant of A
    assert "R" not in set(cs["recommend"])  # lift below 1
    assert not cs["same_product_family"].any() and (cs["variant_of"] == "").all()


def test_cross_sell_ties_are_broken_by_confidence_lift_then_name():
    rules = pd.DataFrame([_rule("G", "M", 20, 100, 100),   # 20·(1 − 1/2) = 10 extra, confidence 0.20, lift 2
                          _rule("G", "Y", 30, 200, 100),   # 30·(1 − 1/1.5) = 10 (float: 10.000000000000002), conf 0.15
                          _rule("G", "J", 50, 250, 160),   # 50·(1 − 1/1.25) = 10 (float: 9.999999999999998), lift 1.25
                          _rule("G", "K", 16, 80, 50),     # 16·(1 − 1/4) = 12 extra
                          _rule("G", "L", 20, 100, 100), _rule("G", "H", 20, 100, 100)])  # as M: by name
    rules.attrs["n_transactions"] = N
    cs = ar.cross_sell_table(rules, top_n=10)
    assert cs["recommend"].tolist() == ["K", "H", "L", "M", "J", "Y"]
    assert cs["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(cs["extra_baskets"], [12, 10, 10, 10, 10, 10], rtol=1e-12)


def test_cross_sell_order_does_not_depend_on_the_order_of_the_rules():
    rules = _planted()
    base = ar.cross_sell_table(rules)
    for seed in range(5):
        shuffled = rules.sample(frac=1, random_state=seed).reset_index(drop=True)
        shuffled.attrs.update(rules.attrs)
        pd.testing.assert_frame_equal(ar.cross_sell_table(shuffled), base)


def test_cross_sell_parameters_alpha_variants_top_n_and_value():
    rules = _planted()
    assert "D" in set(ar.cross_sell_table(rules, alpha=None)["recommend"])
    flagged = ar.cross_sell_table(rules, variants="flag")
    row = flagged.set_index("recommend").loc["A XL"]
    assert bool(row["same_product_family"]) and row["variant_of"] == "colour/size of A"
    assert flagged.loc[flagged["product"] == "A", "recommend"].tolist() == ["C", "A XL", "B"]  # 35, 20, 10
    assert ar.cross_sell_table(rules, top_n=1).groupby("product").size().max() == 1
    # a margin per item turns extra baskets into expected value: B's 10 baskets at 8 beat C's 35 at 1
    valued = ar.cross_sell_table(rules, item_value={"B": 8.0, "C": 1.0, "F": 0.5})
    assert list(valued.columns) == ar.CROSS_SELL_COLUMNS + ["value", "expected_value"]
    assert valued.loc[valued["product"] == "A", "recommend"].tolist() == ["B", "C"]
    assert valued["product"].tolist()[:2] == ["A", "A"]  # A's best (80) before E's (20); H, K have no value
    np.testing.assert_allclose(valued["expected_value"].iloc[:2], [80, 35], rtol=1e-12)
    assert valued["expected_value"].isna().sum() == 2
    for bad, match in ((dict(variants="drop"), "variants"), (dict(top_n=0), "top_n"), (dict(alpha=0), "alpha")):
        with pytest.raises(ParameterError, match=match):
            ar.cross_sell_table(rules, **bad)


def test_cross_sell_screening_counts_add_up():
    rules = _planted()
    sc = ar.cross_sell_screening(rules, top_n=1)
    counts = dict(zip(sc["screen"], sc["rules"]))
    assert counts == {"rules": 8, "not one product ⇒ one item": 0, "lift not above min_lift": 1,
                      "not significant": 1, "variants of one product": 1, "beyond top_n for its product": 2,
                      "recommended": 3}
    assert sum(sc["rules"].iloc[1:]) == counts["rules"]
    assert counts["recommended"] == len(ar.cross_sell_table(rules, top_n=1))
    flag = dict(zip(*ar.cross_sell_screening(rules, variants="flag").T.to_numpy()))
    assert flag["variants of one product (kept, flagged)"] == 1 and flag["recommended"] == 6


def test_cross_sell_computes_fisher_tests_when_the_rules_have_none():
    b = [["a", "b"]] * 30 + [["a", "c"]] * 3 + [["b"]] * 5 + [["c"]] * 40 + [["d"]] * 20
    res = ar.mine_rules(b, 0.01, 0.05, 2)
    assert "p_adjusted" not in res.rules
    cs = ar.cross_sell_table(res.rules)
    ref = ar.fisher_test(res.rules, method="holm")
    ref = ref[(ref["p_adjusted"] < 0.05) & (ref["lift"] > 1)]
    assert sorted(zip(cs["product"], cs["recommend"])) == sorted(
        (next(iter(a)), next(iter(c))) for a, c in zip(ref["antecedents"], ref["consequents"]))
    assert sorted(cs["recommend"]) == ["a", "b"]  # a ⇒ b and b ⇒ a; a ⇒ c has lift < 1
    bare = res.rules.copy()
    bare.attrs = {}
    with pytest.raises(ParameterError, match="fisher=True"):
        ar.cross_sell_table(bare)
    assert len(ar.cross_sell_table(bare, alpha=None)) == len(ar.cross_sell_table(res.rules, alpha=None))


def test_cross_sell_table_empty_keeps_its_columns():
    rules = _planted()
    for part in (rules.iloc[[2, 7]], rules.iloc[:0]):  # A ⇒ D not significant, Q ⇒ R lift < 1; no rules
        part.attrs.update(rules.attrs)
        cs = ar.cross_sell_table(part)
        assert len(cs) == 0 and list(cs.columns) == ar.CROSS_SELL_COLUMNS


# --------------------------------------------------------------------------- texts that never overstate


# --------------------------------------------------------------------------- real data: UCI Online Retail

_STEM_RE = re.compile(r"^(\d+)[A-Za-z]*$")
#: An independent, deliberately plain check: the words two descriptions do not share are colours or sizes.
_PLAIN_VARIANT_WORDS = {"RED", "GREEN", "BLUE", "PINK", "BLACK", "WHITE", "IVORY", "CREAM", "YELLOW", "ORANGE",
                        "PURPLE", "BROWN", "GREY", "SILVER", "GOLD", "TURQUOISE", "NATURAL", "SMALL", "MEDIUM",
                        "LARGE", "MINI", "JUMBO", "LIGHT", "DARK", "PASTEL"}


@pytest.fixture(scope="module")
def autumn_2011(online_retail_parquet):
    """Online Retail, September–November 2011: cleaned as the association notebook does (~6,600 baskets)."""
    policy = quality.CleaningPolicy(drop_missing_customer=False, drop_non_product=True)
    _, res = prep.engine("pandas").prepare(online_retail_parquet, mapping=MAPPINGS_DIR / "online_retail.yaml",
                                           policy=policy)
    tables = res.tables
    by_name = baskets_from_orders(tables)
    by_id = baskets_from_orders(tables, item_label="id")
    window = (by_name["ordered_at"] >= "2011-09-01") & (by_name["ordered_at"] < "2011-12-01")
    assert (by_name["basket_id"] == by_id["basket_id"]).all()
    return by_name[window], by_id[window.to_numpy()], tables["products"]


@pytest.mark.realdata
def test_online_retail_cross_sell_pairs_no_variants(autumn_2011):
    baskets, _, products = autumn_2011
    codes = ar.item_codes(products)
    res = ar.mine_rules(baskets, 0.01, 0.3, 2, fisher=True)
    rules = ar.flag_variants(res.rules, codes=codes)
    pairs = {(next(iter(a)), next(iter(c))): why for a, c, why in
             zip(rules["antecedents"], rules["consequents"], rules["variant_of"])}
    # the pairs a merchandiser would reject are among the rules, and flagged
    assert pairs[("ALARM CLOCK BAKELIKE RED", "ALARM CLOCK BAKELIKE GREEN")] == "colour/size of ALARM CLOCK BAKELIKE"
    assert pairs[("DECORATIVE WICKER HEART LARGE", "DECORATIVE WICKER HEART MEDIUM")].startswith("colour/size")
    assert pairs[("CHILDRENS CUTLERY POLKADOT BLUE [84997C]", "CHILDRENS CUTLERY POLKADOT PINK [84997D]")] \
        == "stock code stem 84997"
    assert pairs[("BLUE HAPPY BIRTHDAY BUNTING", "PINK HAPPY BIRTHDAY BUNTING [47590B]")] \
        == "stock code stem 47590"  # a stem only the code lookup reveals (47590A has a name of its own)
    assert pairs[("RED RETROSPOT CHARLOTTE BAG", "CHARLOTTE BAG PINK POLKADOT")] == ""

    cross = ar.cross_sell_table(rules, top_n=5)
    screening = dict(zip(*ar.cross_sell_screening(rules, top_n=5).T.to_numpy()))
    assert len(cross) > 300 and screening["recommended"] == len(cross)
    candidates = rules[(rules["lift"] > 1) & (rules["p_adjusted"] < 0.05)]
    assert screening["variants of one product"] == int(candidates["same_product_family"].sum()) >= 40
    # independent check: no recommendation shares a code stem or differs only by colour/size words
    name_of = products.drop_duplicates("product_id").set_index("product_id")["product_name"].astype(str)
    for p, r in zip(cross["product"], cross["recommend"]):
        cp, cr = codes.get(p), codes.get(r)
        if cp and cr and _STEM_RE.match(cp) and _STEM_RE.match(cr):
            assert _STEM_RE.match(cp).group(1) != _STEM_RE.match(cr).group(1), (p, r)
        wp = set(re.split(r"[^A-Z0-9]+", (name_of.get(cp, p) if cp else p).upper())) - {""}
        wr = set(re.split(r"[^A-Z0-9]+", (name_of.get(cr, r) if cr else r).upper())) - {""}
        assert not (wp ^ wr) <= _PLAIN_VARIANT_WORDS, (p, r)
    # ranked by expected extra baskets, products by their best recommendation
    for _, g in cross.groupby("product", sort=False):
        assert g["rank"].tolist() == list(range(1, len(g) + 1))
        assert (np.diff(g["extra_baskets"].to_numpy()) <= 1e-9).all()
    best = cross.groupby("product", sort=False)["extra_baskets"].first().to_numpy()
    assert (np.diff(best) <= 1e-9).all()
    np.testing.assert_allclose(cross["extra_baskets"], cross["count"] * (1 - 1 / cross["lift"]), rtol=1e-12)
    # deterministic: the same table from the rules in another order
    shuffled = rules.sample(frac=1, random_state=3)
    shuffled.attrs.update(rules.attrs)
    pd.testing.assert_frame_equal(ar.cross_sell_table(shuffled, top_n=5), cross)


@pytest.mark.realdata
def test_online_retail_variants_same_whether_items_are_names_or_codes(autumn_2011):
    """Baskets labelled by product id with a description lookup flag exactly the pairs the name labels do."""
    by_name, by_id, products = autumn_2011
    names = ar.mine_rules(by_name, 0.01, 0.3, 2).rules
    ids = ar.mine_rules(by_id, 0.01, 0.3, 2).rules
    assert len(names) == len(ids)
    codes = ar.item_codes(products)
    descriptions = dict(zip(products["product_id"].astype(str), products["product_name"]))
    flagged_names = ar.flag_variants(names, codes=codes)
    flagged_ids = ar.flag_variants(ids, descriptions=descriptions)

    def pairs(f, to_code):
        f = f[f["same_product_family"]]
        return {(to_code(next(iter(a))), to_code(next(iter(c)))) for a, c in zip(f["antecedents"], f["consequents"])}

    by_names = pairs(flagged_names, codes.__getitem__)
    assert len(by_names) >= 40
    assert by_names == pairs(flagged_ids, str)
