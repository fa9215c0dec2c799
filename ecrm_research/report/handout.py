"""Course material: student handouts and teacher keys from the analysis notebooks.

Exercise convention (see ``docs/teaching.md``): a markdown cell tagged ``exercise`` holds the
prompt; markdown cells right after it tagged ``hint`` hold hints (kept in the handout); the code
(or markdown) cells after those tagged ``solution`` hold the teacher's answer.
:func:`teaching_problems` checks the rest of the teaching convention (learning objectives and
prerequisites at the top, key takeaways at the end, a written answer for every exercise, hints for
multi-part ones, no matplotlib backend set in a notebook).
:func:`write_handouts` writes, for every notebook::

    OUT/student/NN_name.ipynb   solutions replaced by a "your turn" placeholder cell (tag ``your-turn``)
    OUT/teacher/NN_name.ipynb   the key: prompts and solutions, solution cells headed "# SOLUTION"
    OUT/README.md               what is where, exercises per notebook

Both versions are written without outputs and run end to end with ``ecrm run`` (``--notebooks-dir
OUT/student``): a placeholder only calls :func:`your_turn`, which prints a reminder instead of
failing (set ``ECRM_STRICT_EXERCISES=1`` to make unfilled placeholders raise
``NotImplementedError``, e.g. to check that students filled every one).
"""

from __future__ import annotations

import ast
import copy
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import EcrmError
from .notebooks import list_notebooks

__all__ = [
    "EXERCISE_TAG",
    "SOLUTION_TAG",
    "HINT_TAG",
    "OBJECTIVES_TAG",
    "TAKEAWAYS_TAG",
    "PLACEHOLDER_TAG",
    "HandoutError",
    "Exercise",
    "HandoutResult",
    "find_exercises",
    "student_version",
    "teaching_problems",
    "teacher_version",
    "write_handouts",
    "your_turn",
]

EXERCISE_TAG = "exercise"
SOLUTION_TAG = "solution"
HINT_TAG = "hint"
OBJECTIVES_TAG = "objectives"
TAKEAWAYS_TAG = "takeaways"
#: most parts an exercise may have (more: split it into two exercises)
MAX_PARTS = 4
PLACEHOLDER_TAG = "your-turn"
_STRICT_ENV = "ECRM_STRICT_EXERCISES"


class HandoutError(EcrmError):
    """A notebook's exercise cells break the convention (message names the notebook and cell)."""


def your_turn(label: str = "this exercise") -> None:
    """Placeholder of an unfilled exercise: print a reminder, or raise in strict mode.

    Parameters
    ----------
    label : str
        ``"Exercise 2"`` and its short title, shown in the reminder.

    Raises
    ------
    NotImplementedError
        Only when the environment variable ``ECRM_STRICT_EXERCISES=1`` is set.
    """
    msg = (f"Your turn: {label} is not done yet. Replace the `your_turn(...)` line of this cell "
           f"with your code and run the cell again.")
    if os.environ.get(_STRICT_ENV, "").strip() in ("1", "true", "yes"):
        raise NotImplementedError(msg)
    print(f"✎ {msg}")


@dataclass
class Exercise:
    """One exercise of a notebook.

    Attributes
    ----------
    number : int
        1-based position in the notebook.
    title : str
        First line of the prompt without markdown markers.
    prompt_index : int
        Index of the prompt cell in the notebook.
    solution_indices : list of int
        Indices of the solution cells after the prompt and its hints (may be empty).
    hint_indices : list of int
        Indices of the hint cells right after the prompt.
    """

    number: int
    title: str
    prompt_index: int
    solution_indices: list[int] = field(default_factory=list)
    hint_indices: list[int] = field(default_factory=list)


