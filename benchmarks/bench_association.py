"""Benchmark of association mining: ``association.frequent_itemsets`` against raw pyfim.

Baseline: **raw pyfim** — ``fim.fpgrowth(tracts, target='s', supp=-count, zmax=max_len,
report='a')`` on ready-made Python transaction lists of item labels (only the call is timed; the
lists are built beforehand). Compared with it, measured side by side in one run:

* ``ours (auto)`` — ``frequent_itemsets(long_table, ...)`` with ``engine='auto'`` (pyfim when
  installed), *including* the conversion from the long (basket_id, item) table: what a user pays.
* ``ours (mlxtend)`` — the same call with the reference engine (Groceries and ≤ 100k baskets;
  ``--mlxtend`` for every size: mlxtend's own ``fpgrowth`` took ~39 s and ~10 GB at 1M baskets,
  the engine here feeds mlxtend's FP-tree without its dense item counting).
* ``ours (spark)`` — with ``--spark``: ``engine='spark'`` on ``local[2]`` (includes the session
  start, ~20 s).
* ``ours (auto) + rules`` — ``mine_rules`` (itemsets + rules at min_confidence 0.5), for scale.

Cases: Groceries (9,835 baskets, min_support 0.001, max_len 10 = arules' default) and synthetic
baskets from :func:`ecrm_research.association.synthetic_baskets` (10,000 items with Zipf
popularity, ~4 items per basket, min_support 0.001, max_len 3, seed 20240101): 1,000,000
baskets, or 100,000 with ``--quick``.

Every measurement runs in its own child process, so that the peak resident memory
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the child ends) belongs to that run
alone; ``data only`` is a child that loads the data and stops: the floor under the others. For
Spark the JVM's own high-water mark (``VmHWM``) is added. Times are the best of ``--repeat``
runs in the same child (default 3; Spark runs once): the 2 shared cores are noisy.
Every engine must find the same number of itemsets as raw pyfim, or the run fails.

Usage::

    python benchmarks/bench_association.py --quick      # Groceries + 100k baskets (~1 min)
    python benchmarks/bench_association.py              # Groceries + 1M baskets (~2 min)
    python benchmarks/bench_association.py --spark      # also engine='spark'
    python benchmarks/bench_association.py --mlxtend    # also engine='mlxtend' at 1M
    python benchmarks/bench_association.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = 20240101
SYNTH = {"n_items": 10_000, "mean_size": 4.0, "zipf_exponent": 1.0, "min_support": 0.001, "max_len": 3}
GROCERIES = {"min_support": 0.001, "max_len": 10}


# ------------------------------------------------------------------------------------------------
# child process: load the data, run one thing, print one JSON line
# ------------------------------------------------------------------------------------------------

def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _load(case: str, path: str):
    import pandas as pd

    from ecrm_research.prep import baskets as prep_baskets

    if case == "groceries":
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return prep_baskets.baskets_from_lists([line.split(",") for line in lines]), GROCERIES
    return pd.read_parquet(path), SYNTH


def _label_tracts(long):
    """Transaction lists of item labels from the long table (fast; not timed)."""
    import numpy as np

    from ecrm_research.association import encoding

    b = long.dropna(subset=["item"])
    codes, _, _ = encoding.basket_codes(b["basket_id"], False)
    order = np.argsort(codes, kind="stable")
    items = b["item"].to_numpy(dtype=object)[order]
    indptr = np.zeros(int(codes.max()) + 2 if len(codes) else 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=len(indptr) - 1), out=indptr[1:])
    return encoding.transaction_lists(indptr, items, 1)


def child(what: str, case: str, path: str, repeat: int = 3) -> None:
    import gc

    long, p = _load(case, path)
    gc.collect()
    rss0 = _rss_mb()
    out = {"what": what, "case": case, "rss_after_load_mb": rss0}
    if what == "data":
        pass
    elif what == "raw-fim":
        import fim

        from ecrm_research.association import encoding

        tracts = _label_tracts(long)
        n = int(long["basket_id"].nunique())
        count = encoding.min_support_count(p["min_support"], n)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            res = fim.fpgrowth(tracts, target="s", supp=-count, zmax=p["max_len"], report="a")
            times.append(time.perf_counter() - t0)
            del res
            gc.collect()
        res = fim.fpgrowth(tracts, target="s", supp=-count, zmax=p["max_len"], report="a")
        out["seconds"], out["all_seconds"] = min(times), times
        out["itemsets"] = len(res)
    else:
        from ecrm_research import association as ar
        from ecrm_research.association import encoding
        from ecrm_research.infra import spark as infra_spark

        engine, _, rules = what.partition("+")
        times = []
        for _ in range(1 if engine == "spark" else repeat):
            t0 = time.perf_counter()
            if rules:
                res = ar.mine_rules(long, p["min_support"], 0.5, p["max_len"], engine=engine)
                fi = res.itemsets
                out["rules"] = len(res.rules)
            else:
                fi = ar.frequent_itemsets(long, p["min_support"], p["max_len"], engine=engine)
            times.append(time.perf_counter() - t0)
            gc.collect()
        out["seconds"], out["all_seconds"] = min(times), times
        if engine == "spark":
            # the JVM is not a waited-for child of this process: read its own high-water mark
            spark = next(iter(infra_spark.SESSIONS.values()))
            pid = spark.sparkContext._gateway.proc.pid
            with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                hwm = [line for line in fh if line.startswith("VmHWM:")][0]
            out["jvm_peak_mb"] = int(hwm.split()[1]) / 1024
        out["itemsets"] = len(fi)
        out["engine"] = fi.attrs["engine"]
        out["timings"] = fi.attrs["timings"]
        out["estimate_gb"] = fi.attrs["memory_estimate_gb"]
        enc = encoding.integer_encode(long, p["min_support"])
        sizes = enc.sizes
        out["shape"] = {"rows": enc.n_rows, "baskets": enc.n_baskets, "frequent_items": len(enc.items),
                        "pairs_2plus": int(sizes[sizes >= 2].sum()), "baskets_2plus": int((sizes >= 2).sum())}
    out["peak_self_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------------

def run_child(what: str, case: str, path: str, repeat: int = 3) -> dict:
    """Run one measurement in a fresh interpreter; add its peak RSS (RUSAGE_CHILDREN, per child)."""
    # ru_maxrss of RUSAGE_CHILDREN is the largest of all waited-for children so far, so each
    # measurement is run from its own short-lived intermediate process.
    code = ("import json, resource, subprocess, sys; "
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "sys.stderr.write(p.stderr); "
            "print(json.dumps({'rc': p.returncode, 'out': p.stdout, "
            "'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")
    cmd = [sys.executable, "-c", code, sys.executable, __file__, "--child", what, "--case", case, "--path", path,
           "--repeat", str(repeat)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wrap = json.loads(proc.stdout.strip().splitlines()[-1])
    if wrap["rc"] != 0:
        raise RuntimeError(f"{what} on {case} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(wrap["out"].strip().splitlines()[-1])
    res["peak_rss_mb"] = wrap["peak_kib"] / 1024 + res.get("jvm_peak_mb", 0.0)
    res["wall_s"] = time.perf_counter() - t0
    return res


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import numpy
    import pandas

    try:
        import fim
        fim_v = getattr(fim, "__version__", "6.28?")
    except ImportError:
        fim_v = "not installed"
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, numpy {numpy.__version__}, pandas {pandas.__version__}, "
            f"mlxtend {v('mlxtend')}, pyfim {v('pyfim') if v('pyfim') != 'not installed' else fim_v}, "
            f"pyspark {v('pyspark')}")


def prepare(tmp: Path, n: int) -> str:
    from ecrm_research import association as ar

    path = tmp / f"synthetic_{n}.parquet"
    ar.synthetic_baskets(n, SYNTH["n_items"], SYNTH["mean_size"], zipf_exponent=SYNTH["zipf_exponent"],
                         seed=SEED).to_parquet(path, index=False)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="synthetic 100,000 baskets instead of 1,000,000")
    ap.add_argument("--n", type=int, help="synthetic baskets (overrides --quick)")
    ap.add_argument("--spark", action="store_true", help="also run engine='spark' (local[2])")
    ap.add_argument("--mlxtend", action="store_true", help="run engine='mlxtend' at every size (default: <= 100k)")
    ap.add_argument("--no-groceries", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; the best is shown (default 3)")
    ap.add_argument("--json", help="write all measurements to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.case, args.path, args.repeat)
        return 0

    from ecrm_research.paths import shared_datasets_dir

    n = args.n or (100_000 if args.quick else 1_000_000)
    print(f"machine: {machine()}\n")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        groceries = shared_datasets_dir() / "groceries" / "groceries.csv"
        if not args.no_groceries:
            if groceries.exists():
                cases.append(("groceries", str(groceries), True))
            else:
                print(f"(Groceries not found at {groceries}; skipped)")
        cases.append((f"synthetic {n:,}", prepare(Path(tmp), n), n <= 100_000 or args.mlxtend))
        for case, path, with_mlxtend in cases:
            kind = "groceries" if case == "groceries" else "synthetic"
            runs = ["data", "raw-fim", "auto", "auto+rules"] + (["mlxtend"] if with_mlxtend else []) \
                + (["spark"] if args.spark else [])
            got = {}
            for what in runs:
                r = run_child(what, kind, path, args.repeat)
                r["case"] = case
                got[what] = r
                results.append(r)
            base = got["raw-fim"]
            print(f"## {case}  (raw pyfim: {base['itemsets']:,} itemsets)")
            print(f"{'run':<24}{'engine':>8}{'seconds':>10}{'× raw':>8}{'peak MB':>10}{'× raw':>8}"
                  f"{'itemsets':>10}{'est. GB':>9}")
            for what, r in got.items():
                label = {"data": "data only", "raw-fim": "raw pyfim", "auto": "ours (auto)",
                         "auto+rules": "ours (auto) + rules"}.get(what, f"ours ({what})")
                secs = r.get("seconds")
                ratio_t = f"{secs / base['seconds']:.2f}" if secs is not None else ""
                secs_s = "" if secs is None else f"{secs:.3f}"
                est = "" if "estimate_gb" not in r else f"{r['estimate_gb']:.2f}"
                print(f"{label:<24}{r.get('engine', ''):>8}{secs_s:>10}{ratio_t:>8}"
                      f"{r['peak_rss_mb']:>10.0f}{r['peak_rss_mb'] / base['peak_rss_mb']:>8.2f}"
                      f"{r.get('itemsets', ''):>10}{est:>9}")
                if "itemsets" in r and r["itemsets"] != base["itemsets"]:
                    raise SystemExit(f"{label} found {r['itemsets']} itemsets, raw pyfim {base['itemsets']}")
            auto = got["auto"]
            print("ours (auto) stages: " + ", ".join(f"{k} {v:.3f}s" for k, v in auto["timings"].items()))
            print(f"shape: {auto['shape']}\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": results}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
