"""The analysis notebooks: finding them and reading and checking their parameters.

A notebook ``notebooks/NN_name[_more].ipynb`` is known by its short *name* (the word after
``NN_``, or the longer ``name_more`` it declares in ``metadata.ecrm.name``: ``customer_view``).
Its cell tagged ``parameters`` declares the parameters a run may set; this module parses that
cell (with :mod:`ast`), and checks and completes the parameters of a run before anything executes.

Public names: :func:`list_notebooks`, :func:`notebook_path`, :func:`resolve_names`,
:func:`notebook_parameters`, :func:`notebook_parameter_help`, :func:`build_parameters`,
:func:`check_run_parameters`, :func:`absolute_path`, :func:`resolve_path_parameters`,
:func:`parameter_choices`, :func:`check_parameter_value`, :func:`check_parameter_values`,
:func:`check_output_folder`,
:data:`INJECTED_PARAMETERS`, :data:`PATH_PARAMETERS`.

Parameter values are checked against what each notebook declares, before any kernel starts:
the type of the default (or the annotation, ``min_support: float | None = None``), a range
(``>= 0`` for a positive default, ``[0, 1]`` for a share/fraction/probability) and, for a text
default whose help comment lists alternatives (``# product | category``, ``# 'kmeans' or 'gmm'``),
the choices.
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import re
import tokenize
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..exceptions import ParameterError
from ..paths import NOTEBOOKS_DIR, PROJ_ROOT

_NB_RE = re.compile(r"^(?P<num>\d+)_(?P<name>[A-Za-z0-9]+)(?P<more>_[^.]*)?\.ipynb$")
#: parameters the runner injects itself; a notebook should declare them but they are not user input
INJECTED_PARAMETERS = ("out_dir",)
#: parameters whose string values are paths, made absolute (against the caller's folder) before injection
PATH_PARAMETERS = ("data", "mapping", "constructs", "item_hierarchy")
#: help words marking a share in [0, 1]
_SHARE_RE = re.compile(r"\b(share|fraction|probability|proportion|significance level|gross margin)\b", re.I)
#: a lower bound stated in the help comment: ``(>= 2)``, ``≥ 2``, ``at least 2``
_MIN_RE = re.compile(r"(?:>=|≥|\bat least)\s*(-?\d+(?:\.\d+)?)", re.I)
_CHOICE_LIST_RE = re.compile(r"[\w.-]+(?:[ \t]*\|[ \t]*[\w.-]+)+")
_PLAIN_PAREN_RE = re.compile(r"\([^()|]*\)")
_KINDS = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,), "list": (list,), "dict": (dict,)}
_KIND_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a text",
               "list": "a list such as [a, b]", "dict": "a mapping such as {A: [x, y]}"}


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
                found.append((int(m["num"]), _declared_name(p, m["name"], m["more"]), p))
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


def _declared_name(path: Path, name: str, more: str | None) -> str:
    """The short name of a notebook file: the word after ``NN_``, or a longer name the notebook declares
    in ``metadata.ecrm.name`` when the file name starts with it (``05_customer_view.ipynb`` declares
    ``customer_view``). Only files with more words after the first are read."""
    if not more:
        return name
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("ecrm", {})
        declared = meta.get("name") if isinstance(meta, dict) else None
    except (OSError, ValueError, AttributeError):
        return name
    rest = name + more
    if isinstance(declared, str) and declared and (rest == declared or rest.startswith(declared + "_")):
        return declared
    return name


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


def resolve_names(names: str | Iterable[str], notebooks_dir: str | Path | None) -> list[str]:
    """Short names to run: ``"all"`` is every notebook by ``NN``; an unknown name raises :class:`ParameterError`."""
    books = list_notebooks(notebooks_dir)
    if isinstance(names, str):
        names = list(books) if names == "all" else [names]
    names = list(names)
    for n in names:
        if n not in books:
            notebook_path(n, notebooks_dir)  # raises with the list of names
    return names


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
            params[t] = {"name": t, "default": default, "help": help_text, "annotation": annotation,
                         "inferred_type_name": annotation or type(_parse_default(default)).__name__}
    return params


def _inspect(path: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"default": source text, "help": comment, "inferred_type_name": ...}}`` in order."""
    import nbformat  # lazy: ~0.5 s of start-up that `ecrm --help` (which lists notebooks) does not need

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
    # cell with IPython syntax: fall back to papermill's line parser (lazy: papermill takes ~1 s to import)
    import papermill as pm

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
            "annotation": v.get("annotation"),
            "help": v.get("help") or "",
        })
    return rows


