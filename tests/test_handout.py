"""Course handouts: the exercise tag convention, student and teacher versions, both run end to end.

The lesson notebook in tests/notebooks/course/ has three exercises (one with a markdown and a code
solution); notebooks/00_overview.ipynb carries the first real ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ecrm_research.cli import main
from ecrm_research.paths import NOTEBOOKS_DIR
from ecrm_research.report import handout
from ecrm_research.report.handout import HandoutError, find_exercises, student_version, teacher_version, write_handouts
from ecrm_research.report.runner import run_all

COURSE = Path(__file__).parent / "notebooks" / "course"


def _nb(*cells):
    nb = new_notebook()
    nb.cells = list(cells)
    return nb


def _sources(nb, tag):
    return [c.source for c in nb.cells if tag in c.metadata.get("tags", [])]


def test_student_version_replaces_each_solution_group_by_one_placeholder():
    nb = nbformat.read(COURSE / "01_lesson.ipynb", as_version=4)
    exercises = find_exercises(nb)
    assert [ex.title for ex in exercises] == ["the biggest spender", "average basket", "discuss"]
    assert [len(ex.solution_indices) for ex in exercises] == [1, 1, 2]
    student = student_version(nb)
    text = json.dumps(student.cells)
    assert "SOLUTION_MARKER" not in text and "amounts are skewed" not in text
    placeholders = _sources(student, handout.PLACEHOLDER_TAG)
    assert len(placeholders) == 3
    assert "Exercise 2: average basket" in placeholders[1] and "your_turn(" in placeholders[1]
    # each placeholder directly follows its prompt; prompts and the parameters cell are kept
    for i, c in enumerate(student.cells):
        if handout.PLACEHOLDER_TAG in c.metadata.get("tags", []):
            assert {"exercise", "hint"} & set(student.cells[i - 1].metadata.get("tags", []))
    assert len(_sources(student, "exercise")) == 3 and len(_sources(student, "parameters")) == 1
    assert len(student.cells) == len(nb.cells) - 4 + 3
    assert student.metadata["ecrm_handout"] == {"version": "student", "exercises": 3}
    nbformat.validate(student)


def _md(text, *tags):
    return new_markdown_cell(text, metadata={"tags": list(tags)})


def test_hints_stay_in_the_student_version_before_the_placeholder_and_are_labelled_in_the_key():
    nb = _nb(_md("**Exercise 1: Two parts.**\n\n1. count rows\n2. sum them", "exercise"),
             _md("Part 1: `len(df)`. Part 2: `df.sum()`.", "hint"),
             new_code_cell("ex1 = 1", metadata={"tags": ["solution"]}),
             _md("The answer is one. Any count works.", "solution"))
    (ex,) = find_exercises(nb)
    assert ex.hint_indices == [1] and ex.solution_indices == [2, 3]
    student = student_version(nb)
    assert [c.metadata.get("tags", []) for c in student.cells] == [["exercise"], ["hint"], ["your-turn"]]
    teacher = teacher_version(nb)
    assert teacher.cells[1].source.startswith("**Hint - Exercise 1**")


def test_hint_after_a_solution_or_on_code_is_rejected():
    late = _nb(_md("**Exercise 1: X.**", "exercise"), new_code_cell("x = 1", metadata={"tags": ["solution"]}),
               _md("too late", "hint"))
    with pytest.raises(HandoutError, match="cell 2: a 'hint' cell must come right after"):
        find_exercises(late)
    code = _nb(_md("**Exercise 1: X.**", "exercise"), new_code_cell("x = 1", metadata={"tags": ["hint"]}))
    with pytest.raises(HandoutError, match="cell 1: the 'hint' tag belongs on a markdown cell"):
        find_exercises(code)


def test_teaching_problems_name_each_missing_piece():
    good = _nb(_md("# Title"), _md("### Learning objectives\n- a\n### Prerequisites\n- b", "objectives"),
               _md("**Exercise 1: Two parts.**\n\n1. count\n2. sum", "exercise"), _md("Hints.", "hint"),
               new_code_cell("ex1 = 1", metadata={"tags": ["solution"]}),
               _md("It is one. A student who says two miscounted.", "solution"),
               _md("## Key takeaways\n- c", "takeaways"))
    assert handout.teaching_problems(good) == []
    bad = _nb(_md("# Title"), _md("**Exercise 1: Five parts.**\n\n1. a\n2. b\n3. c\n4. d\n5. e", "exercise"),
              new_code_cell("import matplotlib\nmatplotlib.use('Agg')\nex1 = 1", metadata={"tags": ["solution"]}),
              _md("## Summary"))
    problems = " | ".join(handout.teaching_problems(bad, where="nb"))
    for expected in ("no markdown cell tagged 'objectives'", "tagged 'takeaways'", "no written answer",
                     "5 parts; split it", "5 parts but no 'hint' cell", "cell 2: sets a matplotlib backend"):
        assert expected in problems, (expected, problems)


def test_teacher_version_keeps_and_labels_solutions():
    nb = nbformat.read(COURSE / "01_lesson.ipynb", as_version=4)
    teacher = teacher_version(nb)
    sols = _sources(teacher, "solution")
    assert len(sols) == 4
    assert sols[0].startswith("# SOLUTION - Exercise 1\n") and "SOLUTION_MARKER_1" in sols[0]
    assert sols[2].startswith("**Solution - Exercise 3**")
    assert not _sources(teacher, handout.PLACEHOLDER_TAG)


def test_solution_without_prompt_is_rejected():
    nb = _nb(new_markdown_cell("intro"), new_code_cell("x = 1", metadata={"tags": ["solution"]}))
    with pytest.raises(HandoutError, match="cell 1: a 'solution' cell must follow"):
        find_exercises(nb, where="x.ipynb")


def test_exercise_tag_on_code_cell_is_rejected():
    nb = _nb(new_code_cell("x = 1", metadata={"tags": ["exercise"]}))
    with pytest.raises(HandoutError, match="belongs on the markdown prompt"):
        find_exercises(nb)


def test_later_cell_using_a_solution_only_name_is_rejected():
    """The student version would fail with NameError in cell 3."""
    nb = _nb(new_markdown_cell("**Exercise 1: x.**", metadata={"tags": ["exercise"]}),
             new_code_cell("answer = 41 + 1", metadata={"tags": ["solution"]}),
             new_code_cell("y = 2"),
             new_code_cell("print(answer, y)"))
    with pytest.raises(HandoutError, match=r"cell 3 uses 'answer'.*cell 1"):
        find_exercises(nb)


def test_name_defined_outside_solutions_too_is_fine():
    nb = _nb(new_code_cell("total = 0"),
             new_markdown_cell("**Exercise 1: x.**", metadata={"tags": ["exercise"]}),
             new_code_cell("total = 5", metadata={"tags": ["solution"]}),
             new_code_cell("print(total)"))
    assert len(find_exercises(nb)) == 1


def test_your_turn_prints_and_raises_only_in_strict_mode(capsys, monkeypatch):
    monkeypatch.delenv("ECRM_STRICT_EXERCISES", raising=False)
    handout.your_turn("Exercise 1 (x)")
    assert "Your turn: Exercise 1 (x) is not done yet" in capsys.readouterr().out
    monkeypatch.setenv("ECRM_STRICT_EXERCISES", "1")
    with pytest.raises(NotImplementedError, match="Your turn: Exercise 1"):
        handout.your_turn("Exercise 1 (x)")


@pytest.mark.notebook
def test_handouts_run_end_to_end_and_reports_hide_solutions(tmp_path, capsys):
    assert main(["handout", "--out", str(tmp_path / "h"), "--notebooks-dir", str(COURSE)]) == 0
    out = capsys.readouterr().out
    assert "lesson         3 exercise(s)" in out
    student_nb = tmp_path / "h" / "student" / "01_lesson.ipynb"
    assert student_nb.is_file() and (tmp_path / "h" / "teacher" / "01_lesson.ipynb").is_file()
    assert "average basket" in (tmp_path / "h" / "README.md").read_text()
    # the student version runs: placeholders remind, they do not fail
    student_res = run_all("all", out=tmp_path / "rs", notebooks_dir=student_nb.parent, progress=False, pdf=False)
    assert [r.status for r in student_res] == ["ok"], student_res[0].error
    executed = json.dumps(nbformat.read(tmp_path / "rs" / "lesson" / "lesson.ipynb", as_version=4).cells)
    assert executed.count("Your turn: Exercise") == 3
    # the teacher key runs and computes the solutions
    teacher_res = run_all("all", out=tmp_path / "rt", notebooks_dir=tmp_path / "h" / "teacher",
                          progress=False, pdf=False)
    assert teacher_res[0].ok, teacher_res[0].error
    reader = (tmp_path / "rt" / "lesson" / "report.html").read_text()
    student_report = (tmp_path / "rt" / "lesson" / "report_student.html").read_text()
    executed = json.dumps(nbformat.read(tmp_path / "rt" / "lesson" / "lesson.ipynb", as_version=4).cells)
    assert "SOLUTION_MARKER_1 c" in executed  # customer c has the 1,234,567.89 order
    # reader report: no exercises at all; student report: prompts, but no solutions
    assert "biggest spender" not in reader and "SOLUTION_MARKER" not in reader
    assert "biggest spender" in student_report and "SOLUTION_MARKER" not in student_report
    assert "celltag_exercise" in student_report


def test_strict_mode_makes_unfilled_student_notebook_fail(tmp_path, monkeypatch):
    write_handouts(tmp_path / "h", notebooks_dir=COURSE)
    monkeypatch.setenv("ECRM_STRICT_EXERCISES", "1")  # inherited by the kernel
    res = run_all("all", out=tmp_path / "r", notebooks_dir=tmp_path / "h" / "student", progress=False, pdf=False)
    assert res[0].status == "failed" and res[0].error.startswith("NotImplementedError: Your turn: Exercise 1")


def test_overview_notebook_has_three_exercises_with_solutions_and_no_outputs():
    nb = nbformat.read(NOTEBOOKS_DIR / "00_overview.ipynb", as_version=4)
    exercises = find_exercises(nb, where="00_overview.ipynb")
    assert len(exercises) >= 3
    assert all(ex.solution_indices for ex in exercises)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1


def test_every_analysis_notebook_follows_the_exercise_convention(tmp_path):
    """write_handouts checks each notebook (prompt/solution order, solutions are leaves)."""
    results = write_handouts(tmp_path, notebooks_dir=NOTEBOOKS_DIR)
    assert results and results[0].name == "overview" and results[0].n_exercises >= 3
    for r in results:
        nbformat.validate(nbformat.read(r.student, as_version=4))


@pytest.mark.notebook
@pytest.mark.skipif(os.environ.get("ECRM_SLOW_TESTS") == "0", reason="ECRM_SLOW_TESTS=0")
def test_overview_student_handout_runs_end_to_end(tmp_path, sample_dir):
    results = write_handouts(tmp_path / "h", notebooks_dir=NOTEBOOKS_DIR)
    student_dir = results[0].student.parent
    res = run_all(["overview"], out=tmp_path / "r", notebooks_dir=student_dir, progress=False, pdf=False)
    assert res[0].ok, res[0].error
    executed = json.dumps(nbformat.read(res[0].notebook, as_version=4).cells)
    assert executed.count("Your turn: Exercise") == 3
    assert (tmp_path / "r" / "overview" / "tables" / "decisions.csv").is_file()
