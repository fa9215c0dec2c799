"""Reproducibility: what went into a run (``OUT/manifest.json``) and re-running it.

Every :func:`runner.run_all` (so every ``ecrm run``) writes ``OUT/manifest.json``::

    {"manifest_version": 1, "created": ..., "finished": ...,
     "python": "3.11.9", "platform": ..., "packages": {"pandas": "2.3.3", ...},
     "git": {"commit": "89c835d...", "dirty": true} | null,
     "run": {"names": [...], "data": ..., "data_format": ..., "mapping": ..., "params": {...},
             "timeout": 1800, "notebooks_dir": "/abs/notebooks"},
     "inputs": {"data": {"path": ..., "kind": "sample" | "file" | "folder", "sha256": <digest>,
                          "files": [{"path": "orders.parquet", "bytes": 123, "sha256": ...}]},
                "mapping": {...} | null},
     "notebooks": {"<name>": {"notebook": "01_x.ipynb", "notebook_sha256": ..., "status": "ok",
                               "parameters": {...}, "seed": 42, "seconds": 3.2,
                               "tables": {"tables/x.csv": <sha256>}, "run": <this run's created>}}}

Analyses from an earlier run into the same folder keep their entry (with its own ``run`` stamp).

:func:`reproduce` re-runs the analyses recorded in a manifest into another folder and compares
every CSV table: byte-identical, equal as data frames (numbers within 1e-9 relative), or
different. It also reports inputs and notebooks whose hashes changed since the recorded run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..exceptions import EcrmError
from ..paths import PROJ_ROOT, SAMPLE_DIR

__all__ = [
    "ReproduceError",
    "MANIFEST_NAME",
    "PACKAGES",
    "sha256_file",
    "hash_inputs",
    "package_versions",
    "git_info",
    "build_manifest",
    "write_manifest",
    "read_manifest",
    "TableComparison",
    "ReproduceReport",
    "compare_tables",
    "reproduce",
]

MANIFEST_NAME = "manifest.json"
#: packages whose versions are recorded (those that shape the numbers, then the execution stack)
PACKAGES = ("ecrm-research", "pandas", "numpy", "scipy", "scikit-learn", "mlxtend", "statsmodels",
            "lifelines", "semopy", "pyarrow", "matplotlib", "seaborn", "pandera", "papermill",
            "nbclient", "nbconvert", "nbformat", "ipykernel")
_CHUNK = 1 << 20


class ReproduceError(EcrmError):
    """A folder cannot be reproduced (no manifest, unknown analysis); the CLI exits with 2."""


# --------------------------------------------------------------------------- hashing


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def hash_inputs(path: str | Path | None) -> dict[str, Any]:
    """Hashes of a data input: one file, or every file under a folder (recursively).

    Parameters
    ----------
    path : str, Path or None
        The data file or folder; None means the bundled sample (``paths.SAMPLE_DIR``).

    Returns
    -------
    dict
        ``{"path", "kind" ('sample'|'file'|'folder'|'missing'), "sha256", "files": [{"path",
        "bytes", "sha256"}]}``; ``sha256`` digests the sorted (relative path, file hash) pairs, so
        it changes when any file is changed, added, removed or renamed.
    """
    if path is None:
        root, kind = SAMPLE_DIR, "sample"
    else:
        root = Path(path)
        kind = "folder" if root.is_dir() else "file" if root.is_file() else "missing"
    files: list[dict[str, Any]] = []
    if root.is_file():
        files.append({"path": root.name, "bytes": root.stat().st_size, "sha256": sha256_file(root)})
    elif root.is_dir():
        for p in sorted(q for q in root.rglob("*") if q.is_file() and not q.name.startswith(".")):
            files.append({"path": p.relative_to(root).as_posix(), "bytes": p.stat().st_size,
                          "sha256": sha256_file(p)})
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f['path']}\0{f['sha256']}\n".encode())
    return {"path": str(root), "kind": kind, "sha256": digest.hexdigest() if files else None, "files": files}


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of `names` (None when a package is not installed)."""
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = None
    return out


def git_info(root: str | Path = PROJ_ROOT) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the project's git checkout, or None without git/repository."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def table_hashes(analysis_dir: str | Path) -> dict[str, str]:
    """``{"tables/x.csv": sha256}`` for every CSV table an analysis wrote."""
    d = Path(analysis_dir)
    return {p.relative_to(d).as_posix(): sha256_file(p) for p in sorted((d / "tables").glob("*.csv"))}


# --------------------------------------------------------------------------- writing


