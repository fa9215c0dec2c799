"""The report table renderer (ecrm_research.report.tables): cell formats, index handling, capping,
escaping, determinism and width classes, in both engines (great-tables and pandas' Styler)."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date, datetime
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from ecrm_research.report import tables
from ecrm_research.report.tables import (
    column_kinds,
    default_currency,
    format_cell,
    format_p_value_table,
    printed_width,
    render_table,
    set_default_currency,
    table_frame,
)

ENGINES = ("great_tables", "styler")
XSS = "<img src=x onerror=alert(1)>"


class _Cells(HTMLParser):
    """Column headers (``thead th``) and body rows (``tbody td``) of the first table in a fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headers: list[str] = []
        self.rows: list[list[str]] = []
        self._part: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("thead", "tbody"):
            self._part = tag
        elif tag == "tr" and self._part == "tbody":
            self.rows.append([])
        elif (tag == "th" and self._part == "thead") or (tag == "td" and self._part == "tbody"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("thead", "tbody"):
            self._part = None
        elif tag in ("th", "td") and self._cell is not None:
            text = "".join(self._cell).strip()
            (self.headers if tag == "th" else self.rows[-1]).append(text)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def cells(fragment: str) -> tuple[list[str], list[list[str]]]:
    p = _Cells()
    p.feed(fragment)
    return p.headers, p.rows


def body_texts(fragment: str) -> list[str]:
    return [c for row in cells(fragment)[1] for c in row]


@pytest.fixture(autouse=True)
def _no_default_currency():
    """Every test starts without a session currency and leaves none behind."""
    before = default_currency()
    set_default_currency(None)
    yield
    set_default_currency(before)


# --------------------------------------------------------------------------- cell formats


def test_integers_print_as_integers_and_whole_floats_in_a_mixed_column_too():
    assert format_cell(2968, "int") == "2,968"
    assert format_cell(np.int64(2968), "int") == "2,968"
    assert format_cell(2968.0, "float") == "2,968"
    assert format_cell(1388.0, "float") == "1,388"
    assert format_cell(2.5, "float") == "2.50"
    df = pd.DataFrame({"n": [2968, 1388], "mean_gap": [4.0, 12.75], "k": [4, 5]})
    kinds = column_kinds(df)
    assert kinds == {"n": "int", "mean_gap": "float", "k": "label"}
    for engine in ENGINES:
        out = render_table(df, engine=engine)
        assert body_texts(out) == ["2,968", "4", "4", "1,388", "12.75", "5"], engine
        assert ".00" not in out


def test_ids_years_and_codes_print_without_separators_and_exactly():
    df = pd.DataFrame({"customer_id": [12345, 17850], "year": [2024, 2023],
                       "order_id": [12345678901234567, 2], "revenue_n": [12345, 1]})
    assert column_kinds(df)["customer_id"] == column_kinds(df)["year"] == "label"
    texts = body_texts(render_table(df))
    assert texts[:3] == ["12345", "2024", "12345678901234567"]  # 17 digits: no round trip through a double
    assert format_cell(12345678901234567, "int") == "12,345,678,901,234,567"
    assert format_cell(2024.0, "label") == "2024"


def test_ids_and_years_with_missing_values_keep_no_separator():
    df = pd.DataFrame({"customer_id": [12345.0, np.nan], "year": [2024.0, np.nan], "mean_k": [1.5, 2.0]})
    assert column_kinds(df) == {"customer_id": "label", "year": "label", "mean_k": "float"}
    assert body_texts(render_table(df)) == ["12345", "2024", "1.50", "—", "—", "2"]


def test_a_share_of_money_is_a_share():
    df = pd.DataFrame({"revenue_share": [0.2, 0.8], "revenue": [0.5, 0.75], "aov": [35.5, 40.0]})
    assert column_kinds(df) == {"revenue_share": "share", "revenue": "float", "aov": "money"}
    assert body_texts(render_table(df, currency="EUR"))[:3] == ["20.0%", "0.5", "€35.50"]


@pytest.mark.parametrize("value, text", [
    (0.04123, "0.0412"), (0.5, "0.5"), (0.001, "0.001"), (0.00031, "3.1 × 10⁻⁴"),
    (3.2e-45, "3.2 × 10⁻⁴⁵"), (0.0, "< 10⁻³⁰⁰"), (5e-324, "< 10⁻³⁰⁰"), (float("nan"), "—"), (None, "—"),
])
def test_p_values(value, text):
    assert format_p_value_table(value) == text
    assert format_cell(value, "p") == text


def test_a_p_value_column_never_shows_zero():
    df = pd.DataFrame({"rule": ["a", "b", "c"], "p_value": [0.0, 1e-310, 0.0412]})
    assert column_kinds(df)["p_value"] == "p"
    for engine in ENGINES:
        ps = [row[1] for row in cells(render_table(df, engine=engine))[1]]
        assert ps == ["< 10⁻³⁰⁰", "< 10⁻³⁰⁰", "0.0412"], engine
        assert "0" not in ps and "0.0" not in ps


@pytest.mark.parametrize("value, text", [
    (0.0742, "7.4%"), (0.5, "50.0%"), (1.0, "100.0%"), (0.0, "0.0%"), (0.99951, "99.95%"), (0.0004, "0.04%"),
    (0.0142, "1.4%"), (0.00049, "0.05%"), (0.99996, "> 99.99%"), (0.000004, "< 0.01%"), (1e-9, "< 0.01%"),
    (-0.05, "-5.0%"),
])
def test_shares_as_percentages(value, text):
    assert format_cell(value, "share") == text


def test_shares_are_never_rounded_to_0_or_100_percent():
    for v in (0.99996, 0.999999, 0.9995, 0.99949, 1e-9, 4e-7, 0.00049, 0.0005, 1 - 1e-15, 5e-324):
        t = format_cell(v, "share")
        assert t.endswith("%"), t
        assert t not in ("100.0%", "100.00%", "100%", "0.0%", "0.00%", "0%", "-0.0%"), (v, t)
        assert "e-" not in t and "e+" not in t, t  # no Python float repr
        assert len(t) <= 8, t  # a bound, never a run of digits


def test_share_columns_are_inferred_only_within_0_and_1():
    df = pd.DataFrame({"support": [0.0742, 0.2], "churn_rate": [0.1, 1.0], "growth_rate": [0.5, 1.5],
                       "confidence": [0.3, 0.99996]})
    kinds = column_kinds(df)
    assert kinds["support"] == kinds["churn_rate"] == kinds["confidence"] == "share"
    assert kinds["growth_rate"] == "float"  # 150% is not a share of a whole
    texts = body_texts(render_table(df))
    assert texts == ["7.4%", "10.0%", "0.5", "30.0%", "20.0%", "100.0%", "1.50", "> 99.99%"]


def test_money_with_a_currency_an_unknown_code_and_none():
    assert format_cell(1234.5, "money", "EUR") == "€1,234.50"
    assert format_cell(1234.5, "money", "gbp") == "£1,234.50"
    assert format_cell(1234.5, "money", "CHF") == "1,234.50 CHF"
    assert format_cell(1234.5, "money") == "1,234.50"
    assert format_cell(-1234.5, "money", "EUR") == "−€1,234.50"
    df = pd.DataFrame({"segment": ["a", "b"], "revenue": [1234.5, 99.0], "n_orders": [3, 4]})
    assert column_kinds(df)["revenue"] == "money" and column_kinds(df)["n_orders"] == "int"
    for engine in ENGINES:
        assert [r[1] for r in cells(render_table(df, currency="EUR", engine=engine))[1]] == ["€1,234.50", "€99.00"]
        assert [r[1] for r in cells(render_table(df, currency="CHF", engine=engine))[1]] == ["1,234.50 CHF",
                                                                                            "99.00 CHF"]
        plain = render_table(df, engine=engine)
        assert [r[1] for r in cells(plain)[1]] == ["1,234.50", "99.00"] and "€" not in plain


def test_default_currency_is_used_when_none_is_passed():
    df = pd.DataFrame({"clv": [10.0]})
    set_default_currency("GBP")
    assert body_texts(render_table(df)) == ["£10.00"]
    assert body_texts(render_table(df, currency="USD")) == ["$10.00"]
    set_default_currency(None)
    assert body_texts(render_table(df)) == ["10.00"]


def test_containers_bools_and_dates_are_text_not_reprs():
    values = [["trust", "service_quality"], {"milk", "bread"}, frozenset({"b", "a"}), ("x", "y"),
              {"discount_rate": 0.25, "items": ["a", "b"]}, True, False, date(2024, 3, 1),
              pd.Timestamp("2024-03-01"), datetime(2024, 3, 1, 14, 30), [{"k": 1}, frozenset({"z"})],
              np.array([1, 2]), None]
    df = pd.DataFrame({"what": values})
    expected = ["trust, service_quality", "bread, milk", "a, b", "x, y", "discount_rate: 0.25; items: a, b", "yes",
                "no", "2024-03-01", "2024-03-01", "2024-03-01 14:30", "k: 1, z", "1, 2", "—"]
    for engine in ENGINES:
        got = body_texts(render_table(df, engine=engine))
        assert got == expected, engine
        joined = " | ".join(got)
        for repr_mark in ("[", "{", "frozenset(", "True", "False", "Timestamp(", "array(", "None"):
            assert repr_mark not in joined, (engine, repr_mark)


def test_bool_and_date_columns():
    df = pd.DataFrame({"churned": [True, False], "first_order": pd.to_datetime(["2024-01-05", None])})
    assert column_kinds(df) == {"churned": "bool", "first_order": "date"}
    assert body_texts(render_table(df)) == ["yes", "2024-01-05", "no", "—"]


# --------------------------------------------------------------------------- the frame shown


def test_no_index_column_for_row_numbers_and_a_named_index_first():
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    for engine in ENGINES:
        assert cells(render_table(df, engine=engine))[0] == ["a", "b"], engine
        # filtering and sorting leave an unnamed integer index: still row numbers, not shown
        assert cells(render_table(df[df.a > 1].sort_values("a", ascending=False), engine=engine))[0] == ["a", "b"]
        named = cells(render_table(df.set_index("b"), engine=engine))
        assert named[0] == ["b", "a"] and named[1][0] == ["x", "1"], engine
    described = table_frame(pd.DataFrame({"x": [1.0, 2.0]}).describe())
    assert described.columns[0] == "" and described.iloc[:, 0].tolist()[:2] == ["count", "mean"]
    s = pd.Series([3, 4], index=pd.Index(["milk", "bread"], name="item"), name="n")
    assert list(table_frame(s).columns) == ["item", "n"]


def test_index_name_clashing_with_a_column_is_kept_apart():
    df = pd.DataFrame({"item": [1, 2]}, index=pd.Index(["a", "b"], name="item"))
    assert list(table_frame(df).columns) == ["item (index)", "item"]


def test_multiindex_columns_are_flattened():
    df = pd.DataFrame([[1.5, 2.5, 10]], columns=pd.MultiIndex.from_tuples(
        [("recency", "mean"), ("recency", "std"), ("n", "")]))
    assert list(table_frame(df).columns) == ["recency · mean", "recency · std", "n"]
    for engine in ENGINES:
        headers = cells(render_table(df, engine=engine))[0]
        assert headers == ["recency · mean", "recency · std", "n"], engine


def test_describe_has_integer_counts_and_dashes_for_missing():
    data = pd.DataFrame({"spend": np.arange(1000, dtype=float), "n_orders": np.arange(1000), "label": ["a"] * 1000})
    df = data.describe(include="all")
    headers, rows = cells(render_table(df, currency="EUR"))
    assert headers == ["", "spend", "n_orders", "label"]
    by_stat = {r[0]: r[1:] for r in rows}
    assert by_stat["count"] == ["1,000", "1,000", "1,000"]  # a count, not "€1,000.00"
    assert by_stat["unique"] == ["—", "—", "1"] and by_stat["freq"] == ["—", "—", "1,000"]
    assert by_stat["mean"][:2] == ["€499.50", "499.50"]  # the mean of money is money
    assert "NaN" not in render_table(df) and "nan" not in " ".join(c for r in rows for c in r)
    plain = {r[0]: r[1:] for r in cells(render_table(data[["spend"]].describe(), currency="EUR"))[1]}
    assert plain["count"] == ["1,000"] and plain["max"] == ["€999.00"]
    # a table that only has a row called "count" is not a describe() table
    assert body_texts(render_table(pd.DataFrame({"revenue": [5.0]}, index=pd.Index(["count"])), currency="EUR")) \
        == ["count", "€5.00"]


def test_big_tables_are_capped_with_the_total_and_a_link_to_the_csv():
    df = pd.DataFrame({"customer_id": range(1000), "spend": np.linspace(0, 1, 1000)})
    for engine in ENGINES:
        out = render_table(df, max_rows=30, csv_href="tables/customers.csv", engine=engine)
        assert len(cells(out)[1]) == 30
        assert "Showing the first 30 of 1,000 rows." in out
        assert '<a href="tables/customers.csv">tables/customers.csv</a>' in out
    whole = render_table(df.head(10), csv_href="tables/customers.csv")
    assert "Showing" not in whole and 'As CSV: <a href="tables/customers.csv">' in whole
    assert "Showing" not in render_table(df.head(30), max_rows=30)
    assert "Showing" not in render_table(df, max_rows=0) and len(cells(render_table(df, max_rows=0))[1]) == 1000


def test_long_text_is_never_cut():
    long = "Offer the loyalty bundle to lapsed high-value customers; " * 9  # ~500 characters
    long = long[:500]
    df = pd.DataFrame({"decision": [long], "rationale": ["x" * 500]})
    for engine in ENGINES:
        texts = body_texts(render_table(df, engine=engine))
        assert texts == [long.strip(), "x" * 500], engine
        assert "…" not in render_table(df, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_markup_in_cells_column_names_and_caption_is_escaped(engine):
    df = pd.DataFrame({XSS: [XSS, "a & b"], "n": [1, 2]}, index=pd.Index([XSS, "ok"], name=XSS + "idx"))
    out = render_table(df, caption=XSS, csv_href='t.csv" onclick="x', engine=engine)
    assert XSS not in out
    assert "<img" not in out and 'onclick="x' not in out
    assert html_lib.escape(XSS, quote=False) in out
    headers, rows = cells(out)
    assert headers[1] == XSS and rows[0][:2] == [XSS, XSS] and rows[1][1] == "a & b"  # shown as text
    assert "A &amp; B" in render_table(df, caption="A & B", engine=engine)  # escaped once, not twice


@pytest.mark.parametrize("engine", ENGINES)
def test_same_frame_gives_byte_identical_html(engine):
    def frame():
        return pd.DataFrame({"item": ["milk", "bread"], "support": [0.1, 0.2], "n": [3, 4]})

    a, b = render_table(frame(), caption="Rules", engine=engine), render_table(frame(), caption="Rules", engine=engine)
    assert a == b
    other = render_table(frame().assign(n=[3, 5]), caption="Rules", engine=engine)
    ids = [re.search(r'id="(T_)?(t[0-9a-f]{10})', h).group(2) for h in (a, other)]
    assert ids[0] != ids[1]  # the id depends on the content: two tables on one page do not share CSS


def test_width_classes():
    def cls(df):
        return re.match(r'<div class="([^"]*)"', render_table(df)).group(1).split()

    narrow = pd.DataFrame({"a": [1.5], "b": [2.5]})
    assert cls(narrow) == ["ecrm-table"]
    eleven = pd.DataFrame({f"m{i}": [1.5] for i in range(11)})  # more than 10 columns: smaller type
    assert cls(eleven) == ["ecrm-table", "ecrm-wide"]
    sixteen = pd.DataFrame({f"measure_{i:02d}": [1000.0 * i + 0.5] for i in range(16)})  # 16 x (9 + 2) = 176
    assert cls(sixteen) == ["ecrm-table", "ecrm-wide", "ecrm-xwide"]
    texts = pd.DataFrame({f"t{i}": ["some fairly long words " * 3] for i in range(9)})  # 9 x (16 + 2) = 162
    assert printed_width(texts) == 162
    assert "ecrm-xwide" in cls(texts)
    mid = pd.DataFrame({f"t{i}": ["w" * 28] for i in range(6)})  # 6 x 18 = 108: smaller type, portrait
    assert cls(mid) == ["ecrm-table", "ecrm-wide"]
    five_texts = pd.DataFrame({f"t{i}": ["some fairly long words " * 3] for i in range(5)})  # wraps: 90
    assert cls(five_texts) == ["ecrm-table"]


def test_printed_width_counts_headers_and_numbers():
    formatted = pd.DataFrame({"a_very_long_column_name": ["1"], "n": ["1,234,567,890,123"]})
    # a header wraps at spaces and underscores (its longest word: "column"); a numeric cell never wraps
    assert printed_width(formatted, {"n"}) == (6 + 2) + (17 + 2)
    assert printed_width(formatted) == (6 + 2) + (16 + 2)  # as text it wraps at 16
    assert printed_width(pd.DataFrame({"t": ["x" * 100]})) == 16 + 2
    assert printed_width(pd.DataFrame({"t": ["x" * 100]}), {"t"}) == 100 + 2


def test_kinds_override_and_a_bad_kind_names_it():
    df = pd.DataFrame({"code": [1234.5], "score": [0.25]})
    assert column_kinds(df) == {"code": "float", "score": "float"}
    out = render_table(df, kinds={"code": "money", "score": "share"}, currency="EUR")
    assert body_texts(out) == ["€1,234.50", "25.0%"]
    with pytest.raises(ValueError, match=r"percentage") as err:
        render_table(df, kinds={"score": "percentage"})
    assert "score" in str(err.value) and "share" in str(err.value)  # names the column and the valid kinds
    with pytest.raises(ValueError, match="engine"):
        render_table(df, engine="latex")


def test_both_engines_give_the_same_cell_texts():
    df = pd.DataFrame({
        "item": ["milk", "bread & butter", "x" * 80], "n": [2968, 1, 12], "support": [0.0742, 0.5, 0.99996],
        "lift": [1.234, 2.0, np.nan], "p_value": [0.0, 0.04123, 0.00031], "revenue": [1234.5, 0.0, -2.25],
        "items": [["a", "b"], {"c"}, {"k": 1}], "when": pd.to_datetime(["2024-01-01", "2024-02-29", None]),
        "churned": [True, False, True],
    }, index=pd.Index(["r1", "r2", "r3"], name="rule"))
    gt = cells(render_table(df, currency="EUR", engine="great_tables"))
    st = cells(render_table(df, currency="EUR", engine="styler"))
    assert gt == st
    assert gt[1][0] == ["r1", "milk", "2,968", "7.4%", "1.23", "< 10⁻³⁰⁰", "€1,234.50", "a, b", "2024-01-01", "yes"]
    assert gt[1][2][4:7] == ["—", "3.1 × 10⁻⁴", "−€2.25"]


def test_series_and_empty_frames_render():
    s = pd.Series([0.1, 0.2], index=pd.Index(["a", "b"], name="segment"), name="churn_rate")
    assert cells(render_table(s)) == (["segment", "churn_rate"], [["a", "10.0%"], ["b", "20.0%"]])
    for engine in ENGINES:
        assert cells(render_table(pd.DataFrame({"a": pd.Series([], dtype=float)}), engine=engine)) == (["a"], [])


def test_auto_engine_is_great_tables_when_installed():
    pytest.importorskip("great_tables")
    df = pd.DataFrame({"a": [1]})
    assert render_table(df) == render_table(df, engine="great_tables")
    assert "gt_table" in render_table(df) and "ecrm-styler" in render_table(df, engine="styler")
    assert tables._has_great_tables()


def test_snake_case_headers_may_break_after_underscores_and_stay_escaped():
    out = render_table(pd.DataFrame({"hit_rate_ci_lower": [0.5], "<b>x_y": [1]}))
    assert "hit_<wbr>rate_<wbr>ci_<wbr>lower" in out
    assert "&lt;b&gt;x_<wbr>y" in out and "<b>" not in out


def test_docstring_examples_of_the_report_modules_hold():
    import doctest

    from ecrm_research.report import display, figure_quality, tables

    for module in (tables, display, figure_quality):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, (module.__name__, result)
