"""Output folders and interrupts (issue 14, items 8 and 9).

* A run deletes or replaces only the files it wrote (``OUT/.ecrm-run.json``); the user's files make it
  stop before any kernel starts (exit 2) unless ``--force``, which still never deletes them.
* One run per output folder (``OUT/.ecrm.lock``, stale when its process is gone).
* SIGINT/SIGTERM during ``ecrm run all`` ends every kernel within seconds, starts nothing new,
  writes the index/manifest/records as interrupted, exits 130; a rerun completes.

Uses the tiny notebooks of tests/notebooks/ and small generated ones (a slow one for interrupts).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from process_checks import interrupt_and_wait, kernels_of

from ecrm_research.cli import main
from ecrm_research.paths import KERNEL_NAME, PROJ_ROOT
from ecrm_research.report.ownership import (
    LOCK_NAME,
    RECORD_NAME,
    OutputFolderError,
    OutputLockedError,
    OutputRecord,
    output_lock,
)
from ecrm_research.report.reproduce import reproduce
from ecrm_research.report.runner import run_all, run_notebook

NB_DIR = Path(__file__).parent / "notebooks"


def _notebook(folder: Path, fname: str, params: str, body: str) -> None:
    """Write a notebook with a `parameters` cell and one code cell."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_NAME, "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / fname)


_WRITE_TABLE = ("from pathlib import Path\nimport time\nt = Path(out_dir, 'tables'); t.mkdir(parents=True, exist_ok=True)\n"
                "(t / f'{table}.csv').write_text('x\\n1\\n')\ntime.sleep(delay)\n")


@pytest.fixture(scope="module")
def slow_books(tmp_path_factory) -> Path:
    """Three notebooks that write ``tables/<table>.csv`` and then sleep `delay` seconds."""
    books = tmp_path_factory.mktemp("slow_books")
    for i, name in enumerate(("first", "second", "third"), start=1):
        _notebook(books, f"0{i}_{name}.ipynb", "out_dir = None\ndelay = 0\ntable = 'a'", _WRITE_TABLE)
    return books


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- files


def test_user_file_in_analysis_folder_stops_the_run_before_any_kernel(tmp_path):
    run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)
    mine = tmp_path / "hello" / "tables" / "mine.csv"
    mine.write_text("my,own\n1,2\n")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "hello").rglob("*") if p.is_file()}
    with pytest.raises(OutputFolderError) as err:
        run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)
    msg = str(err.value)
    assert "1 file(s) that ecrm run did not write: hello/tables/mine.csv" in msg
    assert "--force" in msg and "another --out" in msg
    # nothing was touched: same files, same times
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "hello").rglob("*") if p.is_file()} == before
    assert not (tmp_path / LOCK_NAME).exists()


def test_force_writes_beside_user_files_and_never_deletes_them(tmp_path):
    run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)
    mine = tmp_path / "hello" / "tables" / "mine.csv"
    mine.write_text("my,own\n1,2\n")
    notes = tmp_path / "hello" / "notes" / "todo.txt"
    notes.parent.mkdir()
    notes.write_text("call the client")
    for _ in range(2):
        res = run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False, force=True)
        assert res[0].status == "ok"
        assert mine.read_text() == "my,own\n1,2\n" and notes.read_text() == "call the client"
    entry = json.loads((tmp_path / RECORD_NAME).read_text())["analyses"]["hello"]
    assert set(entry["kept"]) == {"hello/tables/mine.csv", "hello/notes/todo.txt"}
    assert "hello/tables/mine.csv" not in entry["files"] and "hello/tables/numbers.csv" in entry["files"]
    with pytest.raises(OutputFolderError, match="2 file"):  # still theirs without --force
        run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)


def test_rerun_deletes_its_own_stale_outputs(tmp_path):
    books = tmp_path / "nb"
    _notebook(books, "01_tab.ipynb", "out_dir = None\ndelay = 0\ntable = 'a'", _WRITE_TABLE)
    out = tmp_path / "out"
    run_notebook("tab", out=out, progress=False, notebooks_dir=books, render=False, params={"table": "old"})
    assert (out / "tab" / "tables" / "old.csv").is_file()
    run_notebook("tab", out=out, progress=False, notebooks_dir=books, render=False, params={"table": "new"})
    assert not (out / "tab" / "tables" / "old.csv").exists()  # the tool's own stale table is gone
    assert (out / "tab" / "tables" / "new.csv").is_file()


