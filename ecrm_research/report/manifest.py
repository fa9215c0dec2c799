"""Reproducibility: what went into a run (``OUT/manifest.json``) and re-running it.

Every :func:`runner.run_all` (so every ``ecrm run``) writes ``OUT/manifest.json``::

    {"manifest_version": 1, "created": ..., "finished": ..., "state": "complete" | "interrupted",
     "not_run": [...],   # analyses an interrupted run did not start (their entries are the earlier ones)
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

:func:`ecrm_research.report.reproduce.reproduce` re-runs the analyses recorded in a manifest into
another folder and compares every CSV table. This module only records (hashes, versions, the
manifest file); it imports nothing that runs notebooks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..exceptions import EcrmError
from ..paths import NOTEBOOKS_DIR, PROJ_ROOT, SAMPLE_DIR

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
    "table_hashes",
    "json_safe",
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
    state: str = "complete",
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
    state : str
        ``"complete"``, or ``"interrupted"`` when SIGINT/SIGTERM stopped the run: the analyses it
        did not start (status ``not run``) keep their earlier entry and are listed in ``not_run``;
        an interrupted one is recorded with status ``interrupted``.
    """
    root = Path(out)
    now = datetime.now().astimezone()
    created = (started or now).isoformat(timespec="seconds")
    notebooks: dict[str, Any] = dict((previous or {}).get("notebooks", {}))
    for r in results:
        if r.status != "not run":
            notebooks[r.name] = _notebook_entry(r, created)
    return {
        "manifest_version": 1,
        "created": created,
        "finished": now.isoformat(timespec="seconds"),
        "state": state,
        "not_run": [r.name for r in results if r.status == "not run"],
        **_environment_info(),
        "run": _run_arguments(root, names, data=data, data_format=data_format, mapping=mapping, params=params,
                              timeout=timeout, notebooks_dir=notebooks_dir),
        "inputs": {"data": hash_inputs(data), "mapping": _mapping_input(mapping)},
        "notebooks": notebooks,
    }


def _environment_info() -> dict[str, Any]:
    """Python version and executable, platform, package versions and git state of this process."""
    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_info(),
    }


def _run_arguments(root: Path, names: Sequence[str], *, data: Any, data_format: str | None, mapping: Any,
                   params: Mapping[str, Any] | None, timeout: float | None,
                   notebooks_dir: str | Path | None) -> dict[str, Any]:
    """The manifest's ``run`` entry: the arguments that repeat the run."""
    return {
        "names": list(names),
        "data": data,
        "data_format": data_format,
        "mapping": mapping if not isinstance(mapping, Mapping) else json_safe(dict(mapping)),
        "params": {k: json_safe(v) for k, v in (params or {}).items()},
        "timeout": timeout,
        "notebooks_dir": str(Path(notebooks_dir).resolve()) if notebooks_dir is not None else str(NOTEBOOKS_DIR),
        "out": str(root),
    }


def _mapping_input(mapping: Any) -> dict[str, Any] | None:
    """The mapping's input entry: a file's path and sha256, an inline mapping's content, else None."""
    if isinstance(mapping, (str, Path)) and Path(mapping).is_file():
        return {"path": str(mapping), "sha256": sha256_file(mapping)}
    if isinstance(mapping, Mapping):
        return {"inline": json_safe(dict(mapping))}
    return None


def _notebook_entry(result: Any, created: str) -> dict[str, Any]:
    """The manifest entry of one notebook run (a :class:`~ecrm_research.report.runner.RunResult`),
    from the result and its ``run.json``; `created` stamps the run it belongs to."""
    run = _read_run_json(Path(result.out_dir))
    return {
        "notebook": run.get("notebook"),
        "notebook_path": run.get("notebook_path"),
        "notebook_sha256": run.get("notebook_sha256"),
        "status": result.status,
        "error": result.error,
        "seconds": round(float(result.seconds), 3),
        "parameters": {k: v for k, v in (run.get("parameters") or {}).items() if k != "out_dir"},
        "seed": run.get("seed"),
        "tables": table_hashes(result.out_dir),
        "run": created,
    }


def _read_run_json(out_dir: Path) -> dict[str, Any]:
    """An analysis folder's ``run.json``, or {} when it is missing or unreadable."""
    try:
        return json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


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