def json_safe(value: Any) -> Any:
    """``value`` if JSON can encode it, else its ``repr`` (parameters may hold arbitrary objects)."""
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read a manifest: the file itself, or the folder holding ``manifest.json``.

    Raises
    ------
    ReproduceError
        When there is no readable manifest.
    """
    p = Path(path)
    p = p / MANIFEST_NAME if p.is_dir() else p
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReproduceError(f"No {MANIFEST_NAME} in {p.parent}. Only folders written by `ecrm run` "
                             f"(version with manifests) can be reproduced; run it again first.") from None
    except (OSError, ValueError) as exc:
        raise ReproduceError(f"Cannot read {p}: {exc}.") from exc
    if not isinstance(data, dict) or "notebooks" not in data:
        raise ReproduceError(f"{p} is not an ecrm manifest (no 'notebooks' entry).")
    return data


def build_manifest(
    out: str | Path,
    results: Sequence[Any],
    *,
    names: Sequence[str],
    data: Any = None,
    data_format: str | None = None,
    mapping: Any = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    notebooks_dir: str | Path | None = None,
    started: datetime | None = None,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of one :func:`runner.run_all` call (see the module docstring for the layout).

    Parameters
    ----------
    out : str or Path
        Output root of the run.
    results : sequence of RunResult
        This run's results; each notebook's ``run.json`` supplies parameters and hashes.
    names, data, data_format, mapping, params, timeout, notebooks_dir
        The run's arguments (``data``/``mapping`` as absolute paths), recorded so the run can be
        repeated.
    started : datetime, optional
        When the run started; default now.
    previous : dict, optional
        The manifest found in `out` before this run: its notebooks not re-run are kept.
    """
    from ..paths import NOTEBOOKS_DIR

    root = Path(out)
    now = datetime.now().astimezone()
    created = (started or now).isoformat(timespec="seconds")
    mapping_info = None
    if isinstance(mapping, (str, Path)) and Path(mapping).is_file():
        mapping_info = {"path": str(mapping), "sha256": sha256_file(mapping)}
    elif isinstance(mapping, Mapping):
        mapping_info = {"inline": json_safe(dict(mapping))}
    notebooks: dict[str, Any] = dict((previous or {}).get("notebooks", {}))
    for r in results:
        run = {}
        try:
            run = json.loads((Path(r.out_dir) / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        notebooks[r.name] = {
            "notebook": run.get("notebook"),
            "notebook_path": run.get("notebook_path"),
            "notebook_sha256": run.get("notebook_sha256"),
            "status": r.status,
            "error": r.error,
            "seconds": round(float(r.seconds), 3),
            "parameters": {k: v for k, v in (run.get("parameters") or {}).items() if k != "out_dir"},
            "seed": run.get("seed"),
            "tables": table_hashes(r.out_dir),
            "run": created,
        }
    return {
        "manifest_version": 1,
        "created": created,
        "finished": now.isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_info(),
        "run": {
            "names": list(names),
            "data": data,
            "data_format": data_format,
            "mapping": mapping if not isinstance(mapping, Mapping) else json_safe(dict(mapping)),
            "params": {k: json_safe(v) for k, v in (params or {}).items()},
            "timeout": timeout,
            "notebooks_dir": str(Path(notebooks_dir).resolve()) if notebooks_dir is not None else str(NOTEBOOKS_DIR),
            "out": str(root),
        },
        "inputs": {"data": hash_inputs(data), "mapping": mapping_info},
        "notebooks": notebooks,
    }


def write_manifest(out: str | Path, results: Sequence[Any], **kwargs: Any) -> Path:
    """Build the manifest (see :func:`build_manifest`) and write ``out/manifest.json``."""
    root = Path(out)
    path = root / MANIFEST_NAME
    previous = None
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
    manifest = build_manifest(root, results, previous=previous, **kwargs)
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- comparing


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
    import numpy as np
    import pandas as pd

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

    @property
    def ok(self) -> bool:
        """True when every table is identical or equal, no input changed and no status changed."""
        return (all(t.same for t in self.tables) and not self.input_changes and not self.status_changes)

    def summary(self) -> str:
        """Human-readable summary, one line per table, then the verdict."""
        lines = [f"Reproducing {self.original}", f"  into {self.reproduced}"]
        for msg in self.input_changes:
            lines.append(f"INPUT CHANGED  {msg}")
        for msg in self.environment_changes:
            lines.append(f"environment    {msg}")
        for msg in self.status_changes:
            lines.append(f"STATUS CHANGED {msg}")
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
                     + ".")
        return "\n".join(lines)


def _input_changes(manifest: Mapping[str, Any], names: Sequence[str]) -> list[str]:
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
) -> ReproduceReport:
    """Re-run the analyses recorded in a manifest and compare their tables.

    Parameters
    ----------
    report_dir : str or Path
        An output root holding ``manifest.json`` (all its analyses are re-run) or one analysis
        folder ``OUT/<name>`` (only that analysis; the manifest is read from ``OUT``).
    out : str or Path, optional
        Where to re-run; default the sibling folder ``<OUT>-reproduce`` (replaced if present).
    progress : bool
        Show papermill's progress bars.

    Returns
    -------
    ReproduceReport
        ``.ok`` is True when every table is byte-identical or frame-equal and no recorded input
        changed; ``.summary()`` explains.

    Raises
    ------
    ReproduceError
        No manifest, or the folder is not an output of ``ecrm run``.
    """
    import shutil

    from .runner import run_notebook

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
    if dest.exists() and out is None:
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    report = ReproduceReport(original=root, reproduced=dest,
                             input_changes=_input_changes(manifest, names),
                             environment_changes=_environment_changes(manifest))
    run = manifest.get("run", {})
    for n in names:
        rec = manifest["notebooks"][n]
        nb_path = rec.get("notebook_path")
        nb_dir = Path(nb_path).parent if nb_path else Path(run.get("notebooks_dir") or ".")
        res = run_notebook(n, params=rec.get("parameters") or {}, out=dest, timeout=run.get("timeout"),
                           progress=progress, notebooks_dir=nb_dir, pdf=False)
        if res.status != rec.get("status"):
            report.status_changes.append(f"{n}: recorded {rec.get('status')}, now {res.status}"
                                         + (f" ({res.error})" if res.error else ""))
        report.tables.extend(compare_tables(root / n, res.out_dir, n))
    return report
