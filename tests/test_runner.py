"""Runner: notebook discovery, parameters, execution, failure handling, HTML reports, index.

Uses only the tiny notebooks in tests/notebooks/ (``hello`` writes its parameters, a table,
a figure and findings; ``boom`` raises ValueError in its third cell).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

from ecrm_research.exceptions import ParameterError
from ecrm_research.paths import KERNEL_NAME, PROJ_ROOT
from ecrm_research.report import notebooks, runner, scheduling
from ecrm_research.report.notebooks import list_notebooks, notebook_parameters
from ecrm_research.report.runner import RunResult, run_all, run_notebook

NB_DIR = Path(__file__).parent / "notebooks"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if (tag, k) in (("a", "href"), ("img", "src"), ("link", "href")) and v:
                self.links.append(v)


def _links(html: str) -> list[str]:
    p = _Links()
    p.feed(html)
    return p.links


def _body(html: str) -> str:
    """The page without its <style>/<script> blocks (nbconvert embeds a lot of CSS)."""
    return re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S | re.I)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """One run_all of boom then hello (failure first, so we see the next one still runs)."""
    out = tmp_path_factory.mktemp("suite")
    results = run_all(["boom", "hello"], out=out, params={"seed": 7, "label": "x<y & z"},
                      progress=False, notebooks_dir=NB_DIR)
    return out, {r.name: r for r in results}, results


# --------------------------------------------------------------------------- discovery


def test_list_notebooks_orders_by_number_and_uses_word_after_prefix(tmp_path):
    src = NB_DIR / "01_hello_world.ipynb"
    for fname in ("10_segmentation.ipynb", "02_churn_survival.ipynb", "00_overview.ipynb",
                  "01_association_rules.ipynb", "notes.ipynb", "README.md", "03_loyalty_drivers.txt"):
        shutil.copy(src, tmp_path / fname)
    books = list_notebooks(tmp_path)
    assert list(books) == ["overview", "association", "churn", "segmentation"]
    assert books["association"] == tmp_path / "01_association_rules.ipynb"


def test_list_notebooks_rejects_duplicate_short_names(tmp_path):
    for fname in ("01_churn_a.ipynb", "02_churn_b.ipynb"):
        shutil.copy(NB_DIR / "02_boom.ipynb", tmp_path / fname)
    with pytest.raises(ParameterError, match="churn"):
        list_notebooks(tmp_path)


def test_notebook_parameters_parses_default_literals():
    params = notebook_parameters("hello", notebooks_dir=NB_DIR)
    assert params == {"data": None, "data_format": None, "mapping": None, "out_dir": None, "seed": 42,
                      "n_items": 3, "rate": 0.5, "flag": False, "items": ["a", "b"], "groups": {},
                      "label": "plain"}
    assert list(params) == ["data", "data_format", "mapping", "out_dir", "seed", "n_items", "rate",
                            "flag", "items", "groups", "label"]


def test_parameters_with_equals_in_help_comment_and_multiline_literals(tmp_path):
    """papermill's inspect_notebook drops lines with a second '=' (as in 00_overview)."""
    nb = nbformat.read(NB_DIR / "01_hello_world.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = ("# Parameters (papermill injects values below this cell)\n"
                   "data = None      # None = the bundled sample; a=b\n"
                   "out_dir = None   # None = reports/x\n"
                   "segments = {\n    'A': [1, 2],  # first\n    'B': [],\n}\n"
                   "k: int = 4       # number of clusters\n")
    nbformat.write(nb, tmp_path / "05_edge.ipynb")
    assert notebook_parameters("edge", notebooks_dir=tmp_path) == {
        "data": None, "out_dir": None, "segments": {"A": [1, 2], "B": []}, "k": 4}
    rows = {r["name"]: r for r in notebooks.notebook_parameter_help("edge", notebooks_dir=tmp_path)}
    assert rows["data"]["help"] == "None = the bundled sample; a=b"
    assert rows["k"]["help"] == "number of clusters" and rows["k"]["type"] == "int"


def test_unknown_notebook_lists_available_names(tmp_path):
    with pytest.raises(ParameterError) as err:
        run_notebook("nope", out=tmp_path, notebooks_dir=NB_DIR)
    assert "hello" in str(err.value) and "boom" in str(err.value)
    assert err.value.allowed == ["hello", "boom"]


