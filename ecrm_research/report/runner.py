"""Executing the analysis notebooks with papermill and rendering their reports.

A notebook ``notebooks/NN_name[_more].ipynb`` is known by its short *name* (the word after
``NN_``). :func:`run_notebook` executes one into ``OUT/<name>/``::

    OUT/<name>/<name>.ipynb            executed notebook (kept, partially, when a cell fails)
    OUT/<name>/report.html             reader version: markdown and outputs, no code
    OUT/<name>/report_student.html     student version: with the code
    OUT/<name>/run.json                status, error, timing, data source and parameters
    OUT/<name>/tables/ figures/ findings.json   written by the notebook (``outputs.ReportOutputs``)

:func:`run_all` runs several notebooks in order (a failure does not stop the others) and writes
``OUT/index.html`` (see :mod:`ecrm_research.report.site`).

papermill and nbconvert are called only from this module, so their API drift is handled here.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..exceptions import ParameterError
from ..paths import KERNEL_NAME, NOTEBOOKS_DIR, PROJ_ROOT, REPORTS_DIR
from .manifest import json_safe

__all__ = [
    "RunResult",
    "list_notebooks",
    "notebook_path",
    "notebook_parameters",
    "notebook_parameter_help",
    "run_notebook",
    "run_all",
    "render_reports",
    "ensure_kernel",
    "default_jobs",
]

_NB_RE = re.compile(r"^(?P<num>\d+)_(?P<name>[A-Za-z0-9]+)(?:_[^.]*)?\.ipynb$")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: parameters the runner injects itself; a notebook should declare them but they are not user input
_INJECTED = ("out_dir",)
#: parameters whose string values are paths, made absolute before injection
_PATH_PARAMS = ("data", "mapping")
_MAX_ERROR_CHARS = 400
#: serialises kernelspec installation and report rendering when run_all runs notebooks in threads
_SETUP_LOCK = threading.Lock()
_RENDER_LOCK = threading.Lock()


class _DropUnknownParameterWarning(logging.Filter):
    """papermill's line parser warns about parameter lines it cannot read (any second ``=``,
    even in a comment) and then about "unknown" parameters; the runner parses the cell with
    :mod:`ast` and checks parameters itself, so these warnings are noise."""

    _NOISE = ("Passed unknown parameter", "Unable to parse line")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self._NOISE)


for _logger in ("papermill", "papermill.translators", "papermill.parameterize"):
    # a logger's filters do not apply to records of its children, so each one gets the filter
    logging.getLogger(_logger).addFilter(_DropUnknownParameterWarning())

#: run in every kernel before the notebook: readable tables (rounded floats, thousands separators)
_KERNEL_SETUP = "import ecrm_research.report.display as _ecrm_display; _ecrm_display.setup(); del _ecrm_display"
_REPORT_CSS = Path(__file__).parent / "templates" / "report.css"
#: cells dropped from the reports: exercises in neither, solutions not in the student report
_READER_DROP = {"remove-cell", "remove_cell", "exercise", "solution", "your-turn"}
_STUDENT_DROP = {"remove-cell", "remove_cell", "solution"}


@dataclass
class RunResult:
    """Outcome of executing one notebook.

    Attributes
    ----------
    name : str
        Short analysis name (``association``, ``churn`` ...).
    status : str
        ``'ok'`` or ``'failed'``.
    out_dir : Path
        ``OUT/<name>``, holding the executed notebook, reports, tables, figures, findings.
    error : str or None
        ``"ExceptionName: message"`` of the failing cell (short, without traceback); None when ok.
    seconds : float
        Wall time of the execution (kernel start to last cell), without report rendering.
    """

    name: str
    status: str
    out_dir: Path
    error: str | None = None
    seconds: float = 0.0
    #: future of a PDF still printing (``run_all`` prints while the next notebook runs); None when done
    pending: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when the notebook ran to the end."""
        return self.status == "ok"

    @property
    def notebook(self) -> Path:
        """The executed notebook ``OUT/<name>/<name>.ipynb``."""
        return Path(self.out_dir) / f"{self.name}.ipynb"

    @property
    def report(self) -> Path:
        """The reader report ``OUT/<name>/report.html``."""
        return Path(self.out_dir) / "report.html"


# --------------------------------------------------------------------------- discovery


