"""Follow-ups of issue 14 (items 9 and 10) for ``ecrm reproduce`` and the data-quality report.

* SIGINT/SIGTERM during ``ecrm reproduce`` is handled as in ``ecrm run``: nothing new starts, the running
  kernel is ended within seconds, the target's run record says ``interrupted``, its lock is released,
  the CLI exits 130, and running the same command again completes the reproduction.
* ``QualityReport`` Markdown (its Jupyter display) escapes every cell and header with
  :func:`ecrm_research.markup.escape_md` (layer 0; re-exported by ``report.display``): a hostile product
  id, status or column name renders as text, never as a tag, link or extra table column.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import psutil
import pytest
from nbconvert.filters.markdown import markdown2html
from process_checks import interrupt_and_wait, kernels_of
from test_quality import shop

from ecrm_research import markup
from ecrm_research.data import schema
from ecrm_research.data.quality import quality_report
from ecrm_research.paths import KERNEL_NAME, PROJ_ROOT
from ecrm_research.report import display
from ecrm_research.report.ownership import LOCK_NAME, RECORD_NAME
from ecrm_research.report.reproduce import reproduce
from ecrm_research.report.runner import run_all
from ecrm_research.report.stopping import RunInterrupted

NAMES = ("first", "second", "third")

#: each notebook writes a table, then sleeps ECRM_TEST_DELAY seconds (the environment the kernel
#: inherits): the recorded run is quick, its reproduction slow enough to be interrupted
_BODY = ("import os, time\nfrom pathlib import Path\nt = Path(out_dir, 'tables'); t.mkdir(parents=True, exist_ok=True)\n"
         "(t / 'a.csv').write_text('x\\n1\\n')\ntime.sleep(float(os.environ.get('ECRM_TEST_DELAY', '0')))\n")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A complete quick run of three notebooks (with its manifest), to be reproduced."""
    books = tmp_path_factory.mktemp("books")
    for i, name in enumerate(NAMES, start=1):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell("out_dir = None")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(_BODY)]
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_NAME, "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nbformat.write(nb, books / f"0{i}_{name}.ipynb")
    out = tmp_path_factory.mktemp("recorded") / "run"
    assert os.environ.get("ECRM_TEST_DELAY") is None
    results = run_all(list(NAMES), out=out, progress=False, notebooks_dir=books, pdf=False, jobs=1)
    assert [r.status for r in results] == ["ok"] * 3
    return out


def _assert_interrupted_target(dest: Path, sig_name: str) -> None:
    """First analysis interrupted, the other two never started, the record and lock consistent."""
    run = json.loads((dest / "first" / "run.json").read_text())
    assert run["status"] == "interrupted" and run["error"].startswith(f"interrupted by {sig_name}")
    assert not (dest / "second").exists() and not (dest / "third").exists()
    record = json.loads((dest / RECORD_NAME).read_text())
    assert record["state"] == "interrupted"
    assert record["analyses"]["first"]["state"] == "done"  # its files are the tool's, replaced next time
    assert not (dest / LOCK_NAME).exists()


# --------------------------------------------------------------------------- reproduce interrupts


def test_sigterm_during_reproduce_stops_its_kernel_and_exits_130(recorded, tmp_path):
    dest = tmp_path / "again"
    cmd = [sys.executable, "-m", "ecrm_research.cli", "reproduce", str(recorded), "--out", str(dest), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=PROJ_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "ECRM_TEST_DELAY": "120"})
    ps = psutil.Process(proc.pid)
    kernels: list[psutil.Process] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # wait until the first kernel sleeps
        kernels = kernels_of(ps)
        if kernels and (dest / "first" / "tables" / "a.csv").is_file():
            break
        time.sleep(0.2)
    assert kernels, f"no kernel started: {proc.communicate(timeout=30)}"

    stdout, stderr = interrupt_and_wait(proc, signal.SIGTERM, kernels)
    assert f"interrupted: SIGTERM received; reproduction of {recorded} into {dest} stopped" in stderr
    assert "1 interrupted (first); 2 not run (second, third)" in stderr
    assert "Run the same command again" in stderr
    _assert_interrupted_target(dest, "SIGTERM")

    again = subprocess.run(cmd, cwd=PROJ_ROOT, capture_output=True, text=True, timeout=300,
                           env={k: v for k, v in os.environ.items() if k != "ECRM_TEST_DELAY"})
    assert again.returncode == 0, again.stdout + again.stderr  # no --force: the interrupted files are the tool's
    assert "REPRODUCED: 3 of 3 tables identical or equal." in again.stdout
    assert json.loads((dest / RECORD_NAME).read_text())["state"] == "complete"
    assert all(json.loads((dest / n / "run.json").read_text())["status"] == "ok" for n in NAMES)


