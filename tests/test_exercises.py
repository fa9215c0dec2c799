"""Course exercises in the analysis notebooks: enough of them, each with a solution, accepted by the
handout checker, and (slow) the student handouts of notebooks 02-04 run end to end on the sample.

The convention is in docs/teaching.md; tests/test_handout.py covers the handout machinery itself.
"""

from __future__ import annotations

import ast
import json
import os
import re

import nbformat
import pytest

from ecrm_research.paths import NOTEBOOKS_DIR
from ecrm_research.report.handout import (
    PLACEHOLDER_TAG,
    find_exercises,
    student_version,
    teacher_version,
    teaching_problems,
    write_handouts,
)
from ecrm_research.report.runner import run_all

NOTEBOOKS = {
    "overview": "00_overview.ipynb",
    "association": "01_association_rules.ipynb",
    "churn": "02_churn_survival.ipynb",
    "loyalty": "03_loyalty_drivers.ipynb",
    "segmentation": "04_segmentation.ipynb",
    "customer_view": "05_customer_view.ipynb",
}
MIN_EXERCISES = 3
PENDING: dict[str, str] = {}


def _read(name):
    return nbformat.read(NOTEBOOKS_DIR / NOTEBOOKS[name], as_version=4)


def _tags(cell):
    return cell.metadata.get("tags", [])


def _exercise_cases():
    for name in NOTEBOOKS:
        marks = [pytest.mark.xfail(strict=False, reason=PENDING[name])] if name in PENDING else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", _exercise_cases())
def test_notebook_has_enough_exercises_with_solutions(name):
    exercises = find_exercises(_read(name), where=NOTEBOOKS[name])
    assert len(exercises) >= MIN_EXERCISES, f"{NOTEBOOKS[name]}: {len(exercises)} exercise(s)"
    for ex in exercises:
        assert ex.solution_indices, f"{NOTEBOOKS[name]}: exercise {ex.number} ({ex.title}) has no solution cell"
        assert ex.title != "exercise", f"{NOTEBOOKS[name]}: exercise {ex.number} has no bold '**Exercise N: Title.**' lead"


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_follows_the_teaching_convention(name):
    """Learning objectives and prerequisites first, key takeaways last, a written answer for every
    exercise, hints for multi-part ones, no matplotlib backend set (docs/teaching.md)."""
    assert teaching_problems(_read(name), where=NOTEBOOKS[name]) == []


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_handout_checker_accepts_notebook(name):
    """find_exercises raises HandoutError on a broken convention (order, tags, solutions as leaves)."""
    nb = _read(name)
    exercises = find_exercises(nb, where=NOTEBOOKS[name])
    student = student_version(nb, where=NOTEBOOKS[name])
    teacher = teacher_version(nb, where=NOTEBOOKS[name])
    nbformat.validate(student)
    nbformat.validate(teacher)
    assert sum(PLACEHOLDER_TAG in _tags(c) for c in student.cells) == len(exercises)
    assert not any("solution" in _tags(c) for c in student.cells)
    assert sum("solution" in _tags(c) for c in teacher.cells) == sum(len(ex.solution_indices) for ex in exercises)
    # committed without outputs, with exactly one parameters cell and the project's kernel
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert sum("parameters" in _tags(c) for c in nb.cells) == 1
    assert nb.metadata.get("kernelspec", {}).get("name") == "ecrm-research"


def _stored_names(source: str) -> set[str]:
    """Names a code cell binds at top level (comprehension variables are local and left out)."""
    tree = ast.parse(source)
    local = {n.id for comp in ast.walk(tree) if isinstance(comp, ast.comprehension)
             for n in ast.walk(comp.target) if isinstance(n, ast.Name)}
    stored = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            stored.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stored.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return stored - local - {"_"}


def _all_names(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_solutions_do_not_rebind_shared_names(name):
    """A solution that reassigns a name the other cells use would make the teacher's run differ from
    the student's (the checker only catches names *only* a solution defines): use ex<N>_ names."""
    nb = _read(name)
    exercises = find_exercises(nb, where=NOTEBOOKS[name])
    solution_cells = {i for ex in exercises for i in ex.solution_indices}
    shared = set()
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and i not in solution_cells:
            shared |= _all_names(c.source)
    for ex in exercises:
        for i in ex.solution_indices:
            if nb.cells[i].cell_type != "code":
                continue
            clash = sorted(_stored_names(nb.cells[i].source) & shared)
            assert not clash, (f"{NOTEBOOKS[name]}, cell {i} (exercise {ex.number}) rebinds {clash}, which other "
                               f"cells use; give solution variables an ex{ex.number}_ prefix")


@pytest.mark.notebook
@pytest.mark.skipif(os.environ.get("ECRM_SLOW_TESTS") == "0", reason="ECRM_SLOW_TESTS=0")
def test_student_handouts_02_to_04_run_end_to_end(tmp_path):
    results = write_handouts(tmp_path / "h", notebooks_dir=NOTEBOOKS_DIR)
    counts = {r.name: r.n_exercises for r in results}
    names = ["churn", "loyalty", "segmentation"]
    res = run_all(names, out=tmp_path / "r", notebooks_dir=results[0].student.parent, progress=False, pdf=False)
    assert [r.status for r in res] == ["ok"] * len(names), [r.error for r in res]
    for name, r in zip(names, res):
        executed = json.dumps(nbformat.read(r.notebook, as_version=4).cells)
        assert executed.count("Your turn: Exercise") == counts[name] >= MIN_EXERCISES
        assert "ex1_" not in executed  # no solution code reached the student version


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_leaves_number_formatting_to_the_renderer(name):
    """Tables are formatted by report.tables.render_table (through the kernel's display hook,
    show_table or out.table(show=...)), never by hand: no rounding or to_string for display."""
    offending = [(i, line.strip()) for i, c in enumerate(_read(name).cells) if c.cell_type == "code"
                 for line in c.source.splitlines() if re.search(r"\.round\(|\.to_string\(|\.style\b", line)]
    assert offending == [], f"{NOTEBOOKS[name]}: format tables with the renderer, not by hand: {offending}"
