"""How many notebooks :func:`~ecrm_research.report.runner.run_all` runs at once, and in which order.

Public names: :func:`default_jobs` (one kernel per core while the estimated memory fits),
:func:`dispatch_order` (the queue order that ends a run soonest), :func:`expected_seconds`,
:func:`input_bytes`, :func:`available_memory`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..paths import SAMPLE_DIR
from .notebooks import notebook_path


def dispatch_order(seconds: Mapping[str, float], jobs: int, *, exhaustive_up_to: int = 7) -> list[str]:
    """The order to queue jobs in so that `jobs` workers, each taking the next job when it is free,
    finish them all soonest.

    Longest first (LPT) is the usual rule, but with few jobs it can leave one worker idle at the
    end: 9, 8, 7.5, 6.5 and 4 s on two workers finish after 19.5 s that way, after 18 s in the
    order 9, 7.5, 6.5, 8, 4. Up to `exhaustive_up_to` jobs every order is simulated (the first
    best one in the enumeration of the longest-first list is kept, so ties stay longest first);
    beyond that LPT.

    Parameters
    ----------
    seconds : mapping of name to expected seconds
    jobs : int
        Number of workers.

    Returns
    -------
    list of str
        The names in queue order.

    Examples
    --------
    >>> dispatch_order({"a": 9, "b": 8, "c": 7.5, "d": 6.5, "e": 4}, 2)
    ['a', 'c', 'd', 'b', 'e']
    """
    lpt = sorted(seconds, key=lambda n: -float(seconds[n]))
    if jobs <= 1 or len(lpt) <= jobs or len(lpt) > exhaustive_up_to:
        return lpt

    def makespan(queue: Sequence[str]) -> float:
        free = [0.0] * jobs  # when each worker is next free
        for n in queue:
            heapq.heappush(free, heapq.heappop(free) + float(seconds[n]))
        return max(free)

    best, best_time = lpt, makespan(lpt)
    for queue in itertools.permutations(lpt):
        t = makespan(queue)
        if t < best_time - 1e-9:
            best, best_time = list(queue), t
    return best


def expected_seconds(name: str, root: Path, notebooks_dir: str | Path | None) -> float:
    """How long a notebook is expected to keep a worker busy (execution and HTML rendering): its
    last ``run.json`` in `root`, else the notebook's ``metadata.ecrm.expected_seconds`` (measured
    on the sample), else 0."""
    last = root / name / "run.json"
    try:
        if last.is_file():
            run = json.loads(last.read_text(encoding="utf-8"))
            return float(run["seconds"]) + float(run.get("render_seconds") or 0)  # a worker renders too
    except (ValueError, KeyError, TypeError, OSError):
        pass
    try:
        meta = json.loads(notebook_path(name, notebooks_dir).read_text(encoding="utf-8")).get("metadata", {})
        return float(meta.get("ecrm", {}).get("expected_seconds", 0))
    except (ValueError, TypeError, OSError, AttributeError):
        return 0.0


#: kernel memory per byte of input data, measured by ``benchmarks/bench_end_to_end.py``
#: (largest notebooks, overview and churn: ~37 bytes per byte of Parquet at 1M customers) plus a base
KERNEL_BYTES_PER_INPUT_BYTE = 40


KERNEL_BASE_BYTES = 600 * 2**20


def input_bytes(data: str | Path | None) -> int:
    """Size of the data a run reads (a file, or every file below a folder); the sample by default."""
    path = Path(data).expanduser() if data is not None else SAMPLE_DIR
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return 0


def available_memory() -> int | None:
    """``MemAvailable`` of the machine in bytes (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_jobs(data: str | Path | None = None, n_notebooks: int = 5) -> tuple[int, str]:
    """How many notebooks :func:`run_all` runs at once by default, and why.

    One per CPU core, as long as that many kernels fit in 60 % of the available memory. A
    kernel's peak is estimated as 600 MB + 40 × the size of the input files (the overview and
    churn notebooks peaked at ~37 × at 1M sample customers, ``benchmarks/bench_end_to_end.py``).
    So the bundled sample runs two notebooks at a time on two cores, while a 1M-customer sample
    (384 MB of Parquet, ~15.6 GB estimated) runs one at a time on a 24 GB machine.

    Parameters
    ----------
    data : str or Path, optional
        The run's data file or folder (None = the bundled sample).
    n_notebooks : int
        Number of notebooks in the run.

    Returns
    -------
    (int, str)
        Number of jobs (≥ 1) and the reason in words.

    Examples
    --------
    >>> jobs, why = default_jobs(None, 1)
    >>> jobs
    1
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_kernel = KERNEL_BASE_BYTES + KERNEL_BYTES_PER_INPUT_BYTE * input_bytes(data)
    avail = available_memory()
    by_memory = cores if avail is None else max(1, int(0.6 * avail // per_kernel))
    jobs = max(1, min(cores, by_memory, n_notebooks))
    why = (f"{cores} core(s); estimated {per_kernel / 2**30:.1f} GB per kernel"
           + ("" if avail is None else f", {avail / 2**30:.1f} GB available"))
    return jobs, why