def test_undeclared_parameter_fails_before_running_and_lists_declared(tmp_path):
    with pytest.raises(ParameterError) as err:
        run_notebook("hello", out=tmp_path, params={"min_support": 0.1}, notebooks_dir=NB_DIR)
    msg = str(err.value)
    assert "'min_support'" in msg
    for declared in ("data", "data_format", "mapping", "seed", "n_items", "rate", "flag", "items", "label"):
        assert declared in err.value.allowed
        assert declared in msg
    assert "out_dir" not in err.value.allowed  # injected by the runner, not user input
    assert not (tmp_path / "hello").exists()  # nothing ran


def test_out_dir_cannot_be_passed_as_a_parameter(tmp_path):
    with pytest.raises(ParameterError, match="--out"):
        run_notebook("hello", out=tmp_path, params={"out_dir": "elsewhere"}, notebooks_dir=NB_DIR)


def test_run_all_rejects_parameter_no_notebook_declares(tmp_path):
    with pytest.raises(ParameterError, match="'bogus'"):
        run_all("all", out=tmp_path, params={"bogus": 1}, notebooks_dir=NB_DIR, progress=False)
    assert not (tmp_path / "index.html").exists()


# --------------------------------------------------------------------------- execution


def test_parameters_are_injected_with_types_absolute_paths_and_project_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.csv").write_text("a\n1\n")
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "m.yaml").write_text("format: lines\n")
    res = run_notebook(
        "hello", data="mine.csv", data_format="lines", mapping=Path("maps/m.yaml"),
        params={"n_items": 5, "rate": 0.25, "flag": True, "items": ["x", "y"],
                "groups": {"A": ["x", "y"]}, "label": "word"},
        out="out", progress=False, notebooks_dir=NB_DIR,
    )
    assert isinstance(res, RunResult)
    assert res.status == "ok", res.error
    assert res.error is None and res.seconds > 0
    assert res.out_dir == tmp_path / "out" / "hello"
    got = json.loads((res.out_dir / "params.json").read_text())
    assert got["values"] == {
        "data": str(tmp_path / "mine.csv"), "data_format": "lines", "mapping": str(tmp_path / "maps" / "m.yaml"),
        "out_dir": str(tmp_path / "out" / "hello"), "seed": 42, "n_items": 5, "rate": 0.25, "flag": True,
        "items": ["x", "y"], "groups": {"A": ["x", "y"]}, "label": "word",
    }
    assert got["types"]["n_items"] == "int" and got["types"]["rate"] == "float"
    assert got["types"]["flag"] == "bool" and got["types"]["groups"] == "dict"
    assert got["cwd"] == str(PROJ_ROOT)
    # the notebook's outputs and the runner's files
    assert (res.out_dir / "hello.ipynb").is_file()
    assert (res.out_dir / "tables" / "numbers.csv").read_text().splitlines() == ["i", "0", "1", "2", "3", "4"]
    assert (res.out_dir / "figures" / "line.png").read_bytes()[:4] == b"\x89PNG"
    run = json.loads((res.out_dir / "run.json").read_text())
    assert run["status"] == "ok" and run["parameters"]["n_items"] == 5
    executed = nbformat.read(res.out_dir / "hello.ipynb", as_version=4)
    assert executed.metadata.kernelspec.name == KERNEL_NAME
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n_items = 5" in injected[0].source


def test_relative_paths_resolve_from_cwd_then_project_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.csv").write_text("x")
    assert notebooks.absolute_path("here.csv") == str(tmp_path / "here.csv")
    assert notebooks.absolute_path("docs/architecture.md") == str(PROJ_ROOT / "docs" / "architecture.md")
    assert notebooks.absolute_path("missing.csv") == str(tmp_path / "missing.csv")
    assert notebooks.absolute_path(None) is None and notebooks.absolute_path({"a": 1}) == {"a": 1}


