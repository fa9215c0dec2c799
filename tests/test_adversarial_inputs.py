"""Adversarial inputs a new user tries (issue 14, item 7): every case through the ``ecrm`` CLI.

Each case states the exit code, the message (regexes for the file, the column, the count, an
example value and what to do) and, for inputs that are accepted or partly quarantined, the
reconciliation ``input rows = kept + quarantined`` per table and reason code, recomputed with
:func:`ecrm_research.data.quality.prepare` on the same arguments.

Data problems go through ``ecrm validate`` (no kernel). ``ecrm run`` is used where the behaviour is
about running: parameter and path errors must be caught *before* any kernel starts (no executed
notebook in ``--out``), and a handful of cases (one customer, all orders cancelled, a survey with
constant answers, a huge basket, hostile names) execute a notebook.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecrm_research.cli import main
from ecrm_research.data import quality
from ecrm_research.prep.baskets import load_baskets

HEADER = ("order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price")
#: a small, clean shop: 3 orders, 2 customers, 4 lines
BASE_ROWS = [
    ("o1", "c1", "2024-01-05", "milk", "1", "1.5"),
    ("o1", "c1", "2024-01-05", "bread", "2", "2.0"),
    ("o2", "c2", "2024-02-10", "milk", "1", "1.5"),
    ("o3", "c1", "2024-03-15", "eggs", "3", "0.5"),
]
NO_TRACEBACK = re.compile(r"Traceback|^\s+File \"", re.M)


# --------------------------------------------------------------------------- file builders


def lines_csv(folder: Path, rows=BASE_ROWS, *, header=HEADER, name: str = "shop.csv", sep: str = ",") -> Path:
    """A flat order-lines CSV in `folder`; `rows` are tuples of text cells."""
    p = folder / name
    p.write_text("\n".join(sep.join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return p


def with_cells(rows, index: int, **cells: str) -> list[tuple[str, ...]]:
    """`rows` with the named cells of row `index` replaced."""
    out = [list(r) for r in rows]
    for col, value in cells.items():
        out[index][HEADER.index(col)] = value
    return [tuple(r) for r in out]


def canonical_dir(folder: Path, **tables: pd.DataFrame) -> Path:
    """A canonical folder (customers, products, orders, order_items as CSV) with some tables replaced."""
    shop = folder / "shop"
    shop.mkdir()
    base = {
        "customers": pd.DataFrame({"customer_id": ["c1", "c2"]}),
        "products": pd.DataFrame({"product_id": ["milk", "bread"]}),
        "orders": pd.DataFrame({"order_id": ["o1", "o2"], "customer_id": ["c1", "c2"],
                                "ordered_at": ["2024-01-05", "2024-02-10"], "status": ["completed"] * 2}),
        "order_items": pd.DataFrame({"order_id": ["o1", "o1", "o2"], "line_no": [0, 1, 0],
                                     "product_id": ["milk", "bread", "milk"], "quantity": [1, 2, 1],
                                     "unit_price": [1.5, 2.0, 1.5]}),
    }
    base.update(tables)
    for name, df in base.items():
        df.to_csv(shop / f"{name}.csv", index=False)
    return shop


def text_file(folder: Path, name: str, content: str | bytes) -> Path:
    p = folder / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def mapping_file(folder: Path, text: str, name: str = "map.yaml") -> Path:
    return text_file(folder, name, text)


SURVEY_ITEMS = {"trust": ["trust_1", "trust_2", "trust_3"], "satisfaction": ["sat_1", "sat_2", "sat_3"],
                "loyalty": ["loy_1", "loy_2", "loy_3"]}
CONSTRUCTS_YAML = """\
constructs:
  trust: [trust_1, trust_2, trust_3]
  satisfaction: [sat_1, sat_2, sat_3]
  loyalty: [loy_1, loy_2, loy_3]
scale: {min: 1, max: 7}
roles:
  outcome: loyalty
  mediator: satisfaction
  drivers: [trust]
