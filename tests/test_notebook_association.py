"""End-to-end runs of notebooks/01_association_rules.ipynb, asserting on the tables it writes."""

from __future__ import annotations

import json
import re

import nbformat
import pandas as pd
import pytest
from findings_checks import finding_problems, report_body

from ecrm_research.association import CROSS_SELL_COLUMNS, RULE_COLUMNS, resolve_engine
from ecrm_research.paths import MAPPINGS_DIR, NOTEBOOKS_DIR

NB = NOTEBOOKS_DIR / "01_association_rules.ipynb"
#: Python reprs that must never reach a reader (issue 16): paths, Series footers, list/dict/set literals
RAW_REPR = re.compile(r"PosixPath\(|WindowsPath\(|dtype: (?:float|int|object|bool)|^\s*[\[{]'|Name: \w+, dtype|frozenset\(",
                      re.MULTILINE)
HEADINGS = ["## 1 Define the problem", "## 2 Prepare the data", "## 3 Apply the algorithm",
            "## 4 Analyse the results", "## 5 Apply the knowledge"]


def test_notebook_is_commit_ready():
    nb = nbformat.read(NB, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "ecrm-research"
    assert nb.metadata["language_info"]["name"] == "python"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("data = None", "data_format = None", "mapping = None", "out_dir = None", "seed = 42",
                 'engine = "auto"', "spark_master = None", "max_memory_gb = None"):
        assert name in params[0].source
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for h in HEADINGS:
        assert h in md
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    # teaching material: objectives and prerequisites first, key takeaways last; the runner sets the backend
    assert "objectives" in nb.cells[1].metadata.get("tags", []) and "Prerequisites" in nb.cells[1].source
    assert "takeaways" in nb.cells[-1].metadata.get("tags", []) and "## Key takeaways" in nb.cells[-1].source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "matplotlib.use(" not in code and ".round(" not in code and "print(" not in code


def _findings(out):
    return json.loads((out / "findings.json").read_text(encoding="utf-8"))


def _check_common(out):
    rules = pd.read_csv(out / "tables" / "rules.csv")
    assert list(rules.columns[:9]) == RULE_COLUMNS
    pq = pd.read_parquet(out / "tables" / "rules.parquet")
    assert list(pq.columns[:9]) == RULE_COLUMNS
    assert all(isinstance(list(v), list) for v in pq["antecedents"].head())
    assert (out / "tables" / "frequent_itemsets.parquet").exists()
    cross = pd.read_csv(out / "tables" / "cross_sell.csv")
    assert list(cross.columns) == CROSS_SELL_COLUMNS
    # ranked by expected extra baskets within each product; the screening counts add up to the rules used
    assert all(g["extra_baskets"].is_monotonic_decreasing for _, g in cross.groupby("product", sort=False))
    screening = pd.read_csv(out / "tables" / "cross_sell_screening.csv")
    assert screening["rules"].iloc[1:].sum() == screening["rules"].iloc[0]
    assert screening.set_index("screen").loc["recommended", "rules"] == len(cross)
    assert {"same_product_family", "variant_of"} <= set(rules.columns)
    f = _findings(out)
    assert f["analysis"] == "association" and 3 <= len(f["findings"]) <= 5
    assert finding_problems(out) == []  # every headline number is in the report body, no p = 0, no True/False
    for name in ("item_frequency", "basket_sizes", "support_confidence", "top_rules"):
        assert (out / "figures" / f"{name}.png").exists(), name
    assert f["key_figure"] == "figures/top_rules.png"  # the rule graph
    # every figure prints readably (fonts >= 8 pt, no overlapping labels, legends off the data)
    checks = json.loads((out / "figures" / "figure_checks.json").read_text())
    assert all(problems == [] for problems in checks.values()), checks
    # what a reader sees: no raw Python repr
    nb = nbformat.read(out / "association.ipynb", as_version=4)
    body = report_body(nb)
    assert not RAW_REPR.search(body), RAW_REPR.search(body).group(0)
    # the offline explore page: rules and cross-sell tables, the rule scatter and the rule graph
    page = (out / "explore.html").read_text(encoding="utf-8")
    for anchor in ("rules", "cross_sell", "rule_scatter", "rule_graph"):
        assert f'id="{anchor}"' in page, anchor
    assert "cdn." not in page and list((out / "explore_files").glob("plotly-*.min.js"))
    return rules, pq, f


@pytest.mark.notebook
def test_notebook_on_sample_finds_planted_bundles(run_nb, sample_dir):
    from ecrm_research.data.sample import PLANTED

    out = run_nb("association", data=str(sample_dir),
                 params={"min_support": 0.01, "min_confidence": 0.3, "max_len": 3})
    rules, pq, f = _check_common(out)
    assert f["engine"] == resolve_engine("auto")  # the notebook reports the engine that ran
    found = {(frozenset(a), frozenset(c)): lift for a, c, lift in
             pq[["antecedents", "consequents", "lift"]].itertuples(index=False)}
    for rule in PLANTED["association"]["rules"]:
        if len(rule["consequents"]) == 1 and rule["confidence"] >= 0.3:
            key = (frozenset(rule["antecedents"]), frozenset(rule["consequents"]))
            assert found[key] == pytest.approx(rule["lift"], rel=0.10)
    holdout = pd.read_csv(out / "tables" / "holdout.csv")
    assert len(holdout) > 0 and holdout["holds"].all()
    assert (out / "figures" / "holdout_lift.png").exists()
    cross = pd.read_csv(out / "tables" / "cross_sell.csv")
    assert cross.set_index("product").loc["milk frother", "recommend"] == "coffee beans 1kg"
    excl = pd.read_csv(out / "tables" / "exclusions.csv")
    assert (excl["rows"] > 0).all() and len(excl) > 0


@pytest.mark.notebook
@pytest.mark.realdata
def test_notebook_on_groceries_matches_arules(run_nb, groceries_csv):
    """R: apriori(Groceries, parameter = list(supp = 0.001, conf = 0.8)): 410 rules, top lift 11.23527.

    Run on the reference engine (mlxtend); the sample run above uses engine="auto"."""
    out = run_nb("association", data=str(groceries_csv), data_format="baskets",
                 params={"min_support": 0.001, "min_confidence": 0.8, "max_len": 10, "engine": "mlxtend"})
    rules, _, f = _check_common(out)
    assert f["engine"] == "mlxtend" and f["parameters"]["engine"] == "mlxtend"
    assert len(rules) == 410
    assert rules["lift"].max() == pytest.approx(11.23527, abs=1e-5)
    assert rules.iloc[0]["antecedents"] == "liquor|red/blush wine" and rules.iloc[0]["consequents"] == "bottled beer"
    assert not (out / "tables" / "holdout.csv").exists()
    assert "no order timestamps" in f["holdout_note"]


@pytest.mark.notebook
@pytest.mark.realdata
@pytest.mark.slow
def test_notebook_on_online_retail(run_nb, online_retail_parquet):
    out = run_nb("association", data=str(online_retail_parquet), mapping=str(MAPPINGS_DIR / "online_retail.yaml"),
                 params={"min_support": 0.02, "min_confidence": 0.5, "max_len": 3})
    rules, _, f = _check_common(out)
    assert len(rules) > 20 and rules["lift"].min() > 1
    # postage is a non-product code and must not appear in any rule
    assert not rules["antecedents"].str.contains("POSTAGE").any()
    excl = pd.read_csv(out / "tables" / "exclusions.csv")
    assert {"cancelled", "non_product"} <= set(excl["reason"])
    holdout = pd.read_csv(out / "tables" / "holdout.csv")
    assert len(holdout) > 0 and holdout["holds"].mean() > 0.8
    cross = pd.read_csv(out / "tables" / "cross_sell.csv", keep_default_na=False)
    assert len(cross) > 20
    # variants of one product (colour, size, stock-code stem) are flagged in the rules and kept out of the table
    variant_pairs = {(a, c) for a, c, v in rules[["antecedents", "consequents", "same_product_family"]]
                     .itertuples(index=False) if v}
    assert ("ALARM CLOCK BAKELIKE RED", "ALARM CLOCK BAKELIKE GREEN") in variant_pairs
    assert ("JUMBO BAG STRAWBERRY [85099F]", "JUMBO BAG RED RETROSPOT") in variant_pairs  # stem 85099
    assert not variant_pairs & set(zip(cross["product"], cross["recommend"]))
    screening = pd.read_csv(out / "tables" / "cross_sell_screening.csv").set_index("screen")["rules"]
    assert screening["variants of one product"] >= 8
    body = report_body(nbformat.read(out / "association.ipynb", as_version=4))
    assert f"{screening['variants of one product']:,} rules that pair two variants of one product were set aside" in body


@pytest.mark.notebook
def test_notebook_rejects_other_formats(tmp_path):
    from ecrm_research.report.runner import run_notebook

    csv = tmp_path / "customers.csv"
    pd.DataFrame({"customer_id": ["1", "2"], "tenure": [3, 4], "churn": [0, 1]}).to_csv(csv, index=False)
    res = run_notebook("association", data=str(csv), data_format="customers", out=tmp_path / "out",
                       progress=False, render=False)
    assert res.status != "ok" and "FormatError" in (res.error or "") and "association" in res.error