def list_notebooks(notebooks_dir: str | Path | None = None) -> dict[str, Path]:
    """Map short names to notebook files, ordered by their ``NN`` prefix.

    Parameters
    ----------
    notebooks_dir : str or Path, optional
        Folder to scan; default ``paths.NOTEBOOKS_DIR`` (``notebooks/``).

    Returns
    -------
    dict of str to Path
        ``{"overview": .../00_overview.ipynb, "association": .../01_association_rules.ipynb, ...}``.

    Raises
    ------
    ParameterError
        When two notebooks share a short name.
    """
    folder = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    found: list[tuple[int, str, Path]] = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _NB_RE.match(p.name)
            if m and p.is_file():
                found.append((int(m["num"]), m["name"], p))
    found.sort(key=lambda t: (t[0], t[2].name))
    out: dict[str, Path] = {}
    for _, name, p in found:
        if name in out:
            raise ParameterError(
                f"Two notebooks share the short name '{name}': {out[name].name} and {p.name}. "
                f"Rename one of them in {folder}.",
                allowed=list(out),
            )
        out[name] = p
    return out


def notebook_path(name: str, notebooks_dir: str | Path | None = None) -> Path:
    """Path of the notebook with short name `name`.

    Raises
    ------
    ParameterError
        Unknown name; the message and ``.allowed`` list the available names.
    """
    books = list_notebooks(notebooks_dir)
    if name not in books:
        folder = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
        names = ", ".join(books) or "(none)"
        raise ParameterError(
            f"Unknown notebook '{name}'. Available in {folder}: {names}.", allowed=list(books)
        )
    return books[name]


def _parse_default(text: str | None) -> Any:
    """Turn a parameter's default source text into a value (the literal, else the text)."""
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _parse_parameters_cell(source: str) -> dict[str, dict[str, Any]] | None:
    """Parameters of a ``parameters`` cell via :mod:`ast`; None when the cell is not plain Python.

    papermill's own inspector skips any line holding a second ``=`` (e.g. in a help comment
    such as ``out_dir = None  # None = reports/x``), so the cell is parsed here instead.
    """
    import io
    import tokenize

    try:
        tree = ast.parse(source)
        comments = {
            tok.start[0]: tok.string.lstrip("#").strip()
            for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT
        }
    except (SyntaxError, tokenize.TokenError, IndentationError):
        return None
    params: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            annotation = None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            targets = [node.target.id]
            annotation = ast.get_source_segment(source, node.annotation)
        else:
            continue
        default = ast.get_source_segment(source, node.value)
        help_text = comments.get(node.end_lineno or node.lineno, "")
        for t in targets:
            params[t] = {"name": t, "default": default, "help": help_text,
                         "inferred_type_name": annotation or type(_parse_default(default)).__name__}
    return params


def _inspect(path: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"default": source text, "help": comment, "inferred_type_name": ...}}`` in order."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for unreadable files
        raise ParameterError(f"Cannot read notebook {path}: {exc}. Is it valid .ipynb JSON?") from exc
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    parsed = _parse_parameters_cell(cells[0].source)
    if parsed is not None:
        return parsed
    import papermill as pm  # cell with IPython syntax: fall back to papermill's line parser

    return dict(pm.inspect_notebook(str(path)))


def notebook_parameters(name: str, *, notebooks_dir: str | Path | None = None) -> dict[str, Any]:
    """Declared parameters of a notebook with their default values.

    Parameters
    ----------
    name : str
        Short notebook name.
    notebooks_dir : str or Path, optional
        Folder of the notebooks; default ``notebooks/``.

    Returns
    -------
    dict
        ``{parameter: default}`` in declaration order; defaults are the parsed literals
        (a default that is not a literal is returned as its source text).

    Notes
    -----
    The cell tagged ``parameters`` is parsed with :mod:`ast` (multi-line literals and ``=`` in
    help comments are fine); papermill's ``inspect_notebook`` is the fallback for cells that are
    not plain Python.
    """
    path = notebook_path(name, notebooks_dir)
    return {k: _parse_default(v.get("default")) for k, v in _inspect(path).items()}


