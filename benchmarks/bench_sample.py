"""Benchmark of the sample generator: time and peak memory of ``write_sample``.

Baseline: 100,000 customers (24 months). With ``--full`` also 1,000,000 customers, and the
ratio against the baseline is printed (time should grow ~linearly, peak memory should stay
about flat because customers are generated and written in chunks).

Each size runs in its own child process so that the peak resident memory
(``resource.getrusage(...).ru_maxrss``) belongs to that run alone.

Usage::

    python benchmarks/bench_sample.py            # 100k customers
    python benchmarks/bench_sample.py --full     # 100k and 1M customers
    python benchmarks/bench_sample.py --sizes 20000 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time


def _one(n: int, out_dir: str, chunk_size: int) -> None:
    """Child process: write ``n`` customers and print a JSON line with the measurements."""
    from ecrm_research.data.sample import write_sample

    t0 = time.perf_counter()
    files = write_sample(out_dir, n_customers=n, chunk_size=chunk_size, validate=False)
    secs = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    import pyarrow.parquet as pq

    rows = {k: pq.ParquetFile(p).metadata.num_rows for k, p in files.items() if p.suffix == ".parquet"}
    size = sum(p.stat().st_size for p in files.values())
    print(json.dumps({"n_customers": n, "seconds": secs, "peak_rss_mb": peak_kib / 1024,
                      "bytes": size, "rows": rows}))


def run(n: int, chunk_size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--out", tmp, "--chunk-size", str(chunk_size)],
            check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="also run 1,000,000 customers")
    ap.add_argument("--sizes", type=int, nargs="*", help="customer counts to run (first = baseline)")
    ap.add_argument("--chunk-size", type=int, default=20_000)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        _one(args.one, args.out, args.chunk_size)
        return
    sizes = args.sizes or ([100_000, 1_000_000] if args.full else [100_000])
    base = None
    print(f"{'customers':>10} {'orders':>11} {'lines':>12} {'seconds':>8} {'peak MB':>8} {'MB on disk':>10}"
          f" {'time x':>7} {'mem x':>6}")
    for n in sizes:
        r = run(n, args.chunk_size)
        base = base or r
        print(f"{n:>10,} {r['rows']['orders']:>11,} {r['rows']['order_items']:>12,} {r['seconds']:>8.1f} "
              f"{r['peak_rss_mb']:>8.0f} {r['bytes'] / 2**20:>10.1f} {r['seconds'] / base['seconds']:>7.2f} "
              f"{r['peak_rss_mb'] / base['peak_rss_mb']:>6.2f}", flush=True)
    print(f"baseline: {sizes[0]:,} customers; chunk_size={args.chunk_size:,}; ratios are against the baseline.")


if __name__ == "__main__":
    main()
