"""Executing the analysis notebooks with papermill.

:func:`run_notebook` executes one notebook (see :mod:`ecrm_research.report.notebooks` for names
and parameters) into ``OUT/<name>/``::

    OUT/<name>/<name>.ipynb            executed notebook (kept, partially, when a cell fails)
    OUT/<name>/report.html             reader version: markdown and outputs, no code
    OUT/<name>/report_student.html     student version: with the code
    OUT/<name>/run.json                status, error, timing, data source and parameters
    OUT/<name>/tables/ figures/ findings.json   written by the notebook (``outputs.ReportOutputs``)

:func:`run_all` runs several notebooks (a failure does not stop the others; several at once,
see :mod:`ecrm_research.report.scheduling`) and writes ``OUT/index.html``
(:mod:`ecrm_research.report.site`) and ``OUT/manifest.json`` (:mod:`ecrm_research.report.manifest`).
The HTML reports are rendered by :mod:`ecrm_research.report.render`.

papermill is called only from this module, so its API drift is handled here.

Public names: :class:`RunResult`, :func:`run_notebook`, :func:`run_all`, :func:`ensure_kernel`,
:data:`SAVE_EVERY_SECONDS`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ipykernel import kernelspec as ipykernel_kernelspec

from ..exceptions import ParameterError, user_error_names
from ..paths import KERNEL_NAME, PROJ_ROOT, REPORTS_DIR
from .manifest import json_safe, sha256_file, table_hashes, write_manifest
from .notebooks import (
    PATH_PARAMETERS,
    absolute_path,
    build_parameters,
    check_output_folder,
    check_parameter_values,
    check_run_parameters,
    list_notebooks,
    notebook_parameters,
    notebook_path,
    resolve_names,
    resolve_path_parameters,
)
from .ownership import ROOT_FILES, OutputRecord, output_lock
from .pdf import PdfPrinter, print_pdf
from .render import render_reports
from .scheduling import default_jobs, dispatch_order, expected_seconds
from .site import write_index
from .stopping import RunInterrupted, StopControl, stop_on_signals

__all__ = [
    "RunResult",
    "run_notebook",
    "run_all",
    "ensure_kernel",
    "SAVE_EVERY_SECONDS",
]

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MAX_ERROR_CHARS = 400
#: an error the user can fix says what to do at its end: kept whole up to this length
_MAX_USER_ERROR_CHARS = 2000
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
#: run in every kernel before the first cell: the report table renderer for DataFrames, and matplotlib's
#: inline backend set here (not in the notebooks), so a student's own ``plt.show()`` draws in JupyterLab too
_KERNEL_SETUP = ("import ecrm_research.report.display as _ecrm_display; _ecrm_display.setup(); del _ecrm_display; "
                 "import matplotlib as _ecrm_mpl; _ecrm_mpl.use('module://matplotlib_inline.backend_inline'); "
                 "del _ecrm_mpl")

SAVE_EVERY_SECONDS = 5.0
"""How often the executed notebook is written while it runs (papermill writes it at every cell
start and end: ~70 full notebook writes, 0.2-0.7 s of the runner's CPU per notebook)."""

_ENGINE_NAME = "ecrm-nbclient"
_ENGINE_LOCK = threading.Lock()


@dataclass
class RunResult:
    """Outcome of executing one notebook.

    Attributes
    ----------
    name : str
        Short analysis name (``association``, ``churn`` ...).
    status : str
        ``'ok'``, ``'failed'``, ``'interrupted'`` (stopped by SIGINT/SIGTERM while it ran) or
        ``'not run'`` (the run was stopped before it started).
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


def ensure_kernel(kernel_name: str = KERNEL_NAME) -> str:
    """Make sure the Jupyter kernelspec `kernel_name` exists; install it into ``sys.prefix`` if not.

    The installed kernel runs the current interpreter (``sys.executable``), so a fresh
    virtual environment works without ``make install``.

    Returns
    -------
    str
        The kernel name.
    """
    # lazy: jupyter_client is only needed to run a notebook, not for `ecrm --help`
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    with _SETUP_LOCK:  # run_all(jobs > 1) calls this from several threads
        try:
            KernelSpecManager().get_kernel_spec(kernel_name)
            return kernel_name
        except NoSuchKernel:
            pass
        # the same hash seed as `ecrm run` gives its kernels (see run_notebook), for JupyterLab too
        ipykernel_kernelspec.install(kernel_name=kernel_name, display_name=f"Python ({kernel_name})",
                                     prefix=sys.prefix, env={"PYTHONHASHSEED": "0"})
        return kernel_name


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
    limit = _MAX_USER_ERROR_CHARS if str(ename) in user_error_names() else _MAX_ERROR_CHARS
    if len(msg) > limit:
        msg = msg[: limit - 1] + "…"
    return msg


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


def _papermill_engine() -> str:
    """Register (once) and name papermill's nbclient engine with periodic instead of per-cell saves.

    The output notebook is still written at the end whatever happens (an error cell, a cell
    timeout, a dead kernel: papermill's ``notebook_complete`` runs in a ``finally``), and every
    `SAVE_EVERY_SECONDS` while cells run, so a long run can be watched and a failed one keeps
    its partial output.
    """
    # lazy: papermill takes ~1 s to import and only execution needs it
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
    force: bool = False,
    record: OutputRecord | None = None,
    stop: StopControl | None = None,
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
    force : bool
        Run even when ``out/<name>/`` holds files the tool did not write (they are kept; see
        :mod:`ecrm_research.report.ownership`).
    record : OutputRecord, optional
        The run record of `out` (:func:`run_all` shares one between its threads); default read here.
    stop : StopControl, optional
        :func:`run_all`'s stop request: its kernels are tracked, and a notebook whose kernel was
        ended by it is ``'interrupted'`` (not rendered).

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
    OutputFolderError
        ``out/<name>/`` holds files the tool did not write (without `force`), or another run
        holds the folder's lock (:class:`~ecrm_research.report.ownership.OutputLockedError`).
    """
    src = notebook_path(name, notebooks_dir)
    declared = notebook_parameters(name, notebooks_dir=notebooks_dir)
    out_dir = _output_root(out) / name
    parameters = build_parameters(
        declared, name, data=data, data_format=data_format, mapping=mapping, params=params,
        out_dir=out_dir,
    )
    parameters = check_parameter_values(name, parameters, notebooks_dir=notebooks_dir)
    with output_lock(out_dir.parent, f"ecrm run {name}"):
        files = record if record is not None else OutputRecord(out_dir.parent)
        files.begin(name, force=force)
        try:
            return _execute_and_record(name, src, out_dir, parameters, declared, files, stop, timeout=timeout,
                                       progress=progress, render=render, pdf=pdf, pdf_executor=pdf_executor,
                                       pdf_printer=pdf_printer)
        except BaseException:
            files.finish(name)  # whatever it wrote is the tool's, to be replaced by the next run
            raise


def _execute_and_record(name: str, src: Path, out_dir: Path, parameters: dict[str, Any],
                        declared: Mapping[str, Any], files: OutputRecord, stop: StopControl | None, *,
                        timeout: float | None, progress: bool, render: bool, pdf: bool | None,
                        pdf_executor: Any, pdf_printer: Any) -> RunResult:
    """The body of :func:`run_notebook` once `out_dir` is cleared of the previous run's files."""
    nb_out = out_dir / f"{name}.ipynb"
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel = ensure_kernel(KERNEL_NAME)

    # Kernels inherit the environment. A fixed hash seed makes set and dict orders of strings the
    # same in every run: semopy orders its parameters through sets, and its estimates moved in
    # the 15th digit from one kernel to the next, enough to change a 12-digit table now and then.
    hash_seed = os.environ.setdefault("PYTHONHASHSEED", "0")
    effective = {**declared, **parameters}  # what the notebook runs with
    started = datetime.now().astimezone()
    status, error, seconds = _execute(src, nb_out, parameters, kernel=kernel, progress=progress, timeout=timeout,
                                      shutdown=_shutdown_mode(effective), stop=stop)
    if stop is not None and stop.stopped and status == "failed":  # its kernel was ended by the stop
        status, error = "interrupted", f"interrupted by {stop.signal_name} after {seconds:.1f} s"

    result = RunResult(name=name, status=status, out_dir=out_dir, error=error, seconds=seconds)
    record = _run_record(result, src, parameters, seed=effective.get("seed"), started=started,
                         hash_seed=hash_seed)
    if render and nb_out.exists() and status != "interrupted":
        _render(nb_out, out_dir, name, record)
        result.pending = _print_pdf(out_dir, record, pdf, pdf_executor, pdf_printer, files=files, stop=stop)
        if result.pending is not None:
            return result  # run.json is written now and again when the PDF is done
    _write_run_json(out_dir, record)
    files.finish(name)
    return result


def _output_root(out: str | Path | None) -> Path:
    """The output root: `out` made absolute, default ``paths.REPORTS_DIR``."""
    root = Path(out).expanduser().resolve() if out is not None else REPORTS_DIR
    check_output_folder(root)  # --out naming a file: a clear error, not a traceback
    return root


def _run_record(result: RunResult, src: Path, parameters: Mapping[str, Any], *, seed: Any, started: datetime,
                hash_seed: str) -> dict[str, Any]:
    """The content of ``run.json`` after execution; rendering and the PDF fill in their fields later."""
    return {
        "name": result.name,
        "notebook": src.name,
        "notebook_path": str(src.resolve()),
        "notebook_sha256": sha256_file(src),
        "status": result.status,
        "error": result.error,
        "seconds": round(result.seconds, 3),
        "started": started.isoformat(timespec="seconds"),
        "parameters": {k: json_safe(v) for k, v in parameters.items()},
        "seed": json_safe(seed),
        "python_hash_seed": hash_seed,
        "tables": table_hashes(result.out_dir),
        "render_error": None,
        "pdf": None,
    }


def _execute(src: Path, nb_out: Path, parameters: Mapping[str, Any], *, kernel: str, progress: bool,
             timeout: float | None, shutdown: str, stop: StopControl | None = None) -> tuple[str, str | None, float]:
    """Execute a notebook with papermill: ``(status, short error or None, seconds)``; a failing cell
    or a dead kernel is a ``'failed'`` status, not an exception. With `stop`, the kernel is
    registered with it (ended when the run is stopped)."""
    import papermill as pm  # lazy: ~1 s of import that `ecrm --help` does not need

    t0 = time.perf_counter()
    status, error = "ok", None
    tracking = {} if stop is None else {"kernel_manager_class": stop.kernel_manager_class()}
    try:
        pm.execute_notebook(
            str(src),
            str(nb_out),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=progress,
            log_output=False,
            # the kernel runs in the project root; papermill's own `cwd` would chdir this whole process
            # while other threads resolve the user's relative paths, so the kernel gets its own cwd
            resources={"metadata": {"path": str(PROJ_ROOT)}},
            engine_name=_papermill_engine(),
            shutdown_kernel=shutdown,
            execution_timeout=timeout,
            # ipykernel's start-up warnings (e.g. "running over TCP without encryption") are noise here;
            # exec_lines sets readable pandas display options before the first cell
            extra_arguments=["--IPKernelApp.log_level=CRITICAL", f"--IPKernelApp.exec_lines={_KERNEL_SETUP}"],
            **tracking,
        )
    except pm.PapermillExecutionError as exc:
        status, error = "failed", _short_error(exc)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # kernel death, cell timeout, unreadable notebook ...
        status, error = "failed", _short_error(exc)
    return status, error, time.perf_counter() - t0


def _render(nb_out: Path, out_dir: Path, name: str, record: dict[str, Any]) -> None:
    """Render the HTML reports; a failure is recorded in `record`, never raised."""
    t_render = time.perf_counter()
    try:
        with _RENDER_LOCK:  # the nbconvert exporters are shared (built once per process)
            render_reports(nb_out, out_dir, title=name)
    except Exception as exc:  # a broken render must not hide the run result
        record["render_error"] = _short_error(exc)
    record["render_seconds"] = round(time.perf_counter() - t_render, 3)


def _print_pdf(out_dir: Path, record: dict[str, Any], pdf: bool | None, pdf_executor: Executor | None,
               pdf_printer: PdfPrinter | None, *, files: OutputRecord, stop: StopControl | None = None) -> Any:
    """Print ``report.pdf`` (or record why not) into ``record["pdf"]``; with `pdf_executor`, submit
    the printing and return its future (``run.json`` is then written as pending, and the files are
    recorded in `files` when the PDF is done), else None. A stopped run prints no more PDFs."""
    if not _pdf_wanted(pdf):
        record["pdf"] = {"status": "skipped", "path": None, "reason": "PDF not requested (--no-pdf / ECRM_PDF=0)",
                         "seconds": 0.0}
        return None
    if not (out_dir / "report.html").is_file():
        return None
    printer = pdf_printer.print if pdf_printer is not None else print_pdf
    if pdf_executor is None:
        record["pdf"] = printer(out_dir / "report.html", out_dir / "report.pdf").to_dict()
        return None
    record["pdf"] = {"status": "pending", "path": None, "reason": "printing", "seconds": 0.0}

    def _print_and_record() -> None:
        try:
            if stop is not None and stop.stopped:
                record["pdf"] = {"status": "skipped", "path": None, "reason": "the run was interrupted",
                                 "seconds": 0.0}
            else:
                record["pdf"] = printer(out_dir / "report.html", out_dir / "report.pdf").to_dict()
            _write_run_json(out_dir, record)
        finally:
            files.finish(out_dir.name)

    # The pending record is on disk before the printer thread may rewrite it: two
    # writers of one file at once left run.json with two JSON documents in it.
    _write_run_json(out_dir, record)
    return pdf_executor.submit(_print_and_record)


def _pdf_wanted(pdf: bool | None) -> bool:
    """`pdf`, or when None, whether ``ECRM_PDF`` allows printing (anything but 0/no/false/off)."""
    if pdf is None:
        return os.environ.get("ECRM_PDF", "1").strip().lower() not in ("0", "no", "false", "off")
    return bool(pdf)


def _write_run_json(out_dir: Path, record: Mapping[str, Any]) -> None:
    """Write ``run.json`` atomically (temporary file, then rename): a reader never sees half a file."""
    target = out_dir / "run.json"
    tmp = target.with_name(f".run.json.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, target)


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
    force: bool = False,
    skip: Mapping[str, str] | None = None,
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
    skip : dict of str to str, optional
        Analyses not to run, with the reason (:func:`ecrm_research.report.preflight.preflight` finds
        those the data does not fit): each gets a ``RunResult`` with status ``'skipped'`` and the
        reason as ``error`` (shown on the index); nothing runs for it.
    jobs : int or "auto", default "auto"
        Notebooks executed at the same time, each in its own kernel. ``"auto"`` asks
        :func:`default_jobs` (one per core while the estimated memory of that many kernels fits
        in the available memory; 1 for large data). With ``jobs > 1`` papermill's cell progress
        bar is replaced by a line on stderr as each notebook starts (bars would interleave;
        `on_result` hears when each one finishes),
        and the notebooks are queued so that the run ends soonest (:func:`dispatch_order`, on the
        duration of each one's last run in `out`, else its ``metadata.ecrm.expected_seconds``).
    force : bool
        Run even when ``out/<name>/`` (or ``out/index.html``, ``out/manifest.json``) holds files the
        tool did not write; they are never deleted (see :mod:`ecrm_research.report.ownership`).

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

    Only one run writes into `out` at a time (``out/.ecrm.lock``), and a run deletes or replaces
    only files it wrote itself (``out/.ecrm-run.json``, :mod:`ecrm_research.report.ownership`).

    SIGINT (Ctrl-C) or SIGTERM during the run (:mod:`ecrm_research.report.stopping`) starts no
    further notebook and ends the running kernels within seconds; the index, the manifest and the
    run record are still written, marking the analyses ``interrupted`` and ``not run``, and then
    :class:`~ecrm_research.report.stopping.RunInterrupted` (a ``KeyboardInterrupt``) is raised.

    Raises
    ------
    ParameterError
        Unknown name or undeclared parameter (before anything runs).
    OutputFolderError
        `out` holds files the tool did not write (without `force`), or another run holds its lock.
    RunInterrupted
        After SIGINT/SIGTERM, once `out` is consistent; ``.results`` has every analysis' outcome.
    """
    order = resolve_names(names, notebooks_dir)
    given = _given_parameters(params, data=data, data_format=data_format, mapping=mapping)
    declared = {n: notebook_parameters(n, notebooks_dir=notebooks_dir) for n in order}
    given = _checked_parameters(order, declared, given, notebooks_dir)
    skipped = {n: str(r) for n, r in (skip or {}).items() if n in order}

    root = _output_root(out)
    run_date = datetime.now().astimezone()
    n_jobs = min(_number_of_jobs(jobs, given.get("data"), len(order)), len(order))

    stop = StopControl()

    def one(n: str, printer: Executor, pdf_printer: PdfPrinter) -> RunResult:
        if stop.stopped:
            return _not_run(n, root, stop)
        own = {k: v for k, v in given.items() if k in declared[n]}
        if n_jobs > 1 and progress:
            sys.stderr.write(f"{n}: started\n")  # one write: threads print these side by side
            sys.stderr.flush()
        return run_notebook(n, params=own, out=root, timeout=timeout, progress=progress and n_jobs == 1,
                            notebooks_dir=notebooks_dir, pdf=pdf, pdf_executor=printer, pdf_printer=pdf_printer,
                            force=force, record=files, stop=stop)

    to_run = [n for n in order if n not in skipped]
    queue = to_run if n_jobs == 1 else \
        dispatch_order({n: expected_seconds(n, root, notebooks_dir) for n in to_run}, n_jobs)
    with output_lock(root, "ecrm run " + " ".join(order)), stop_on_signals(stop):
        files = OutputRecord(root)
        files.check(order, root_files=ROOT_FILES, force=force)  # before any kernel starts
        files.set_state("running")
        done = _skipped_results(root, skipped, on_result)
        done.update(_run_queue(queue, one, n_jobs, on_result) if queue else {})
        results = [done.get(n) or _not_run(n, root, stop) for n in order]
        _write_run_summary(root, results, order, given, timeout=timeout, notebooks_dir=notebooks_dir,
                           run_date=run_date, state="interrupted" if stop.stopped else "complete")
        files.claim_root(ROOT_FILES)
        files.set_state("interrupted" if stop.stopped else "complete")
    if stop.stopped:
        raise RunInterrupted(_interrupted_message(results, root, stop), signal_name=stop.signal_name or "SIGINT",
                             results=results)
    return results


def _checked_parameters(order: Sequence[str], declared: Mapping[str, Mapping[str, Any]], given: Mapping[str, Any],
                        notebooks_dir: str | Path | None) -> dict[str, Any]:
    """`given` with its paths resolved once against the caller's folder (before any thread starts),
    every key declared by a notebook of the run and every value fit for the notebooks declaring it."""
    checked = resolve_path_parameters(given, Path.cwd())
    check_run_parameters(order, declared, checked)
    for n in order:
        checked.update(check_parameter_values(n, {k: v for k, v in checked.items() if k in declared[n]},
                                              notebooks_dir=notebooks_dir))
    return checked


def _skipped_results(root: Path, skipped: Mapping[str, str],
                     on_result: Callable[[RunResult], Any] | None) -> dict[str, RunResult]:
    """Results of the analyses skipped because the data does not fit them (told to `on_result`)."""
    done = {}
    for n, reason in skipped.items():
        done[n] = RunResult(name=n, status="skipped", out_dir=root / n, error=reason)
        if on_result is not None:
            on_result(done[n])
    return done


def _not_run(name: str, root: Path, stop: StopControl) -> RunResult:
    """The result of a notebook that did not start because the run was stopped."""
    return RunResult(name=name, status="not run", out_dir=root / name,
                     error=f"not started: the run was interrupted ({stop.signal_name or 'SIGINT'})")


def _interrupted_message(results: Sequence[RunResult], root: Path, stop: StopControl) -> str:
    """One line for the user: what finished, what was interrupted or not run, what to do."""
    by: dict[str, list[str]] = {}
    for r in results:
        by.setdefault(r.status, []).append(r.name)
    parts = [f"{len(v)} {k} ({', '.join(v)})" for k, v in by.items()]
    return (f"{stop.signal_name or 'SIGINT'} received; analyses: {'; '.join(parts)}. Index: {root / 'index.html'}. "
            f"Run the same command again to complete the run.")


def _given_parameters(params: Mapping[str, Any] | None, **data_args: Any) -> dict[str, Any]:
    """`params` plus the data arguments (data, data_format, mapping) that are not None."""
    given = dict(params or {})
    for key, value in data_args.items():
        if value is not None:
            given[key] = value
    return given


def _write_run_summary(root: Path, results: Sequence[RunResult], order: Sequence[str], given: Mapping[str, Any],
                       *, timeout: float | None, notebooks_dir: str | Path | None, run_date: datetime,
                       state: str = "complete") -> None:
    """Write ``root/manifest.json`` and ``root/index.html`` for a :func:`run_all` (paths made absolute)."""
    shown = {k: (absolute_path(v) if k in PATH_PARAMETERS else v) for k, v in given.items()}
    write_manifest(root, results, names=order, data=shown.get("data"), data_format=shown.get("data_format"),
                   mapping=shown.get("mapping"),
                   params={k: v for k, v in shown.items() if k not in ("data", "data_format", "mapping")},
                   timeout=timeout, notebooks_dir=notebooks_dir, started=run_date, state=state)
    write_index(root, results, params=shown, run_date=run_date,
                order=list(list_notebooks(notebooks_dir)))


def _number_of_jobs(jobs: int | str, data: Any, n_notebooks: int) -> int:
    """`jobs` as a number: ``"auto"`` asks :func:`default_jobs`; less than 1 is a :class:`ParameterError`."""
    if jobs == "auto":
        return default_jobs(data, n_notebooks)[0]
    n_jobs = int(jobs)
    if n_jobs < 1:
        raise ParameterError(f"jobs must be a positive number of notebooks or 'auto', got {jobs!r}.")
    return n_jobs


def _run_queue(queue: Sequence[str], one: Callable[[str, Executor, PdfPrinter], RunResult], n_jobs: int,
               on_result: Callable[[RunResult], Any] | None) -> dict[str, RunResult]:
    """Run the notebooks of `queue` (`n_jobs` at a time) with ``one(name, pdf_thread, printer)``;
    tell `on_result` as each one finishes and wait for every PDF before returning."""
    done: dict[str, RunResult] = {}
    pdf_printer = PdfPrinter()

    def finished(name: str, res: RunResult) -> None:
        done[name] = res
        if on_result is not None:
            on_result(res)

    # one Chromium, kept open, prints each PDF in its own thread while the next notebook executes;
    # the kernels run in threads of this process (papermill only waits on them), also with one job,
    # so that the main thread stays free to handle SIGINT/SIGTERM (see stopping.stop_on_signals)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecrm-pdf") as printer:
        try:
            _run_in_threads(queue, lambda n: one(n, printer, pdf_printer), n_jobs, finished)
        finally:
            try:
                _wait_for_pdfs(done.values())
            finally:
                printer.submit(pdf_printer.close).result()  # closed from the thread that used it
    return done


def _run_in_threads(queue: Sequence[str], run: Callable[[str], RunResult], n_jobs: int,
                    finished: Callable[[str, RunResult], None]) -> None:
    """``run`` every name of `queue` in `n_jobs` threads; ``finished(name, result)`` as each one ends."""
    with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="ecrm-run") as pool:
        # a long notebook started last would leave the other workers idle (see dispatch_order)
        futures = {pool.submit(run, n): n for n in queue}
        for fut in as_completed(futures):
            finished(futures[fut], fut.result())


def _wait_for_pdfs(results: Iterable[RunResult]) -> None:
    """Wait for the PDFs still printing (``RunResult.pending``) and clear them."""
    for res in results:
        if res.pending is not None:
            res.pending.result()
            res.pending = None
