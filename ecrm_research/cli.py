"""The ``ecrm`` command: a thin layer over :mod:`~ecrm_research.report.runner`,
:mod:`~ecrm_research.data.quality`, :mod:`~ecrm_research.data.sample`,
:mod:`~ecrm_research.report.handout` and :mod:`~ecrm_research.report.reproduce`.

::

    ecrm run NAME|all [--data PATH] [--data-format X] [--mapping FILE] [-p KEY VALUE ...] [--out DIR]
    ecrm run NAME --help          # also lists the notebook's parameters and defaults
    ecrm validate --data PATH [--data-format X] [--mapping FILE]
    ecrm sample [--customers N] [--months M] [--seed S] [--out DIR]
    ecrm handout [--out DIR] [--notebooks-dir DIR]     # student handouts + teacher keys
    ecrm reproduce REPORT_DIR [--out DIR]              # re-run from manifest.json, compare tables

Errors the user can fix (:class:`~ecrm_research.exceptions.EcrmError`) are printed as
``error: ...`` on stderr with exit code 2 (also when ``--out`` holds files ecrm did not write, without
``--force``, or another run is writing there). Ctrl-C or SIGTERM during ``ecrm run`` stops the
kernels, writes the index marking interrupted and not-run analyses, and exits with 130. ``ecrm run``
exits with 2 when the notebooks that failed all stopped on such an error (bad data found inside a
notebook, as ``ecrm validate`` exits for it), with 1 when a notebook failed otherwise;
``ecrm reproduce`` exits with 1 when a table differs or an input changed.

Start-up: the commands that need pandas (``validate``, ``sample``, ``reproduce``) import their
modules when they run, so ``ecrm --help`` and ``ecrm run`` start in ~0.1 s instead of ~0.9 s. This
module is the top layer (nothing imports it), so these imports cannot hide a cycle;
``tests/test_architecture.py`` allows them here only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from .exceptions import EcrmError, ParameterError, user_error_names
from .paths import REPORTS_DIR, SAMPLE_DIR
from .report import runner
from .report.handout import write_handouts
from .report.notebooks import list_notebooks, notebook_parameter_help
from .report.scheduling import default_jobs
from .report.site import read_json_object

__all__ = ["main", "build_parser", "parse_param_value"]

_FLOAT_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPT = 0, 1, 2, 130
_DATA_KEYS = ("data", "data_format", "mapping")


# --------------------------------------------------------------------------- -p values


class _ParamLoader(yaml.SafeLoader):
    """YAML loader for ``-p`` values: only ``true``/``false`` are booleans and dates stay strings,
    so plain words such as ``no``, ``on`` or ``2024-01-01`` are not silently converted."""


_ParamLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ParamLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def parse_param_value(text: str) -> Any:
    """Parse a ``-p KEY VALUE`` value as YAML.

    Parameters
    ----------
    text : str
        The value as typed on the command line.

    Returns
    -------
    Any
        ``"3"`` → 3, ``"0.05"`` → 0.05, ``"true"`` → True, ``"null"`` → None,
        ``"[a, b]"`` → ["a", "b"], ``"{A: [x, y]}"`` → {"A": ["x", "y"]}; anything else
        (``"hello"``, ``"no"``, ``"2024-01-01"``) stays a string.

    Raises
    ------
    ParameterError
        When the value looks like YAML but is malformed (e.g. ``"[a, b"``).
    """
    try:
        value = yaml.load(text, Loader=_ParamLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        if text.lstrip()[:1] in "[{":
            raise ParameterError(f"Cannot parse parameter value {text!r} as YAML: "
                                 f"{str(exc).splitlines()[0]}. Quote lists as '[a, b]'.") from exc
        return text
    if text.strip() == "":
        return ""
    if isinstance(value, dict) and not text.lstrip().startswith("{"):
        return text  # "Note: x" is a word, not a mapping; mappings are written {A: [x, y]}
    if isinstance(value, list) and not text.lstrip().startswith("["):
        return text
    if isinstance(value, str) and _FLOAT_RE.fullmatch(text.strip()):
        return float(text)  # YAML 1.1 reads 1e-3 as a string
    return value


# --------------------------------------------------------------------------- parser


def _notebook_names() -> list[str]:
    try:
        return list(list_notebooks())
    except EcrmError:
        return []


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    """The ``ecrm`` argument parser (``run`` has its own ``-h`` handled in :func:`main`)."""
    names = _notebook_names()
    parser = argparse.ArgumentParser(
        prog="ecrm",
        description="E-commerce CRM data mining: run the analysis notebooks, check data, make sample data.",
        epilog=("Analyses (notebooks): " + (", ".join(names) if names else "(none found)")
                + "\n\nExamples:\n  ecrm run all\n  ecrm run association --data baskets.csv -p min_support 0.01"
                  "\n  ecrm run churn --help\n  ecrm validate --data my_export/"),
        formatter_class=_Formatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    run = sub.add_parser(
        "run", add_help=False, formatter_class=_Formatter,
        help="run one analysis notebook (or all) and render the reports",
        description="Run an analysis notebook with papermill into OUT/NAME/ and write OUT/index.html.",
        epilog="Analyses: " + (", ".join(names) if names else "(none found)")
               + "\nUse `ecrm run NAME --help` to list the parameters of NAME.",
    )
    run.add_argument("-h", "--help", action="store_true", help="show this help (and NAME's parameters) and exit")
    run.add_argument("name", nargs="?", metavar="NAME", help="analysis name or 'all'")
    _data_args(run, required=False)
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                     help="notebook parameter; VALUE is YAML (3, 0.05, true, [a, b], {A: [x, y]})")
    run.add_argument("--out", metavar="DIR", help="output folder (default: reports/)")
    run.add_argument("--timeout", type=float, default=1800, metavar="SECONDS",
                     help="time limit per cell; 0 = none (default: 1800)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--no-pdf", action="store_true",
                     help="do not print report.pdf with headless Chromium (default: print when Chromium is installed)")
    run.add_argument("--notebooks-dir", metavar="DIR",
                     help="folder of the notebooks (default: notebooks/; e.g. handouts/student)")
    run.add_argument("--force", action="store_true",
                     help="write into OUT even when OUT/NAME/ holds files ecrm did not write (they are kept, "
                          "never deleted; a file with an output's name is replaced)")
    run.add_argument("-j", "--jobs", default="auto", metavar="N",
                     help="notebooks run at the same time with 'all' (default: auto = one per core "
                          "while the estimated memory fits; 1 for large data)")

    val = sub.add_parser("validate", formatter_class=_Formatter,
                         help="check a data set: quality report and row reconciliation",
                         description="Load and clean a data set; print the quality report and the "
                                     "reconciliation of input, kept and quarantined rows.")
    _data_args(val, required=True)

    smp = sub.add_parser("sample", formatter_class=_Formatter, help="write the synthetic sample data",
                         description="Generate the synthetic e-commerce sample (canonical Parquet tables "
                                     "plus planted truths).")
    smp.add_argument("--customers", type=int, metavar="N", help="number of customers")
    smp.add_argument("--months", type=int, metavar="M", help="months of history")
    smp.add_argument("--seed", type=int, metavar="S", help="random seed")
    smp.add_argument("--out", metavar="DIR", help="output folder (default: data/sample)")

    ho = sub.add_parser("handout", formatter_class=_Formatter,
                        help="write student handouts (exercises to fill in) and teacher keys",
                        description="Write OUT/student/ (solutions replaced by 'your turn' cells) and "
                                    "OUT/teacher/ (with solutions) for every notebook. See docs/teaching.md.")
    ho.add_argument("--out", metavar="DIR", default="handouts", help="output folder (default: handouts/)")
    ho.add_argument("--notebooks-dir", metavar="DIR", help="folder of the notebooks (default: notebooks/)")

    rp = sub.add_parser("reproduce", formatter_class=_Formatter,
                        help="re-run a report folder from its manifest.json and compare every table",
                        description="Re-run the analyses recorded in REPORT_DIR/manifest.json (same data, "
                                    "parameters and seeds) and compare each tables/*.csv: identical bytes, "
                                    "equal values, or different. Exit 0 when all match, 1 otherwise.")
    rp.add_argument("report_dir", metavar="REPORT_DIR", help="output folder of `ecrm run` (or one analysis in it)")
    rp.add_argument("--out", metavar="DIR", help="where to re-run (default: REPORT_DIR-reproduce)")
    rp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rp.add_argument("--force", action="store_true",
                    help="re-run even when the target holds files ecrm did not write (they are kept)")
    return parser


def _data_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--data", metavar="PATH", required=required, help="data file or folder (default: the sample)")
    p.add_argument("--data-format", metavar="X",
                   help="canonical, lines, baskets, customers or survey (default: detected)")
    p.add_argument("--mapping", metavar="FILE", help="column-mapping YAML")


# --------------------------------------------------------------------------- commands


def _param_table(name: str, notebooks_dir: str | None) -> str:
    rows = notebook_parameter_help(name, notebooks_dir=notebooks_dir)
    rows = [r for r in rows if r["name"] != "out_dir"]
    if not rows:
        return f"Notebook parameters ({name}): none\n"
    width = max(len(r["name"]) for r in rows)
    dwidth = min(40, max(len(str(r["default_text"])) for r in rows))
    lines = [f"Notebook parameters ({name}); set with -p KEY VALUE:"]
    for r in rows:
        line = f"  {r['name']:<{width}}  default {str(r['default_text']):<{dwidth}}"
        if r["help"]:
            line += f"  {r['help']}"
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


def _cmd_run_help(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    run_parser = _subparser(parser, "run")
    text = run_parser.format_help()
    if args.name and args.name != "all":
        text += "\n" + _param_table(args.name, args.notebooks_dir)
    sys.stdout.write(text)
    return EXIT_OK


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse has no public accessor for sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def _cmd_run(args: argparse.Namespace) -> int:
    """``ecrm run NAME|all``: run the notebooks, print each result, the PDF problems and the index."""
    params, data_args = _run_parameters(args)
    names: Any = "all" if args.name == "all" else [args.name]
    # pre-flight before any kernel: paths resolved here, parameter values, --out, the data and mapping read once
    from .report.preflight import preflight  # start-up: reads the data with pandas (see the module docstring)

    plan = preflight(names, {**params, **data_args}, notebooks_dir=args.notebooks_dir, out=args.out)
    data_args = {k: plan.given[k] for k in _DATA_KEYS if k in plan.given}
    data_args["skip"] = plan.skipped  # analyses the data does not fit (run all): shown, not run
    params = {k: v for k, v in plan.given.items() if k not in _DATA_KEYS}
    jobs = _jobs(args, names, data_args.get("data"))
    results = runner.run_all(names, params=params, out=args.out, timeout=args.timeout or None,
                             progress=not args.no_progress, notebooks_dir=args.notebooks_dir,
                             on_result=_show_result, pdf=False if args.no_pdf else None, jobs=jobs, force=args.force,
                             **data_args)
    root = Path(args.out).expanduser().resolve() if args.out else REPORTS_DIR
    _print_pdf_problems(results, no_pdf=args.no_pdf)
    print(f"index: {root / 'index.html'}")
    return _run_exit_code(results)


def _run_parameters(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, data_args)`` of ``ecrm run``: the ``-p`` values, and data/data_format/mapping from
    their flags or ``-p`` (both given and different is a :class:`ParameterError`)."""
    params: dict[str, Any] = {}
    for key, raw in args.param:
        key = key.replace("-", "_") if key.replace("-", "_") in _DATA_KEYS else key
        params[key] = parse_param_value(raw)
    data_args: dict[str, Any] = {}
    for key in _DATA_KEYS:
        value = _data_argument(key, getattr(args, key), params.pop(key, None))
        if value is not None:
            data_args[key] = str(value) if key != "mapping" or not isinstance(value, dict) else value
    return params, data_args