@dataclass
class HandoutResult:
    """What :func:`write_handouts` wrote for one notebook."""

    name: str
    source: Path
    student: Path
    teacher: Path
    exercises: list[Exercise]

    @property
    def n_exercises(self) -> int:
        return len(self.exercises)


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _title(source: str) -> str:
    """Short title of a prompt: its bold lead (``**Exercise 2: Basket size.**`` → ``Basket size``)
    or else its first line, without markdown markers and an ``Exercise N:`` prefix."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    bold = re.match(r"^[#>\s]*\*\*(.+?)\*\*", first)
    text = bold.group(1) if bold else re.sub(r"^[#>\s]+", "", first)
    text = re.sub(r"^\s*exercise\s*\d*\s*[:.\-–]?\s*", "", text, flags=re.I).strip(" *_.:")
    if not text and bold:
        text = first[bold.end():].strip(" *_.:")
    if not text:
        return "exercise"
    return text if len(text) <= 80 else text[:79] + "…"


def find_exercises(nb: Any, *, where: str = "notebook") -> list[Exercise]:
    """The exercises of a notebook, checked against the convention.

    Parameters
    ----------
    nb : NotebookNode
        The notebook (``nbformat.read(..., as_version=4)``).
    where : str
        Name used in error messages.

    Raises
    ------
    HandoutError
        A ``solution`` cell that does not follow an ``exercise`` prompt (or another solution),
        an ``exercise`` tag on a code cell, a ``solution`` tag on the ``parameters`` cell, or a
        later non-solution cell that uses a name only a solution defines (the student version
        would then fail).
    """
    out: list[Exercise] = []
    current: Exercise | None = None
    for i, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if EXERCISE_TAG in tags:
            if cell.cell_type != "markdown":
                raise HandoutError(f"{where}, cell {i}: the '{EXERCISE_TAG}' tag belongs on the markdown "
                                   f"prompt; tag the code cell '{SOLUTION_TAG}' instead.")
            current = Exercise(len(out) + 1, _title(cell.source), i)
            out.append(current)
        elif HINT_TAG in tags:
            if cell.cell_type != "markdown":
                raise HandoutError(f"{where}, cell {i}: the '{HINT_TAG}' tag belongs on a markdown cell.")
            if current is None or current.solution_indices:
                raise HandoutError(f"{where}, cell {i}: a '{HINT_TAG}' cell must come right after its "
                                   f"'{EXERCISE_TAG}' prompt (or another hint), before the solution cells.")
            current.hint_indices.append(i)
        elif SOLUTION_TAG in tags:
            if "parameters" in tags:
                raise HandoutError(f"{where}, cell {i}: the parameters cell cannot be a solution.")
            if current is None:
                raise HandoutError(f"{where}, cell {i}: a '{SOLUTION_TAG}' cell must follow a markdown "
                                   f"cell tagged '{EXERCISE_TAG}' (the prompt) or another solution cell.")
            current.solution_indices.append(i)
        else:
            current = None
    _check_solutions_are_leaves(nb, out, where)
    return out


_PART = re.compile(r"^\s{0,3}(?:\d+[.)]|\([a-z]\)|[a-z][.)])\s+\S", re.M)
_SENTENCE = re.compile(r"[.!?](?:\s|$)")


def exercise_parts(prompt: str) -> int:
    """Number of parts of an exercise prompt: its numbered list items (``1.``, ``2)``, ``(a)``, ``b.``);
    1 when it has no such list."""
    return max(1, len(_PART.findall(prompt)))


def teaching_problems(nb: Any, *, where: str = "notebook") -> list[str]:
    """What a notebook misses of the teaching convention (``docs/teaching.md``); empty when none.

    Checked: a markdown cell tagged ``objectives`` among the first three cells, with *Learning
    objectives* and *Prerequisites*; the last cell a markdown cell tagged ``takeaways`` with *Key
    takeaways*; every exercise answered in words (a markdown ``solution`` cell of at least two
    sentences); a multi-part exercise (a numbered list in its prompt) has at most
    :data:`MAX_PARTS` parts and at least one ``hint`` cell; no code cell sets a matplotlib backend
    (``matplotlib.use``, ``%matplotlib``): the runner does, so a student's ``plt.show()`` works.
    """
    cells = nb.cells
    problems = []
    first = [c for c in cells[:3] if OBJECTIVES_TAG in _tags(c) and c.cell_type == "markdown"]
    if not first:
        problems.append(f"{where}: no markdown cell tagged '{OBJECTIVES_TAG}' among the first three cells")
    elif not all(w in first[0].source.lower() for w in ("learning objectives", "prerequisites")):
        problems.append(f"{where}: the '{OBJECTIVES_TAG}' cell needs 'Learning objectives' and 'Prerequisites'")
    last = cells[-1] if cells else None
    if last is None or TAKEAWAYS_TAG not in _tags(last) or "key takeaways" not in last.source.lower():
        problems.append(f"{where}: the last cell must be a markdown cell tagged '{TAKEAWAYS_TAG}' "
                        "with 'Key takeaways'")
    for ex in find_exercises(nb, where=where):
        written = [cells[i] for i in ex.solution_indices if cells[i].cell_type == "markdown"]
        if not any(len(_SENTENCE.findall(c.source)) >= 2 for c in written):
            problems.append(f"{where}, exercise {ex.number} ({ex.title}): no written answer "
                            "(a markdown solution cell of at least two sentences)")
        parts = exercise_parts(cells[ex.prompt_index].source)
        if parts > MAX_PARTS:
            problems.append(f"{where}, exercise {ex.number} ({ex.title}): {parts} parts; split it "
                            f"(at most {MAX_PARTS})")
        if parts > 1 and not ex.hint_indices:
            problems.append(f"{where}, exercise {ex.number} ({ex.title}): {parts} parts but no '{HINT_TAG}' cell")
    for i, c in enumerate(cells):
        if c.cell_type == "code" and re.search(r"matplotlib\.use\(|^\s*%matplotlib", c.source, re.M):
            problems.append(f"{where}, cell {i}: sets a matplotlib backend (the runner does)")
    return problems


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names stored, names loaded) in a code cell; IPython magics make it unparsable → empty."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(), set()
    stored, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (stored if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stored.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                stored.add((a.asname or a.name).split(".")[0])
    return stored, loaded


def _check_solutions_are_leaves(nb: Any, exercises: list[Exercise], where: str) -> None:
    solution_cells = {i for ex in exercises for i in ex.solution_indices}
    defined_elsewhere: set[str] = set()
    only_in_solutions: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        stored, loaded = _names(cell.source)
        if i in solution_cells:
            for n in stored - defined_elsewhere:
                only_in_solutions.setdefault(n, i)
            continue
        used = sorted(n for n in loaded - stored if n in only_in_solutions and n not in defined_elsewhere)
        if used:
            n = used[0]
            raise HandoutError(
                f"{where}, cell {i} uses '{n}', which only the solution in cell {only_in_solutions[n]} "
                f"defines: the student version would fail there. Keep solutions as leaves (give their "
                f"variables their own names, e.g. ex1_{n}) or compute '{n}' outside the solution.")
        defined_elsewhere |= stored


def _clean(cell: Any) -> Any:
    c = copy.deepcopy(cell)
    if c.cell_type == "code":
        c.outputs = []
        c.execution_count = None
    c.metadata.pop("execution", None)
    c.metadata.pop("papermill", None)
    return c


def _placeholder(ex: Exercise) -> Any:
    import nbformat  # lazy: ~0.5 s of import that `ecrm --help` (which imports this module) does not need

    label = f"Exercise {ex.number} ({ex.title})"
    source = (f"# YOUR TURN - Exercise {ex.number}: {ex.title}\n"
              f"# Replace the your_turn(...) line with your code, then run the cell.\n"
              f"from ecrm_research.report.handout import your_turn\n"
              f"your_turn({label!r})\n")
    return nbformat.v4.new_code_cell(source, metadata={"tags": [PLACEHOLDER_TAG]})


def _strip_notebook(nb: Any) -> Any:
    out = copy.deepcopy(nb)
    out.metadata.pop("papermill", None)
    return out


def student_version(nb: Any, *, where: str = "notebook") -> Any:
    """Copy of `nb` without outputs where each exercise's solution cells are replaced by one
    placeholder cell (tag ``your-turn``) that calls :func:`your_turn`."""
    exercises = find_exercises(nb, where=where)
    # the placeholder goes after the prompt's hints (or the prompt itself)
    by_prompt = {(ex.hint_indices[-1] if ex.hint_indices else ex.prompt_index): ex for ex in exercises}
    drop = {i for ex in exercises for i in ex.solution_indices}
    out = _strip_notebook(nb)
    cells = []
    for i, cell in enumerate(nb.cells):
        if i in drop:
            continue
        cells.append(_clean(cell))
        if i in by_prompt:
            cells.append(_placeholder(by_prompt[i]))
    out.cells = cells
    out.metadata["ecrm_handout"] = {"version": "student", "exercises": len(exercises)}
    return out


def teacher_version(nb: Any, *, where: str = "notebook") -> Any:
    """Copy of `nb` without outputs, solution code cells headed ``# SOLUTION - Exercise N``."""
    exercises = find_exercises(nb, where=where)
    out = _strip_notebook(nb)
    out.cells = [_clean(c) for c in nb.cells]
    for ex in exercises:
        for i in ex.hint_indices:
            c = out.cells[i]
            if not c.source.startswith("**Hint"):
                c.source = f"**Hint - Exercise {ex.number}**\n\n{c.source}"
        for i in ex.solution_indices:
            c = out.cells[i]
            head = (f"# SOLUTION - Exercise {ex.number}" if c.cell_type == "code"
                    else f"**Solution - Exercise {ex.number}**")
            if not c.source.startswith(head):
                c.source = f"{head}\n{c.source}" if c.cell_type == "code" else f"{head}\n\n{c.source}"
    out.metadata["ecrm_handout"] = {"version": "teacher", "exercises": len(exercises)}
    return out