def test_failing_notebook_keeps_partial_output_and_short_error(suite):
    out, res, _ = suite
    boom = res["boom"]
    assert boom.status == "failed"
    assert boom.error == "ValueError: planted failure <middle>"
    # the cells before the failure ran, the one after did not
    assert (boom.out_dir / "before.txt").read_text() == "ran"
    assert not (boom.out_dir / "after.txt").exists()
    nb = nbformat.read(boom.out_dir / "boom.ipynb", as_version=4)
    texts = json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])
    assert "BEFORE_FAILURE_MARKER" in texts
    assert "planted failure" in texts
    assert json.loads((boom.out_dir / "run.json").read_text())["status"] == "failed"
    # reports are rendered for the failed notebook too, showing the error
    reader = (boom.out_dir / "report.html").read_text()
    assert "BEFORE_FAILURE_MARKER" in reader and "planted failure" in reader


def test_failure_does_not_stop_the_next_notebook(suite):
    _, res, results = suite
    assert [r.name for r in results] == ["boom", "hello"]
    assert res["hello"].status == "ok"
    assert json.loads((res["hello"].out_dir / "findings.json").read_text())["analysis"] == "hello"


def test_run_all_passes_each_notebook_only_the_params_it_declares(suite):
    _, res, _ = suite
    got = json.loads((res["hello"].out_dir / "params.json").read_text())["values"]
    assert got["seed"] == 7 and got["label"] == "x<y & z"
    boom_params = json.loads((res["boom"].out_dir / "run.json").read_text())["parameters"]
    assert boom_params["seed"] == 7 and "label" not in boom_params


def test_run_all_tables_do_not_depend_on_jobs(suite, tmp_path):
    """jobs=2 (threads, one kernel each) and jobs=1 give the same results in the same order."""
    _, res, _ = suite
    results = run_all(["boom", "hello"], out=tmp_path, params={"seed": 7, "label": "x<y & z"},
                      progress=False, notebooks_dir=NB_DIR, jobs=1, pdf=False)
    assert [(r.name, r.status) for r in results] == [("boom", "failed"), ("hello", "ok")]
    for r in results:
        one = json.loads((r.out_dir / "run.json").read_text())["tables"]
        par = json.loads((res[r.name].out_dir / "run.json").read_text())["tables"]
        assert one == par
    assert json.loads((res["hello"].out_dir / "run.json").read_text())["tables"]  # not vacuous


def _makespan(queue, seconds, jobs):
    free = [0.0] * jobs
    for n in queue:
        i = free.index(min(free))
        free[i] += seconds[n]
    return max(free)


def test_dispatch_order_finishes_sooner_than_longest_first_when_it_can():
    from itertools import permutations

    from ecrm_research.report.scheduling import dispatch_order

    secs = {"seg": 9, "loy": 8, "churn": 7.5, "assoc": 6.5, "over": 4}  # measured-like sample durations
    lpt = sorted(secs, key=lambda n: -secs[n])
    queue = dispatch_order(secs, 2)
    assert sorted(queue) == sorted(secs)
    assert _makespan(lpt, secs, 2) == 19.5 and _makespan(queue, secs, 2) == 18
    rng = __import__("random").Random(3)
    for _ in range(20):  # never worse than LPT, and the best any queue order can do
        secs = {c: rng.randint(1, 40) / 4 for c in "abcdef"}
        jobs = rng.choice([2, 3])
        got = _makespan(dispatch_order(secs, jobs), secs, jobs)
        best = min(_makespan(q, secs, jobs) for q in permutations(secs))
        assert got == best <= _makespan(sorted(secs, key=lambda n: -secs[n]), secs, jobs)
    many = {f"n{i}": float(i) for i in range(12)}  # beyond the exhaustive size: longest first
    assert dispatch_order(many, 2) == sorted(many, key=lambda n: -many[n])
    assert dispatch_order(secs, 1) == sorted(secs, key=lambda n: -secs[n])


def test_run_all_runs_notebooks_concurrently_with_jobs_2(tmp_path):
    """Two notebooks that each sleep 4 s overlap with jobs=2: the wall time is far below the sum."""
    books = tmp_path / "nb"
    books.mkdir()
    for fname in ("01_sleepa.ipynb", "02_sleepb.ipynb"):
        shutil.copy(NB_DIR / "02_boom.ipynb", books / fname)
    t0 = time.perf_counter()
    results = run_all("all", out=tmp_path / "out", params={"sleep": 4}, progress=False,
                      notebooks_dir=books, jobs=2, pdf=False)
    wall = time.perf_counter() - t0
    assert [r.name for r in results] == ["sleepa", "sleepb"]
    assert all(r.seconds >= 4 for r in results)
    assert wall < sum(r.seconds for r in results) - 3


