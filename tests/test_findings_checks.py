"""The findings check (tests/findings_checks.py) catches what it is meant to catch."""

from __future__ import annotations

import json

import nbformat
from findings_checks import finding_problems, numbers


def _folder(tmp_path, findings: list[str], body: str):
    folder = tmp_path / "demo"
    folder.mkdir(parents=True)
    (folder / "findings.json").write_text(json.dumps(
        {"findings": [{"key": f"k{i}", "value": None, "text": t} for i, t in enumerate(findings)]}))
    nb = nbformat.v4.new_notebook()
    table = nbformat.v4.new_code_cell("show(table)")
    table.outputs = [nbformat.v4.new_output("display_data", data={"text/html": body})]
    record = nbformat.v4.new_code_cell("out.finding('k0', 1, text)")
    record.outputs = [nbformat.v4.new_output("stream", text="\n".join(findings))]  # not the body
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo"), table, record]
    nbformat.write(nb, folder / "demo.ipynb")
    return folder


def test_numbers_read_separators_percentages_and_exponents():
    assert [(v, d) for _, v, d in numbers("1,118 of 1,121 (99.7%), p = 6.6e-22, HR −0.84")] == \
        [(1118.0, 0), (1121.0, 0), (99.7, 1), (6.6e-22, 0), (-0.84, 2)]


def test_number_in_a_table_passes_at_the_findings_precision(tmp_path):
    folder = _folder(tmp_path, ["indirect effect 0.202; 7.4% of baskets; 1,118 rules"],
                     "<table><td>0.2021</td><td>0.0742</td><td>1118</td></table>")
    assert finding_problems(folder) == []


def test_number_only_in_the_findings_cell_is_reported(tmp_path):
    folder = _folder(tmp_path, ["indirect effect 0.202"], "<table><td>0.19</td></table>")
    assert finding_problems(folder) == ["demo/k0: 0.202 is not in the report body: 'indirect effect 0.202'"]


def test_zero_p_value_and_python_booleans_are_reported(tmp_path):
    folder = _folder(tmp_path, ["log-rank p = 0", "median False: 418 days"], "418")
    problems = finding_problems(folder)
    assert len(problems) == 2
    assert "p-value stated as 0" in problems[0] and "Python boolean" in problems[1]
    assert finding_problems(_folder(tmp_path / "b", ["p < 1e-300; p = 0.03"], "0.03")) == []
