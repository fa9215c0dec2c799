"""Benchmark of data preparation at scale: our RFM + churn labelling vs a hand-written DuckDB query.

Both sides read the same seeded synthetic canonical tables (``benchmarks/_synth.py``: 10 million
order lines, ~3.3 million orders, ~1 million customers; ``--quick`` 1 million lines) from
Parquet, each in its own child process so that its peak resident memory
(``resource.getrusage(...).ru_maxrss``) is its own:

ours
    ``io.load_dataset`` (Parquet → canonical dtypes, validation) then
    ``segmentation.rfm_table`` and ``survival.label_churn`` (churn flags *and* the
    behaviour-window covariates, which the DuckDB query does not compute).
duckdb
    ``CREATE TABLE`` from the Parquet files, then one SQL query for RFM and one for the churn
    labels (first passage of an inactivity gap, censoring at the end of data).

The script prints seconds and peak memory per side and the ratios ours/DuckDB for loading,
for the computation alone and in total, and checks that both give the same RFM numbers
(recency, frequency, tenure exactly; monetary to 1e-9 relative) and the same churn labels.
``--stages`` also times ``quality.clean`` (quality report + quarantine) on our side.

Usage::

    python benchmarks/bench_prep.py --quick        # 1M lines, ~1 minute
    python benchmarks/bench_prep.py                # 10M lines, ~3 minutes, ~3 GB peak
    python benchmarks/bench_prep.py --lines 3000000 --stages

Needs ``duckdb`` (a benchmark-only dependency: ``pip install duckdb``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INACTIVITY_DAYS = 180
WINDOW_DAYS = 90  # label_churn's behaviour window: customers newer than this are not labelled


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _child_generate(n_lines: int, out: str) -> dict:
    sys.path.insert(0, str(HERE))
    import _synth

    t0 = time.perf_counter()
    tables = _synth.make_tables(n_lines)
    _synth.write_tables(tables, out)
    return {"seconds": time.perf_counter() - t0, "rows": {k: len(v) for k, v in tables.items()}}


def _child_ours(data: str, out: str, stages: bool) -> dict:
    import warnings

    from ecrm_research import io, quality, segmentation, survival

    warnings.simplefilter("ignore")
    res: dict = {}
    t0 = time.perf_counter()
    ds = io.load_dataset(data)
    tables = ds.tables
    res["load_s"] = time.perf_counter() - t0
    res["load_peak_mb"] = _peak_mb()
    if stages:  # timed apart: not part of the comparison with DuckDB
        t = time.perf_counter()
        cleaned = quality.clean(tables)
        res["clean_s"] = time.perf_counter() - t
        res["clean_peak_mb"] = _peak_mb()
        del cleaned
    t1 = time.perf_counter()
    rfm = segmentation.rfm_table(tables["orders"], tables["order_items"])
    res["rfm_s"] = time.perf_counter() - t1
    t = time.perf_counter()
    churn = survival.label_churn(tables, inactivity_days=INACTIVITY_DAYS, covariate_window_days=WINDOW_DAYS)
    res["churn_s"] = time.perf_counter() - t
    res["compute_s"] = time.perf_counter() - t1
    res["total_s"] = res["load_s"] + res["compute_s"]
    res["peak_mb"] = _peak_mb()
    rfm.attrs = {}
    rfm.to_parquet(Path(out) / "rfm_ours.parquet", index=False)
    churn.frame.attrs = {}
    churn.frame[["customer_id", "event", "duration", "churned_at", "n_orders_total", "returned_after_churn"]
                ].to_parquet(Path(out) / "churn_ours.parquet", index=False)
    return res


RFM_SQL = """
WITH bounds AS (SELECT CAST(max(ordered_at) AS DATE) + 1 AS as_of FROM orders),
o AS (
    SELECT o.order_id, o.customer_id, o.ordered_at, lower(CAST(o.status AS VARCHAR)) AS status
    FROM orders o, bounds b
    WHERE o.customer_id IS NOT NULL AND o.ordered_at < b.as_of
      AND lower(CAST(o.status AS VARCHAR)) IN ('completed', 'returned')),
per_order AS (
    SELECT o.order_id, any_value(o.customer_id) AS customer_id, any_value(o.ordered_at) AS ordered_at,
           any_value(o.status) AS status,
           coalesce(sum(i.quantity * i.unit_price), 0) AS value,
           coalesce(sum(least(i.quantity * i.unit_price, 0)), 0) AS returned_value
    FROM o LEFT JOIN order_items i
      ON i.order_id = o.order_id AND (o.status = 'completed' OR i.quantity * i.unit_price < 0)
    GROUP BY o.order_id)