def _data_argument(key: str, flag: str | None, pval: Any) -> Any:
    """The value of data argument `key` from its ``--flag`` or its ``-p`` value, which must agree."""
    if flag is not None and pval is not None and str(pval) != flag:
        raise ParameterError(f"--{key.replace('_', '-')} {flag!r} and -p {key} {pval!r} disagree; give one.")
    return flag if flag is not None else pval


def _jobs(args: argparse.Namespace, names: Any, data: Any) -> int | str:
    """``--jobs`` checked as a number; ``auto`` with ``all`` is decided here and printed with its reason."""
    jobs: int | str = args.jobs
    if jobs != "auto":
        try:
            jobs = int(jobs)
        except ValueError:
            raise ParameterError(f"--jobs must be a whole number or 'auto', got {args.jobs!r}.") from None
        if jobs < 1:
            raise ParameterError(f"--jobs must be at least 1, got {jobs}.")
    elif names == "all":
        jobs, why = default_jobs(data, len(list_notebooks(args.notebooks_dir)))
        print(f"running {jobs} notebook(s) at a time ({why}; change with --jobs)", flush=True)
    return jobs


def _show_result(res: runner.RunResult) -> None:
    """Print one notebook's outcome as soon as it is known."""
    if res.status == "skipped":
        print(f"{res.name:<14} skipped  the data does not fit it\n{'':<14} reason: {res.error}", flush=True)
        return
    line = f"{res.name:<14} {res.status:<6} {res.seconds:7.1f}s  {res.out_dir}"
    if res.error:
        line += f"\n{'':<14} error: {res.error}"
    print(line, flush=True)