def absolute_path(value: Any, base: str | Path | None = None) -> Any:
    """Absolute path for a str/Path value (others unchanged).

    Parameters
    ----------
    value : Any
        A path as the user typed it; anything but a non-empty str/Path is returned as it is.
    base : str or Path, optional
        The caller's folder relative paths are taken from; default the current directory *now*.
        :func:`~ecrm_research.report.runner.run_all` captures it once before any notebook starts,
        so nothing later depends on the process's directory.

    Notes
    -----
    A relative path that does not exist under `base` but exists under the project root
    (``data/mappings/online_retail.yaml``) is taken from the project root; a bare name found in
    neither (``online_retail``, the name of a shipped mapping) is returned unchanged.
    """
    if not (isinstance(value, Path) or (isinstance(value, str) and value)):
        return value
    p = Path(os.fspath(value)).expanduser()
    if p.is_absolute():
        return str(p.resolve())
    root = Path(base) if base is not None else Path.cwd()
    if (root / p).exists():
        return str((root / p).resolve())
    if (PROJ_ROOT / p).exists():
        return str((PROJ_ROOT / p).resolve())
    if isinstance(value, str) and len(p.parts) == 1 and not p.suffix:
        return value  # a bare name (a shipped mapping), not a path
    return str((root / p).resolve())


def resolve_path_parameters(given: Mapping[str, Any], base: str | Path, *,
                            must_exist: Iterable[str] = ("constructs", "item_hierarchy")) -> dict[str, Any]:
    """`given` with the text values of path parameters made absolute against `base`.

    Parameters
    ----------
    given : dict
        Parameters of a run (``data``, ``mapping``, ``-p`` values).
    base : str or Path
        The caller's working directory, captured once.
    must_exist : iterable of str
        Names whose file must exist (default ``constructs``, ``item_hierarchy``); ``data`` and
        ``mapping`` are checked by the data layer (:mod:`ecrm_research.report.preflight`).

    Raises
    ------
    ParameterError
        A `must_exist` path that is not there, naming where it was looked for.
    """
    out = dict(given)
    for key in [k for k in PATH_PARAMETERS if k in out]:
        if not isinstance(out[key], (str, Path)) or not str(out[key]).strip():
            continue
        resolved = absolute_path(out[key], base)
        if key in set(must_exist) and not Path(resolved).exists():
            raise ParameterError(
                f"-p {key} {str(out[key])!r}: file not found (looked at {resolved}"
                f"{'' if Path(os.fspath(out[key])).is_absolute() else f' and under {PROJ_ROOT}'}). "
                f"Check the path (relative paths are taken from the folder you run ecrm in).")
        out[key] = resolved
    return out


def parameter_choices(default: Any, help_text: str) -> tuple[str, ...] | None:
    """The values a text parameter may take, when its help comment lists them; else None.

    ``"product | category"``, ``"auto (pyfim when installed) | fim | mlxtend | spark"``,
    ``"unit (days | weeks | months | years)"``, ``"'kmeans' or 'gmm'"`` and
    ``"where it runs: pandas (this machine) or spark (a cluster)"`` declare choices; a list
    counts only when it holds the default.
    """
    if not isinstance(default, str) or not help_text:
        return None
    text = _PLAIN_PAREN_RE.sub(" ", help_text).replace("'", "").replace('"', "")
    for m in _CHOICE_LIST_RE.finditer(text):
        choices = tuple(c.strip() for c in m.group(0).split("|"))
        if default in choices:
            return choices
    alt = re.fullmatch(r"\s*([\w.-]+)\s+or\s+([\w.-]+)\s*", text.rsplit(":", 1)[-1])
    if alt and default in alt.groups():
        return alt.groups()
    return None


