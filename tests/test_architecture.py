"""The package's architecture, checked from its source (docs/architecture.md is the map).

* data flows one way: bottom (exceptions, paths, infra, multiple_testing) -> data -> prep -> analyses -> customer_view
  (the closed loop, layer 3.5: it joins the analyses) -> report -> cli; an analysis never imports another analysis;
* no private name (``_x``) is imported from, or reached in, another module of the package;
* no import cycles; imports at module top, except the optional heavy libraries listed in ``LAZY_OK``;
* no module over 1,000 lines; ``ParameterError`` is a ``ValueError`` (scikit-learn's convention).

Each check parses the source with :mod:`ast` (nothing is imported), so a violation names the file and line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PKG_DIR = Path(__file__).resolve().parents[1] / "ecrm_research"
PKG = "ecrm_research"

#: Layer of each top-level part of the package; a module may import only its own layer or lower ones.
LAYERS = {
    "exceptions": 0, "paths": 0, "infra": 0, "multiple_testing": 0,
    "markup": 0, "phrasing": 0,
    "data": 1,
    "prep": 2,
    "association": 3, "survival": 3, "loyalty": 3, "segmentation": 3, "activity": 3,
    "customer_view": 3.5,  # the closed loop: above the analyses (it joins them), below the reports
    "report": 4,
    "cli": 5,
}
ANALYSES = {name for name, layer in LAYERS.items() if layer == 3}

#: Third-party libraries that may be imported inside a function (optional or slow to import); each such
#: import carries a comment saying why. Everything else, and every ecrm_research module, is imported at the top.
LAZY_OK = {
    "pyspark", "fim", "psutil", "xlrd",      # optional extras (spark, fim, bench) and the .xls reader
    "semopy", "networkx",                   # slow to import, used by one step of one analysis
    "papermill", "nbconvert", "nbformat", "jupyter_client", "websocket",  # keep `ecrm --help` and imports light
    "tqdm",                                 # tqdm.auto imports IPython; only when progress is asked for
    "matplotlib", "seaborn",                # pyplot only where a figure is drawn
    "plotly", "itables", "great_tables",    # interactive explore pages and report tables: only when one is built
}
#: The top layer may import the package's heavy modules when a command runs (nothing imports it, so no
#: cycle can hide there): `ecrm --help` starts in ~0.1 s instead of ~0.9 s.
LAZY_PACKAGE_IMPORTS_OK = {"ecrm_research.cli"}
MAX_LINES = 1000


@dataclass
class Module:
    name: str
    path: Path
    is_pkg: bool
    tree: ast.Module
    lines: int
    imports: list[tuple[int, str, list[str], bool]] = field(default_factory=list)  # line, target, names, top-level


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(PKG_DIR.parent).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def _resolve(mod: Module, level: int, target: str | None) -> str:
    base = mod.name.split(".") if mod.is_pkg else mod.name.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _collect() -> dict[str, Module]:
    mods: dict[str, Module] = {}
    for path in sorted(PKG_DIR.rglob("*.py")):
        name, is_pkg = _module_name(path)
        text = path.read_text(encoding="utf-8")
        mods[name] = Module(name, path, is_pkg, ast.parse(text), text.count("\n") + 1)
    for mod in mods.values():
        top = {id(n) for n in mod.tree.body}
        # imports guarded by `if TYPE_CHECKING:` at the top count as top-level
        for node in mod.tree.body:
            if isinstance(node, ast.If):
                top |= {id(n) for n in node.body}
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(mod, node.level, node.module) if node.level else (node.module or "")
                mod.imports.append((node.lineno, target, [a.name for a in node.names], id(node) in top))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    mod.imports.append((node.lineno, a.name, [], id(node) in top))
    return mods


MODULES = _collect()


def _where(mod: Module, line: int) -> str:
    path = mod.path.relative_to(PKG_DIR.parent) if mod.path.is_relative_to(PKG_DIR.parent) else mod.path
    return f"{path}:{line}"


def _internal_targets(mod: Module, target: str, names: list[str]) -> list[str]:
    """The package modules an import statement loads (``from pkg import sub`` loads ``pkg.sub``)."""
    if not target.startswith(PKG):
        return []
    subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
    rest = [n for n in names if f"{target}.{n}" not in MODULES]
    return subs + ([target] if rest or not names else [])


def _part(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_part_of_the_package_has_a_layer():
    unknown = sorted({_part(n) for n in MODULES if _part(n) and _part(n) not in LAYERS})
    assert not unknown, f"add {unknown} to LAYERS (and to docs/architecture.md)"


def _against_the_flow(mod: Module) -> list[str]:
    """Imports of `mod` that go up a layer, or from one analysis into another."""
    bad = []
    src = _part(mod.name)
    if not src:
        return bad
    for line, target, names, _ in mod.imports:
        for dep in _internal_targets(mod, target, names):
            dst = _part(dep)
            if not dst or dst == src:
                continue
            if LAYERS[dst] > LAYERS[src] or (src in ANALYSES and dst in ANALYSES):
                bad.append(f"{_where(mod, line)}: {src} (layer {LAYERS[src]}) imports {dep} (layer {LAYERS[dst]})")
    return bad


def test_data_flows_one_way():
    bad = [b for mod in MODULES.values() for b in _against_the_flow(mod)]
    assert not bad, "imports against the data flow:\n" + "\n".join(bad)


@pytest.mark.parametrize("src, target, flagged", [
    ("ecrm_research.survival.fake", "ecrm_research.customer_view", True),       # an analysis reaching up
    ("ecrm_research.segmentation.fake", "ecrm_research.survival", True),        # analysis -> analysis
    ("ecrm_research.customer_view.fake", "ecrm_research.report", True),         # the closed loop reaching up
    ("ecrm_research.customer_view.fake", "ecrm_research.segmentation", False),  # it may join the analyses
    ("ecrm_research.report.fake", "ecrm_research.customer_view", False),        # the reports may show it
])
def test_flow_check_places_the_closed_loop_between_analyses_and_reports(src, target, flagged):
    mod = Module(src, Path("/x.py"), False, ast.parse(f"import {target}\n"), 1)
    mod.imports = [(1, target, [], True)]
    assert bool(_against_the_flow(mod)) is flagged


def _module_aliases(mod: Module) -> dict[str, str]:
    """Local names bound to package modules (``from .data import schema``, ``import ecrm_research.x as y``)."""
    aliases: dict[str, str] = {}
    for _line, target, names, _ in mod.imports:
        aliases.update({n: f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES})
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname or a.name: a.name for a in node.names if a.name.startswith(PKG)})
        elif isinstance(node, ast.ImportFrom):
            aliases.update({a.asname: aliases[a.name] for a in node.names if a.asname and a.name in aliases})
    return aliases


def _private_uses(mod: Module) -> list[str]:
    bad = [f"{_where(mod, line)}: imports {target}.{n}" for line, target, names, _ in mod.imports
           if target.startswith(PKG) and target != mod.name
           for n in names if n.startswith("_") and f"{target}.{n}" not in MODULES]
    aliases = _module_aliases(mod)
    bad += [f"{_where(mod, node.lineno)}: reaches {aliases[node.value.id]}.{node.attr}" for node in ast.walk(mod.tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
            and node.attr.startswith("_") and not node.attr.startswith("__")]
    return bad


def test_no_private_name_crosses_a_module():
    bad = [b for mod in MODULES.values() for b in _private_uses(mod)]
    assert not bad, "private names used across modules (make them public where they live):\n" + "\n".join(bad)


def test_private_name_check_finds_a_planted_reach():
    tree = ast.parse("from ecrm_research.data import schema\nfrom ecrm_research.data.keys import _x\nschema._y\n")
    mod = Module("ecrm_research.prep.fake", Path("/x.py"), False, tree, 3)
    mod.imports = [(1, "ecrm_research.data", ["schema"], True), (2, "ecrm_research.data.keys", ["_x"], True)]
    found = _private_uses(mod)
    assert len(found) == 2 and "imports ecrm_research.data.keys._x" in found[0] and "schema._y" in found[1]


def test_no_pandas_private_attributes():
    bad = [f"{_where(m, n.lineno)}: .{n.attr}" for m in MODULES.values() for n in ast.walk(m.tree)
           if isinstance(n, ast.Attribute) and n.attr in {"_pa_array", "_mgr", "_values", "_data"}]
    bad += [f"{_where(m, n.lineno)}: getattr(..., {n.args[1].value!r})" for m in MODULES.values()
            for n in ast.walk(m.tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id in {"getattr", "hasattr"} and len(n.args) > 1 and isinstance(n.args[1], ast.Constant)
            and n.args[1].value in {"_pa_array", "_mgr"}]
    assert not bad, "pandas internals used:\n" + "\n".join(bad)


def test_imports_at_module_top():
    bad = []
    for mod in MODULES.values():
        for line, target, _names, top in mod.imports:
            if top:
                continue
            root = target.split(".")[0]
            if mod.name in LAZY_PACKAGE_IMPORTS_OK and root in (PKG, "pandas"):
                continue
            if root == PKG or root not in LAZY_OK:
                bad.append(f"{_where(mod, line)}: `import {target}` inside a function")
    assert not bad, ("function-level imports (move them to the top, or add an optional heavy library to LAZY_OK "
                     "with the reason):\n" + "\n".join(bad))


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for mod in MODULES.values():
        for _line, target, names, _top in mod.imports:
            for dep in _internal_targets(mod, target, names):
                if dep in MODULES and dep != mod.name:
                    graph[mod.name].add(dep)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    # a package's __init__ that re-exports its submodules, and the submodules importing siblings, is not a cycle
    # (they import `pkg.sibling`, not `pkg`); anything else found here is.
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_1000_lines(name):
    assert MODULES[name].lines <= MAX_LINES, f"{MODULES[name].path}: {MODULES[name].lines} lines; split it by concern"


def test_parameter_error_is_a_value_error():
    from ecrm_research.exceptions import EcrmError, ParameterError

    err = ParameterError("k must be >= 2", allowed=["2", "3"])
    assert isinstance(err, ValueError) and isinstance(err, EcrmError)
    assert str(err) == "k must be >= 2" and err.allowed == ["2", "3"]
    with pytest.raises(ValueError, match="k must be"):
        raise err