def test_default_jobs_follows_cores_and_memory(monkeypatch):
    monkeypatch.setattr(scheduling.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(scheduling, "available_memory", lambda: 20 * 2**30)
    monkeypatch.setattr(scheduling, "input_bytes", lambda data: 2_300_000)  # the bundled sample
    assert scheduling.default_jobs(None, 5)[0] == 2
    assert scheduling.default_jobs(None, 1)[0] == 1
    monkeypatch.setattr(scheduling, "input_bytes", lambda data: 384 * 2**20)  # 1M customers: ~15.6 GB a kernel
    jobs, why = scheduling.default_jobs("/big", 5)
    assert jobs == 1 and "15.6 GB per kernel" in why


def test_run_all_rejects_bad_jobs(tmp_path):
    with pytest.raises(ParameterError, match="jobs"):
        run_all(["hello"], out=tmp_path, notebooks_dir=NB_DIR, jobs=0, progress=False)


def test_cell_timeout_fails_with_readable_error(tmp_path):
    res = run_notebook("boom", params={"sleep": 30}, timeout=2, out=tmp_path, progress=False,
                       notebooks_dir=NB_DIR)
    assert res.status == "failed"
    assert res.error.startswith("CellTimeoutError: ") and "2 seconds" in res.error
    assert res.seconds < 25
    nb = nbformat.read(tmp_path / "boom" / "boom.ipynb", as_version=4)  # written although the cell never ended
    ran = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in ran)


def test_executed_notebook_is_written_periodically_not_at_every_cell(tmp_path, monkeypatch):
    """papermill writes the whole output notebook at each cell start and end (~70 writes for an
    analysis notebook); the runner's engine writes it every SAVE_EVERY_SECONDS and at the end."""
    import papermill.engines

    writes = []
    real = papermill.engines.write_ipynb
    monkeypatch.setattr(papermill.engines, "write_ipynb", lambda nb, path: (writes.append(path), real(nb, path)))
    res = run_notebook("hello", out=tmp_path, progress=False, notebooks_dir=NB_DIR, render=False)
    assert res.status == "ok"
    nb = nbformat.read(res.out_dir / "hello.ipynb", as_version=4)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    assert n_code >= 4 and all(c.execution_count for c in nb.cells if c.cell_type == "code")
    assert 1 <= len(writes) <= 2  # instead of 2 per cell + 2

    writes.clear()
    monkeypatch.setattr(runner, "SAVE_EVERY_SECONDS", 0.0)  # due at every cell: papermill's behaviour
    run_notebook("hello", out=tmp_path, progress=False, notebooks_dir=NB_DIR, render=False)
    assert len(writes) >= 2 * n_code


def test_rerun_clears_stale_outputs_of_the_previous_run(tmp_path):
    """The files of an earlier run are removed (only those: see tests/test_run_files.py). This earlier
    run is one written before run records existed, recognised by its run.json."""
    stale = tmp_path / "boom"
    (stale / "tables").mkdir(parents=True)
    (stale / "tables" / "old.csv").write_text("x\n1\n")
    (stale / "findings.json").write_text('{"analysis": "boom", "question": "STALE", "findings": []}')
    (stale / "run.json").write_text(json.dumps({"name": "boom", "notebook_sha256": "0", "started": "2000-01-01",
                                                "tables": {"tables/old.csv": hashlib.sha256(b"x\n1\n").hexdigest()}}))
    res = run_notebook("boom", out=tmp_path, progress=False, notebooks_dir=NB_DIR, render=False)
    assert res.status == "failed"
    assert not (stale / "findings.json").exists()
    assert not (stale / "tables" / "old.csv").exists()
    assert not (stale / "report.html").exists()  # render=False