def test_output_changed_by_the_user_is_theirs(tmp_path):
    run_notebook("hello", out=tmp_path, progress=False, notebooks_dir=NB_DIR, render=False)
    findings = tmp_path / "hello" / "findings.json"
    findings.write_text('{"edited": "by hand"}')
    with pytest.raises(OutputFolderError, match="hello/findings.json"):
        run_notebook("hello", out=tmp_path, progress=False, notebooks_dir=NB_DIR, render=False)
    assert findings.read_text() == '{"edited": "by hand"}'


def test_foreign_index_and_manifest_are_refused(tmp_path):
    (tmp_path / "index.html").write_text("<h1>my homepage</h1>")
    (tmp_path / "manifest.json").write_text('{"my": "list"}')
    (tmp_path / "README.txt").write_text("other files at the root are not the tool's business")
    with pytest.raises(OutputFolderError) as err:
        run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)
    assert "2 file(s)" in str(err.value) and "index.html, manifest.json" in str(err.value)
    assert not (tmp_path / "hello").exists()  # nothing ran
    assert (tmp_path / "index.html").read_text() == "<h1>my homepage</h1>"


def test_output_of_an_earlier_version_without_record_is_recognised(tmp_path):
    run_all(["hello", "boom"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)
    (tmp_path / RECORD_NAME).unlink()  # as written before run records existed
    results = run_all(["hello", "boom"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)
    assert [r.status for r in results] == ["ok", "failed"]
    (tmp_path / RECORD_NAME).unlink()
    (tmp_path / "hello" / "tables" / "mine.csv").write_text("a\n1\n")  # not listed in its run.json
    later = (tmp_path / "hello" / "run.json").stat().st_mtime + 5
    os.utime(tmp_path / "hello" / "tables" / "mine.csv", (later, later))
    with pytest.raises(OutputFolderError, match="hello/tables/mine.csv"):
        run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)


def test_killed_run_leaves_its_files_to_the_next_run_but_not_the_users(tmp_path):
    out = tmp_path
    (out / "hello").mkdir()
    (out / "hello" / "mine.txt").write_text("mine")
    record = OutputRecord(out)
    record.begin("hello", force=True)  # a run that was then killed: state stays "running"
    (out / "hello" / "tables").mkdir()
    (out / "hello" / "tables" / "partial.csv").write_text("x\n")
    assert OutputRecord(out).foreign_files("hello") == ["hello/mine.txt"]
    run_notebook("hello", out=out, progress=False, notebooks_dir=NB_DIR, render=False, force=True)
    assert not (out / "hello" / "tables" / "partial.csv").exists()
    assert (out / "hello" / "mine.txt").read_text() == "mine"


def test_cli_refuses_foreign_files_with_exit_2(tmp_path, capsys):
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "budget.xlsx").write_bytes(b"PK")
    code = main(["run", "hello", "--out", str(tmp_path), "--notebooks-dir", str(NB_DIR), "--no-pdf", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "hello/budget.xlsx" in err and "--force" in err
    code = main(["run", "hello", "--out", str(tmp_path), "--notebooks-dir", str(NB_DIR), "--no-pdf", "--no-progress",
                 "--force"])
    assert code == 0 and (tmp_path / "hello" / "budget.xlsx").read_bytes() == b"PK"


def test_out_naming_a_file_is_an_error(tmp_path, capsys):
    target = tmp_path / "report.txt"
    target.write_text("x")
    code = main(["run", "hello", "--out", str(target), "--notebooks-dir", str(NB_DIR), "--no-pdf", "--no-progress"])
    assert code == 2 and "is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_reproduce_keeps_user_files_in_its_target(tmp_path, capsys):
    orig = tmp_path / "run"
    run_all(["hello"], out=orig, progress=False, notebooks_dir=NB_DIR, pdf=False)
    dest = tmp_path / "run-reproduce"
    (dest / "hello").mkdir(parents=True)
    (dest / "hello" / "compare.txt").write_text("my notes")
    (dest / "keep.txt").write_text("at the root")
    assert main(["reproduce", str(orig), "--no-progress"]) == 2
    assert "hello/compare.txt" in capsys.readouterr().err
    assert (dest / "hello" / "compare.txt").read_text() == "my notes"
    report = reproduce(orig, force=True)
    assert report.ok, report.summary()
    assert (dest / "hello" / "compare.txt").read_text() == "my notes" and (dest / "keep.txt").is_file()
    (dest / "hello" / "compare.txt").unlink()
    assert reproduce(orig).ok  # into its own earlier reproduction: replaces its files, no --force needed


# --------------------------------------------------------------------------- lock


def test_lock_held_by_a_live_process_stops_a_second_run_at_once(tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom ecrm_research.report.ownership import output_lock\n"
         "with output_lock(sys.argv[1], 'ecrm run all'):\n    print('held', flush=True); time.sleep(60)",
         str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=PROJ_ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(OutputLockedError) as err:
            run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)
        assert time.monotonic() - t0 < 5
        msg = str(err.value)
        assert f"pid {holder.pid}" in msg and "ecrm run all" in msg and "another --out" in msg
        assert str(tmp_path / LOCK_NAME) in msg
        assert not (tmp_path / "hello").exists()
        code = main(["run", "hello", "--out", str(tmp_path), "--notebooks-dir", str(NB_DIR), "--no-pdf"])
        assert code == 2 and "in use by another run" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename,
                                                  "started": "2024-01-01T00:00:00", "command": "ecrm run all"}))
    res = run_all(["hello"], out=tmp_path, progress=False, notebooks_dir=NB_DIR, pdf=False)
    assert res[0].status == "ok"
    assert not (tmp_path / LOCK_NAME).exists()  # released at the end


