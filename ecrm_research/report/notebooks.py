"""The analysis notebooks: finding them and reading and checking their parameters.

A notebook ``notebooks/NN_name[_more].ipynb`` is known by its short *name* (the word after
``NN_``). Its cell tagged ``parameters`` declares the parameters a run may set; this module
parses that cell (with :mod:`ast`), and checks and completes the parameters of a run before
anything executes.

Public names: :func:`list_notebooks`, :func:`notebook_path`, :func:`resolve_names`,
:func:`notebook_parameters`, :func:`notebook_parameter_help`, :func:`build_parameters`,
:func:`check_run_parameters`, :func:`absolute_path`, :data:`INJECTED_PARAMETERS`,
:data:`PATH_PARAMETERS`.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..exceptions import ParameterError
from ..paths import NOTEBOOKS_DIR, PROJ_ROOT

_NB_RE = re.compile(r"^(?P<num>\d+)_(?P<name>[A-Za-z0-9]+)(?:_[^.]*)?\.ipynb$")
#: parameters the runner injects itself; a notebook should declare them but they are not user input
INJECTED_PARAMETERS = ("out_dir",)
#: parameters whose string values are paths, made absolute before injection
PATH_PARAMETERS = ("data", "mapping")


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
            params[t] = {"name": t, "default": default, "help": help_text,
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
            "help": v.get("help") or "",
        })
    return rows


def absolute_path(value: Any) -> Any:
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