def _declared_kind(default: Any, annotation: str | None) -> tuple[str | None, bool]:
    """``(kind, none_ok)`` of a parameter: from its annotation (``float | None``), else its default."""
    if annotation:
        kinds = [k for k in _KINDS if re.search(rf"\b{k}\b", annotation)]
        return (kinds[0] if len(kinds) == 1 else None), ("None" in annotation or "Optional" in annotation)
    if default is None:
        return None, True
    kind = type(default).__name__
    return (kind if kind in _KINDS else None), False


def _kind_problem(value: Any, kind: str, default: Any) -> str | None:
    """Why `value` is not of `kind` (None when it is)."""
    if kind != "bool" and isinstance(value, bool) or not isinstance(value, _KINDS[kind]):
        return f"expects {_KIND_WORDS[kind]}"
    if kind == "float" and not math.isfinite(value):
        return "expects a finite number"
    if kind == "list" and isinstance(default, list) and default:
        elem = type(default[0]).__name__
        if elem in _KINDS and all(type(d).__name__ == elem for d in default):
            bad = [v for v in value if (elem != "bool" and isinstance(v, bool)) or not isinstance(v, _KINDS[elem])]
            if bad:
                return f"expects a list of {_KIND_WORDS[elem].replace('a ', '', 1)}s (got {bad[0]!r} in it)"
    return None