def test_lock_is_reentrant_in_one_process_and_released(tmp_path):
    with output_lock(tmp_path) as lock:
        info = json.loads(lock.read_text())
        assert info["pid"] == os.getpid()
        with output_lock(tmp_path):
            assert lock.exists()
        assert lock.exists()
    assert not lock.exists()


# --------------------------------------------------------------------------- interrupts


@pytest.mark.parametrize(("jobs", "sig"), [("1", signal.SIGINT), ("2", signal.SIGTERM)])
def test_signal_during_run_all_stops_kernels_and_leaves_out_consistent(tmp_path, slow_books, jobs, sig):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ecrm_research.cli", "run", "all", "--out", str(out), "--notebooks-dir",
           str(slow_books), "--no-pdf", "--no-progress", "-j", jobs]
    proc = subprocess.Popen([*cmd, "-p", "delay", "120"], cwd=PROJ_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    running = int(jobs)
    deadline = time.monotonic() + 120
    kernels: list[psutil.Process] = []
    while time.monotonic() < deadline and proc.poll() is None:  # wait until the kernels are in their sleep
        kernels = kernels_of(ps)
        started = [n for n in ("first", "second", "third") if (out / n / "tables" / "a.csv").is_file()]
        if len(kernels) >= running and len(started) >= running:
            break
        time.sleep(0.2)
    assert len(kernels) >= running, f"kernels did not start: {proc.communicate(timeout=30)}"

    stdout, stderr = interrupt_and_wait(proc, sig, kernels)

    name = "SIGINT" if sig == signal.SIGINT else "SIGTERM"
    assert f"interrupted: {name} received" in stderr and "Run the same command again" in stderr
    interrupted = ["first"] if jobs == "1" else ["first", "second"]
    not_run = ["second", "third"] if jobs == "1" else ["third"]
    for n in interrupted:
        run = json.loads((out / n / "run.json").read_text())
        assert run["status"] == "interrupted" and run["error"].startswith(f"interrupted by {name}")
    for n in not_run:
        assert not (out / n).exists()  # never started: nothing written, nothing stale
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["state"] == "interrupted" and manifest["not_run"] == not_run
    assert json.loads((out / RECORD_NAME).read_text())["state"] == "interrupted"
    assert not (out / LOCK_NAME).exists()
    index = (out / "index.html").read_text()
    for n in interrupted:
        assert re.search(rf'<section class="card interrupted" id="{n}">', index)
    for n in not_run:
        card = re.search(rf'<section class="card not-run" id="{n}">.*?</section>', index, re.S).group(0)
        assert "Not run: the run was interrupted before this analysis started." in card
        assert "href" not in card  # links only to files that exist: it has none
    assert f"{len(interrupted)} interrupted, {len(not_run)} not run." in index
    assert 'class="card ok"' not in index

    rerun = subprocess.run([*cmd, "-p", "delay", "0"], cwd=PROJ_ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    index = (out / "index.html").read_text()
    assert index.count('class="card ok"') == 3 and "interrupted" not in index.split("<main>")[1]
    assert json.loads((out / "manifest.json").read_text())["state"] == "complete"
    assert json.loads((out / RECORD_NAME).read_text())["state"] == "complete"
    assert {"first/run.json", "first/tables/a.csv", "first/report.html", "third/run.json"} <= _files(out)
