"""Benchmark of data preparation at scale: our RFM + churn labelling vs a hand-written DuckDB query.

Both sides read the same seeded synthetic canonical tables (``benchmarks/_synth.py``: 10 million
order lines, ~3.3 million orders, ~1 million customers; ``--quick`` 1 million lines) from
Parquet, each in its own child process so that its peak resident memory
(``resource.getrusage(...).ru_maxrss``) is its own:

ours
    ``io.load_dataset`` (Parquet → canonical dtypes, validation) then
    ``prep_customers.rfm_table`` and ``prep_churn.label_churn`` (``.frame``: churn labels, spend
    and annual value, and the behaviour-window covariates).
duckdb
    ``CREATE TABLE`` from the Parquet files (orders, order lines, customers), then one SQL query
    for RFM and one (``CHURN_SQL``) that computes the same table as ``label_churn(...).frame``:
    same rows, same columns in the same order — the labels (first passage of an inactivity gap,
    censoring at the end of data), ``spend_to_date``, ``annual_value`` and the covariates
    measured in the first N days (late deliveries, return share, discount, orders and spend in
    the window, customer attributes). The labels-only query (``CHURN_LABELS_SQL``, what this
    benchmark used to time) is run afterwards and its time printed for information only; it is
    not part of the totals or ratios.

The script prints seconds and peak memory per side and the ratios ours/DuckDB for loading,
for the computation alone and in total, and checks that both give the same RFM numbers
(recency, frequency, tenure exactly; monetary to 1e-9 relative) and the same churn table,
every column: integers, booleans, timestamps and text exactly, floats to 1e-9 relative, a
missing value equal only to a missing value (the labels-only result is checked on its columns).
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

    from ecrm_research.data import io, quality
    from ecrm_research.prep import churn as prep_churn
    from ecrm_research.prep import customers as prep_customers

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
    rfm = prep_customers.rfm_table(tables["orders"], tables["order_items"])
    res["rfm_s"] = time.perf_counter() - t1
    t = time.perf_counter()
    churn = prep_churn.label_churn(tables, inactivity_days=INACTIVITY_DAYS, covariate_window_days=WINDOW_DAYS)
    res["churn_s"] = time.perf_counter() - t
    res["compute_s"] = time.perf_counter() - t1
    res["total_s"] = res["load_s"] + res["compute_s"]
    res["peak_mb"] = _peak_mb()
    rfm.attrs = {}
    rfm.to_parquet(Path(out) / "rfm_ours.parquet", index=False)
    churn.frame.attrs = {}
    churn.frame.to_parquet(Path(out) / "churn_ours.parquet", index=False)  # every column
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

# The churn labels alone (event, churned_at, duration, n_orders_total, returned_after_churn): the
# query this benchmark used to time. Kept as an informational figure (``churn_labels_only_s``); the
# headline comparison uses CHURN_SQL, which computes label_churn's whole table.
CHURN_LABELS_SQL = """
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