def write_handouts(out_dir: str | Path, notebooks_dir: str | Path | None = None) -> list[HandoutResult]:
    """Write student handouts and teacher keys of every analysis notebook.

    Parameters
    ----------
    out_dir : str or Path
        Target folder; ``student/`` and ``teacher/`` are (re)written inside it.
    notebooks_dir : str or Path, optional
        Folder of the ``NN_name.ipynb`` notebooks; default ``notebooks/``.

    Returns
    -------
    list of HandoutResult
        One per notebook, in ``NN`` order. A notebook without exercises is copied unchanged
        (without outputs) and reported with ``n_exercises == 0``.

    Raises
    ------
    HandoutError
        A notebook breaks the exercise convention (nothing is written for it or later ones).
    """
    import nbformat  # lazy: ~0.5 s of import that `ecrm --help` (which imports this module) does not need


    out = Path(out_dir).expanduser().resolve()
    books = list_notebooks(notebooks_dir)
    student_dir, teacher_dir = out / "student", out / "teacher"
    prepared = []
    for name, src in books.items():
        nb = nbformat.read(str(src), as_version=4)
        prepared.append((name, src, student_version(nb, where=src.name), teacher_version(nb, where=src.name),
                         find_exercises(nb, where=src.name)))
    student_dir.mkdir(parents=True, exist_ok=True)
    teacher_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name, src, student, teacher, exercises in prepared:
        s_path, t_path = student_dir / src.name, teacher_dir / src.name
        nbformat.validate(student)
        nbformat.write(student, str(s_path))
        nbformat.write(teacher, str(t_path))
        results.append(HandoutResult(name, src, s_path, t_path, exercises))
        if exercises and any(not ex.solution_indices for ex in exercises):
            missing = [ex.number for ex in exercises if not ex.solution_indices]
            warnings.warn(f"{src.name}: exercise(s) {missing} have no solution cell; the teacher key "
                          f"shows the prompt only.", UserWarning, stacklevel=2)
    _write_readme(out, results)
    return results


def _write_readme(out: Path, results: list[HandoutResult]) -> None:
    lines = ["# Course handouts", "",
             "* `student/` - notebooks to hand out: each exercise has a *YOUR TURN* cell to fill in, after "
             "its hints (exercises with several parts always have them).",
             "* `teacher/` - the key: the same notebooks with the solutions, each answered in words.", "",
             "Both run end to end: `ecrm run all --notebooks-dir student --out reports-student`.",
             "Unfilled exercises print a reminder; `ECRM_STRICT_EXERCISES=1` makes them fail instead.", "",
             "| notebook | exercises |", "|---|---|"]
    for r in results:
        titles = "; ".join(f"{ex.number}. {ex.title}" for ex in r.exercises) or "(none yet)"
        lines.append(f"| `{r.source.name}` | {titles} |")
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