def notebook_parameter_help(name: str, *, notebooks_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Declared parameters with default, inferred type and help comment (for ``ecrm run NAME --help``)."""
    path = notebook_path(name, notebooks_dir)
    rows = []
    for k, v in _inspect(path).items():
        rows.append({
            "name": k,
            "default": _parse_default(v.get("default")),
            "default_text": v.get("default"),
            "type": v.get("inferred_type_name") or "",
            "help": v.get("help") or "",
        })
    return rows


# --------------------------------------------------------------------------- kernel


def ensure_kernel(kernel_name: str = KERNEL_NAME) -> str:
    """Make sure the Jupyter kernelspec `kernel_name` exists; install it into ``sys.prefix`` if not.

    The installed kernel runs the current interpreter (``sys.executable``), so a fresh
    virtual environment works without ``make install``.

    Returns
    -------
    str
        The kernel name.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    with _SETUP_LOCK:  # run_all(jobs > 1) calls this from several threads
        try:
            KernelSpecManager().get_kernel_spec(kernel_name)
            return kernel_name
        except NoSuchKernel:
            pass
        from ipykernel.kernelspec import install

        # the same hash seed as `ecrm run` gives its kernels (see run_notebook), for JupyterLab too
        install(kernel_name=kernel_name, display_name=f"Python ({kernel_name})", prefix=sys.prefix,
                env={"PYTHONHASHSEED": "0"})
        return kernel_name


# --------------------------------------------------------------------------- running


def _absolute(value: Any) -> Any:
    """Absolute path for a str/Path value (others unchanged).

    Relative paths are taken from the caller's cwd; one that does not exist there but exists
    under the project root (``data/mappings/online_retail.yaml``) is taken from the project root,
    since notebooks run there.
    """
    if not (isinstance(value, Path) or (isinstance(value, str) and value)):
        return value
    p = Path(os.fspath(value)).expanduser()
    if not p.is_absolute() and not p.exists() and (PROJ_ROOT / p).exists():
        p = PROJ_ROOT / p
    return str(p.resolve())


def _build_parameters(
    declared: Mapping[str, Any],
    name: str,
    *,
    data: Any,
    data_format: str | None,
    mapping: Any,
    params: Mapping[str, Any] | None,
    out_dir: Path,
) -> dict[str, Any]:
    given: dict[str, Any] = dict(params or {})
    for key, value in (("data", data), ("data_format", data_format), ("mapping", mapping)):
        if value is not None:
            given[key] = value
    if "out_dir" in given:
        raise ParameterError(
            f"out_dir is set by the runner (OUT/{name}); choose the output root with out=... "
            f"(CLI: --out DIR) instead.", allowed=[k for k in declared if k not in _INJECTED])
    unknown = [k for k in given if k not in declared]
    if unknown:
        allowed = [k for k in declared if k not in _INJECTED]
        raise ParameterError(
            f"The {name} notebook does not declare parameter(s) {', '.join(map(repr, unknown))}. "
            f"Declared parameters: {', '.join(allowed) or '(none)'}. "
            f"See `ecrm run {name} --help`.",
            allowed=allowed,
        )
    for key in _PATH_PARAMS:
        if key in given:
            given[key] = _absolute(given[key])
    if isinstance(given.get("data_format"), str):
        given["data_format"] = given["data_format"].strip()
    injected = {"out_dir": str(out_dir)}
    injected.update(given)
    return injected


def _short_error(exc: BaseException) -> str:
    """``"Name: message"`` of the failing cell, without ANSI codes or traceback."""
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename is None:
        ename, evalue = type(exc).__name__, str(exc)
        if "timed out" in evalue.lower() or "timeout" in ename.lower():
            first = evalue.strip().splitlines()[0] if evalue.strip() else ""
            evalue = first + " Raise the per-cell limit with timeout=... (CLI: --timeout SECONDS)."
    msg = _ANSI_RE.sub("", f"{ename}: {evalue}" if evalue else str(ename)).strip()
    msg = " ".join(msg.split())
    if len(msg) > _MAX_ERROR_CHARS:
        msg = msg[: _MAX_ERROR_CHARS - 1] + "…"
    return msg


def _clear_previous(out_dir: Path, nb_out: Path) -> None:
    """Remove the outputs of an earlier run so a failure never shows stale findings."""
    import shutil

    for f in (nb_out, out_dir / "findings.json", out_dir / "run.json", out_dir / "report.pdf",
              out_dir / "report.html", out_dir / "report_student.html"):
        if f.is_file():
            f.unlink()
    for d in (out_dir / "tables", out_dir / "figures"):
        if d.is_dir() and not d.is_symlink():
            shutil.rmtree(d)


def _shutdown_mode(parameters: Mapping[str, Any]) -> str:
    """How papermill ends a kernel once its notebook is done: ``"immediate"`` (stop the process),
    or ``"graceful"`` (shutdown request, then Python's own exit) when a parameter asks for a
    Spark engine.

    Every result is on disk and every output received when the last cell ends, so a graceful
    exit only adds the interpreter's tear-down: 0.5-1.0 s per notebook measured, on the critical
    path of a run. A kernel that started Spark exits gracefully so that pyspark stops the JVM
    and Spark removes its temporary folders.
    """
    spark = any(k.endswith("engine") and str(v).strip().lower() == "spark" for k, v in parameters.items())
    return "graceful" if spark else "immediate"


SAVE_EVERY_SECONDS = 5.0
"""How often the executed notebook is written while it runs (papermill writes it at every cell
start and end: ~70 full notebook writes, 0.2-0.7 s of the runner's CPU per notebook)."""

_ENGINE_NAME = "ecrm-nbclient"
_ENGINE_LOCK = threading.Lock()


def _papermill_engine() -> str:
    """Register (once) and name papermill's nbclient engine with periodic instead of per-cell saves.

    The output notebook is still written at the end whatever happens (an error cell, a cell
    timeout, a dead kernel: papermill's ``notebook_complete`` runs in a ``finally``), and every
    `SAVE_EVERY_SECONDS` while cells run, so a long run can be watched and a failed one keeps
    its partial output.
    """
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    with _ENGINE_LOCK:
        if _ENGINE_NAME in papermill_engines._engines:
            return _ENGINE_NAME

        class PeriodicSaves(NotebookExecutionManager):
            final = False

            def save(self, **kwargs: Any) -> Any:
                due = (self.now() - self.last_save_time).total_seconds() >= SAVE_EVERY_SECONDS
                if self.final or due:
                    return super().save(**kwargs)
                return None

            def notebook_complete(self, **kwargs: Any) -> Any:
                self.final = True
                return super().notebook_complete(**kwargs)

        class PeriodicSaveEngine(NBClientEngine):
            @classmethod
            def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                                 progress_bar: Any = True, log_output: bool = False,
                                 autosave_cell_every: int = 30, **kwargs: Any) -> Any:
                # papermill's Engine.execute_notebook with our manager in place of its own
                nb_man = PeriodicSaves(nb, output_path=output_path, progress_bar=progress_bar,
                                       log_output=log_output, autosave_cell_every=autosave_cell_every)
                nb_man.notebook_start()
                try:
                    cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
                finally:
                    nb_man.cleanup_pbar()
                    nb_man.notebook_complete()
                return nb_man.nb

        papermill_engines.register(_ENGINE_NAME, PeriodicSaveEngine)
    return _ENGINE_NAME