def test_sigint_during_reproduce_raises_run_interrupted_with_the_partial_report(recorded, tmp_path, monkeypatch):
    """In-process (the API): ``RunInterrupted`` carries each analysis' result and the partial report."""
    monkeypatch.setenv("ECRM_TEST_DELAY", "120")
    dest = tmp_path / "again"
    sender_done = threading.Event()

    def send_sigint_when_the_kernel_sleeps() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (dest / "first" / "tables" / "a.csv").is_file():
            time.sleep(0.1)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)  # handled in the main thread by stop_on_signals
        sender_done.set()

    # another test in this process may have installed its own handler (pyspark's SparkContext does)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    threading.Thread(target=send_sigint_when_the_kernel_sleeps, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(RunInterrupted) as err:
        reproduce(recorded, dest)
    assert sender_done.is_set() and time.monotonic() - t0 < 120
    exc = err.value
    assert isinstance(exc, KeyboardInterrupt) and exc.signal_name == "SIGINT"
    assert [(r.name, r.status) for r in exc.results] == [("first", "interrupted"), ("second", "not run"),
                                                         ("third", "not run")]
    report = exc.report
    assert report.interrupted == ["first"] and report.not_run == ["second", "third"]
    assert report.tables == [] and not report.ok  # nothing compared for an interrupted analysis
    summary = report.summary()
    assert "INTERRUPTED    first" in summary and "NOT RUN        third" in summary
    assert "NOT REPRODUCED: 0 of 0 tables identical or equal; 3 analysis(es) not reproduced" in summary
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored
    _assert_interrupted_target(dest, "SIGINT")


# --------------------------------------------------------------------------- escaped quality report


class _Cells(HTMLParser):
    """Start tags with attributes, and the text of every table row (one list of cell texts per row)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _rendered(md: str) -> _Cells:
    parsed = _Cells()
    parsed.feed(markdown2html(md))  # the renderer nbconvert uses for Markdown outputs
    parsed.close()
    return parsed


HOSTILE_ID = "<img src=x onerror=alert(1)> | y"
HOSTILE_CODE = "[c](javascript:alert(1))"
HOSTILE_STATUS = "<script>alert(1)</script>"
HOSTILE_COLUMN = "<b onmouseover=alert(1)>n</b>"


@pytest.fixture(scope="module")
def hostile_report():
    t = shop()
    items = t["order_items"].astype({"product_id": object})
    items.loc[9, "product_id"] = HOSTILE_ID      # an orphan product id: the example of the orphan table
    items.loc[11, "product_id"] = HOSTILE_CODE   # a non-product code: a row of the non-product table
    t["order_items"] = schema.coerce_table(items, "order_items")
    rep = quality_report(t, non_product_codes=(HOSTILE_CODE,))
    # statuses are checked against the schema when read; the report must still not trust them
    statuses = rep.statuses.astype({"status": object})
    statuses.loc[len(statuses)] = [HOSTILE_STATUS, 1, 1, 0.1]
    statuses = statuses.rename(columns={"n_lines": HOSTILE_COLUMN})
    return dataclasses.replace(rep, statuses=statuses)


def test_escape_md_lives_in_the_bottom_layer_and_notebooks_keep_their_import():
    assert display.escape_md is markup.escape_md
    assert markup.escape_md("a|b\nc") == "a\\|b c"


def test_quality_report_markdown_renders_hostile_values_as_text(hostile_report):
    md = hostile_report._repr_markdown_()
    assert md == hostile_report.to_markdown()
    for raw in ("<img", "<script", "<b ", "](javascript"):
        assert raw not in md
    parsed = _rendered(md)
    for tag, attrs in parsed.tags:
        assert not [a for a in attrs if a.lower().startswith("on")], f"<{tag}> has an event handler"
        assert tag not in ("img", "script", "b"), f"<{tag}> from a value reached the page"
        assert tag != "a" or attrs.get("class") == "anchor-link", f"a link from a value: {attrs}"  # headings' own
    rows = {r[0]: r for r in parsed.rows if r}
    # each value is exactly one cell, shown as typed (the '|' of the product id splits nothing)
    orphan = next(r for r in parsed.rows if r and r[2] == "products.product_id")
    assert orphan == ["order_items", "product_id", "products.product_id", "2", HOSTILE_ID]
    assert rows[HOSTILE_CODE] == [HOSTILE_CODE, "1", "1", "4.50"]
    assert rows[HOSTILE_STATUS] == [HOSTILE_STATUS, "1", "1", "0.1"]
    assert ["status", "n_orders", HOSTILE_COLUMN, "share_orders"] in parsed.rows
    assert ["order_items", "12", "6", "12", "0", "1", "2"] in parsed.rows  # ordinary values read the same