# label_churn(tables, inactivity_days=W, covariate_window_days=N).frame in SQL: the same rows (customers
# whose first completed order is at least N days before as_of, sorted by id) and the same columns, in
# the same order. Statuses are compared as stored: the synthetic
# data are canonical, lower case (prep.rules.status_codes lower-cases).
CHURN_SQL = """
WITH
-- end of data: the latest order time of any status (orders after it are ignored)
bounds AS (SELECT max(ordered_at) AS as_of FROM orders),
-- value of each order: sum of its lines' quantity * unit_price (lines with a NULL value are skipped)
order_value AS (
    SELECT order_id, sum(quantity * unit_price) AS value
    FROM order_items GROUP BY order_id),
-- activity: completed orders of a known customer up to as_of, with their late flag (NULL when
-- either day count is missing), discount and value (0 for an order without valued lines)
done AS (
    SELECT o.customer_id, o.order_id, o.ordered_at,
           o.delivery_days > o.promised_days AS late,
           o.discount_rate,
           coalesce(v.value, 0) AS value
    FROM orders o CROSS JOIN bounds b LEFT JOIN order_value v ON v.order_id = o.order_id
    WHERE CAST(o.status AS VARCHAR) = 'completed' AND o.customer_id IS NOT NULL AND o.ordered_at <= b.as_of),
-- each customer's orders in time; orders at the same timestamp are ordered by order_id (this decides
-- which of them is "the first order" for first_order_late)
seq AS (
    SELECT *,
           row_number() OVER w = 1 AS is_first,
           first_value(ordered_at) OVER w AS t0,
           lead(ordered_at) OVER w AS nxt
    FROM done
    WINDOW w AS (PARTITION BY customer_id ORDER BY ordered_at, order_id)),
-- churn candidates: a gap of more than W days to the next order, or W days observed after the last;
-- the behaviour window is [t0, t0 + N)
flags AS (
    SELECT s.*,
           (s.nxt IS NOT NULL AND s.nxt - s.ordered_at > INTERVAL {W} DAY)
           OR (s.nxt IS NULL AND s.ordered_at + INTERVAL {W} DAY <= b.as_of) AS flag,
           s.ordered_at < s.t0 + INTERVAL {N} DAY AS in_window
    FROM seq s, bounds b),
-- one row per customer: labels, spend, and the covariates measured on completed orders
per AS (
    SELECT customer_id,
           min(ordered_at) AS first_order_at,
           max(ordered_at) AS last_order_at,
           min(ordered_at) FILTER (WHERE flag) AS first_flag,     -- the first churning gap
           count(*) AS n_orders_total,
           sum(value) AS spend_to_date,
           first(late) FILTER (WHERE is_first) AS first_order_late,  -- first() keeps a NULL
           avg(CAST(late AS DOUBLE)) FILTER (WHERE in_window) AS late_share,  -- NULLs ignored
           avg(discount_rate) FILTER (WHERE in_window) AS mean_discount,
           count(*) FILTER (WHERE in_window) AS n_orders_window,
           sum(value) FILTER (WHERE in_window) AS spend_window
    FROM flags GROUP BY customer_id),
-- only customers with a complete behaviour window are labelled
labelled AS (
    SELECT p.* FROM per p, bounds b
    WHERE p.first_order_at <= b.as_of - INTERVAL {N} DAY),
-- return share: returned / (completed + returned) orders in the window, up to as_of
returns AS (
    SELECT o.customer_id,
           avg(CASE WHEN CAST(o.status AS VARCHAR) = 'returned' THEN 1.0 ELSE 0.0 END) AS return_share
    FROM orders o JOIN labelled l ON l.customer_id = o.customer_id CROSS JOIN bounds b
    WHERE CAST(o.status AS VARCHAR) IN ('completed', 'returned') AND o.ordered_at <= b.as_of
      AND o.ordered_at >= l.first_order_at AND o.ordered_at < l.first_order_at + INTERVAL {N} DAY
    GROUP BY o.customer_id)
SELECT l.customer_id,
       l.first_order_at,
       l.last_order_at,
       CAST(l.first_flag IS NOT NULL AS BIGINT) AS event,
       l.first_flag + INTERVAL {W} DAY AS churned_at,
       epoch(coalesce(l.first_flag + INTERVAL {W} DAY, b.as_of) - l.first_order_at) / 86400.0 AS duration,
       coalesce(l.last_order_at > l.first_flag, false) AS returned_after_churn,
       CAST(l.n_orders_total AS DOUBLE) AS n_orders_total,
       l.spend_to_date,
       -- annualised spend: days observed (fractional), at least N
       l.spend_to_date * 365.25 / greatest(epoch(b.as_of - l.first_order_at) / 86400.0, {N}) AS annual_value,
       l.first_order_late,
       l.late_share,
       coalesce(r.return_share, 0.0) AS return_share,  -- 0 when no completed/returned order in the window
       l.mean_discount,
       CAST(l.n_orders_window AS DOUBLE) AS n_orders_window,
       l.spend_window,
       -- registration attributes (NULL for a customer missing from the customers table)
       c.is_member,
       CAST(c.channel AS VARCHAR) AS channel,
       CAST(c.region AS VARCHAR) AS region,
       CAST(c.age_band AS VARCHAR) AS age_band,
       CAST(c.acquisition_source AS VARCHAR) AS acquisition_source
FROM labelled l CROSS JOIN bounds b
LEFT JOIN returns r ON r.customer_id = l.customer_id
LEFT JOIN customers c ON c.customer_id = l.customer_id
ORDER BY l.customer_id
""".replace("{W}", str(INACTIVITY_DAYS)).replace("{N}", str(WINDOW_DAYS))


def _child_duckdb(data: str, out: str, threads: int | None = None) -> dict:
    import duckdb

    res: dict = {}
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    t0 = time.perf_counter()
    for t in ("orders", "order_items", "customers"):
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
    # informational, after the headline figures: the churn labels alone (the query timed before)
    t = time.perf_counter()
    labels = con.execute(CHURN_LABELS_SQL).to_arrow_table()
    res["churn_labels_only_s"] = time.perf_counter() - t
    import pyarrow.parquet as pq

    for table, name in ((rfm, "rfm"), (churn, "churn"), (labels, "churn_labels")):
        pq.write_table(table.read_all() if hasattr(table, "read_all") else table, Path(out) / f"{name}_duckdb.parquet")
    return res


