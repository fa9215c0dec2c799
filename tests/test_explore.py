"""The interactive page (ecrm_research.report.explore, ``explore.html``) and the ReportOutputs methods
that write it and show tables: offline assets, one DataTable per table, escaping, replacement,
values, and (with Chromium) the page working in a browser."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import skip_or_fail

from ecrm_research.report import outputs as outputs_mod
from ecrm_research.report.explore import (
    ASSETS_DIR,
    EXPLORE_PAGE,
    ExploreItem,
    explore_anchor,
    explore_figure_html,
    explore_table_html,
    write_explore_page,
)
from ecrm_research.report.outputs import ReportOutputs
from ecrm_research.report.tables import default_currency, set_default_currency

go = pytest.importorskip("plotly.graph_objects")
pytest.importorskip("itables")

BREAK = "</script><script>alert(1)</script>"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _restore_currency():
    before = default_currency()
    yield
    set_default_currency(before)


def dt_args(fragment: str, table_id: str) -> dict:
    """The DataTables arguments itables embedded for `table_id` (data rows and header HTML)."""
    start = fragment.index(f'querySelectorAll("#{table_id}:not(.dataTable)")')
    m = re.search(r"let dt_args = (\{.*?\n\s*\});", fragment[start:], re.S)
    args = json.loads(m.group(1))
    args["rows"] = json.loads(args["data_json"])
    args["headers"] = re.findall(r"<th>(.*?)</th>", args["table_html"].split("<tfoot>")[0])
    return args


def cell(v):
    """A DataTables cell value; a missing number arrives as itables' "___NaN___" (NaN in the page)."""
    return None if v == "___NaN___" else v


def rules_frame(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "antecedents": [frozenset({"milk"}), frozenset({"bread", "butter"}), frozenset({BREAK})][:n],
        "consequents": [["eggs"], ["jam"], [XSS]][:n],
        "support": [0.0742, 0.5, 0.00031][:n], "confidence": [0.4, 0.99996, 1.0][:n],
        "lift": [1.23456, 2.0, np.nan][:n], "n_baskets": [2968, 12, 1][:n],
        "expected_revenue": [123456.784, 1.5, 0.0][:n], "p_value": [0.0, 0.0412, 3e-5][:n],
    })


def scatter(hover: str = BREAK):
    return go.Figure(go.Scatter(x=[1, 2, 3], y=[2, 1, 3], mode="markers", hovertext=[hover, XSS, "milk"],
                                name=XSS))


# --------------------------------------------------------------------------- the page


def test_page_is_offline_with_one_datatable_per_table(tmp_path):
    items = [ExploreItem("rules", "Association rules", "All rules.", explore_table_html(rules_frame(), "rules")),
             ExploreItem("at risk", "Customers at risk", None,
                         explore_table_html(pd.DataFrame({"customer_id": [1, 2], "p_churn": [0.2, 0.7]}), "at risk"))]
    page_path = write_explore_page(tmp_path, "Association", items)
    assert page_path == tmp_path / EXPLORE_PAGE
    page = page_path.read_text(encoding="utf-8")
    # no script from the network: DataTables is bundled into the page, nothing from a CDN
    assert not re.search(r"<script[^>]*\bsrc=[\"']?(https?:)?//", page, re.I)
    assert not re.search(r"<link[^>]*href=[\"']?(https?:)?//", page, re.I)
    assert "window._itables_" in page and len(page) > 200_000  # the offline DataTables bundle, inline
    assert page.count("new ITable(table, dt_args)") == 2
    for table_id in ("tbl-rules", "tbl-at-risk"):
        assert page.count(f'<table id="{table_id}"') == 1
    assert '<section class="ecrm-explore" id="rules">' in page and 'id="at-risk"' in page
    assert '<a href="#at-risk">Customers at risk</a>' in page
    assert '<a href="report.html">' in page and '<a href="../index.html">' in page
    assert not (tmp_path / ASSETS_DIR).exists()  # no figure: no plotly.js copied, none referenced
    assert "plotly" not in page.lower()


