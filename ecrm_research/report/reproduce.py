"""Re-running a recorded run and comparing its tables (``ecrm reproduce``).

:func:`reproduce` re-runs the analyses recorded in ``OUT/manifest.json`` (see
:mod:`ecrm_research.report.manifest`) into another folder and compares every CSV table:
byte-identical, equal as data frames (numbers within 1e-9 relative), or different. It also
reports inputs and notebooks whose hashes changed since the recorded run.

SIGINT (Ctrl-C) or SIGTERM during a reproduction is handled as in ``ecrm run``
(:mod:`ecrm_research.report.stopping`): no further analysis starts, the running kernel is ended
within seconds (its process group: SIGTERM, SIGKILL two seconds later), the run record of the
target folder is left ``interrupted`` and its lock released, and
:class:`~ecrm_research.report.stopping.RunInterrupted` is raised (``ecrm reproduce`` exits 130).

Public names: :func:`reproduce`, :class:`ReproduceReport`, :func:`compare_tables`,
:class:`TableComparison`.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .manifest import MANIFEST_NAME, ReproduceError, hash_inputs, package_versions, read_manifest, sha256_file
from .ownership import OutputRecord, output_lock
from .runner import RunResult, run_notebook
from .stopping import RunInterrupted, StopControl, stop_on_signals

__all__ = ["TableComparison", "ReproduceReport", "compare_tables", "reproduce"]


@dataclass
class TableComparison:
    """One table of the original run against its reproduction.

    ``status`` is ``'identical'`` (same bytes), ``'equal'`` (same frame: same columns, index
    and values, numbers within ``rtol=1e-9``), ``'different'``, ``'missing'`` (not written by the
    reproduction) or ``'new'`` (written only by the reproduction).
    """

    analysis: str
    table: str
    status: str
    detail: str = ""

    @property
    def same(self) -> bool:
        return self.status in ("identical", "equal")


def _frame_difference(a: Path, b: Path) -> str | None:
    """None when the two CSV files hold equal frames, else a short description of the difference."""
    try:
        fa, fb = pd.read_csv(a), pd.read_csv(b)
    except Exception as exc:  # unparsable CSV: fall back to the byte comparison's verdict
        return f"cannot read as CSV ({type(exc).__name__})"
    if list(fa.columns) != list(fb.columns):
        return f"columns differ: {list(fa.columns)} vs {list(fb.columns)}"
    if fa.shape != fb.shape:
        return f"shape {fa.shape} vs {fb.shape}"
    try:
        pd.testing.assert_frame_equal(fa, fb, check_exact=False, rtol=1e-9, atol=1e-12, check_dtype=False)
        return None
    except AssertionError:
        pass
    cells = 0
    first = None
    for col in fa.columns:
        x, y = fa[col], fb[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            diff = ~np.isclose(x.to_numpy(float), y.to_numpy(float), rtol=1e-9, atol=1e-12, equal_nan=True)
        else:
            diff = ~((x.astype(str) == y.astype(str)) | (x.isna() & y.isna())).to_numpy()
        n = int(diff.sum())
        if n and first is None:
            i = int(np.flatnonzero(diff)[0])
            first = f"first: row {i}, column '{col}': {x.iloc[i]!r} vs {y.iloc[i]!r}"
        cells += n
    return f"{cells} of {fa.size} cells differ ({first})"


def compare_tables(original: str | Path, reproduced: str | Path, analysis: str = "") -> list[TableComparison]:
    """Compare every ``tables/*.csv`` of two analysis folders (see :class:`TableComparison`)."""
    a_dir, b_dir = Path(original) / "tables", Path(reproduced) / "tables"
    a = {p.name for p in a_dir.glob("*.csv")} if a_dir.is_dir() else set()
    b = {p.name for p in b_dir.glob("*.csv")} if b_dir.is_dir() else set()
    out: list[TableComparison] = []
    for name in sorted(a | b):
        if name not in b:
            out.append(TableComparison(analysis, name, "missing", "not written by the reproduction"))
        elif name not in a:
            out.append(TableComparison(analysis, name, "new", "written only by the reproduction"))
        elif (a_dir / name).read_bytes() == (b_dir / name).read_bytes():
            out.append(TableComparison(analysis, name, "identical"))
        else:
            diff = _frame_difference(a_dir / name, b_dir / name)
            out.append(TableComparison(analysis, name, "equal" if diff is None else "different",
                                       "same values, different bytes" if diff is None else diff))
    return out


@dataclass
class ReproduceReport:
    """Result of :func:`reproduce`.

    Attributes
    ----------
    original, reproduced : Path
        The recorded output root and the folder of the re-run.
    tables : list of TableComparison
    input_changes : list of str
        Inputs (data files, mapping, notebooks) whose hash differs from the manifest.
    status_changes : list of str
        Analyses whose status (ok/failed) differs from the recorded run.
    """

    original: Path
    reproduced: Path
    tables: list[TableComparison] = field(default_factory=list)
    input_changes: list[str] = field(default_factory=list)
    status_changes: list[str] = field(default_factory=list)
    environment_changes: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every table is identical or equal, no input changed, no status changed and
        every recorded analysis was re-run to its end (none ``interrupted`` or ``not run``)."""
        return (all(t.same for t in self.tables) and not self.input_changes and not self.status_changes
                and not self.interrupted and not self.not_run)

    def summary(self) -> str:
        """Human-readable summary, one line per table, then the verdict."""
        lines = [f"Reproducing {self.original}", f"  into {self.reproduced}"]
        for msg in self.input_changes:
            lines.append(f"INPUT CHANGED  {msg}")
        for msg in self.environment_changes:
            lines.append(f"environment    {msg}")
        for msg in self.status_changes:
            lines.append(f"STATUS CHANGED {msg}")
        for n in self.interrupted:
            lines.append(f"INTERRUPTED    {n} (its tables were not compared)")
        for n in self.not_run:
            lines.append(f"NOT RUN        {n} (the reproduction was interrupted before it started)")
        width = max([len(f"{t.analysis}/{t.table}") for t in self.tables] + [10])
        for t in self.tables:
            mark = {"identical": "identical", "equal": "equal", "different": "DIFFERENT",
                    "missing": "MISSING", "new": "NEW"}[t.status]
            line = f"  {t.analysis + '/' + t.table:<{width}}  {mark}"
            if t.detail and t.status != "identical":
                line += f"  ({t.detail})"
            lines.append(line)
        n_same = sum(t.same for t in self.tables)
        verdict = "REPRODUCED" if self.ok else "NOT REPRODUCED"
        lines.append(f"{verdict}: {n_same} of {len(self.tables)} tables identical or equal"
                     + (f"; {len(self.input_changes)} input(s) changed" if self.input_changes else "")
                     + (f"; {len(self.status_changes)} status change(s)" if self.status_changes else "")
                     + (f"; {len(self.interrupted) + len(self.not_run)} analysis(es) not reproduced (interrupted)"
                        if self.interrupted or self.not_run else "")
                     + ".")
        return "\n".join(lines)


def _input_changes(manifest: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """Data files, mapping and notebooks whose hash differs from the manifest's, in words."""
    changes: list[str] = []
    rec = (manifest.get("inputs") or {}).get("data") or {}
    if rec.get("files") is not None:
        now = hash_inputs(manifest.get("run", {}).get("data"))
        old = {f["path"]: f["sha256"] for f in rec.get("files", [])}
        new = {f["path"]: f["sha256"] for f in now["files"]}
        base = rec.get("path") or "data"
        for p in sorted(old.keys() | new.keys()):
            if p not in new:
                changes.append(f"{base}: {p} is missing (recorded sha256 {old[p][:12]}…)")
            elif p not in old:
                changes.append(f"{base}: {p} is new (not in the recorded run)")
            elif old[p] != new[p]:
                changes.append(f"{base}: {p} sha256 {old[p][:12]}… recorded, now {new[p][:12]}…")
    m = (manifest.get("inputs") or {}).get("mapping") or {}
    if m.get("path"):
        mp = Path(m["path"])
        if not mp.is_file():
            changes.append(f"mapping {mp} is missing")
        elif sha256_file(mp) != m.get("sha256"):
            changes.append(f"mapping {mp} sha256 changed")
    for n in names:
        nb = manifest["notebooks"].get(n, {})
        p = nb.get("notebook_path")
        if p and nb.get("notebook_sha256"):
            if not Path(p).is_file():
                changes.append(f"notebook {p} is missing")
            elif sha256_file(p) != nb["notebook_sha256"]:
                changes.append(f"notebook {Path(p).name} changed since the recorded run")
    return changes


def _environment_changes(manifest: Mapping[str, Any]) -> list[str]:
    """Python and package versions that differ from the recorded ones, in words."""
    out = []
    if manifest.get("python") and manifest["python"] != platform.python_version():
        out.append(f"python {manifest['python']} recorded, now {platform.python_version()}")
    now = package_versions(list((manifest.get("packages") or {}).keys()))
    for k, v in (manifest.get("packages") or {}).items():
        if now.get(k) != v:
            out.append(f"{k} {v} recorded, now {now.get(k)}")
    return out


def reproduce(
    report_dir: str | Path,
    out: str | Path | None = None,
    *,
    progress: bool = False,
    force: bool = False,
) -> ReproduceReport:
    """Re-run the analyses recorded in a manifest and compare their tables.

    Parameters
    ----------
    report_dir : str or Path
        An output root holding ``manifest.json`` (all its analyses are re-run) or one analysis
        folder ``OUT/<name>`` (only that analysis; the manifest is read from ``OUT``).
    out : str or Path, optional
        Where to re-run; default the sibling folder ``<OUT>-reproduce``. A reproduction into a
        folder replaces only the files an earlier run or reproduction wrote there (see
        :mod:`ecrm_research.report.ownership`).
    progress : bool
        Show papermill's progress bars.
    force : bool
        Re-run even when ``<out>/<name>/`` holds files the tool did not write (they are kept).

    Returns
    -------
    ReproduceReport
        ``.ok`` is True when every table is byte-identical or frame-equal and no recorded input
        changed; ``.summary()`` explains.

    Raises
    ------
    ReproduceError
        No manifest, or the folder is not an output of ``ecrm run``.
    OutputFolderError
        The target holds files the tool did not write (without `force`), or another run holds its lock.
    RunInterrupted
        After SIGINT/SIGTERM (a ``KeyboardInterrupt``): no further analysis started, the running
        kernel was ended, the target's run record says ``interrupted`` and its lock is released.
        ``.results`` holds each analysis' :class:`~ecrm_research.report.runner.RunResult` (``ok``/
        ``failed``, ``interrupted``, ``not run``) and ``.report`` the partial :class:`ReproduceReport`.
        Running the same command again replaces the interrupted files.

    Notes
    -----
    Each notebook executes in a worker thread while the main thread waits with SIGINT/SIGTERM
    handlers (:func:`~ecrm_research.report.stopping.stop_on_signals`), as in
    :func:`~ecrm_research.report.runner.run_all`: the kernels run in their own session, so without
    them Ctrl-C would not reach a kernel and SIGTERM would leave it running.
    """
    target = Path(report_dir).expanduser().resolve()
    if (target / MANIFEST_NAME).is_file():
        root, only = target, None
    elif (target.parent / MANIFEST_NAME).is_file():
        root, only = target.parent, target.name
    else:
        raise ReproduceError(f"No {MANIFEST_NAME} in {target} or its parent. Give the output folder of "
                             f"`ecrm run` (e.g. reports/), written by a version that records manifests.")
    manifest = read_manifest(root)
    names = [only] if only else list(manifest["notebooks"])
    if only and only not in manifest["notebooks"]:
        raise ReproduceError(f"{only} is not recorded in {root / MANIFEST_NAME}; recorded: "
                             f"{', '.join(manifest['notebooks']) or '(none)'}.")
    dest = Path(out).expanduser().resolve() if out is not None else root.with_name(root.name + "-reproduce")
    if dest == root:
        raise ReproduceError("The reproduction must go to another folder than the original.")
    report = ReproduceReport(original=root, reproduced=dest,
                             input_changes=_input_changes(manifest, names),
                             environment_changes=_environment_changes(manifest))
    timeout = manifest.get("run", {}).get("timeout")
    stop = StopControl()
    with output_lock(dest, "ecrm reproduce " + str(root)), stop_on_signals(stop):
        files = OutputRecord(dest)
        files.check(names, force=force, command="ecrm reproduce")  # before any kernel starts
        files.set_state("running")

        def run_one(n: str, rec: Mapping[str, Any], nb_dir: Path) -> RunResult:
            return run_notebook(n, params=rec.get("parameters") or {}, out=dest, timeout=timeout, progress=progress,
                                notebooks_dir=nb_dir, pdf=False, force=force, record=files, stop=stop)

        results = _rerun(manifest, root, names, report, stop, run_one)
        files.set_state("interrupted" if stop.stopped else "complete")
    if stop.stopped:
        err = RunInterrupted(_interrupted_message(report, results, stop), signal_name=stop.signal_name or "SIGINT",
                             results=results)
        err.report = report  # what was compared before the stop
        raise err
    return report


def _rerun(manifest: Mapping[str, Any], root: Path, names: Sequence[str], report: ReproduceReport,
           stop: StopControl, run: Callable[[str, Mapping[str, Any], Path], RunResult]) -> list[RunResult]:
    """Re-run each recorded analysis with ``run(name, record, notebooks_dir)`` in a worker thread (the
    main thread keeps handling signals) and compare its tables into `report`; after a stop, start no
    more (``not run``) and compare nothing of the interrupted one."""
    results: list[RunResult] = []
    notebooks_dir = Path(manifest.get("run", {}).get("notebooks_dir") or ".")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecrm-reproduce") as pool:
        for n in names:
            rec = manifest["notebooks"][n]
            if rec.get("status") in ("skipped", "not run"):
                continue  # nothing was run for it (the data did not fit, or the run was interrupted first)
            if stop.stopped:
                report.not_run.append(n)
                results.append(RunResult(name=n, status="not run", out_dir=report.reproduced / n,
                                         error=f"not started: the reproduction was interrupted ({stop.signal_name})"))
                continue
            nb_path = rec.get("notebook_path")
            res = pool.submit(run, n, rec, Path(nb_path).parent if nb_path else notebooks_dir).result()
            results.append(res)
            if res.status == "interrupted":
                report.interrupted.append(n)
                continue
            if res.status != rec.get("status"):
                report.status_changes.append(f"{n}: recorded {rec.get('status')}, now {res.status}"
                                             + (f" ({res.error})" if res.error else ""))
            report.tables.extend(compare_tables(root / n, res.out_dir, n))
    return results


def _interrupted_message(report: ReproduceReport, results: Sequence[RunResult], stop: StopControl) -> str:
    """One line for the user: what was re-run and compared, interrupted or not run, and what to do."""
    done = [r.name for r in results if r.status not in ("interrupted", "not run")]
    parts = [f"{len(v)} {k} ({', '.join(v)})" for k, v in
             (("re-run and compared", done), ("interrupted", report.interrupted), ("not run", report.not_run))
             if v]
    return (f"{stop.signal_name or 'SIGINT'} received; reproduction of {report.original} into "
            f"{report.reproduced} stopped: {'; '.join(parts) or 'nothing had started'}. "
            f"Run the same command again to reproduce the run.")
