"""Benchmark of the notebook runner: ``ecrm run all`` on the sample vs the papermill floor.

Baseline (the floor any papermill runner pays): papermill executing the same number of
trivial notebooks with the same kernel (``ecrm-research``), each holding a parameters cell and
one cell with the imports our notebooks make (pandas, matplotlib, the package). The ratio
``run all`` / floor says how much of the wall time is analysis rather than kernel start-up.

Both sides are timed the same way: as a fresh process, from the outside. ``ecrm run all`` is
the command itself (``python -m ecrm_research.cli run all``: interpreter start, imports of
papermill and the runner, every notebook, reports, PDFs, index); the floor is one Python process
that imports papermill and executes the trivial notebooks. (The first version timed ``run_all``
inside this script after the floors' papermill import had been paid elsewhere in the process for
one side but not the other: run all carried ~1 s of cold imports that the floor did not.)

Prints the time of each notebook (from each ``run.json``) and of each trivial one.

Usage::

    python benchmarks/bench_runner.py              # run all on the bundled sample + floor
    python benchmarks/bench_runner.py --floor-only
    python benchmarks/bench_runner.py --jobs 1     # notebooks one after another

``run all`` uses ``jobs='auto'`` like the CLI (two notebooks at a time on two cores for the
sample). The target ratio is against papermill running the trivial notebooks one after
another, which is what running the notebooks with papermill costs at least; with ``jobs > 1``
the script also prints the ratio against the trivial notebooks run the same number at a time.
A second floor runs each real notebook cut to its parameters and imports cells (the libraries
each analysis needs: scikit-learn, lifelines, semopy, ...), one after another.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

IMPORTS = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
           "import pandas as pd\nimport ecrm_research\nfrom ecrm_research.data import io, quality\n"
           "from ecrm_research.report import outputs\n")


def _trivial_notebook(path: Path, kernel: str) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("data = None\nout_dir = None\nseed = 42")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(IMPORTS)]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)


def _cell_times(nb_path: Path) -> list[tuple[float, str]]:
    """(seconds, first code line) of every executed cell, from papermill's cell metadata."""
    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    out = []
    for c in nb.cells:
        d = c.get("metadata", {}).get("papermill", {}).get("duration")
        if c.cell_type == "code" and d is not None:
            first = next((ln for ln in c.source.splitlines() if ln.strip() and not ln.startswith("#")), "")
            out.append((float(d), first.strip()[:38]))
    return out


