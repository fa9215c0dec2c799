"""End to end at scale: ``ecrm sample --customers N`` then every notebook on it, as ``ecrm run all``.

Prints the time to generate the data, then per notebook its wall time (execution + reports) and
the peak memory of *its own* kernel, and at the end the peak of the runner processes.

Memory measurement. Each notebook is run by ``runner.run_notebook`` in a fresh child process
(``python bench_end_to_end.py --child NAME``), so nothing carries over between notebooks. The
child polls its process tree with ``psutil`` every 0.1 s and reports

* ``kernel peak MB``: the largest resident set of the notebook's ``ipykernel`` process (plus
  any processes it started, e.g. Spark), sampled;
* ``tree peak MB``: the largest *sum* over the whole tree (runner + kernel + Chromium printing
  the PDF), sampled, i.e. what the machine had to hold at once;
* ``rusage MB``: ``RUSAGE_CHILDREN.ru_maxrss`` of the child after the notebook, the kernel's
  exact kernel-recorded peak (largest single descendant; a cross-check of the sampled value).

The first version of this script read ``RUSAGE_CHILDREN`` of one long-lived process after each
notebook: a running maximum over all kernels so far, not each notebook's peak.

Usage::

    python benchmarks/bench_end_to_end.py                      # 50,000 customers
    python benchmarks/bench_end_to_end.py --customers 200000
    python benchmarks/bench_end_to_end.py --customers 1000000 --budget 1500 \\
        -p n_bootstrap 0 -p n_boot 200                           # the 1M-customer run (see README)
    python benchmarks/bench_end_to_end.py --data DIR --only overview segmentation

Notebook parameters for large data go in with ``-p KEY VALUE`` (YAML values); each notebook
receives the keys it declares. ``--budget SECONDS`` skips the notebooks that would start after
the budget is spent (reported as ``skipped``), so a long run ends with a table either way.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ECRM = [sys.executable, "-m", "ecrm_research.cli"]


def _is_kernel(proc) -> bool:
    try:
        return any("ipykernel" in part for part in proc.cmdline())
    except Exception:  # noqa: BLE001 - process gone
        return False


class _TreePoller(threading.Thread):
    """Samples RSS of this process's descendants: the kernel subtree and the whole tree."""

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        import psutil

        self._psutil = psutil
        self.me = psutil.Process()
        self.interval = interval
        self.kernel_peak = 0
        self.tree_peak = 0
        self._halt = threading.Event()

    def run(self) -> None:
        ps = self._psutil
        while not self._halt.is_set():
            try:
                procs = [self.me, *self.me.children(recursive=True)]
            except ps.Error:
                procs = [self.me]
            total, kernel = 0, 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except ps.Error:
                    continue
                total += rss
                if p is not self.me and (_is_kernel(p) or any(_is_kernel(a) for a in _ancestors(p, self.me))):
                    kernel += rss
            self.tree_peak = max(self.tree_peak, total)
            self.kernel_peak = max(self.kernel_peak, kernel)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _ancestors(p, stop):
    out = []
    try:
        q = p.parent()
        while q is not None and q.pid != stop.pid:
            out.append(q)
            q = q.parent()
    except Exception:  # noqa: BLE001
        pass
    return out


def _child(name: str, data: str, out: str, params: dict, timeout: float) -> dict:
    from ecrm_research.report import runner

    poll = _TreePoller()
    poll.start()
    t = time.perf_counter()
    res = runner.run_notebook(name, data=data, params=params, out=out, progress=False, timeout=timeout)
    secs = time.perf_counter() - t
    poll.stop()
    run = json.loads((Path(out) / name / "run.json").read_text())
    return {"status": res.status, "error": res.error, "seconds": secs, "exec_seconds": res.seconds,
            "pdf": (run.get("pdf") or {}).get("status"),
            "kernel_peak_mb": poll.kernel_peak / 2**20, "tree_peak_mb": poll.tree_peak / 2**20,
            "rusage_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "runner_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument("--only", nargs="*", help="notebook short names (default: all)")
    ap.add_argument("--data", help="reuse a sample folder instead of generating one")
    ap.add_argument("--keep", help="generate the sample into this folder and keep it")
    ap.add_argument("--out", help="keep the reports in this folder (default: a temporary one)")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per cell")
    ap.add_argument("--budget", type=float, default=None,
                    help="wall-time budget in seconds; notebooks not started by then are skipped")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--params-json", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.data, args.out, json.loads(args.params_json), args.timeout)))
        return 0
    from ecrm_research.report import notebooks

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = Path(args.data or args.keep or tmp / "data")
        if not args.data:
            t = time.perf_counter()
            subprocess.run([*ECRM, "sample", "--customers", str(args.customers), "--out", str(data)], check=True,
                           stdout=subprocess.DEVNULL)
            print(f"ecrm sample --customers {args.customers:,}: {time.perf_counter() - t:.1f} s "
                  f"(peak {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:,.0f} MB)", flush=True)
        import pyarrow.parquet as pq

        rows = {p.stem: pq.ParquetFile(p).metadata.num_rows for p in sorted(data.glob("*.parquet"))}
        print("rows:", ", ".join(f"{k} {v:,}" for k, v in rows.items()), flush=True)
        params = {k: yaml.safe_load(v) for k, v in args.p}
        if params:
            print("parameters:", ", ".join(f"{k}={v!r}" for k, v in params.items()))
        out = Path(args.out) if args.out else tmp / "reports"
        names = args.only or list(notebooks.list_notebooks())
        total = 0.0
        print(f"{'notebook':14}{'status':>8}{'seconds':>9}{'(exec)':>8}{'kernel MB':>11}{'tree MB':>9}"
              f"{'rusage MB':>11}  pdf", flush=True)
        for name in names:
            if args.budget is not None and time.perf_counter() - t_start > args.budget:
                print(f"{name:14}{'skipped':>8}  (wall-time budget {args.budget:.0f} s spent)", flush=True)
                continue
            declared = notebooks.notebook_parameters(name)
            p = {k: v for k, v in params.items() if k in declared}
            cmd = [sys.executable, __file__, "--child", name, "--data", str(data), "--out", str(out),
                   "--params-json", json.dumps(p), "--timeout", str(args.timeout)]
            remaining = None if args.budget is None else max(60.0, args.budget - (time.perf_counter() - t_start))
            t = time.perf_counter()
            # own process group, so a timeout stops the runner *and* its kernel (and Chromium)
            child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
            try:
                stdout, stderr = child.communicate(timeout=remaining)
                proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.communicate()
                secs = time.perf_counter() - t
                total += secs
                print(f"{name:14}{'timeout':>8}{secs:9.1f}  (stopped at the wall-time budget)", flush=True)
                continue
            secs = time.perf_counter() - t
            total += secs
            if proc.returncode:
                print(f"{name:14}{'crashed':>8}{secs:9.1f}  {proc.stderr.strip()[-400:]}", flush=True)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name:14}{r['status']:>8}{r['seconds']:9.1f}{r['exec_seconds']:8.1f}{r['kernel_peak_mb']:11,.0f}"
                  f"{r['tree_peak_mb']:9,.0f}{r['rusage_children_mb']:11,.0f}  {r['pdf']}"
                  + (f"  {r['error']}" if r["error"] else ""), flush=True)
        print(f"total {total:.1f} s over the notebooks; wall {time.perf_counter() - t_start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