SELECT customer_id,
       date_diff('day', CAST(max(ordered_at) FILTER (WHERE status = 'completed') AS DATE), any_value(b.as_of))
           AS recency_days,
       count(*) FILTER (WHERE status = 'completed') AS frequency,
       sum(value) AS monetary,
       date_diff('day', CAST(min(ordered_at) FILTER (WHERE status = 'completed') AS DATE), any_value(b.as_of))
           AS tenure_days,
       min(ordered_at) FILTER (WHERE status = 'completed') AS first_order_at,
       max(ordered_at) FILTER (WHERE status = 'completed') AS last_order_at,
       sum(returned_value) AS returned_value
FROM per_order, bounds b
GROUP BY customer_id
HAVING count(*) FILTER (WHERE status = 'completed') > 0
ORDER BY customer_id
"""

CHURN_SQL = """
WITH bounds AS (SELECT max(ordered_at) AS as_of FROM orders),
done AS (
    SELECT o.customer_id, o.order_id, o.ordered_at
    FROM orders o, bounds b
    WHERE CAST(o.status AS VARCHAR) = 'completed' AND o.customer_id IS NOT NULL AND o.ordered_at <= b.as_of),
seq AS (
    SELECT customer_id, ordered_at,
           lead(ordered_at) OVER (PARTITION BY customer_id ORDER BY ordered_at, order_id) AS nxt
    FROM done),
flags AS (
    SELECT s.customer_id, s.ordered_at,
           (s.nxt IS NOT NULL AND s.nxt - s.ordered_at > INTERVAL {W} DAY)
           OR (s.nxt IS NULL AND s.ordered_at + INTERVAL {W} DAY <= b.as_of) AS flag
    FROM seq s, bounds b),
per AS (
    SELECT customer_id, min(ordered_at) AS first_order_at, max(ordered_at) AS last_order_at,
           count(*) AS n_orders_total, min(ordered_at) FILTER (WHERE flag) AS first_flag
    FROM flags GROUP BY customer_id)
SELECT customer_id,
       CAST(first_flag IS NOT NULL AS INTEGER) AS event,
       first_flag + INTERVAL {W} DAY AS churned_at,
       epoch(coalesce(first_flag + INTERVAL {W} DAY, b.as_of) - first_order_at) / 86400.0 AS duration,
       CAST(n_orders_total AS DOUBLE) AS n_orders_total,
       coalesce(last_order_at > first_flag, false) AS returned_after_churn
FROM per, bounds b
WHERE first_order_at <= b.as_of - INTERVAL {N} DAY
ORDER BY customer_id
""".replace("{W}", str(INACTIVITY_DAYS)).replace("{N}", str(WINDOW_DAYS))


def _child_duckdb(data: str, out: str, threads: int | None = None) -> dict:
    import duckdb

    res: dict = {}
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    t0 = time.perf_counter()
    for t in ("orders", "order_items"):
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{Path(data) / (t + '.parquet')}')")
    res["load_s"] = time.perf_counter() - t0
    res["load_peak_mb"] = _peak_mb()
    t1 = time.perf_counter()
    rfm = con.execute(RFM_SQL).to_arrow_table()
    res["rfm_s"] = time.perf_counter() - t1
    t = time.perf_counter()
    churn = con.execute(CHURN_SQL).to_arrow_table()
    res["churn_s"] = time.perf_counter() - t
    res["compute_s"] = time.perf_counter() - t1
    res["total_s"] = time.perf_counter() - t0
    res["peak_mb"] = _peak_mb()
    res["threads"] = con.execute("SELECT current_setting('threads')").fetchone()[0]
    import pyarrow.parquet as pq

    pq.write_table(rfm.read_all() if hasattr(rfm, "read_all") else rfm, Path(out) / "rfm_duckdb.parquet")
    pq.write_table(churn.read_all() if hasattr(churn, "read_all") else churn, Path(out) / "churn_duckdb.parquet")
    return res


def _compare(out: Path) -> list[str]:
    """Differences between our tables and DuckDB's (empty list = identical)."""
    import numpy as np
    import pandas as pd

    problems = []
    a = pd.read_parquet(out / "rfm_ours.parquet")
    b = pd.read_parquet(out / "rfm_duckdb.parquet")
    if len(a) != len(b) or not (a["customer_id"].astype(str).to_numpy() == b["customer_id"].astype(str).to_numpy()).all():
        problems.append(f"RFM customers differ: {len(a):,} vs {len(b):,}")
    else:
        for c in ("recency_days", "frequency", "tenure_days"):
            if not (a[c].to_numpy(np.int64) == b[c].to_numpy(np.int64)).all():
                problems.append(f"RFM {c} differs in {(a[c].to_numpy() != b[c].to_numpy()).sum():,} rows")
        for c in ("first_order_at", "last_order_at"):
            if not (a[c].to_numpy("datetime64[us]") == b[c].to_numpy("datetime64[us]")).all():
                problems.append(f"RFM {c} differs")
        for c in ("monetary", "returned_value"):
            if not np.allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=1e-9, atol=1e-6):
                problems.append(f"RFM {c} differs (max abs diff {np.abs(a[c] - b[c]).max():.3g})")
    a = pd.read_parquet(out / "churn_ours.parquet")
    b = pd.read_parquet(out / "churn_duckdb.parquet")
    if len(a) != len(b) or not (a["customer_id"].astype(str).to_numpy() == b["customer_id"].astype(str).to_numpy()).all():
        problems.append(f"churn customers differ: {len(a):,} vs {len(b):,}")
    else:
        for c in ("event", "n_orders_total", "returned_after_churn"):
            if not (a[c].to_numpy(float) == b[c].to_numpy(float)).all():
                problems.append(f"churn {c} differs in {(a[c].to_numpy(float) != b[c].to_numpy(float)).sum():,} rows")
        if not np.allclose(a["duration"].to_numpy(float), b["duration"].to_numpy(float), rtol=0, atol=1e-9):
            problems.append("churn duration differs")
        ca, cb = a["churned_at"].to_numpy("datetime64[us]"), b["churned_at"].to_numpy("datetime64[us]")
        if not ((ca == cb) | (np.isnat(ca) & np.isnat(cb))).all():
            problems.append("churn churned_at differs")
    return problems