def _imports_notebook(src: Path, path: Path, kernel: str, out_dir: Path) -> None:
    """The parameters cell and the imports cell (the first code cell after it) of a real notebook."""
    import nbformat

    nb = nbformat.read(str(src), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = next(c for c in code if "parameters" in c.metadata.get("tags", []))
    imports = code[code.index(params) + 1]
    params = nbformat.v4.new_code_cell(params.source.replace("out_dir = None", f"out_dir = {str(out_dir)!r}", 1))
    params.metadata["tags"] = ["parameters"]
    out = nbformat.v4.new_notebook()
    out.cells = [params, nbformat.v4.new_code_cell(imports.source)]
    out.metadata = nb.metadata
    nbformat.write(out, path)


_PAPERMILL_SCRIPT = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import papermill as pm
kernel, jobs, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def one(path):
    t = time.perf_counter()
    pm.execute_notebook(path, path.replace(".ipynb", "_out.ipynb"), parameters={"seed": 1},
                        kernel_name=kernel, progress_bar=False, log_output=False)
    return time.perf_counter() - t
with ThreadPoolExecutor(max_workers=jobs) as pool:
    print(json.dumps(list(pool.map(one, paths))))
"""


def papermill_process(notebooks: list[Path], kernel: str, jobs: int = 1) -> tuple[list[float], float]:
    """Seconds of each notebook and the wall time of one fresh Python process that imports
    papermill and executes them, ``jobs`` at a time in threads (as run_all)."""
    import subprocess

    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PAPERMILL_SCRIPT, kernel, str(jobs), *map(str, notebooks)],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def imports_floor(sources: list[Path], tmp: Path, kernel: str) -> tuple[list[float], float]:
    """Papermill running, one after another, each notebook cut to its imports cell."""
    paths = []
    for src in sources:
        paths.append(tmp / f"imports_{src.stem}.ipynb")
        _imports_notebook(src, paths[-1], kernel, tmp / "imports_out" / src.stem)
    return papermill_process(paths, kernel)


def floor(n: int, tmp: Path, kernel: str, jobs: int = 1) -> tuple[list[float], float]:
    """Papermill running `n` trivial notebooks, ``jobs`` at a time."""
    paths = [tmp / f"trivial_{jobs}_{i}.ipynb" for i in range(n)]
    for path in paths:
        _trivial_notebook(path, kernel)
    return papermill_process(paths, kernel, jobs)


def run_all_command(data: str | None, out: Path, jobs: str) -> float:
    """Wall seconds of ``ecrm run all`` as a fresh process."""
    import subprocess

    cmd = [sys.executable, "-m", "ecrm_research.cli", "run", "all", "--out", str(out), "--no-progress"]
    if data:
        cmd += ["--data", data]
    if jobs != "auto":
        cmd += ["--jobs", jobs]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--floor-only", action="store_true")
    ap.add_argument("--data", help="data for run all (default: the bundled sample)")
    ap.add_argument("--jobs", default="auto", help="run_all's jobs (default: auto, as `ecrm run all`)")
    args = ap.parse_args(argv)
    from ecrm_research.report import notebooks, runner, scheduling

    kernel = runner.ensure_kernel()
    names = list(notebooks.list_notebooks())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.floor_only:
            jobs = scheduling.default_jobs(args.data, len(names))[0] if args.jobs == "auto" else int(args.jobs)
            reports = tmp / "reports"
            total = run_all_command(args.data, reports, args.jobs)
            print(f"ecrm run all ({len(names)} notebooks, data={args.data or 'bundled sample'}, "
                  f"jobs={jobs}; a fresh process): {total:.1f} s")
            print(f"  {'notebook':14} {'status':6} {'exec s':>7} {'kernel+':>8} {'cells':>6} {'render':>7} {'pdf':>5}"
                  "   slowest cells (s)")
            for name in names:
                run = json.loads((reports / name / "run.json").read_text())
                cells = _cell_times(reports / name / f"{name}.ipynb")
                in_cells = sum(c for c, _ in cells)
                top = ", ".join(f"{src} {c:.1f}" for c, src in sorted(cells, reverse=True)[:3])
                print(f"  {name:14} {run['status']:6} {run['seconds']:7.1f} {run['seconds'] - in_cells:8.1f} "
                      f"{in_cells:6.1f} {run.get('render_seconds') or 0:7.1f} "
                      f"{(run.get('pdf') or {}).get('seconds', 0):5.1f}   {top}"
                      + (f"  {run['error']}" if run.get("error") else ""))
            print("  (kernel+ = execution time outside the cells: kernel start, imports in exec_lines, shutdown; "
                  "pdf is printed while the next notebook runs)")
        ft, wall = floor(len(names), tmp, kernel)
        print(f"papermill floor ({len(ft)} trivial notebooks one after another, kernel {kernel}; "
              f"a fresh process): {wall:.1f} s")
        for i, s in enumerate(ft):
            print(f"  trivial_{i:<6} {s:6.1f} s")
        it, iwall = imports_floor(list(notebooks.list_notebooks().values()), tmp, kernel)
        print(f"imports floor (each notebook cut to its parameters + imports cells, one after another; "
              f"a fresh process): {iwall:.1f} s  (" + ", ".join(f"{n} {t:.1f}" for n, t in zip(names, it)) + ")")
        if not args.floor_only:
            print(f"ratio run all / floor: {total / wall:.2f}  (target <= 2)")
            print(f"ratio run all / imports floor: {total / iwall:.2f}")
            if jobs > 1:
                # the stricter baseline: the trivial notebooks also run `jobs` at a time
                _, pwall = floor(len(names), tmp, kernel, jobs)
                print(f"papermill floor, {jobs} at a time: {pwall:.1f} s; ratio run all / that floor: "
                      f"{total / pwall:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