def test_plotly_is_copied_beside_the_page_and_referenced_relatively(tmp_path):
    import plotly

    fig_html = explore_figure_html(scatter(), "rule scatter")
    page = write_explore_page(tmp_path, "T", [ExploreItem("rule scatter", "Rules", None, fig_html, True)])
    text = page.read_text(encoding="utf-8")
    asset = tmp_path / ASSETS_DIR / f"plotly-{plotly.__version__}.min.js"
    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert asset.is_file() and asset.stat().st_size == src.stat().st_size
    assert f'<script src="{ASSETS_DIR}/plotly-{plotly.__version__}.min.js"></script>' in text
    assert text.count("<script src=") == 1
    assert 'id="plot-rule-scatter"' in text and "Plotly.newPlot(\"plot-rule-scatter\"" in text
    assert "window._itables_" not in text  # no table: no DataTables bundle
    # a second write keeps the copied asset (same size) and the page still points at it
    mtime = asset.stat().st_mtime_ns
    write_explore_page(tmp_path, "T", [ExploreItem("rule scatter", "Rules", None, fig_html, True)])
    assert asset.stat().st_mtime_ns == mtime


def test_markup_in_cells_names_hover_text_and_titles_cannot_escape(tmp_path):
    df = rules_frame().rename(columns={"lift": BREAK, "n_baskets": XSS})
    items = [ExploreItem(XSS, BREAK, XSS, explore_table_html(df, XSS)),
             ExploreItem("fig", XSS, BREAK, explore_figure_html(scatter(BREAK), "fig"), True)]
    page = write_explore_page(tmp_path, BREAK, items).read_text(encoding="utf-8")
    assert BREAK not in page and XSS not in page
    assert "</script><script>" not in page
    # itables' column-filter footer repeats the column names: escaped there too
    args = dt_args(page, f"tbl-{explore_anchor(XSS)}")
    assert "<img" not in args["table_html"] and "</script>" not in args["table_html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in args["table_html"].split("<tfoot>")[1]
    assert "<img" not in args["data_json"] and "</script" not in args["data_json"]
    # the figure JSON keeps the text (hover shows it) as JSON escapes
    spec = re.search(r"var spec = (\{.*?\});\n", page, re.S).group(1)
    assert json.loads(spec)["data"][0]["hovertext"][0] == BREAK


def test_values_shares_in_percent_numbers_numeric_text_readable():
    args = dt_args(explore_table_html(rules_frame(), "rules"), "tbl-rules")
    assert args["headers"] == ["antecedents", "consequents", "support (%)", "confidence (%)", "lift", "n_baskets",
                               "expected_revenue", "p_value"]
    # numbers are formatted in the page by kind; each numeric column has exactly one render function
    targets = sorted(t for d in args["columnDefs"] for t in d["targets"])
    assert targets == [2, 3, 4, 5, 6, 7] and all("function (data, type)" in d["render"] for d in args["columnDefs"])
    rows = [[cell(v) for v in r] for r in args["rows"]]
    assert rows[0][:2] == ["milk", "eggs"] and rows[1][0] == "bread, butter"  # itemsets as text, not reprs
    assert [r[2] for r in rows] == pytest.approx([7.42, 50.0, 0.031])
    assert rows[1][3] == pytest.approx(99.996)
    for r in rows:
        assert all(isinstance(v, (int, float)) for v in r[2:4])  # numbers, so they sort as numbers
    assert [r[5] for r in rows] == [2968, 12, 1]
    assert rows[0][4] == pytest.approx(1.235)  # 4 significant digits
    assert rows[0][6] == pytest.approx(123456.78, abs=0.006)  # money to the cent, not 123,500
    assert rows[2][4] is None  # NaN in the page, shown as an empty cell (browser test)
    joined = json.dumps(rows)
    for mark in ("frozenset(", "['", "<NA>"):
        assert mark not in joined


def test_big_floats_keep_their_integer_digits_and_bools_dates_are_text():
    df = pd.DataFrame({"mean_gap": [1234567.891, 0.000123456], "churned": [True, False],
                       "first_order": pd.to_datetime(["2024-01-05", None]), "n": pd.array([1, None], dtype="Int64")})
    rows = [[cell(v) for v in r] for r in dt_args(explore_table_html(df, "c"), "tbl-c")["rows"]]
    assert rows[0][0] == pytest.approx(1234567.89) and rows[1][0] == pytest.approx(0.0001235)
    assert [r[1] for r in rows] == ["yes", "no"]
    assert [r[2] for r in rows] == ["2024-01-05", ""]
    assert rows[0][3] == 1 and rows[1][3] is None and "<NA>" not in json.dumps(rows)


def test_a_long_table_is_capped_with_a_note():
    df = pd.DataFrame({"customer_id": range(120), "spend": np.arange(120.0)})
    out = explore_table_html(df, "customers", max_rows=100, csv_href="tables/customers.csv")
    assert len(dt_args(out, "tbl-customers")["rows"]) == 100
    assert "The first 100 of 120 rows" in out and 'href="tables/customers.csv"' in out
    # without a CSV written by the notebook there is nothing to link to
    bare = explore_table_html(df, "customers", max_rows=100)
    assert "The first 100 of 120 rows" in bare and "href=" not in bare.split("The first 100")[1]


# --------------------------------------------------------------------------- through ReportOutputs


def test_explore_money_carries_the_currency_and_a_hostile_code_stays_a_string():
    df = pd.DataFrame({"revenue": [1234.5, 20.0]})
    euro = explore_table_html(df, "r", currency="EUR")
    assert '\\"\\\\u20ac\\" + x.toLocaleString' in euro  # the JS literal "\u20ac", JSON-encoded once more
    assert ' CHF\\"' in explore_table_html(df, "r", currency="CHF")
    hostile = explore_table_html(df, "r", currency="</script><script>alert(1)</script>")
    assert "</script><script>alert(1)" not in hostile and "\\\\u003c/script" in hostile


def test_report_outputs_explore_replaces_an_item_of_the_same_name(tmp_path):
    out = ReportOutputs(tmp_path, "association", title="Association rules")
    first = out.explore_table(pd.DataFrame({"item": ["first_version"]}), "rules", title="Rules")
    out.explore_figure(scatter("hover"), "scatter", title="Rule scatter", description="Hover for details.")
    page = out.explore_table(pd.DataFrame({"item": ["second_version"]}), "rules", title="Rules v2")
    assert page == first == tmp_path / EXPLORE_PAGE
    text = page.read_text(encoding="utf-8")
    assert "second_version" in text and "first_version" not in text
    assert text.count('id="rules"') == 1 and text.count('<table id="tbl-rules"') == 1
    assert [i.name for i in out.explore_items] == ["scatter", "rules"]
    assert text.index('id="scatter"') < text.index('id="rules"')  # the order of first... last additions
    assert "Rules v2" in text and "Hover for details." in text and "<h1>Association rules: explore</h1>" in text
    assert (tmp_path / ASSETS_DIR).is_dir()


def test_report_outputs_shows_tables_and_explore_links_only_in_a_kernel(tmp_path, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(outputs_mod, "display", lambda obj: shown.append(obj.data))
    monkeypatch.setattr(outputs_mod, "_in_kernel", lambda: False)
    out = ReportOutputs(tmp_path, "segmentation", currency="EUR")
    df = pd.DataFrame({"segment": ["loyal", "new"], "revenue": [1234.5, 10.0], "n_customers": [1388, 12],
                       "internal_note": ["x", "y"]})
    out.table(df, "segments", show=True)
    assert shown == [] and (tmp_path / "tables" / "segments.csv").is_file()

    monkeypatch.setattr(outputs_mod, "_in_kernel", lambda: True)
    out.table(df, "segments", show=False)
    assert shown == []
    out.table(df, "segments", show=True, caption="Segments")
    assert len(shown) == 1
    html = shown[0]
    assert "€1,234.50" in html and "1,388" in html and "Segments" in html
    assert 'As CSV: <a href="tables/segments.csv">' in html
    out.table(df, "segments", show=df[["segment", "revenue"]], max_rows=1)
    assert "internal_note" not in shown[1] and "Showing the first 1 of 2 rows" in shown[1]
    assert '<a href="tables/segments.csv">' in shown[1]
    out.explore_table(df, "segments", title=XSS)
    assert 'href="explore.html#segments"' in shown[2] and XSS not in shown[2] and "2 rows" in shown[2]


def test_report_outputs_sets_the_session_currency(tmp_path):
    ReportOutputs(tmp_path, "overview", currency="GBP")
    assert default_currency() == "GBP"
    ReportOutputs(tmp_path, "overview")
    assert default_currency() is None


# --------------------------------------------------------------------------- in a browser


def test_explore_page_works_in_chromium(tmp_path):
    from ecrm_research.report.pdf import INSTALL_HINT, DevToolsBrowser, find_chromium

    exe = find_chromium()
    if exe is None:
        skip_or_fail(f"headless Chromium is needed for the explore page test: {INSTALL_HINT}")
    out = ReportOutputs(tmp_path, "association", title="Association")
    big = pd.DataFrame({"item": [f"item {i}" for i in range(60)], "lift": [1.5, np.nan, 2.0] * 20,
                        "support": np.linspace(0.01, 0.5, 60)})
    out.explore_table(rules_frame().rename(columns={"n_baskets": XSS}), "rules", title="Rules")
    out.explore_table(big, "items", title="Items")
    page = out.explore_figure(scatter(), "scatter", title="Scatter")

    browser = DevToolsBrowser(exe, ("--window-size=1280,1600",))
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable")
        browser.call("Page.addScriptToEvaluateOnNewDocument",
                     source="window.__alerts = 0; window.alert = () => { window.__alerts += 1; };")
        browser.load(page, settle_ms=100)
        state: dict = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            state = browser.call("Runtime.evaluate", returnByValue=True, expression="""({
                tables: document.querySelectorAll('table.dataTable').length,
                plots: document.querySelectorAll('.js-plotly-plot').length,
                points: document.querySelectorAll('.js-plotly-plot .scatterlayer .point').length})""")["result"]["value"]
            if state["tables"] >= 2 and state["plots"] >= 1:
                break
            time.sleep(0.1)
        assert state["tables"] == 2 and state["plots"] == 1 and state["points"] == 3, state
        shown = browser.call("Runtime.evaluate", returnByValue=True, expression="""[...document.querySelectorAll(
            '#tbl-rules tbody tr')].map(r => [...r.children].map(c => c.innerText))""")["result"]["value"]
        res = browser.call("Runtime.evaluate", returnByValue=True, awaitPromise=True, expression="""(async () => {
            const { jQuery: $ } = await window[Object.keys(window).find(k => k.startsWith('_itables_'))];
            const dt = $('#tbl-items').DataTable();
            dt.order([[1, 'desc']]).draw();
            const lift = dt.cells(null, 1, {order: 'applied'}).render('display').toArray();
            return {type: dt.column(1).type(), top: lift[0], last: lift[lift.length - 1],
                    heads: [...document.querySelectorAll('#tbl-rules thead th')].map(e => e.innerText),
                    filters: document.querySelectorAll('#tbl-items tfoot input').length,
                    imgs: document.querySelectorAll('img').length, alerts: window.__alerts};
        })()""")["result"]["value"]
    finally:
        browser.close()
    assert res["type"] == "num" and res["top"] == "2" and res["last"] == ""  # sorts as numbers, gaps last
    assert XSS in res["heads"]  # the name is shown as text ...
    assert res["imgs"] == 0 and res["alerts"] == 0  # ... and never became markup
    assert res["filters"] == 3  # one filter box per column
    # numbers as a reader expects them: separators, money to the cent, p never 0, missing empty
    assert shown[0][2:] == ["7.42", "40", "1.235", "2,968", "123,456.78", "< 1e-300"]
    assert shown[1][0] == "bread, butter" and shown[1][3] == "99.996"
    assert shown[2][4] == "" and shown[2][7] == "3.0e-5" and shown[2][0] == BREAK  # text shown, not run
    errors = [e for e in browser.events
              if (e["method"] == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
              or e["method"] == "Runtime.exceptionThrown"
              or (e["method"] == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
              or (e["method"] == "Network.loadingFailed" and not e["params"].get("canceled"))]
    assert errors == []