def test_ensure_kernel_installs_missing_kernelspec_into_sys_prefix(monkeypatch):
    import ipykernel.kernelspec

    calls = []
    monkeypatch.setattr(ipykernel.kernelspec, "install", lambda **kw: calls.append(kw))
    assert runner.ensure_kernel(KERNEL_NAME) == KERNEL_NAME  # registered: no install
    assert calls == []
    assert runner.ensure_kernel("ecrm-no-such-kernel-xyz") == "ecrm-no-such-kernel-xyz"
    assert calls == [{"kernel_name": "ecrm-no-such-kernel-xyz", "display_name": "Python (ecrm-no-such-kernel-xyz)",
                      "prefix": sys.prefix, "env": {"PYTHONHASHSEED": "0"}}]


def test_kernels_get_the_same_hash_seed_in_every_run(tmp_path):
    """semopy orders parameters through sets of names; with a random hash seed per kernel its
    estimates moved in the 15th digit between runs. Kernels started by the runner share one seed."""
    books = tmp_path / "nb"
    books.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("out_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "from pathlib import Path\nPath(out_dir).mkdir(parents=True, exist_ok=True)\n"
        "Path(out_dir, 'h.txt').write_text(f'{hash(\"ecrm\")} {list({\"a\", \"b\", \"c\", \"d\", \"e\"})}')")]
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_NAME, "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, books / "01_hashes.ipynb")
    texts = []
    for run in range(2):
        res = run_notebook("hashes", out=tmp_path / f"run{run}", progress=False, notebooks_dir=books, render=False)
        assert res.status == "ok", res.error
        texts.append((res.out_dir / "h.txt").read_text())
        assert json.loads((res.out_dir / "run.json").read_text())["python_hash_seed"] == os.environ["PYTHONHASHSEED"]
    assert texts[0] == texts[1]


# --------------------------------------------------------------------------- HTML reports


def test_reader_report_has_no_code_but_student_report_does(suite):
    _, res, _ = suite
    reader = _body((res["hello"].out_dir / "report.html").read_text())
    student = _body((res["hello"].out_dir / "report_student.html").read_text())
    input_area = 'class="jp-InputArea jp-Cell-inputArea"'
    # reader: markdown and outputs, no code
    assert "READER_MARKDOWN_MARKER" in reader
    assert "OUTPUT_MARKER 3" in reader
    assert "CODE_INPUT_MARKER" not in reader
    assert "ReportOutputs" not in reader
    assert reader.count(input_area) == 1  # only the markdown cell's input area
    # student: the same plus every code cell
    assert "READER_MARKDOWN_MARKER" in student and "OUTPUT_MARKER 3" in student
    assert "CODE_INPUT_MARKER" in student and "ReportOutputs" in student
    assert student.count(input_area) == 1 + 5  # markdown + parameters, injected, 3 code cells


# --------------------------------------------------------------------------- index


def test_index_links_point_to_existing_files(suite):
    out, _, _ = suite
    html = (out / "index.html").read_text()
    links = [x for x in _links(html) if not x.startswith("#")]
    assert links, "index has no links"
    for link in links:
        assert not link.startswith(("/", "http:", "https:", "file:")), link  # relative only
        assert (out / unquote(link)).is_file(), link
    expected = {"hello/report.html", "hello/report_student.html", "hello/hello.ipynb",
                "hello/tables/numbers.csv", "hello/tables/labels%20%26%20more.csv", "hello/figures/line.png",
                "boom/report.html", "boom/report_student.html", "boom/boom.ipynb"}
    assert expected <= set(links)
    assert re.search(r'<img src="hello/figures/line.png"', html)


def test_index_marks_failure_and_shows_findings_escaped(suite):
    out, _, _ = suite
    html = (out / "index.html").read_text()
    body = _body(html)
    boom_card = re.search(r'<section class="card failed" id="boom">.*?</section>', body, re.S)
    assert boom_card, "boom is not marked failed"
    assert "ValueError: planted failure &lt;middle&gt;" in boom_card.group(0)
    hello_card = re.search(r'<section class="card ok" id="hello">.*?</section>', body, re.S).group(0)
    assert "How many items &amp; why?" in hello_card
    assert "3 items were written &lt;b&gt;not bold&lt;/b&gt;" in hello_card
    assert "<b>" not in body
    # order follows the notebooks' NN, not the run order
    assert body.index('id="hello"') < body.index('id="boom"')
    # data source, parameters and run date at the top
    header = body[: body.index("<main>")]
    assert "bundled sample" in header
    assert "seed = 7" in header and "label = x&lt;y &amp; z" in header
    assert re.search(r"Run date</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d", header)
    assert "2 analyses: 1 ok, 1 failed." in header
    assert html.count("<style>") == 1 and 'rel="stylesheet"' not in html


