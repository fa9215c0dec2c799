"""Safe reports (issue 14, item 10): user-controlled text never runs as script or spreadsheet formula.

* :func:`report.display.escape_md` -- user text in notebook ``Markdown`` displays renders as text;
* reports that need no script carry a Content-Security-Policy forbidding scripts, and the PDF
  printer runs Chromium with JavaScript off for them;
* CSV tables neutralise text cells a spreadsheet would run as a formula (OWASP CSV injection);
  Parquet keeps the exact values.

The end-to-end test runs the association notebook on a basket file whose *name* is an HTML
payload and whose items are HTML and spreadsheet-formula payloads.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import skip_or_fail
from nbconvert.filters.markdown import markdown2html

from ecrm_research.report import pdf, render, site
from ecrm_research.report.display import escape_md
from ecrm_research.report.outputs import FORMULA_PREFIXES, ReportOutputs, neutralise_formulas

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "[click](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "**bold** _it_ `code` # not a heading | a | b |",
    "line one\n\n<iframe src=javascript:alert(1)>\r\nline two",
    "&lt;img src=x onerror=alert(1)&gt; already an entity",
    "back\\slash \\<b>x</b> and \\`tick\\`",
    "<http://evil.example> www.evil.example",
]


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML fragment or page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    p.close()
    return p


def _assert_no_active_content(html: str, where: str) -> None:
    """No event-handler attribute, no ``javascript:`` URL and no script/iframe/svg/object tag."""
    parsed = _parse(html)
    for tag, attrs in parsed.tags:
        handlers = [a for a in attrs if a.lower().startswith("on")]
        assert not handlers, f"{where}: <{tag}> has event handler(s) {handlers}"
        for a in ("href", "src", "action", "formaction"):
            assert not (attrs.get(a) or "").strip().lower().startswith("javascript:"), f"{where}: <{tag} {a}=...>"
        assert tag not in ("iframe", "svg", "object", "embed"), f"{where}: <{tag}> in the page"
        assert not (tag == "img" and attrs.get("src") == "x"), f"{where}: the payload's <img src=x> is a tag"


# --------------------------------------------------------------------------- escape_md


@pytest.mark.parametrize("value", HOSTILE)
def test_escape_md_renders_as_the_text_itself(value):
    html = markdown2html(f"Data: **{escape_md(value)}** end")  # the filter nbconvert renders Markdown output with
    _assert_no_active_content(html, repr(value))
    assert [t for t, _ in _parse(html).tags] == ["p", "strong"]  # no tag, link, code or heading from the value
    expected = re.sub(r"[\r\n]+", " ", value)
    assert "".join(_parse(html).text).strip() == f"Data: {expected} end"


def test_unescaped_payload_would_run_the_escaping_is_needed():
    """Guards the test above: nbconvert passes raw HTML in Markdown output through unchanged."""
    raw = markdown2html("Data: **<img src=x onerror=alert(1)>**")
    assert any(tag == "img" and "onerror" in attrs for tag, attrs in _parse(raw).tags)


def test_escape_md_of_plain_values_reads_the_same():
    assert escape_md(None) == "None" and escape_md(0.05) == "0\\.05" and escape_md("milk") == "milk"
    assert "".join(_parse(markdown2html(escape_md("data/orders 2024.csv"))).text).strip() == "data/orders 2024.csv"


# --------------------------------------------------------------------------- CSV formulas


def test_neutralise_formulas_prefixes_each_dangerous_start_and_nothing_else():
    cells = ['=HYPERLINK("http://evil.example/x")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
             "@SUM(A1:A2)", "\tTAB", "\rCR"]
    safe = ["milk", "a=b", "", " =x (leading space)", "-3", "+1.5e-4", "−minus sign (U+2212)"]
    df = pd.DataFrame({"item": cells + safe,
                       "count": np.arange(-6, len(cells) + len(safe) - 6),
                       "lift": np.linspace(-1.5, 2.0, len(cells) + len(safe))})
    out = neutralise_formulas(df)
    assert out["item"].tolist() == ["'" + c for c in cells] + safe
    assert all(c.startswith(FORMULA_PREFIXES) for c in cells)
    pd.testing.assert_series_equal(out["count"], df["count"])  # numbers never touched
    pd.testing.assert_series_equal(out["lift"], df["lift"])
    assert df["item"].iloc[0] == cells[0]  # the input is not modified


def test_neutralise_formulas_numbers_inside_text_columns_and_missing_values_stay():
    df = pd.DataFrame({"mixed": [-5, -0.5, "=1+1", None, np.nan, "@x"],
                       "cat": pd.Categorical(["-a", "b", "-a", "b", "c", "=c"])})
    out = neutralise_formulas(df)
    assert out["mixed"].iloc[:2].tolist() == [-5, -0.5] and out["mixed"].iloc[2] == "'=1+1"
    assert out["mixed"].iloc[3] is None and np.isnan(out["mixed"].iloc[4]) and out["mixed"].iloc[5] == "'@x"
    assert out["cat"].tolist() == ["'-a", "b", "'-a", "b", "c", "'=c"]


def test_neutralise_formulas_covers_column_names_and_index_and_returns_same_frame_when_clean():
    df = pd.DataFrame({"=cmd": [1], "ok": ["x"]}, index=pd.Index(["+a"], name="item"))
    out = neutralise_formulas(df, index=True)
    assert list(out.columns) == ["'=cmd", "ok"] and out.index.tolist() == ["'+a"]
    assert neutralise_formulas(df).index.tolist() == ["+a"]  # index only when written
    clean = pd.DataFrame({"a": ["x", "-1"], "b": [-1.0, 2.0]})
    assert neutralise_formulas(clean) is clean


def test_report_table_neutralises_the_csv_and_keeps_parquet_exact(tmp_path):
    items = ['=HYPERLINK("http://evil.example/x")', "@SUM(A1:A2)", "milk"]
    df = pd.DataFrame({"product": items, "recommend": [frozenset({"+cmd|x", "tea"}), frozenset({"bread"}),
                                                       frozenset({"-rm"})], "lift": [-1.25, 0.5, 3.0]})
    out = ReportOutputs(tmp_path, "t")
    path = out.table(df, "cross", parquet=True)
    csv = pd.read_csv(path, keep_default_na=False)
    assert csv["product"].tolist() == ["'" + items[0], "'" + items[1], "milk"]
    assert csv["recommend"].tolist() == ["'+cmd|x|tea", "bread", "'-rm"]  # joined itemsets: first item decides
    assert csv["lift"].tolist() == [-1.25, 0.5, 3.0]
    pq = pd.read_parquet(tmp_path / "tables" / "cross.parquet")
    assert pq["product"].tolist() == items
    assert [sorted(v) for v in pq["recommend"]] == [["+cmd|x", "tea"], ["bread"], ["-rm"]]


def test_report_table_bytes_unchanged_for_harmless_text(tmp_path):
    df = pd.DataFrame({"segment": ["Champions", "At risk"], "z": [-1.5, 2.25], "n": [-3, 4], "code": ["-3", "x"]})
    path = ReportOutputs(tmp_path, "t").table(df, "plain")
    assert path.read_bytes() == df.to_csv(index=False, float_format="%.12g").encode()


# --------------------------------------------------------------------------- no scripts in reports


def test_reports_without_math_forbid_scripts_and_drop_cdn_loaders(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\nNo math here."),
                nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/markdown": "Data: **" + escape_md(HOSTILE[0]) + "**",
                                          "text/plain": "x"})])]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    paths = render.render_reports(path, tmp_path)
    for kind, p in paths.items():
        html = p.read_text(encoding="utf-8")
        assert render.NO_SCRIPT_CSP in html.split("</head>")[0], kind
        assert "<script" not in html.lower(), kind  # nbconvert's require.js, MathJax and Mermaid loaders gone
        assert not render.needs_scripts(html)
        _assert_no_active_content(html, kind)
        assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the value is shown, as text


def test_forbid_scripts_and_needs_scripts():
    page = '<!DOCTYPE html><html><head><meta charset="utf-8"/><title>t</title></head><body>x</body></html>'
    safe = render.forbid_scripts(page)
    assert safe.index(render.NO_SCRIPT_CSP) < safe.index("<title>") and render.forbid_scripts(safe) == safe
    assert render.needs_scripts(page.replace("x</body>", "<script src='mathjax.js'></script></body>"))
    assert not render.needs_scripts(page)


def test_chromium_sandbox_is_dropped_only_for_root_or_on_request(monkeypatch):
    monkeypatch.delenv("ECRM_CHROMIUM_SANDBOX", raising=False)
    monkeypatch.setattr(pdf.os, "geteuid", lambda: 1000)
    assert pdf.chromium_sandbox() is True and "--no-sandbox" not in pdf.chromium_flags("/tmp/p")
    monkeypatch.setattr(pdf.os, "geteuid", lambda: 0)
    assert pdf.chromium_sandbox() is False and "--no-sandbox" in pdf.chromium_flags("/tmp/p")
    monkeypatch.setattr(pdf.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("ECRM_CHROMIUM_SANDBOX", "0")
    assert "--no-sandbox" in pdf.chromium_flags("/tmp/p")
    assert "--no-sandbox" not in pdf.chromium_flags("/tmp/p", sandbox=True)


_GROW = ("for (let i = 0; i < 300; i++) { const p = document.createElement('p'); "
         "p.textContent = 'SCRIPT RAN ' + i; document.body.appendChild(p); }")


def _pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


def test_pdf_printer_runs_no_script_of_a_report(tmp_path):
    """A payload that slipped into a report (an ``onerror`` handler adding 300 paragraphs) does
    not run when printing: one page, as the static text; with a script the report needs (MathJax
    stand-in) JavaScript stays on and the same code does run (11 pages)."""
    if pdf.find_chromium() is None:
        skip_or_fail(f"headless Chromium is needed for the PDF test: {pdf.INSTALL_HINT}")
    hostile = tmp_path / "hostile.html"
    hostile.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><p>static</p>'
                       f'<img src="x" onerror="{_GROW}"></body></html>', encoding="utf-8")
    needs = tmp_path / "needs.html"
    needs.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><p>static</p>'
                     f'<script>{_GROW}</script></body></html>', encoding="utf-8")
    one_shot = pdf.print_pdf(hostile, tmp_path / "a.pdf")
    assert one_shot.status == "ok" and one_shot.scripts is False, one_shot
    assert _pages(tmp_path / "a.pdf") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "hostile.html", "needs.html"]  # copy removed
    with pdf.PdfPrinter() as printer:
        r = printer.print(hostile, tmp_path / "b.pdf")
        assert r.status == "ok" and r.scripts is False and _pages(tmp_path / "b.pdf") == 1, r
        r = printer.print(needs, tmp_path / "c.pdf")
        assert r.status == "ok" and r.scripts is True and _pages(tmp_path / "c.pdf") > 5, r
        r = printer.print(hostile, tmp_path / "d.pdf")  # scripts off again after a page that needed them
        assert r.status == "ok" and _pages(tmp_path / "d.pdf") == 1, r


# --------------------------------------------------------------------------- end to end


def _hostile_baskets(folder: Path) -> tuple[Path, dict[str, str]]:
    items = {"link": '=HYPERLINK("http://evil.example/x")', "sum": "@SUM(A1:A2)", "cmd": "+cmd|' /C calc'!A0",
             "html": "<img src=x onerror=alert(1)>"}
    lines = ([f"{items['link']},milk"] * 20 + [f"{items['sum']},{items['html']}"] * 20
             + [f"{items['cmd']},bread,milk"] * 15 + ["bread,tea"] * 10 + ["tea"] * 5)
    path = folder / "<img src=x onerror=alert(1)>.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, items


@pytest.mark.notebook
def test_association_report_escapes_hostile_file_and_item_names(run_nb, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data, items = _hostile_baskets(data_dir)
    out = run_nb("association", data=str(data), data_format="baskets",
                 params={"min_support": 0.1, "min_confidence": 0.5, "max_len": 2})
    for name in ("report.html", "report_student.html"):
        html = (out / name).read_text(encoding="utf-8")
        _assert_no_active_content(html, name)
        assert render.NO_SCRIPT_CSP in html and "<script" not in html.lower(), name
        assert "&lt;img src=x onerror=alert(1)&gt;.csv" in html, name  # the file name is shown, as text
    # spreadsheets: formulas neutralised in the CSVs, exact in Parquet
    rules = pd.read_csv(out / "tables" / "rules.csv", keep_default_na=False)
    cells = set(rules["antecedents"]) | set(rules["consequents"])
    assert "'" + items["link"] in cells and "'" + items["sum"] in cells and "'" + items["cmd"] in cells
    assert not any(str(c).startswith(FORMULA_PREFIXES) for c in cells)
    cross = pd.read_csv(out / "tables" / "cross_sell.csv", keep_default_na=False)
    assert {"'" + items["link"], "'" + items["sum"], "'" + items["cmd"]} <= set(cross["product"])
    assert not any(str(c).startswith(FORMULA_PREFIXES) for col in ("product", "recommend") for c in cross[col])
    pq = pd.read_parquet(out / "tables" / "rules.parquet")
    exact = {i for col in ("antecedents", "consequents") for v in pq[col] for i in v}
    assert {items["link"], items["sum"], items["cmd"], items["html"]} <= exact
    freq = pd.read_csv(out / "tables" / "item_frequencies.csv", keep_default_na=False)
    assert items["html"] in set(freq.iloc[:, 0])  # text that is no formula is written unchanged
    # the index shows the file name as text too
    index = site.write_index(out.parent, params={"data": str(data), "min_support": 0.1})
    page = index.read_text(encoding="utf-8")
    _assert_no_active_content(page, "index.html")
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in page
