"""Where the association notebook spends its time and memory, cell by cell.

Runs the code cells of ``notebooks/01_association_rules.ipynb`` in *this* process (parameters
injected after the ``parameters`` cell, as papermill does; ``display`` and ``plt.show`` do
nothing) and prints, per cell: wall seconds, the peak resident memory while the cell ran
(psutil, sampled every 20 ms), the resident memory after it, and the largest DataFrames the
notebook's namespace holds after it (``--sizes``; ``memory_usage(deep=True)``, slow on object
columns). The first row is the Python start-up plus the imports of this script.

The numbers are those of one process running the notebook's calls, which is what the kernel
does; ``bench_end_to_end.py --only association`` measures the real kernel (with papermill,
reports and the PDF): at 200,000 customers 1,915 MB there against 1,887 MB here. Resident memory
at this scale is noisy (±100 MB between runs of the same code: allocator caches, when the cyclic
collector runs); compare peaks over two runs. Figures: ``benchmarks/README.md`` (issue #8).

Usage::

    python benchmarks/bench_association_notebook.py --data /tmp/e2e/s200k
    python benchmarks/bench_association_notebook.py --data /tmp/e2e/s1m -p min_support 0.02 --sizes
    python benchmarks/bench_association_notebook.py --notebook other.ipynb   # compare two versions
"""

from __future__ import annotations

import argparse
import ast
import gc
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_association_rules.ipynb"


class _Peak(threading.Thread):
    """Largest RSS of this process between ``reset()`` calls (sampled)."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = self.proc.memory_info().rss
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._halt.wait(self.interval)

    def reset(self) -> int:
        now = self.proc.memory_info().rss
        self.peak = now
        return now

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _frames(ns: dict, top: int = 4) -> str:
    import pandas as pd

    sizes = []
    for k, v in ns.items():
        if k.startswith("_") or not isinstance(v, pd.DataFrame):
            continue
        sizes.append((v.memory_usage(deep=True, index=True).sum() / 2**20, k, len(v)))
    sizes.sort(reverse=True)
    return ", ".join(f"{k} {mb:,.0f} MB ({n:,} rows)" for mb, k, n in sizes[:top] if mb >= 1)


def _label(source: str) -> str:
    for line in source.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line[:60]
    return source.strip().splitlines()[0][:60] if source.strip() else "(empty)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="data file or folder (default: the bundled sample)")
    ap.add_argument("--data-format")
    ap.add_argument("--mapping")
    ap.add_argument("--notebook", default=str(NOTEBOOK))
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    ap.add_argument("--sizes", action="store_true", help="also list the largest DataFrames after each cell")
    args = ap.parse_args(argv)

    import nbformat

    peak = _Peak()
    peak.start()
    nb = nbformat.read(args.notebook, as_version=4)
    params = {k: yaml.safe_load(v) for k, v in args.p}
    params.update({k: v for k, v in (("data", args.data), ("data_format", args.data_format),
                                       ("mapping", args.mapping)) if v is not None})
    with tempfile.TemporaryDirectory() as tmp:
        params.setdefault("out_dir", tmp)
        ns: dict = {"__name__": "__main__"}
        import matplotlib

        matplotlib.use("Agg")
        import IPython.display
        import matplotlib.pyplot as plt

        IPython.display.display = lambda *a, **k: None
        plt.show = lambda *a, **k: plt.close("all")
        start = peak.proc.memory_info().rss
        print(f"{'cell':>4} {'seconds':>8} {'peak MB':>9} {'after MB':>9}  code")
        print(f"{'-':>4} {'':>8} {start / 2**20:9,.0f} {start / 2**20:9,.0f}  (python + imports)")
        total, overall = 0.0, start
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            src = cell.source
            if "parameters" in cell.metadata.get("tags", []):
                src += "\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
            peak.reset()
            t = time.perf_counter()
            code = compile(ast.parse(src), f"<cell {i}>", "exec")
            exec(code, ns)  # noqa: S102 - the notebook's own code
            secs = time.perf_counter() - t
            after = peak.proc.memory_info().rss
            hi = max(peak.peak, after)
            overall = max(overall, hi)
            total += secs
            extra = f"  [{_frames(ns)}]" if args.sizes else ""
            print(f"{i:4d} {secs:8.1f} {hi / 2**20:9,.0f} {after / 2**20:9,.0f}  {_label(cell.source)}{extra}",
                  flush=True)
        gc.collect()
    peak.stop()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {total:.1f} s in the cells; peak {overall / 2**20:,.0f} MB (ru_maxrss {maxrss:,.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