def test_index_keeps_analyses_from_earlier_runs(tmp_path):
    run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR)
    run_all(["boom"], out=tmp_path, progress=False, notebooks_dir=NB_DIR)
    body = _body((tmp_path / "index.html").read_text())
    hello_card = re.search(r'<section class="card ok" id="hello">.*?</section>', body, re.S)
    assert hello_card and "from an earlier run" in hello_card.group(0)
    assert '<section class="card failed" id="boom">' in body


# --------------------------------------------------------------------------- report polish


def test_reports_are_self_contained_styled_and_number_formatted(suite):
    out, res, _ = suite
    for name in ("hello", "boom"):
        for report in ("report.html", "report_student.html"):
            html = (out / name / report).read_text()
            assert 'id="ecrm-report-css"' in html and "tabular-nums" in html
            # nbconvert's CDN scripts are dropped so the report opens (and prints) offline
            assert not re.search(r'<script[^>]+src="https?://', html), (name, report)
            assert "mathjax" not in html.lower()


def test_kernel_sets_readable_float_display(tmp_path):
    """The runner's kernel start-up code sets pandas' float format (thousands separators)."""
    from ecrm_research.report.display import format_float

    nb = nbformat.read(NB_DIR / "01_hello_world.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import pandas as pd\nprint(pd.DataFrame({'v': [1234567.891, 0.000012345, 3.14159]}).to_string())"))
    nb.cells.append(nbformat.v4.new_code_cell(
        "pd.DataFrame({'orders': [1234567, 5, 6], 'year': [2024, 2025, 2026], 'v': [0.5, 1.0, 2.0]})"))
    (tmp_path / "nb").mkdir()
    nbformat.write(nb, tmp_path / "nb" / "01_hello_world.ipynb")
    res = run_notebook("hello", out=tmp_path / "o", progress=False, notebooks_dir=tmp_path / "nb", pdf=False)
    assert res.ok, res.error
    cells = nbformat.read(res.notebook, as_version=4).cells
    text = "".join(o.get("text", "") for o in cells[-2].outputs)
    html = cells[-1].outputs[0]["data"]["text/html"]
    cells_text = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert "1,234,567" in cells_text and "2024" in cells_text  # quantities get separators, years not
    assert "1" in cells_text and "1.0" not in cells_text and "50.0%" not in cells_text  # whole numbers as ints
    assert "1,234,568" in text and "1.23e-05" in text and "3.14" in text and "3.14159" not in text
    assert format_float(float("nan")) == "NaN" and format_float(12345.678) == "12,345.68"


def test_run_json_records_pdf_outcome_and_notebook_hash(suite):
    out, res, _ = suite
    run = json.loads((res["hello"].out_dir / "run.json").read_text())
    assert run["pdf"]["status"] in ("ok", "skipped")
    if run["pdf"]["status"] == "ok":
        assert (res["hello"].out_dir / "report.pdf").read_bytes()[:5] == b"%PDF-"
    else:
        assert "Chromium" in run["pdf"]["reason"]
    assert len(run["notebook_sha256"]) == 64 and run["seed"] == 7
    assert run["tables"]["tables/numbers.csv"]


def test_run_json_is_replaced_atomically_while_another_thread_reads_it(tmp_path):
    """The PDF thread rewrites run.json while the runner may still write it: a reader must
    always get one whole JSON document (CI once found two documents in one file)."""
    import threading

    from ecrm_research.report.runner import _write_run_json

    stop, bad = threading.Event(), []

    def writer(tag: str) -> None:
        for i in range(300):
            _write_run_json(tmp_path, {"writer": tag, "i": i, "pad": tag * (50 + 37 * (i % 9))})

    def reader() -> None:
        while not stop.is_set():
            try:
                json.loads((tmp_path / "run.json").read_text())
            except FileNotFoundError:
                pass
            except ValueError as exc:
                bad.append(str(exc))

    _write_run_json(tmp_path, {"writer": "start"})
    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    r = threading.Thread(target=reader)
    r.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    r.join()
    assert bad == []
    assert json.loads((tmp_path / "run.json").read_text())["i"] == 299
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary files left