def _spawn(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"child {args[:2]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine() -> str:
    import platform

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} CPUs, {mem:.0f} GB RAM, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=10_000_000, help="order lines (default 10M)")
    ap.add_argument("--quick", action="store_true", help="1M order lines")
    ap.add_argument("--stages", action="store_true", help="also time quality.clean on our side")
    ap.add_argument("--data", help="reuse a folder written by a previous run (--keep)")
    ap.add_argument("--keep", help="write the generated tables to this folder and keep them")
    ap.add_argument("--duckdb-threads", type=int, default=None,
                    help="DuckDB worker threads (default: DuckDB's, one per core; the target ratio uses the default)")
    ap.add_argument("--child", choices=["generate", "ours", "duckdb"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        fn = {"generate": lambda: _child_generate(args.lines, args.out),
              "ours": lambda: _child_ours(args.data, args.out, args.stages),
              "duckdb": lambda: _child_duckdb(args.data, args.out, args.duckdb_threads)}[args.child]
        print(json.dumps(fn()))
        return 0
    n = 1_000_000 if args.quick else args.lines
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or args.keep or str(Path(tmp) / "data")
        if not args.data:
            gen = _spawn("--child", "generate", "--lines", str(n), "--out", data)
            print(f"generated {gen['rows']['order_items']:,} order lines, {gen['rows']['orders']:,} orders, "
                  f"{gen['rows']['customers']:,} customers in {gen['seconds']:.1f} s -> {data}")
        extra = ["--stages"] if args.stages else []
        ours = _spawn("--child", "ours", "--data", data, "--out", tmp, *extra)
        threads = ["--duckdb-threads", str(args.duckdb_threads)] if args.duckdb_threads else []
        duck = _spawn("--child", "duckdb", "--data", data, "--out", tmp, *threads)
        print(f"machine: {_machine()}; duckdb threads: {duck['threads']}")
        print(f"{'':22}{'ours':>10}{'duckdb':>10}{'ratio':>8}")
        for key, label in (("load_s", "load (s)"), ("rfm_s", "RFM (s)"), ("churn_s", "churn labels (s)"),
                           ("compute_s", "RFM + churn (s)"), ("total_s", "total (s)"),
                           ("peak_mb", "peak memory (MB)")):
            print(f"{label:22}{ours[key]:10.2f}{duck[key]:10.2f}{ours[key] / duck[key]:8.2f}")
        if args.stages:
            print(f"ours quality.clean: {ours['clean_s']:.2f} s (peak {ours['clean_peak_mb']:.0f} MB)")
        problems = _compare(Path(tmp))
        print("results identical: RFM and churn labels agree" if not problems else
              "RESULTS DIFFER: " + "; ".join(problems))
        return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