"""


def survey_csv(folder: Path, *, constant: bool = False, bad_cell: str | None = None, n: int = 60) -> Path:
    """A 1-7 Likert survey (respondent_id + 9 items); `constant`: every answer is 4;
    `bad_cell`: the text put in trust_2 of respondent 3."""
    rng = np.random.default_rng(7)
    trust = rng.normal(0, 1, n)
    sat = 0.6 * trust + rng.normal(0, 0.8, n)
    loy = 0.5 * sat + 0.2 * trust + rng.normal(0, 0.8, n)
    data: dict[str, list] = {"respondent_id": [f"R{i:03d}" for i in range(n)]}
    for construct, latent in (("trust", trust), ("satisfaction", sat), ("loyalty", loy)):
        for item in SURVEY_ITEMS[construct]:
            x = np.clip(np.round(4 + 1.2 * latent + rng.normal(0, 0.6, n)), 1, 7)
            data[item] = [4] * n if constant else x.astype(int).tolist()
    df = pd.DataFrame(data)
    if bad_cell is not None:
        df["trust_2"] = df["trust_2"].astype(object)
        df.loc[3, "trust_2"] = bad_cell
    p = folder / "survey.csv"
    df.to_csv(p, index=False)
    return p


def baskets_file(folder: Path, lines: list[str], name: str = "baskets.csv") -> Path:
    return text_file(folder, name, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- CLI helpers


def validate(data: Path | str, *extra: str) -> list[str]:
    return ["validate", "--data", str(data), *extra]


def run(tmp: Path, name: str, data: Path | str | None, *extra: str) -> list[str]:
    argv = ["run", name, "--out", str(tmp / "out"), "--no-pdf", "--no-progress", "--timeout", "300"]
    if data is not None:
        argv += ["--data", str(data)]
    return argv + list(extra)


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


@dataclass(frozen=True)
class Case:
    """One adversarial input.

    build : tmp_path -> argv of ``ecrm``.
    code : the exit code the CLI must return.
    says : regexes that must all match the output (stderr + stdout).
    reconcile : for accepted inputs, ``{(table, reason): n}`` quarantined rows expected from
        ``quality.prepare`` on the same data (every other table/reason is only checked to reconcile).
    no_kernel : the error must come before any notebook starts (no executed notebook in ``--out``).
    check : extra assertions, ``check(tmp_path, output)``.
    """

    id: str
    build: Callable[[Path], list[str]]
    code: int
    says: tuple[str, ...] = ()
    reconcile: dict[tuple[str, str], int] | None = None
    no_kernel: bool = False
    check: Callable[[Path, str], None] | None = None


# --------------------------------------------------------------------------- extra checks


def _check_dayfirst_decided(tmp: Path, output: str) -> None:
    _, res = quality.prepare(data=str(tmp / "shop.csv"))
    orders = res.tables["orders"].set_index("order_id")
    assert orders.loc["o2", "ordered_at"] == pd.Timestamp("2024-02-06"), "06/02/2024 must be 6 February"
    assert orders.loc["o1", "ordered_at"] == pd.Timestamp("2024-01-25")


def _check_finite_revenue(tmp: Path, output: str) -> None:
    _, res = quality.prepare(data=str(tmp / "shop.csv"))
    revenue = res.summary.set_index("measure").loc["revenue", "value"]
    assert math.isfinite(revenue) and revenue < 1e6, revenue
    assert (res.tables["orders"]["ordered_at"].dt.year.between(1990, pd.Timestamp.now().year)).all()


def _neutralised(cell: str) -> bool:
    """True unless `cell` is text a spreadsheet would run as a formula (OWASP CSV injection)."""
    if cell[:1] not in ("=", "+", "-", "@", "\t", "\r"):
        return True
    try:
        float(cell)
        return True  # numbers are never touched
    except ValueError:
        return False


def _check_hostile_outputs(tmp: Path, output: str) -> None:
    out = tmp / "out"
    tables = out / "association" / "tables"
    for name in ("rules.csv", "cross_sell.csv"):
        with open(tables / name, newline="", encoding="utf-8") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert any("HYPERLINK" in c for c in cells), f"{name} lost the hostile item"
        bad = [c for c in cells if not _neutralised(c)]
        assert not bad, f"{name}: formula cells written as-is: {bad[:3]}"
    parquet = pd.read_parquet(tables / "rules.parquet")
    assert parquet.astype(str).apply(lambda s: s.str.contains('=HYPERLINK("http://evil")', regex=False)).any().any(), \
        "Parquet keeps exact values"
    pages = [p for p in out.rglob("*.html")]
    assert pages, "no HTML report written"
    for page in pages:
        html = page.read_text(encoding="utf-8", errors="replace")
        assert "<img src=x onerror" not in html, f"{page}: the file name reaches the HTML unescaped"


def _check_huge_basket(tmp: Path, output: str) -> None:
    report = tmp / "out" / "association"
    text = " ".join(p.read_text(encoding="utf-8", errors="replace") for p in report.rglob("*.html"))
    text = re.sub(r"<[^>]+>", " ", text)
    assert re.search(r"min_support[^.]{0,80}(chose|chosen|picked|automatic|auto)|"
                     r"(chose|chosen|picked|automatic)[^.]{0,80}min_support", text), \
        "the report must state the min_support it chose and why"
    assert (report / "tables" / "rules.csv").exists()


# --------------------------------------------------------------------------- the cases
# Regex vocabulary: file name, column, count, example, what to do.

HUGE = ",".join(f"item{i:03d}" for i in range(300))
HOSTILE_NAME = "<img src=x onerror=alert(1)>.csv"
HOSTILE_BASKETS = (['=HYPERLINK("http://evil"),milk,bread'] * 8 + ["+cmd|' /C calc'!A0,milk"] * 6
                   + ["@SUM(1+1),bread,milk"] * 6 + ["milk,eggs"] * 5 + ["bread,eggs"] * 5
                   + ["tea"] * 20)  # enough baskets for the hostile rules to pass the significance filter

CASES: list[Case] = [
    # ---- files
    Case("file-missing", lambda t: validate(t / "nowhere" / "orders.csv"), 2,
         (r"orders\.csv", r"not found", r"(check the path|absolute path)")),
    Case("file-empty", lambda t: validate(text_file(t, "orders.csv", b"")), 2,
         (r"orders\.csv", r"empty \(0 bytes\)", r"export finished")),
    Case("file-header-only", lambda t: validate(lines_csv(t, rows=[])), 2,
         (r"shop\.csv", r"header but no rows",)),
    Case("dir-without-tables", lambda t: validate(text_file(t, "notes.txt", "hi\n").parent), 2,
         (r"missing", r"order_items", r"notes\.txt", r"\.parquet/\.csv/\.xlsx")),
    Case("unknown-extension", lambda t: validate(text_file(t, "orders.json", "{}")), 2,
         (r"orders\.json", r"unsupported file type '\.json'", r"\.csv", r"Save the data as CSV")),
    Case("binary-garbage", lambda t: validate(text_file(t, "orders.csv", bytes(range(256)) * 20)), 2,
         (r"orders\.csv", r"(binary|not a text|cannot tell the data format)", r"data_format")),
    Case("binary-garbage-as-lines",
         lambda t: validate(text_file(t, "orders.csv", bytes(range(256)) * 20), "--data-format", "lines"), 2,
         (r"orders\.csv", r"(binary|NUL|not a text|utf-8)", r"(encoding|export|CSV)")),
    Case("wrong-encoding",
         lambda t: validate(text_file(t, "shop.csv", (",".join(HEADER) + "\no1,René,2024-01-05,milk,1,1.5\n")
                                      .encode("latin-1"))), 2,
         (r"shop\.csv", r"utf-8", r"byte 0xe9", r"line 2", r"encoding='?latin-1")),
    Case("wrong-separator",
         lambda t: validate(lines_csv(t, sep=";"), "--mapping", str(mapping_file(t, "format: lines\nread:\n  sep: ','\n"))),
         2, (r"shop\.csv", r"order_id;customer_id", r"sep\b.{0,30}';'")),
    Case("excel-sheet-missing",
         lambda t: validate(_excel(t), "--mapping", str(mapping_file(t, "format: lines\nread:\n  sheet_name: Sales\n"))),
         2, (r"shop\.xlsx", r"sheet 'Sales' not found", r"\['Orders'\]", r"sheet_name")),
    Case("corrupt-parquet", lambda t: validate(text_file(t, "shop.parquet", b"PAR1" + b"\x00" * 64)), 2,
         (r"shop\.parquet",)),
    # ---- mapping
    Case("mapping-unknown-key",
         lambda t: validate(lines_csv(t), "--mapping", str(mapping_file(t, "format: lines\ncolumn:\n  order_id: Inv\n"))),
         2, (r"map\.yaml", r"'column'", r"columns")),
    Case("mapping-to-missing-column",
         lambda t: validate(lines_csv(t), "--mapping", str(mapping_file(t, "format: lines\ncolumns:\n  order_id: Invoice\n"))),
         2, (r"Invoice", r"order_id", r"customer_id, ordered_at|customer_id', 'ordered_at")),
    Case("mapping-unknown-canonical-name",
         lambda t: validate(lines_csv(t), "--mapping", str(mapping_file(t, "format: lines\ncolumns:\n  order_number: order_id\n"))),
         2, (r"order_number", r"order_id")),
    Case("mapping-bad-rule-operator",
         lambda t: validate(lines_csv(t), "--mapping", str(mapping_file(
             t, "format: lines\nrules:\n  cancelled_if: {column: order_id, startwith: C}\n"))),
         2, (r"startwith", r"startswith")),
    Case("mapping-not-a-mapping",
         lambda t: validate(lines_csv(t), "--mapping", str(mapping_file(t, "- a\n- b\n"))), 2,
         (r"map\.yaml", r"must be a YAML mapping", r"columns")),
    Case("mapping-bad-yaml",
         lambda t: validate(lines_csv(t), "--mapping", str(mapping_file(t, "columns: {order_id: [oops\n"))), 2,
         (r"map\.yaml", r"line \d+", r"indentation|quoting")),
    Case("mapping-file-missing", lambda t: validate(lines_csv(t), "--mapping", str(t / "nope.yaml")), 2,
         (r"nope\.yaml", r"not found", r"online_retail")),
    # ---- columns
    Case("column-missing-required",
         lambda t: validate(lines_csv(t, header=HEADER[:-1] + ("Price",)), "--data-format", "lines"), 2,
         (r"shop\.csv", r"unit_price", r"Price", r"--mapping")),
    Case("column-duplicate-name",
         lambda t: validate(lines_csv(t, header=HEADER + ("unit_price",), rows=[r + ("9.9",) for r in BASE_ROWS])),
         2, (r"shop\.csv", r"(duplicate column|appears more than once)", r"unit_price", r"(rename|remove|keep one)")),
    Case("column-all-empty-order-id",
         lambda t: validate(lines_csv(t, rows=[("",) + r[1:] for r in BASE_ROWS])), 2,
         (r"shop\.csv", r"order_id", r"(4 row|all 4|every row|empty)", r"(mapping|fix)")),
    # ---- values
    Case("value-non-numeric-price",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 2, unit_price="abc"))), 2,
         (r"shop\.csv", r"'unit_price'", r"1 value\(s\) that are not numbers", r"row 3 = 'abc'", r"(fix|decimal)")),
    Case("value-nonpositive-quantity",
         lambda t: validate(lines_csv(t, rows=with_cells(with_cells(BASE_ROWS, 1, quantity="0"), 3, quantity="-2"))), 0,
         (r"nonpositive_quantity",),
         reconcile={("order_items", "nonpositive_quantity"): 2, ("orders", "no_kept_lines"): 1}),
    Case("value-negative-price",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 2, unit_price="-1.5"))), 0,
         (r"nonpositive_price",), reconcile={("order_items", "nonpositive_price"): 1, ("orders", "no_kept_lines"): 1}),
    Case("value-inf-price",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 1, unit_price="inf"))), 0,
         (r"non_finite_value",), reconcile={("order_items", "non_finite_value"): 1}, check=_check_finite_revenue),
    Case("value-1e300-price",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 2, unit_price="1e300"))), 0,
         (r"implausible_value",),
         reconcile={("order_items", "implausible_value"): 1, ("orders", "no_kept_lines"): 1}, check=_check_finite_revenue),
    Case("date-1900",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 2, ordered_at="1900-02-10"))), 0,
         (r"implausible_date",), reconcile={("orders", "implausible_date"): 1, ("order_items", "implausible_date"): 1},
         check=_check_finite_revenue),
    Case("date-2099",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 3, ordered_at="2099-03-15"))), 0,
         (r"implausible_date",), reconcile={("orders", "implausible_date"): 1, ("order_items", "implausible_date"): 1},
         check=_check_finite_revenue),
    Case("date-ambiguous-day-month",
         lambda t: validate(lines_csv(t, rows=[("o1", "c1", "05/01/2024", "milk", "1", "1.5"),
                                              ("o2", "c2", "06/02/2024", "milk", "1", "1.5"),
                                              ("o3", "c1", "07/03/2024", "eggs", "3", "0.5")])), 2,
         (r"shop\.csv", r"ordered_at", r"(ambigu|cannot be told apart)", r"05/01/2024", r"date_format", r"%d/%m/%Y")),
    Case("date-dayfirst-decided-by-values",
         lambda t: validate(lines_csv(t, rows=[("o1", "c1", "25/01/2024", "milk", "1", "1.5"),
                                              ("o2", "c2", "06/02/2024", "milk", "1", "1.5")])), 0,
         (r"ordered_at", r"(day.?first|%d/%m/%Y|day/month)", r"25/01/2024"),
         reconcile={}, check=_check_dayfirst_decided),
    Case("date-mixed-formats",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 2, ordered_at="10/02/2024"))), 2,
         (r"shop\.csv", r"'ordered_at'", r"\b1 (value|distinct date|row)", r"'10/02/2024'", r"date_format")),
    Case("date-missing-nat",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 3, ordered_at=""))), 2,
         (r"shop\.csv", r"ordered_at", r"1 row", r"row 4", r"(fix|mapping)")),
    # ---- keys
    Case("order-id-two-customers",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 1, customer_id="c2"))), 2,
         (r"shop\.csv", r"'?o1'?", r"c1", r"c2", r"customer", r"(conflicting_order|fix|one customer)")),
    Case("order-id-two-timestamps",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 1, ordered_at="2024-01-09"))), 2,
         (r"shop\.csv", r"'?o1'?", r"2024-01-05", r"2024-01-09", r"(conflicting_order|fix|one timestamp)")),
    Case("order-id-two-customers-quarantined-on-request",
         lambda t: validate(lines_csv(t, rows=with_cells(BASE_ROWS, 1, customer_id="c2")), "--mapping", str(
             mapping_file(t, "format: lines\nrules:\n  conflicting_orders: quarantine\n"))), 0,
         (r"conflicting_order",),
         reconcile={("orders", "conflicting_order"): 1, ("order_items", "conflicting_order"): 2}),
    Case("canonical-duplicate-order-key",
         lambda t: validate(canonical_dir(t, orders=pd.DataFrame(
             {"order_id": ["o1", "o2", "o2"], "customer_id": ["c1", "c2", "c1"],
              "ordered_at": ["2024-01-05", "2024-02-10", "2024-02-11"], "status": ["completed"] * 3}))), 2,
         (r"orders\.csv", r"not unique", r"o2")),
    Case("orphan-order-lines",
         lambda t: validate(canonical_dir(t, order_items=pd.DataFrame(
             {"order_id": ["o1", "o2", "o9"], "line_no": [0, 0, 0], "product_id": ["milk", "milk", "bread"],
              "quantity": [1, 1, 1], "unit_price": [1.5, 1.5, 2.0]}))), 0,
         (r"orphan_key", r"o9"), reconcile={("order_items", "orphan_key"): 1}),
    # ---- parameters (caught before any kernel starts)
    Case("param-min-support-not-a-number",
         lambda t: run(t, "association", None, "-p", "min_support", "abc"), 2,
         (r"min_support", r"'?abc'?", r"(number|float)", r"(--help|from 0 to 1|between 0 and 1)"), no_kernel=True),
    Case("param-min-support-out-of-range",
         lambda t: run(t, "association", None, "-p", "min_support", "1.5"), 2,
         (r"min_support", r"1\.5", r"(between 0 and 1|from 0 to 1|0 < |at most 1)"), no_kernel=True),
    Case("param-k-negative",
         lambda t: run(t, "segmentation", None, "-p", "k", "-3"), 2,
         (r"\bk\b", r"-3", r"(at least 2|>= ?2|whole number)"), no_kernel=True),
    Case("param-unknown-key",
         lambda t: run(t, "association", None, "-p", "min_suport", "0.1"), 2,
         (r"min_suport", r"min_support"), no_kernel=True),
    Case("out-names-a-file",
         lambda t: ["run", "association", "--out", str(text_file(t, "report.txt", "mine\n")), "--no-pdf",
                    "--no-progress"], 2,
         (r"report\.txt", r"(is a file|not a folder)", r"(another|folder|directory)"), no_kernel=True,
         check=lambda t, o: _assert_text(t / "report.txt", "mine\n")),
    Case("run-data-missing",
         lambda t: run(t, "segmentation", t / "shop" / "orders.csv"), 2,
         (r"orders\.csv", r"not found"), no_kernel=True),
    Case("run-mapping-to-missing-column",
         lambda t: run(t, "segmentation", lines_csv(t), "--mapping",
                       str(mapping_file(t, "format: lines\ncolumns:\n  order_id: Invoice\n"))), 2,
         (r"Invoice", r"order_id"), no_kernel=True),
    # ---- shop size
    Case("one-order-accepted", lambda t: validate(lines_csv(t, rows=BASE_ROWS[:2])), 0,
         (r"orders\s+1\s+1\s+0",), reconcile={}),
    Case("one-customer-segmentation",
         lambda t: run(t, "segmentation", lines_csv(t, rows=[r for r in BASE_ROWS if r[1] == "c1"])), 2,
         (r"(1 customer|one customer|only 1)", r"(segment|cluster)", r"(at least|more customers|needs)")),
    Case("all-orders-cancelled-validate",
         lambda t: validate(lines_csv(t, rows=BASE_ROWS, name="shop.csv"), "--mapping", str(mapping_file(
             t, "format: lines\nrules:\n  cancelled_if: {column: order_id, startswith: o}\n"))), 0,
         (r"cancelled",), reconcile={("orders", "cancelled"): 3, ("order_items", "cancelled"): 4},
         check=lambda t, o: re.search(r"cancelled\s+3\s+4\b", o) or pytest.fail(o)),
    Case("all-orders-cancelled-association",
         lambda t: run(t, "association", lines_csv(t), "--mapping", str(mapping_file(
             t, "format: lines\nrules:\n  cancelled_if: {column: order_id, startswith: o}\n"))), 2,
         (r"cancel", r"(all 3|3 of 3|every order|no completed)", r"(status|cancelled_if|mapping)")),
    # ---- survey
    Case("survey-constant-answers",
         lambda t: run(t, "loyalty", survey_csv(t, constant=True), "-p", "data_format", "survey",
                       "-p", "constructs", str(mapping_file(t, CONSTRUCTS_YAML, "constructs.yaml")),
                       "-p", "n_boot", "20"), 2,
         (r"survey\.csv", r"(constant|no variance|same answer|does not vary)", r"trust_1",
          r"(check|remove|drop|export)")),
    Case("survey-missing-construct-items",
         lambda t: run(t, "loyalty", survey_csv(t), "-p", "data_format", "survey",
                       "-p", "constructs", str(mapping_file(t, CONSTRUCTS_YAML.replace("loy_3", "loy_9"),
                                                            "constructs.yaml")),
                       "-p", "n_boot", "20"), 2,
         (r"loy_9", r"loyalty", r"loy_1", r"(column|item)")),
    Case("survey-non-numeric-answers",
         lambda t: run(t, "loyalty", survey_csv(t, bad_cell="agree"), "-p", "data_format", "survey",
                       "-p", "constructs", str(mapping_file(t, CONSTRUCTS_YAML, "constructs.yaml")),
                       "-p", "n_boot", "20"), 2,
         (r"survey\.csv", r"trust_2", r"1 (value|row|answer)", r"agree", r"(number|numeric)")),
    # ---- baskets and hostile names (each executes the association notebook once)
    Case("one-huge-basket-default-min-support",
         lambda t: run(t, "association", baskets_file(t, ["milk,bread", "milk,eggs", "bread,eggs", "milk"] * 5 + [HUGE]),
                       "-p", "data_format", "baskets"), 0,
         (r"association\s+ok",), check=_check_huge_basket),
    Case("hostile-file-name-validate",
         lambda t: validate(lines_csv(t, name=HOSTILE_NAME)), 0,
         (re.escape(HOSTILE_NAME),), reconcile={}),
    Case("hostile-file-name-and-formula-items",
         lambda t: run(t, "association", baskets_file(t, HOSTILE_BASKETS, name=HOSTILE_NAME),
                       "-p", "data_format", "baskets", "-p", "min_support", "0.1", "-p", "min_confidence", "0.3"), 0,
         (r"association\s+ok",), check=_check_hostile_outputs),
]


def _excel(tmp: Path) -> Path:
    p = tmp / "shop.xlsx"
    pd.DataFrame([dict(zip(HEADER, r)) for r in BASE_ROWS]).to_excel(p, sheet_name="Orders", index=False)
    return p


def _assert_text(path: Path, text: str) -> None:
    assert path.read_text(encoding="utf-8") == text, f"{path} was changed"


# --------------------------------------------------------------------------- the test


def _assert_reconciles(argv: list[str], expected: dict[tuple[str, str], int]) -> None:
    """``quality.prepare`` on the same data: input = kept + quarantined for every table and reason,
    the quarantine lists each dropped row with its reason, and the expected counts hold."""
    ds, res = quality.prepare(data=_flag(argv, "--data"), data_format=_flag(argv, "--data-format"),
                              mapping=_flag(argv, "--mapping"))
    rec = res.reconciliation.set_index("table")
    reasons = [c for c in rec.columns if c not in ("input_rows", "kept_rows", "quarantined_rows", "reconciles")]
    for table, row in rec.iterrows():
        assert row["input_rows"] == row["kept_rows"] + row["quarantined_rows"], table
        assert row["quarantined_rows"] == sum(int(row[r]) for r in reasons), table
        assert bool(row["reconciles"]), table
        assert len(res.tables[table]) == row["kept_rows"], table
        assert (res.quarantine["table"] == table).sum() == row["quarantined_rows"], table
    assert rec.loc["order_items", "input_rows"] == ds.n_input_rows or ds.format != "lines"
    for (table, reason), n in expected.items():
        assert reason in rec.columns, f"reason code {reason!r} missing from the reconciliation: {reasons}"
        assert int(rec.loc[table, reason]) == n, (table, reason, rec.loc[table].to_dict())
        q = res.quarantine[(res.quarantine["table"] == table) & (res.quarantine["reason"] == reason)]
        assert len(q) == n, (table, reason)
    unexpected = {(t, r): int(rec.loc[t, r]) for t in rec.index for r in reasons
                  if int(rec.loc[t, r]) and (t, r) not in expected}
    assert not unexpected, f"rows quarantined for reasons the case does not expect: {unexpected}"


def test_at_least_40_cases():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_adversarial_input(case: Case, tmp_path, capsys):
    argv = case.build(tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    output = captured.err + captured.out
    assert code == case.code, f"exit {code}, expected {case.code}:\n{output[-3000:]}"
    assert not NO_TRACEBACK.search(output), f"raw traceback instead of a clear message:\n{output[-3000:]}"
    if case.code == 2:
        assert re.search(r"^error: ", captured.err, re.M), captured.err
    for pattern in case.says:
        assert re.search(pattern, output), f"message lacks /{pattern}/:\n{output[-3000:]}"
    if case.no_kernel:
        out = tmp_path / "out"
        assert not (out.exists() and list(out.rglob("*.ipynb"))), "a kernel ran before the error"
    if case.reconcile is not None:
        assert re.search(r"Reconciliation", output)
        _assert_reconciles(argv, case.reconcile)
    if case.check is not None:
        case.check(tmp_path, output)


# --------------------------------------------------------------------------- baskets (library level)
# `ecrm validate` checks order data; basket files are read by the association step, whose
# exclusions table is what the notebook reports (and the CLI run above executes).


def _exclusion(bd, pattern: str) -> int:
    rows = bd.exclusions[bd.exclusions["reason"].str.contains(pattern, case=False, regex=True)]
    return int(rows["rows"].sum())


@pytest.mark.parametrize(("lines", "pattern", "n", "n_baskets", "items"), [
    (["milk,bread", "", "milk", "   ", "bread,eggs"], r"blank line", 2, 3, {"milk", "bread", "eggs"}),
    (["milk,  ,bread", "milk,\t", "eggs"], r"whitespace|blank item|empty item", 2, 3, {"milk", "bread", "eggs"}),
    (["milk,bread,milk", "eggs,eggs,eggs"], r"repeat|duplicate", 3, 2, {"milk", "bread", "eggs"}),
], ids=["blank-lines", "whitespace-only-items", "repeated-items"])
def test_basket_file_drops_are_counted(tmp_path, lines, pattern, n, n_baskets, items):
    bd = load_baskets(str(baskets_file(tmp_path, lines)), "baskets")
    assert _exclusion(bd, pattern) == n, bd.exclusions
    assert bd.n_baskets == n_baskets
    # reconciliation: every line of the file is a basket or a counted blank line
    assert bd.n_baskets + _exclusion(bd, r"blank line") == len(lines)
    assert set(bd.baskets["item"].dropna()) == items  # no whitespace-only item survives
    # an item with a trailing space stays distinct (R arules' Groceries semantics)
    bd2 = load_baskets(str(baskets_file(tmp_path, ["cream cheese ,milk", "cream cheese"], "b2.csv")), "baskets")
    assert set(bd2.baskets["item"]) == {"cream cheese ", "cream cheese", "milk"}