def _kind(s) -> str:
    """Column kind for the comparison: b(oolean), i(nteger), f(loat), M (timestamp) or t(ext)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(s.dtype):
        return "b"
    if pd.api.types.is_integer_dtype(s.dtype):
        return "i"
    if pd.api.types.is_float_dtype(s.dtype):
        return "f"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "M"
    return "t"


def _column_diff(a, b) -> int:
    """Rows where two columns differ: integers/booleans and timestamps exactly, floats to 1e-9
    relative (near zero: 1e-9 of the column's largest magnitude, as tests/table_checks.py; a sum
    that cancels to 1.4e-14 on one side and 2.8e-14 on the other is the same zero), text exactly;
    a missing value (NULL, NaN, None, NaT) equals only a missing value."""
    import numpy as np

    na_a, na_b = a.isna().to_numpy(bool), b.isna().to_numpy(bool)
    kind = _kind(a)
    if kind == "f":
        x, y = a.to_numpy(float, na_value=np.nan), b.to_numpy(float, na_value=np.nan)
        finite = np.abs(x[np.isfinite(x)])
        scale = float(finite.max()) if finite.size else 0.0
        with np.errstate(invalid="ignore"):
            same = ((x == y) | (np.abs(x - y) <= 1e-9 * np.maximum(np.maximum(np.abs(x), np.abs(y)), scale))
                    | (np.isnan(x) & np.isnan(y)))  # NaN == NaN
    elif kind == "M":
        x, y = a.to_numpy("datetime64[ns]"), b.to_numpy("datetime64[ns]")
        same = x == y
    else:  # booleans, integers, text: element-wise on object arrays (True == 1); missing masked below
        x = np.where(na_a, None, a.astype(object).to_numpy())
        y = np.where(na_b, None, b.astype(object).to_numpy())
        same = np.asarray(x == y, dtype=bool)
    same = np.where(na_a | na_b, na_a & na_b, same)
    return int((~same).sum())


def _same_ids(a, b) -> bool:
    """Same customers in the same order."""
    return len(a) == len(b) and bool((a["customer_id"].astype(str).to_numpy()
                                      == b["customer_id"].astype(str).to_numpy()).all())


def _compare_churn(name: str, a, b, columns: list[str]) -> list[str]:
    same_ids = _same_ids(a, b)
    if not same_ids:
        return [f"{name} customers differ: {len(a):,} vs {len(b):,}"]
    problems = []
    for c in columns:
        ka, kb = _kind(a[c]), _kind(b[c])
        if {ka, kb} - {"b", "i"} and ka != kb:  # booleans and integers may stand for each other (0/1)
            problems.append(f"{name} {c}: column types differ ({a[c].dtype} vs {b[c].dtype})")
            continue
        n = _column_diff(a[c], b[c])
        if n:
            problems.append(f"{name} {c} differs in {n:,} rows")
    return problems


def _compare(out: Path) -> list[str]:
    """Differences between our tables and DuckDB's (empty list = identical)."""
    import numpy as np
    import pandas as pd

    problems = []
    a = pd.read_parquet(out / "rfm_ours.parquet")
    b = pd.read_parquet(out / "rfm_duckdb.parquet")
    same_ids = _same_ids(a, b)
    if not same_ids:
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
    # churn: label_churn's whole frame against the full query, every column, same names and order
    # nullable dtypes: a boolean/integer column with NULLs keeps its kind (not object/float)
    a = pd.read_parquet(out / "churn_ours.parquet", dtype_backend="numpy_nullable")
    b = pd.read_parquet(out / "churn_duckdb.parquet", dtype_backend="numpy_nullable")
    if list(a.columns) != list(b.columns):
        problems.append(f"churn columns differ: ours {list(a.columns)} vs duckdb {list(b.columns)}")
    problems += _compare_churn("churn", a, b, [c for c in a.columns if c in b.columns])
    # the informational labels-only query must agree on its columns too
    lab = pd.read_parquet(out / "churn_labels_duckdb.parquet", dtype_backend="numpy_nullable")
    problems += _compare_churn("churn labels-only", a, lab, [c for c in lab.columns if c != "customer_id"])
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
        for key, label in (("load_s", "load (s)"), ("rfm_s", "RFM (s)"), ("churn_s", "churn table (s)"),
                           ("compute_s", "RFM + churn (s)"), ("total_s", "total (s)"),
                           ("peak_mb", "peak memory (MB)")):
            print(f"{label:22}{ours[key]:10.2f}{duck[key]:10.2f}{ours[key] / duck[key]:8.2f}")
        print(f"duckdb churn labels only (informational, not in the totals): {duck['churn_labels_only_s']:.2f} s "
              f"vs {duck['churn_s']:.2f} s for the full churn table")
        lighter = duck["rfm_s"] + duck["churn_labels_only_s"]
        print(f"ours RFM + churn table vs DuckDB RFM + labels only (less work on DuckDB's side): "
              f"{ours['compute_s']:.2f} / {lighter:.2f} s = {ours['compute_s'] / lighter:.2f}")
        if args.stages:
            print(f"ours quality.clean: {ours['clean_s']:.2f} s (peak {ours['clean_peak_mb']:.0f} MB)")
        problems = _compare(Path(tmp))
        print("results identical: RFM and the churn table (every column) agree" if not problems else
              "RESULTS DIFFER: " + "; ".join(problems))
        return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