def test_reader_report_leaves_out_exercises_and_student_report_solutions(tmp_path):
    nb = nbformat.read(NB_DIR / "01_hello_world.ipynb", as_version=4)
    nb.cells += [
        nbformat.v4.new_markdown_cell("**Exercise 1: PROMPT_MARKER.**", metadata={"tags": ["exercise"]}),
        nbformat.v4.new_code_cell("print('SOLUTION_OUTPUT_MARKER')", metadata={"tags": ["solution"]}),
    ]
    (tmp_path / "nb").mkdir()
    nbformat.write(nb, tmp_path / "nb" / "01_hello_world.ipynb")
    res = run_notebook("hello", out=tmp_path / "o", progress=False, notebooks_dir=tmp_path / "nb", pdf=False)
    reader = _body((res.out_dir / "report.html").read_text())
    student = _body((res.out_dir / "report_student.html").read_text())
    assert "PROMPT_MARKER" not in reader and "SOLUTION_OUTPUT_MARKER" not in reader
    assert "PROMPT_MARKER" in student and "SOLUTION_OUTPUT_MARKER" not in student
    assert "SOLUTION_OUTPUT_MARKER" in json.dumps(nbformat.read(res.notebook, as_version=4).cells)


def test_index_card_shows_at_most_five_findings(tmp_path):
    from ecrm_research.report.site import write_index

    d = tmp_path / "many"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"status": "ok", "pdf": {"status": "skipped", "reason": "no <chromium>"}}))
    (d / "findings.json").write_text(json.dumps({"question": "Q?", "findings": [
        {"key": f"k{i}", "value": i, "text": f"finding {i}"} for i in range(8)]}))
    html = write_index(tmp_path).read_text()
    assert "finding 4" in html and "finding 5" not in html and "… 3 more in the report" in html
    assert "PDF skipped: no &lt;chromium&gt;" in html


def test_parquet_tables_do_not_carry_run_specific_attrs(tmp_path):
    """Mining results carry their timings in DataFrame.attrs; pandas writes attrs into Parquet
    metadata, so the same table from two runs differed byte for byte."""
    import pandas as pd

    from ecrm_research.report.outputs import ReportOutputs

    paths = []
    for run, seconds in enumerate((0.123, 0.456)):
        df = pd.DataFrame({"itemsets": [frozenset({"a", "b"}), frozenset({"c"})], "support": [0.5, 0.25]})
        df.attrs = {"timings": {"mine": seconds}}
        out = ReportOutputs(tmp_path / f"run{run}", "x")
        out.table(df, "itemsets", parquet=True)
        paths.append(out.tables_dir / "itemsets.parquet")
        assert df.attrs["timings"]["mine"] == seconds  # the caller's frame is untouched
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert pd.read_parquet(paths[0])["itemsets"].map(list).tolist() == [["a", "b"], ["c"]]


def test_kernel_is_stopped_immediately_unless_spark_was_asked_for(tmp_path, monkeypatch):
    """A finished notebook's kernel is stopped rather than left to tear Python down (0.5-1 s per
    notebook); Spark kernels exit gracefully so Spark can clean up. No kernel is left running."""
    import os

    import papermill

    assert runner._shutdown_mode({"prep_engine": "pandas", "engine": "auto"}) == "immediate"
    assert runner._shutdown_mode({"prep_engine": "spark"}) == runner._shutdown_mode({"engine": " Spark"}) == "graceful"
    modes = []
    real = papermill.execute_notebook
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: (modes.append(k["shutdown_kernel"]), real(*a, **k))[1])
    res = run_notebook("hello", out=tmp_path, progress=False, notebooks_dir=NB_DIR, render=False)
    assert res.status == "ok" and modes == ["immediate"]
    kernels = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"ipykernel" in cmd and fields[0] not in "ZX":
            kernels.append(stat.parent.name)
    assert kernels == []
