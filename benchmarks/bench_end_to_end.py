"""End to end at scale: ``ecrm sample --customers N`` then ``ecrm run all --data`` on it.

Prints the time to generate the data, then the time and peak memory of every notebook. Each
notebook runs in its own papermill kernel, so its peak memory is read from that kernel's
``ru_maxrss`` (a cell appended by this script reports it); the runner's own process is
reported too.

Usage::

    python benchmarks/bench_end_to_end.py                      # 50,000 customers
    python benchmarks/bench_end_to_end.py --customers 1000000  # the 1M-customer run (see README)
    python benchmarks/bench_end_to_end.py --customers 200000 --only overview segmentation

Notebook parameters for large data can be passed with ``-p KEY VALUE`` (YAML values), e.g.
``-p n_bootstrap 5``; the defaults already sample silhouettes and k selection.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ECRM = [sys.executable, "-m", "ecrm_research.cli"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument("--only", nargs="*", help="notebook short names (default: all)")
    ap.add_argument("--data", help="reuse a sample folder instead of generating one")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args(argv)
    from ecrm_research import runner

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = Path(args.data) if args.data else tmp / "data"
        if not args.data:
            t = time.perf_counter()
            subprocess.run([*ECRM, "sample", "--customers", str(args.customers), "--out", str(data)], check=True,
                           stdout=subprocess.DEVNULL)
            print(f"ecrm sample --customers {args.customers:,}: {time.perf_counter() - t:.1f} s")
        import pyarrow.parquet as pq

        rows = {p.stem: pq.ParquetFile(p).metadata.num_rows for p in sorted(data.glob("*.parquet"))}
        print("rows:", ", ".join(f"{k} {v:,}" for k, v in rows.items()))
        params = {k: yaml.safe_load(v) for k, v in args.p}
        names = args.only or list(runner.list_notebooks())
        total = 0.0
        print(f"{'notebook':14}{'status':>8}{'seconds':>10}{'kernels peak MB (max so far)':>30}")
        for name in names:
            declared = runner.notebook_parameters(name)
            p = {k: v for k, v in params.items() if k in declared}
            t = time.perf_counter()
            res = runner.run_notebook(name, data=str(data), params=p, out=tmp / "reports", progress=False,
                                      timeout=args.timeout)
            secs = time.perf_counter() - t
            total += secs
            peak = _kernel_peak(tmp / "reports" / name / f"{name}.ipynb")
            print(f"{name:14}{res.status:>8}{secs:10.1f}{peak:30.0f}" + (f"  {res.error}" if res.error else ""),
                  flush=True)
        print(f"total {total:.1f} s; runner process peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
              f"; kernels: see column (RUSAGE_CHILDREN max {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB)")
    return 0


def _kernel_peak(nb_path: Path) -> float:
    """Peak RSS of the notebook's kernel, from an executed notebook (NaN when unknown).

    The kernel is a child of the papermill process (this one); the executed notebook does not
    record memory, so fall back to RUSAGE_CHILDREN (the max over kernels so far).
    """
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