def run_notebook(
    name: str,
    *,
    data: str | Path | None = None,
    data_format: str | None = None,
    mapping: str | Path | Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    timeout: float | None = 1800,
    progress: bool = True,
    notebooks_dir: str | Path | None = None,
    render: bool = True,
    pdf: bool | None = None,
    pdf_executor: Any = None,
    pdf_printer: Any = None,
) -> RunResult:
    """Execute one analysis notebook with papermill and render its HTML reports.

    Parameters
    ----------
    name : str
        Short notebook name (see :func:`list_notebooks`).
    data : str or Path, optional
        The user's data file or folder (made absolute); None = the notebook's default (sample).
    data_format : str, optional
        ``canonical``, ``lines``, ``baskets``, ``customers`` or ``survey``; None = detect.
    mapping : str, Path or dict, optional
        Column-mapping YAML file (made absolute) or mapping dict.
    params : dict, optional
        Other notebook parameters, e.g. ``{"min_support": 0.01}``. Every key must be declared
        in the notebook's ``parameters`` cell.
    out : str or Path, optional
        Output root; the notebook writes to ``out/<name>/``. Default ``paths.REPORTS_DIR``.
    timeout : float, optional
        Seconds allowed per cell (None = no limit).
    progress : bool
        Show papermill's progress bar.
    notebooks_dir : str or Path, optional
        Folder of the notebooks; default ``notebooks/``.
    render : bool
        Render ``report.html`` / ``report_student.html`` (also for a failed notebook).
    pdf : bool, optional
        Also print ``report.pdf`` from the reader report with headless Chromium (see
        :mod:`ecrm_research.report.pdf`). None (default) = yes unless ``ECRM_PDF=0``. Without Chromium
        the PDF is skipped and ``run.json["pdf"]`` says why; the HTML reports are unaffected.
    pdf_executor : concurrent.futures.Executor, optional
        Print the PDF there instead of waiting for it (:func:`run_all` passes a one-thread
        executor, so Chromium prints a report while the next notebook runs). ``run.json`` is
        written at once with ``pdf.status = 'pending'`` and rewritten when the PDF is done; the
        future is kept in ``RunResult.pending``. Wait for it before reading ``run.json``.
    pdf_printer : ecrm_research.report.pdf.PdfPrinter, optional
        A Chromium kept open for several reports (used from the `pdf_executor` thread only);
        default one Chromium per PDF (:func:`ecrm_research.report.pdf.print_pdf`).

    Returns
    -------
    RunResult
        ``status='failed'`` with ``error="ValueError: ..."`` when a cell raises; the partially
        executed notebook is kept in ``out/<name>/<name>.ipynb``.

    Raises
    ------
    ParameterError
        Unknown notebook name, or a parameter the notebook does not declare (raised before
        anything runs; ``.allowed`` lists the declared parameters).
    """
    import papermill as pm

    src = notebook_path(name, notebooks_dir)
    declared = notebook_parameters(name, notebooks_dir=notebooks_dir)
    root = Path(out).expanduser().resolve() if out is not None else REPORTS_DIR
    out_dir = root / name
    parameters = _build_parameters(
        declared, name, data=data, data_format=data_format, mapping=mapping, params=params,
        out_dir=out_dir,
    )
    nb_out = out_dir / f"{name}.ipynb"
    _clear_previous(out_dir, nb_out)
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel = ensure_kernel(KERNEL_NAME)

    # Kernels inherit the environment. A fixed hash seed makes set and dict orders of strings the
    # same in every run: semopy orders its parameters through sets, and its estimates moved in
    # the 15th digit from one kernel to the next, enough to change a 12-digit table now and then.
    hash_seed = os.environ.setdefault("PYTHONHASHSEED", "0")
    effective = {**declared, **parameters}  # what the notebook runs with
    started = datetime.now().astimezone()
    t0 = time.perf_counter()
    status, error = "ok", None
    try:
        pm.execute_notebook(
            str(src),
            str(nb_out),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=progress,
            log_output=False,
            cwd=str(PROJ_ROOT),
            engine_name=_papermill_engine(),
            shutdown_kernel=_shutdown_mode(effective),
            execution_timeout=timeout,
            # ipykernel's start-up warnings (e.g. "running over TCP without encryption") are noise here;
            # exec_lines sets readable pandas display options before the first cell
            extra_arguments=["--IPKernelApp.log_level=CRITICAL", f"--IPKernelApp.exec_lines={_KERNEL_SETUP}"],
        )
    except pm.PapermillExecutionError as exc:
        status, error = "failed", _short_error(exc)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # kernel death, cell timeout, unreadable notebook ...
        status, error = "failed", _short_error(exc)
    seconds = time.perf_counter() - t0

    result = RunResult(name=name, status=status, out_dir=out_dir, error=error, seconds=seconds)
    from .manifest import sha256_file, table_hashes

    record = {
        "name": name,
        "notebook": src.name,
        "notebook_path": str(src.resolve()),
        "notebook_sha256": sha256_file(src),
        "status": status,
        "error": error,
        "seconds": round(seconds, 3),
        "started": started.isoformat(timespec="seconds"),
        "parameters": {k: json_safe(v) for k, v in parameters.items()},
        "seed": json_safe(effective.get("seed")),
        "python_hash_seed": hash_seed,
        "tables": table_hashes(out_dir),
        "render_error": None,
        "pdf": None,
    }
    if render and nb_out.exists():
        t_render = time.perf_counter()
        try:
            with _RENDER_LOCK:  # the nbconvert exporters are shared (built once per process)
                render_reports(nb_out, out_dir, title=name)
        except Exception as exc:  # a broken render must not hide the run result
            record["render_error"] = _short_error(exc)
        record["render_seconds"] = round(time.perf_counter() - t_render, 3)
        if pdf is None:
            pdf = os.environ.get("ECRM_PDF", "1").strip().lower() not in ("0", "no", "false", "off")
        if not pdf:
            record["pdf"] = {"status": "skipped", "path": None, "reason": "PDF not requested (--no-pdf / ECRM_PDF=0)",
                             "seconds": 0.0}
        elif (out_dir / "report.html").is_file():
            from .pdf import print_pdf

            printer = pdf_printer.print if pdf_printer is not None else print_pdf
            if pdf_executor is None:
                record["pdf"] = printer(out_dir / "report.html", out_dir / "report.pdf").to_dict()
            else:
                record["pdf"] = {"status": "pending", "path": None, "reason": "printing", "seconds": 0.0}

                def _print_and_record() -> None:
                    record["pdf"] = printer(out_dir / "report.html", out_dir / "report.pdf").to_dict()
                    _write_run_json(out_dir, record)

                # The pending record is on disk before the printer thread may rewrite it: two
                # writers of one file at once left run.json with two JSON documents in it.
                _write_run_json(out_dir, record)
                result.pending = pdf_executor.submit(_print_and_record)
                return result
    _write_run_json(out_dir, record)
    return result


