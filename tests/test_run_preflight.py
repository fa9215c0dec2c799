"""`ecrm run` pre-flight (issue 14, items 1-3): paths resolved against the caller's folder, parameter
values, data and mapping checked before any kernel starts (exit 2), and `run all` skipping the
analyses the data does not fit.

Data: a small generated shop flattened into an order-lines CSV with its own column names and a
mapping, in a temporary working directory. One test executes notebooks (`run all` with 2 jobs);
every other test stops in the pre-flight, so it must not create the output folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from ecrm_research.cli import main
from ecrm_research.data import sample
from ecrm_research.exceptions import ParameterError
from ecrm_research.paths import PROJ_ROOT
from ecrm_research.report import notebooks, runner
from ecrm_research.report.preflight import preflight

NB_DIR = Path(__file__).parent / "notebooks"
FAST = ["--no-progress", "--no-pdf"]
MAPPING = """format: lines
columns:
  order_id: Invoice
  customer_id: Buyer
  ordered_at: When
  status: State
  product_id: Sku
  product_name: Title
  quantity: Qty
  unit_price: Price
"""


def _shop(folder: Path) -> int:
    """Write ``shop.csv`` (order lines of a 300-customer shop, renamed columns) and ``map.yaml``
    into `folder`; return the number of lines."""
    t = sample.generate(n_customers=300, months=20, seed=11)
    lines = (t["order_items"].merge(t["orders"][["order_id", "customer_id", "ordered_at", "status"]], on="order_id")
             .merge(t["products"][["product_id", "product_name"]], on="product_id"))
    flat = pd.DataFrame({"Invoice": lines["order_id"].astype(str), "Buyer": lines["customer_id"].astype(str),
                         "When": lines["ordered_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
                         "State": lines["status"].astype(str), "Sku": lines["product_id"].astype(str),
                         "Title": lines["product_name"].astype(str), "Qty": lines["quantity"],
                         "Price": lines["unit_price"]})
    flat.to_csv(folder / "shop.csv", index=False)
    (folder / "map.yaml").write_text(MAPPING)
    return len(flat)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory holding shop.csv and map.yaml, made the current directory."""
    n = _shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path, n