def _range_problem(value: Any, default: Any, help_text: str) -> str | None:
    """Why a number is out of the range its declaration implies (None when it is in range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    share_default = default is None or (isinstance(default, float) and 0 <= default <= 1)
    if share_default and _SHARE_RE.search(help_text or "") and not 0 <= value <= 1:
        return "is a share: expects a number from 0 to 1"
    stated = _MIN_RE.search(help_text or "")
    if stated and value < float(stated.group(1)):
        return f"expects a number >= {stated.group(1)}"
    if isinstance(default, (int, float)) and not isinstance(default, bool) and default > 0 and value < 0:
        return "expects a number >= 0"
    return None


def check_parameter_value(notebook: str, row: Mapping[str, Any], value: Any) -> Any:
    """Check one parameter value against its declaration (a :func:`notebook_parameter_help` row).

    Returns
    -------
    Any
        The value (a whole float such as ``4.0`` for an int parameter becomes ``4``).

    Raises
    ------
    ParameterError
        Naming the parameter, the notebook, the bad value, what is expected and an example.
    """
    name, default, help_text = row["name"], row.get("default"), row.get("help") or ""
    kind, none_ok = _declared_kind(default, row.get("annotation"))
    if kind is None and _SHARE_RE.search(help_text):
        kind = "float"  # a None default documented as a share
    if value is None:
        problem = None if none_ok else "does not accept null"
    elif kind == "int" and isinstance(value, float) and value.is_integer():
        value, problem = int(value), None
    else:
        problem = (_kind_problem(value, kind, default) if kind else None) or _range_problem(value, default, help_text)
    choices = parameter_choices(default, help_text)
    if problem is None and choices and isinstance(value, str) and value not in choices:
        problem = f"expects one of {', '.join(choices)}"
    if problem:
        example = row.get("default_text") if default is not None else None
        shown = "null" if value is None else repr(value)
        raise ParameterError(
            f"-p {name} {shown}: the {notebook} notebook's parameter '{name}' {problem}"
            + (f" (default {example})" if example else "") + (f"; {help_text}" if help_text else "")
            + f". See `ecrm run {notebook} --help`.", allowed=list(choices or ()))
    return value


def check_parameter_values(notebook: str, given: Mapping[str, Any], *,
                           notebooks_dir: str | Path | None = None) -> dict[str, Any]:
    """Check every value of `given` that notebook `notebook` declares (see :func:`check_parameter_value`);
    ``data``, ``data_format``, ``mapping`` and ``out_dir`` are left to the data layer and the runner."""
    rows = {r["name"]: r for r in notebook_parameter_help(notebook, notebooks_dir=notebooks_dir)}
    out = dict(given)
    for key, value in given.items():
        if key in rows and key not in ("data", "data_format", "mapping", *INJECTED_PARAMETERS):
            out[key] = check_parameter_value(notebook, rows[key], value)
    return out


def build_parameters(
    declared: Mapping[str, Any],
    name: str,
    *,
    data: Any,
    data_format: str | None,
    mapping: Any,
    params: Mapping[str, Any] | None,
    out_dir: Path,
) -> dict[str, Any]:
    """The parameters injected into notebook `name`: `params` plus the data arguments, checked
    against the `declared` ones (:class:`ParameterError` names the unknown ones), paths made
    absolute, and ``out_dir`` set to `out_dir`."""
    given: dict[str, Any] = dict(params or {})
    for key, value in (("data", data), ("data_format", data_format), ("mapping", mapping)):
        if value is not None:
            given[key] = value
    if "out_dir" in given:
        raise ParameterError(
            f"out_dir is set by the runner (OUT/{name}); choose the output root with out=... "
            f"(CLI: --out DIR) instead.", allowed=[k for k in declared if k not in INJECTED_PARAMETERS])
    unknown = [k for k in given if k not in declared]
    if unknown:
        allowed = [k for k in declared if k not in INJECTED_PARAMETERS]
        raise ParameterError(
            f"The {name} notebook does not declare parameter(s) {', '.join(map(repr, unknown))}. "
            f"Declared parameters: {', '.join(allowed) or '(none)'}. "
            f"See `ecrm run {name} --help`.",
            allowed=allowed,
        )
    for key in PATH_PARAMETERS:
        if key in given:
            given[key] = absolute_path(given[key])
    if isinstance(given.get("data_format"), str):
        given["data_format"] = given["data_format"].strip()
    injected = {"out_dir": str(out_dir)}
    injected.update(given)
    return injected


def check_run_parameters(order: list[str], declared: Mapping[str, Mapping[str, Any]], given: Mapping[str, Any]) -> None:
    """Fail before anything runs when a parameter of a run is declared by none of its notebooks.

    With one notebook the check (and message) is :func:`build_parameters`'s; with several,
    each notebook later receives the parameters it declares.
    """
    if len(order) == 1:
        # strict: same message as run_notebook
        build_parameters(declared[order[0]], order[0], data=None, data_format=None, mapping=None,
                         params=given, out_dir=Path("."))
        return
    nobody = [k for k in given if not any(k in d for d in declared.values())]
    if nobody:
        allowed = sorted({k for d in declared.values() for k in d if k not in INJECTED_PARAMETERS})
        raise ParameterError(
            f"No notebook among {', '.join(order)} declares parameter(s) "
            f"{', '.join(map(repr, nobody))}. Declared parameters: {', '.join(allowed)}.",
            allowed=allowed,
        )


def check_output_folder(root: str | Path, names: Iterable[str] = ()) -> None:
    """An output root (or an analysis folder ``root/NAME`` in it) that is an existing file is a
    :class:`ParameterError` saying what to give instead."""
    root = Path(root)
    for p in (root, *(root / n for n in names)):
        if p.exists() and not p.is_dir():
            raise ParameterError(f"--out {root}: {p} is a file, not a folder. Give a folder for the reports "
                                 f"(it is created if missing), e.g. --out {root.parent / (root.stem + '-reports')}.")