def _print_pdf_problems(results: Sequence[runner.RunResult], *, no_pdf: bool) -> None:
    """Print on stderr, once each, why PDFs failed or were skipped (unless ``--no-pdf`` asked for it)."""
    reasons = set()
    for r in results:
        pdf = read_json_object(Path(r.out_dir) / "run.json").get("pdf") or {}
        if pdf.get("status") == "failed" or (pdf.get("status") == "skipped" and not no_pdf):
            reasons.add(f"{pdf.get('status')}: {pdf.get('reason')}")
    for reason in sorted(reasons):
        print(f"PDF {reason}", file=sys.stderr)


def _is_user_error(result: runner.RunResult) -> bool:
    """The notebook stopped on a data, mapping, parameter or analysis error (``DataError: ...``)."""
    head = (result.error or "").split(":", 1)[0].strip()
    return head in user_error_names()


def _run_exit_code(results: Sequence[runner.RunResult]) -> int:
    """0 when every analysis ran or was skipped; 2 when the failures are all errors the user can fix
    (bad data, mapping or parameters found inside a notebook, as ``ecrm validate`` exits for them);
    1 when a notebook failed otherwise. The failed names go to stderr."""
    skipped = [r.name for r in results if r.status == "skipped"]
    if skipped:
        print(f"{len(skipped)} of {len(results)} analyses skipped (the data does not fit them; reasons above): "
              f"{', '.join(skipped)}")
    failed = [r for r in results if r.status not in ("ok", "skipped")]
    if not failed:
        return EXIT_OK
    print(f"{len(failed)} of {len(results)} notebooks failed: {', '.join(r.name for r in failed)}", file=sys.stderr)
    if all(r.status == "failed" and _is_user_error(r) for r in failed):
        for r in failed:
            print(f"error: {r.name}: {r.error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_FAILED


def _cmd_handout(args: argparse.Namespace) -> int:
    results = write_handouts(args.out, notebooks_dir=args.notebooks_dir)
    out = Path(args.out).expanduser().resolve()
    for r in results:
        print(f"{r.name:<14} {r.n_exercises} exercise(s)  {r.student.relative_to(out)}  {r.teacher.relative_to(out)}")
    print(f"handouts: {out / 'student'}\nteacher keys: {out / 'teacher'}")
    print(f"run the student version: ecrm run all --notebooks-dir {out / 'student'} --out reports-student")
    return EXIT_OK


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .report.reproduce import reproduce  # start-up: pulls in pandas (see the module docstring)

    report = reproduce(args.report_dir, args.out, progress=not args.no_progress, force=args.force)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_frame(title: str, value: Any) -> None:
    import pandas as pd  # start-up: only `validate` prints frames

    print(f"\n== {title} ==")
    if isinstance(value, pd.DataFrame):
        print("(none)" if value.empty else value.to_string(index=any(n is not None for n in value.index.names)))
    elif isinstance(value, pd.Series):
        print("(none)" if value.empty else value.to_string())
    elif isinstance(value, dict):
        for k, v in value.items():
            print(f"{k}: {v}")
    else:
        print(value)


def _cmd_validate(args: argparse.Namespace) -> int:
    import pandas as pd  # start-up: as below

    from .data import quality  # start-up: pandas, pyarrow and pandera, ~0.7 s, only for `validate`

    dataset, result = quality.prepare(data=args.data, data_format=args.data_format, mapping=args.mapping)
    report = result.report
    print(f"Data: {getattr(dataset, 'source', args.data)} (format: {getattr(dataset, 'format', '?')})")
    notes = getattr(report, "notes", None) or getattr(dataset, "notes", None)
    if notes:
        print("\n== Decisions taken from the values ==")
        for line in notes:
            print(f"- {line}")
    sections = [("summary", "Summary"), ("date_range", "Date range"), ("missing", "Missing values"),
                ("duplicates", "Duplicates"), ("ranges", "Value ranges"), ("orphans", "Orphan keys"),
                ("statuses", "Order statuses"), ("non_product", "Non-product lines")]
    shown = False
    for attr, title in sections:
        if hasattr(report, attr):
            value = getattr(report, attr)
            if attr == "missing" and isinstance(value, pd.DataFrame) and "n_missing" in value:
                value = value[value["n_missing"] > 0]  # the report lists every column
            _print_frame(title, value)
            shown = True
    if not shown:
        _print_frame("Quality report", report)
    _print_frame("Reconciliation (input = kept + quarantined)", result.reconciliation)
    policy = getattr(result, "policy", None)
    if policy is not None:
        print("\n== Cleaning filters ==")
        for line in policy.describe():
            print(f"- {line}")
    if getattr(result, "summary", None) is not None:
        _print_frame("After cleaning", result.summary)
    return EXIT_OK


def _cmd_sample(args: argparse.Namespace) -> int:
    from .data import sample  # start-up: as in _cmd_validate

    out = Path(args.out).expanduser().resolve() if args.out else SAMPLE_DIR
    kwargs = {k: v for k, v in (("n_customers", args.customers), ("months", args.months), ("seed", args.seed))
              if v is not None}
    written = sample.write_sample(out, **kwargs)
    print(f"sample written to {out}")
    files: list[Path] = []
    if isinstance(written, dict):
        files = [Path(p) for p in written.values() if isinstance(p, (str, Path))]
    elif isinstance(written, (list, tuple)):
        files = [Path(p) for p in written if isinstance(p, (str, Path))]
    if not files:
        files = sorted(p for p in out.rglob("*") if p.is_file())
    for p in files:
        size = p.stat().st_size if p.exists() else 0
        print(f"  {p}  ({size:,} bytes)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ecrm``; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 success, 1 a notebook failed, 2 usage or data error (``EcrmError``), 130 interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help or a usage error printed by argparse
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
        return _dispatch(parser, args)
    except EcrmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # Ctrl-C; `run` also turns SIGTERM into RunInterrupted
        print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPT


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the parsed command; no command prints the help (exit 2)."""
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "run":
        return _cmd_run_or_help(parser, args)
    command = _COMMANDS.get(args.command)
    if command is None:  # pragma: no cover
        parser.error(f"unknown command {args.command}")
    return command(args)


def _cmd_run_or_help(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``ecrm run``: its help (with NAME's parameters), a usage error without NAME, else the run."""
    if args.help:
        return _cmd_run_help(parser, args)
    if not args.name:
        _subparser(parser, "run").print_usage(sys.stderr)
        print("error: give an analysis NAME or 'all' "
              f"(available: {', '.join(_notebook_names()) or 'none'})", file=sys.stderr)
        return EXIT_USAGE
    return _cmd_run(args)


#: the commands other than ``run`` (which also handles its own ``--help``)
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": _cmd_validate,
    "sample": _cmd_sample,
    "handout": _cmd_handout,
    "reproduce": _cmd_reproduce,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