def _run(capsys, *argv):
    code = main(["run", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# --------------------------------------------------------------------------- 1 + 3: a real run (2 jobs)


def test_run_all_with_relative_paths_and_two_jobs_analyses_the_given_data_and_skips_loyalty(project, capsys):
    """Relative --data/--mapping/--out from a folder that is not the project; every notebook must read
    this shop (not the bundled sample); loyalty has no survey in a lines file, so it is skipped."""
    tmp, n_lines = project
    assert Path.cwd() != PROJ_ROOT
    code, out, err = _run(capsys, "all", "--data", "shop.csv", "--mapping", "map.yaml", "--out", "out", "-j", "2",
                          *FAST)
    assert code == 0, out + err
    assert os.getcwd() == str(tmp)  # nothing changed the process's directory
    rows = {ln.split()[0]: ln.split()[1] for ln in out.splitlines() if ln and not ln[0].isspace()
            and len(ln.split()) > 1}
    assert rows["loyalty"] == "skipped"
    assert all(rows[n] == "ok" for n in ("overview", "association", "churn", "segmentation", "customer_view")), out
    assert "loyalty needs survey data" in out and "--data-format survey" in out and "constructs" in out
    assert "1 of 6 analyses skipped" in out
    for name in ("overview", "association", "churn", "segmentation", "customer_view"):
        run = json.loads((tmp / "out" / name / "run.json").read_text())
        assert run["parameters"]["data"] == str(tmp / "shop.csv"), name
        assert run["parameters"]["mapping"] == str(tmp / "map.yaml"), name
        findings = json.loads((tmp / "out" / name / "findings.json").read_text())
        assert "shop.csv" in json.dumps(findings["data"]) and "bundled sample" not in json.dumps(findings), name
    recon = pd.read_csv(tmp / "out" / "overview" / "tables" / "reconciliation.csv")
    assert int(recon.set_index("table").loc["order_items", "input_rows"]) == n_lines
    assert not (tmp / "out" / "loyalty" / "run.json").exists()  # nothing ran for it
    index = (tmp / "out" / "index.html").read_text()
    assert '<section class="card skipped" id="loyalty">' in index
    assert "Skipped:" in index and "loyalty needs survey data" in index
    assert "1 skipped" in index


# --------------------------------------------------------------------------- 2: pre-flight errors (no kernel)


@pytest.mark.parametrize("argv, words", [
    (["association", "-p", "min_support", "abc"], ["min_support", "'abc'", "expects a number"]),
    (["association", "-p", "max_len", "2.5"], ["max_len", "2.5", "whole number", "default 4"]),
    (["association", "-p", "min_confidence", "1.5"], ["min_confidence", "from 0 to 1"]),
    (["association", "-p", "item_level", "brand"], ["item_level", "'brand'", "product, category"]),
    (["association", "-p", "engine", "fast"], ["engine", "auto, fim, mlxtend, spark"]),
    (["segmentation", "-p", "k_range", "3"], ["k_range", "expects a list", "default [2, 8]"]),
    (["segmentation", "-p", "k_range", "[2, x]"], ["k_range", "whole numbers", "'x'"]),
    (["segmentation", "-p", "method", "dbscan"], ["method", "kmeans, gmm"]),
    (["overview", "-p", "drop_non_product", "yes"], ["drop_non_product", "true or false"]),
    (["churn", "-p", "horizon_days", "-30"], ["horizon_days", ">= 0"]),
    (["churn", "-p", "horizon_days", "null"], ["horizon_days", "does not accept null"]),
    (["all", "-p", "seed", "1.5"], ["seed", "whole number"]),
])
def test_bad_parameter_values_exit_2_before_any_kernel(project, capsys, argv, words):
    tmp, _ = project
    code, out, err = _run(capsys, *argv, "--out", "out", *FAST)
    assert code == 2, out + err
    assert err.startswith("error: -p ") and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp / "out").exists()  # stopped before any notebook started


def test_out_naming_an_existing_file_exits_2_with_a_clear_message(project, capsys):
    tmp, _ = project
    (tmp / "report.txt").write_text("mine")
    code, out, err = _run(capsys, "overview", "--out", "report.txt", *FAST)
    assert code == 2 and "Traceback" not in err
    assert "report.txt" in err and "is a file, not a folder" in err
    assert (tmp / "report.txt").read_text() == "mine"


def test_named_analysis_the_data_does_not_fit_exits_2_with_how_to_provide_it(project, capsys):
    tmp, _ = project
    code, out, err = _run(capsys, "loyalty", "--data", "shop.csv", "--mapping", "map.yaml", "--out", "out", *FAST)
    assert code == 2
    assert "error: loyalty needs survey data" in err
    assert "--data-format survey" in err and "'shop.csv' is lines data" in err.replace(str(tmp) + "/", "")
    assert not (tmp / "out").exists()


def test_data_error_exits_2_with_the_data_layers_message_before_any_kernel(project, capsys):
    tmp, _ = project
    df = pd.read_csv(tmp / "shop.csv")
    df["Qty"] = df["Qty"].astype(object)
    df.loc[3, "Qty"] = "many"
    df.to_csv(tmp / "bad.csv", index=False)
    code, out, err = _run(capsys, "all", "--data", "bad.csv", "--mapping", "map.yaml", "--out", "out", *FAST)
    assert code == 2, out + err
    assert "bad.csv" in err and "quantity" in err.lower() and "many" in err
    assert not (tmp / "out").exists()


def test_missing_data_and_bad_mapping_exit_2(project, capsys):
    tmp, _ = project
    code, _, err = _run(capsys, "overview", "--data", "nope.csv", "--out", "out", *FAST)
    assert code == 2 and "nope.csv" in err and "not found" in err
    (tmp / "bad.yaml").write_text("format: lines\ncolumns:\n  order_number: Invoice\n")
    code, _, err = _run(capsys, "overview", "--data", "shop.csv", "--mapping", "bad.yaml", "--out", "out", *FAST)
    assert code == 2 and "order_number" in err
    assert not (tmp / "out").exists()


def test_missing_constructs_file_is_resolved_from_the_caller_and_reported(project, capsys):
    tmp, _ = project
    code, _, err = _run(capsys, "loyalty", "-p", "constructs", "mine.yaml", "--out", "out", *FAST)
    assert code == 2
    assert "constructs" in err and str(tmp / "mine.yaml") in err and "not found" in err


# --------------------------------------------------------------------------- the pieces


def test_preflight_resolves_paths_once_against_the_given_base(tmp_path):
    _shop(tmp_path)
    plan = preflight("all", {"data": "shop.csv", "mapping": "map.yaml"}, base=tmp_path)
    assert plan.given["data"] == str(tmp_path / "shop.csv") and plan.given["mapping"] == str(tmp_path / "map.yaml")
    assert plan.data_format == "lines"
    assert plan.names == ["overview", "association", "churn", "segmentation", "customer_view"]
    assert list(plan.skipped) == ["loyalty"] and "survey" in plan.skipped["loyalty"]


def test_absolute_path_uses_the_base_not_the_process_directory(tmp_path):
    (tmp_path / "x.csv").write_text("a\n")
    assert notebooks.absolute_path("x.csv", tmp_path) == str(tmp_path / "x.csv")
    assert notebooks.absolute_path("online_retail", tmp_path) == "online_retail"  # a shipped mapping's name
    assert notebooks.absolute_path("data/mappings/online_retail.yaml", tmp_path) == \
        str(PROJ_ROOT / "data" / "mappings" / "online_retail.yaml")


@pytest.mark.parametrize("default, text, expected", [
    ("product", "product | category", ("product", "category")),
    ("auto", "auto (pyfim when installed, else mlxtend) | fim | mlxtend | spark", ("auto", "fim", "mlxtend", "spark")),
    ("days", "customer table: unit of duration_col (days | weeks | months | years)",
     ("days", "weeks", "months", "years")),
    ("kmeans", "'kmeans' or 'gmm'", ("kmeans", "gmm")),
    ("pandas", "where it runs: pandas (this machine) or spark (canonical folders)", ("pandas", "spark")),
    ("holm", "multiple-testing correction for the Fisher tests", None),
    ("loyalty", "outcome construct", None),
    (None, "a | b", None),
])
def test_parameter_choices_are_read_from_the_help_comment(default, text, expected):
    assert notebooks.parameter_choices(default, text) == expected


def test_annotated_none_default_is_type_checked():
    row = {"name": "min_support", "default": None, "annotation": "float | None", "help": "support"}
    assert notebooks.check_parameter_value("association", row, None) is None
    assert notebooks.check_parameter_value("association", row, 0.2) == 0.2
    with pytest.raises(ParameterError, match="expects a number"):
        notebooks.check_parameter_value("association", row, "abc")


def test_runner_never_changes_the_process_directory(tmp_path, monkeypatch):
    """papermill's cwd= would chdir the whole process; the kernel gets its own cwd instead."""
    monkeypatch.chdir(tmp_path)
    real_chdir = os.chdir

    def no_chdir(path):  # papermill's file handler "changes" to the current folder around reads: a no-op
        if Path(path).resolve() != tmp_path.resolve():
            raise AssertionError(f"os.chdir({path!r}) called during a run")
        real_chdir(path)

    monkeypatch.setattr(os, "chdir", no_chdir)
    res = runner.run_notebook("hello", out="out", progress=False, notebooks_dir=NB_DIR, pdf=False)
    assert res.status == "ok", res.error
    got = json.loads((tmp_path / "out" / "hello" / "params.json").read_text())
    assert got["cwd"] == str(PROJ_ROOT)  # the kernel still runs in the project root
