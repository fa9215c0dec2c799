"""Reproducibility: OUT/manifest.json, and `ecrm reproduce` re-running a report folder.

Uses the deterministic lesson notebook in tests/notebooks/course/ (reads a CSV given as `data`,
draws a seeded sample, writes two tables).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pandas as pd
import pytest

from ecrm_research.cli import main
from ecrm_research.paths import SAMPLE_DIR
from ecrm_research.report import manifest
from ecrm_research.report.manifest import ReproduceError, hash_inputs, read_manifest, sha256_file
from ecrm_research.report.reproduce import compare_tables, reproduce
from ecrm_research.report.runner import run_all

COURSE = Path(__file__).parent / "notebooks" / "course"
NB_DIR = Path(__file__).parent / "notebooks"


def _orders(path: Path, amounts=(10.5, 20.25, 3.0, 47.125, 5.0, 6.5, 70.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"customer_id": list("aabbcdd"), "amount": list(amounts)}).to_csv(path, index=False)
    return path


def _run(data: Path, out: Path, seed: int = 7):
    res = run_all("all", data=str(data), params={"seed": seed, "n_sample": 4}, out=out,
                  notebooks_dir=COURSE, progress=False, pdf=False)
    assert res[0].ok, res[0].error
    return res


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    data = _orders(base / "input" / "orders.csv")
    _run(data, base / "run1")
    return base, data


def test_manifest_records_inputs_parameters_seed_versions_and_tables(recorded):
    base, data = recorded
    m = read_manifest(base / "run1")
    assert m["manifest_version"] == 1 and m["python"] == platform.python_version()
    assert m["created"] <= m["finished"]
    for pkg in ("pandas", "numpy", "scikit-learn", "mlxtend", "statsmodels", "lifelines", "semopy", "papermill"):
        assert m["packages"][pkg], pkg
    assert m["run"]["data"] == str(data) and m["run"]["params"] == {"seed": 7, "n_sample": 4}
    assert m["run"]["notebooks_dir"] == str(COURSE.resolve())
    files = m["inputs"]["data"]["files"]
    assert m["inputs"]["data"]["kind"] == "file"
    assert files == [{"path": "orders.csv", "bytes": data.stat().st_size, "sha256": sha256_file(data)}]
    nb = m["notebooks"]["lesson"]
    assert nb["status"] == "ok" and nb["seed"] == 7
    assert nb["parameters"] == {"data": str(data), "seed": 7, "n_sample": 4}
    assert nb["notebook_sha256"] == sha256_file(COURSE / "01_lesson.ipynb")
    assert set(nb["tables"]) == {"tables/per_customer.csv", "tables/sample.csv"}
    assert nb["tables"]["tables/sample.csv"] == sha256_file(base / "run1" / "lesson" / "tables" / "sample.csv")
    run = json.loads((base / "run1" / "lesson" / "run.json").read_text())
    assert run["seed"] == 7 and run["tables"] == nb["tables"]
    if m["git"] is not None:
        assert len(m["git"]["commit"]) == 40 and isinstance(m["git"]["dirty"], bool)
    # the index shows the reproducibility facts and links the manifest
    index = (base / "run1" / "index.html").read_text()
    assert 'href="manifest.json"' in index and "Seed</dt><dd>7" in index and "ecrm reproduce" in index


def test_two_runs_with_same_inputs_and_seed_write_identical_tables(recorded, tmp_path):
    base, data = recorded
    _run(data, tmp_path / "run2")
    comps = compare_tables(base / "run1" / "lesson", tmp_path / "run2" / "lesson", "lesson")
    assert [(c.table, c.status) for c in comps] == [("per_customer.csv", "identical"), ("sample.csv", "identical")]
    # a different seed draws a different sample (so the test above means something)
    _run(data, tmp_path / "run3", seed=8)
    comps = {c.table: c for c in compare_tables(base / "run1" / "lesson", tmp_path / "run3" / "lesson")}
    assert comps["per_customer.csv"].status == "identical" and comps["sample.csv"].status == "different"
    assert "cells differ" in comps["sample.csv"].detail


def test_reproduce_confirms_an_unchanged_run(recorded, tmp_path, capsys):
    base, _ = recorded
    code = main(["reproduce", str(base / "run1"), "--out", str(tmp_path / "again"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "lesson/per_customer.csv" in out and "lesson/sample.csv" in out
    assert "REPRODUCED: 2 of 2 tables identical or equal." in out
    assert (tmp_path / "again" / "lesson" / "tables" / "sample.csv").is_file()


def test_reproduce_reports_a_changed_input_file_and_different_tables(tmp_path, capsys):
    data = _orders(tmp_path / "input" / "orders.csv")
    _run(data, tmp_path / "run1")
    old = sha256_file(data)
    _orders(data, amounts=(10.5, 20.25, 3.0, 47.125, 5.0, 6.5, 71.0))  # one amount edited
    code = main(["reproduce", str(tmp_path / "run1"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"INPUT CHANGED  {data}: orders.csv sha256 {old[:12]}" in out
    assert "lesson/per_customer.csv" in out and "DIFFERENT" in out
    assert "NOT REPRODUCED" in out and "1 input(s) changed" in out
    assert (tmp_path / "run1-reproduce" / "lesson").is_dir()  # default: sibling folder


def test_reproduce_single_analysis_folder(recorded, tmp_path):
    base, _ = recorded
    report = reproduce(base / "run1" / "lesson", tmp_path / "one")
    assert report.ok and {t.analysis for t in report.tables} == {"lesson"}


def test_frame_equal_tables_with_different_bytes_count_as_reproduced(tmp_path):
    for name, text in (("a", "x,y\n1,0.1\n2,0.30000000000000004\n"), ("b", "x,y\n1,0.1\n2,0.3\n")):
        (tmp_path / name / "tables").mkdir(parents=True)
        (tmp_path / name / "tables" / "t.csv").write_text(text)
    (comp,) = compare_tables(tmp_path / "a", tmp_path / "b", "x")
    assert comp.status == "equal" and comp.same


def test_missing_and_new_tables_are_reported(tmp_path):
    (tmp_path / "a" / "tables").mkdir(parents=True)
    (tmp_path / "b" / "tables").mkdir(parents=True)
    (tmp_path / "a" / "tables" / "gone.csv").write_text("x\n1\n")
    (tmp_path / "b" / "tables" / "extra.csv").write_text("x\n1\n")
    got = {c.table: c.status for c in compare_tables(tmp_path / "a", tmp_path / "b")}
    assert got == {"gone.csv": "missing", "extra.csv": "new"}


def test_hash_inputs_of_sample_and_folder(tmp_path):
    sample = hash_inputs(None)
    assert sample["kind"] == "sample" and sample["path"] == str(SAMPLE_DIR)
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.csv").write_text("1")
    (tmp_path / "d" / "sub" / "b.csv").write_text("2")
    h1 = hash_inputs(tmp_path / "d")
    assert h1["kind"] == "folder" and [f["path"] for f in h1["files"]] == ["a.csv", "sub/b.csv"]
    (tmp_path / "d" / "sub" / "b.csv").rename(tmp_path / "d" / "sub" / "c.csv")
    assert hash_inputs(tmp_path / "d")["sha256"] != h1["sha256"]  # a rename changes the digest


def test_reproduce_without_manifest_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ReproduceError, match="No manifest.json"):
        reproduce(tmp_path)
    assert main(["reproduce", str(tmp_path)]) == 2
    assert "error: No manifest.json" in capsys.readouterr().err


def test_manifest_keeps_analyses_of_earlier_runs(tmp_path):
    run_all(["hello"], out=tmp_path, notebooks_dir=NB_DIR, progress=False, pdf=False)
    run_all(["boom"], out=tmp_path, notebooks_dir=NB_DIR, progress=False, pdf=False)
    m = read_manifest(tmp_path)
    assert set(m["notebooks"]) == {"hello", "boom"}
    assert m["notebooks"]["boom"]["status"] == "failed" and m["run"]["names"] == ["boom"]
    assert m["inputs"]["data"]["kind"] == "sample"
    assert manifest.MANIFEST_NAME == "manifest.json"