def _write_run_json(out_dir: Path, record: Mapping[str, Any]) -> None:
    """Write ``run.json`` atomically (temporary file, then rename): a reader never sees half a file."""
    target = out_dir / "run.json"
    tmp = target.with_name(f".run.json.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, target)


# --------------------------------------------------------------------------- rendering


def render_reports(notebook: str | Path, out_dir: str | Path, *, title: str | None = None) -> dict[str, Path]:
    """Render an executed notebook to a reader and a student HTML report.

    Parameters
    ----------
    notebook : str or Path
        Executed ``.ipynb``.
    out_dir : str or Path
        Folder for ``report.html`` (no code: markdown and outputs) and
        ``report_student.html`` (with the code).
    title : str, optional
        HTML page title; default the notebook's stem.

    Returns
    -------
    dict
        ``{"reader": Path, "student": Path}``.

    Notes
    -----
    Cells tagged ``remove-cell`` are dropped from both; ``remove-input`` hides the code of a
    cell in the student version too. Exercise cells (``exercise``, ``solution``, ``your-turn``;
    see ``docs/teaching.md``) are left out of the reader report, and ``solution`` cells out of the
    student report. Images are embedded, the report stylesheet (``templates/report.css``) is
    inlined and the CDN scripts nbconvert links (require.js, and MathJax when no cell holds
    LaTeX) are dropped, so each HTML file stands alone and opens offline.
    """
    import nbformat

    nb_path = Path(notebook)
    out_dir = Path(out_dir)
    nb = nbformat.read(str(nb_path), as_version=4)
    name = title or nb_path.stem
    try:
        css = _REPORT_CSS.read_text(encoding="utf-8")
    except OSError:
        css = ""
    keep_mathjax = _has_math(nb)
    paths = {"reader": out_dir / "report.html", "student": out_dir / "report_student.html"}
    for kind, target in paths.items():
        exporter = _exporter(kind)
        body, _ = exporter.from_notebook_node(
            nb, resources={"metadata": {"name": name, "path": str(nb_path.parent)}}
        )
        body = _self_contained(body, keep_mathjax=keep_mathjax)
        if css:
            body = body.replace("</head>", f'<style id="ecrm-report-css">\n{css}\n</style>\n</head>', 1)
        target.write_text(body, encoding="utf-8")
    return paths


_EXPORTERS: dict[str, Any] = {}


def _exporter(kind: str) -> Any:
    """The HTML exporter for ``'reader'`` or ``'student'`` reports, built once per process.

    Building one loads and compiles nbconvert's Jinja templates (about half a second); the
    exporters hold no per-notebook state, so ``run_all`` reuses them for every notebook.
    """
    if kind not in _EXPORTERS:
        from nbconvert import HTMLExporter
        from nbconvert.preprocessors import TagRemovePreprocessor

        exporter = HTMLExporter(
            exclude_input=(kind == "reader"),
            exclude_input_prompt=(kind == "reader"),
            exclude_output_prompt=True,
            embed_images=True,
        )
        tags = TagRemovePreprocessor(
            remove_cell_tags=_READER_DROP if kind == "reader" else _STUDENT_DROP,
            remove_input_tags={"remove-input", "remove_input"},
            enabled=True,
        )
        exporter.register_preprocessor(tags, enabled=True)
        _EXPORTERS[kind] = exporter
    return _EXPORTERS[kind]


_MATH_RE = re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$|\\\(|\\\[|\\begin\{")
_REQUIREJS_RE = re.compile(r'<script src="https?://[^"]*require(?:\.min)?\.js"[^>]*>\s*</script>\s*', re.I)
_MATHJAX_RE = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->\s*", re.S)


def _has_math(nb: Any) -> bool:
    """True when a markdown cell or an output holds LaTeX that MathJax would typeset."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and _MATH_RE.search(cell.source or ""):
            return True
        for o in cell.get("outputs", []):
            if "text/latex" in o.get("data", {}):
                return True
    return False


def _self_contained(html: str, *, keep_mathjax: bool) -> str:
    """Drop nbconvert's CDN scripts (require.js always; MathJax unless the notebook has math)."""
    html = _REQUIREJS_RE.sub("", html)
    if not keep_mathjax:
        html = _MATHJAX_RE.sub("", html)
    return html


# --------------------------------------------------------------------------- run_all


def _resolve_names(names: str | Iterable[str], notebooks_dir: str | Path | None) -> list[str]:
    books = list_notebooks(notebooks_dir)
    if isinstance(names, str):
        names = list(books) if names == "all" else [names]
    names = list(names)
    for n in names:
        if n not in books:
            notebook_path(n, notebooks_dir)  # raises with the list of names
    return names


def run_all(
    names: str | Sequence[str] = "all",
    *,
    data: str | Path | None = None,
    data_format: str | None = None,
    mapping: str | Path | Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    timeout: float | None = 1800,
    progress: bool = True,
    notebooks_dir: str | Path | None = None,
    on_result: Any = None,
    pdf: bool | None = None,
    jobs: int | str = "auto",
) -> list[RunResult]:
    """Run several notebooks; write ``out/index.html`` and ``out/manifest.json``.

    Parameters
    ----------
    names : "all" or list of str
        Short names, run in the given order (``"all"`` = every notebook by ``NN``).
    data, data_format, mapping, params, timeout, progress, notebooks_dir, pdf
        As in :func:`run_notebook`. With several notebooks, each receives the `params` it
        declares; a key declared by none of them is an error.
    out : str or Path, optional
        Output root; default ``paths.REPORTS_DIR``.
    on_result : callable, optional
        Called with each :class:`RunResult` as soon as it is available (the CLI prints it).
    jobs : int or "auto", default "auto"
        Notebooks executed at the same time, each in its own kernel. ``"auto"`` asks
        :func:`default_jobs` (one per core while the estimated memory of that many kernels fits
        in the available memory; 1 for large data). With ``jobs > 1`` papermill's cell progress
        bar is replaced by a line on stderr as each notebook starts (bars would interleave;
        `on_result` hears when each one finishes),
        and the notebooks are queued so that the run ends soonest (:func:`dispatch_order`, on the
        duration of each one's last run in `out`, else its ``metadata.ecrm.expected_seconds``).

    Returns
    -------
    list of RunResult
        One per notebook, in the order of `names`; a failed notebook does not stop the others.
        Notebooks are independent (each reads the data and writes its own folder), so the
        tables do not depend on `jobs`.

    Notes
    -----
    ``out/manifest.json`` records input hashes, parameters, seeds, package versions, the git
    commit and the table hashes, so ``ecrm reproduce OUT`` can repeat and check the run (see
    :mod:`ecrm_research.report.manifest`).

    Raises
    ------
    ParameterError
        Unknown name or undeclared parameter (before anything runs).
    """
    from .manifest import write_manifest
    from .site import write_index

    order = _resolve_names(names, notebooks_dir)
    given = dict(params or {})
    for key, value in (("data", data), ("data_format", data_format), ("mapping", mapping)):
        if value is not None:
            given[key] = value
    declared = {n: notebook_parameters(n, notebooks_dir=notebooks_dir) for n in order}
    if len(order) == 1:
        # strict: same message as run_notebook
        _build_parameters(declared[order[0]], order[0], data=None, data_format=None, mapping=None,
                          params=given, out_dir=Path("."))
    else:
        nobody = [k for k in given if not any(k in d for d in declared.values())]
        if nobody:
            allowed = sorted({k for d in declared.values() for k in d if k not in _INJECTED})
            raise ParameterError(
                f"No notebook among {', '.join(order)} declares parameter(s) "
                f"{', '.join(map(repr, nobody))}. Declared parameters: {', '.join(allowed)}.",
                allowed=allowed,
            )
    from concurrent.futures import ThreadPoolExecutor, as_completed

    root = Path(out).expanduser().resolve() if out is not None else REPORTS_DIR
    run_date = datetime.now().astimezone()
    if jobs == "auto":
        n_jobs, _ = default_jobs(given.get("data"), len(order))
    else:
        n_jobs = int(jobs)
        if n_jobs < 1:
            raise ParameterError(f"jobs must be a positive number of notebooks or 'auto', got {jobs!r}.")
    n_jobs = min(n_jobs, len(order))
    done: dict[str, RunResult] = {}

    from .pdf import PdfPrinter

    pdf_printer = PdfPrinter()

    def one(n: str, printer: Any) -> RunResult:
        own = {k: v for k, v in given.items() if k in declared[n]}
        if n_jobs > 1 and progress:
            sys.stderr.write(f"{n}: started\n")  # one write: threads print these side by side
            sys.stderr.flush()
        return run_notebook(n, params=own, out=root, timeout=timeout, progress=progress and n_jobs == 1,
                            notebooks_dir=notebooks_dir, pdf=pdf, pdf_executor=printer, pdf_printer=pdf_printer)

    # one Chromium, kept open, prints each PDF in its own thread while the next notebook executes;
    # with jobs > 1 the kernels run in threads of this process (papermill only waits on them)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecrm-pdf") as printer:
        try:
            if n_jobs == 1:
                for n in order:
                    done[n] = one(n, printer)
                    if on_result is not None:
                        on_result(done[n])
            else:
                with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="ecrm-run") as pool:
                    # a long notebook started last would leave the other workers idle
                    start = dispatch_order({n: _expected_seconds(n, root, notebooks_dir) for n in order}, n_jobs)
                    futures = {pool.submit(one, n, printer): n for n in start}
                    for fut in as_completed(futures):
                        done[futures[fut]] = fut.result()
                        if on_result is not None:
                            on_result(done[futures[fut]])
        finally:
            try:
                for res in done.values():
                    if res.pending is not None:
                        res.pending.result()
                        res.pending = None
            finally:
                printer.submit(pdf_printer.close).result()  # closed from the thread that used it
    results = [done[n] for n in order]
    shown = {k: (_absolute(v) if k in _PATH_PARAMS else v) for k, v in given.items()}
    write_manifest(root, results, names=order, data=shown.get("data"), data_format=shown.get("data_format"),
                   mapping=shown.get("mapping"),
                   params={k: v for k, v in shown.items() if k not in ("data", "data_format", "mapping")},
                   timeout=timeout, notebooks_dir=notebooks_dir, started=run_date)
    write_index(root, results, params=shown, run_date=run_date,
                order=list(list_notebooks(notebooks_dir)))
    return results


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
    import heapq
    import itertools

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


def _expected_seconds(name: str, root: Path, notebooks_dir: str | Path | None) -> float:
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
_KERNEL_BYTES_PER_INPUT_BYTE = 40
_KERNEL_BASE_BYTES = 600 * 2**20


def _input_bytes(data: str | Path | None) -> int:
    """Size of the data a run reads (a file, or every file below a folder); the sample by default."""
    from ..paths import SAMPLE_DIR

    path = Path(data).expanduser() if data is not None else SAMPLE_DIR
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return 0


def _available_memory() -> int | None:
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
    per_kernel = _KERNEL_BASE_BYTES + _KERNEL_BYTES_PER_INPUT_BYTE * _input_bytes(data)
    avail = _available_memory()
    by_memory = cores if avail is None else max(1, int(0.6 * avail // per_kernel))
    jobs = max(1, min(cores, by_memory, n_notebooks))
    why = (f"{cores} core(s); estimated {per_kernel / 2**30:.1f} GB per kernel"
           + ("" if avail is None else f", {avail / 2**30:.1f} GB available"))
    return jobs, why
