"""Reading the user's data: CSV, Parquet, Excel and basket files, plus column mapping.

The public entry point of the reading layer; the code lives in focused modules, re-exported here:
:mod:`~ecrm_research.data.reading` (one file -> a frame or baskets), :mod:`~ecrm_research.data.formats`
(the five formats, :func:`detect_format`), :mod:`~ecrm_research.data.mapping` (column-mapping files),
:mod:`~ecrm_research.data.lines` (order lines -> canonical tables) and
:mod:`~ecrm_research.data.dataset` (:class:`Dataset`, :func:`load_dataset`).

Every analysis starts with :func:`load_dataset`, which turns "bring your own data" into a
:class:`Dataset` in one of five formats:

``canonical``
    A folder holding the canonical tables (see :mod:`ecrm_research.data.schema`) as files named
    after them: ``customers.parquet``, ``orders.csv``, ``order_items.xlsx`` ... Sub-folders
    (e.g. ``truth/``) and files with other names are ignored.
``lines``
    One flat file with one row per order line (order id, customer id, timestamp, product,
    quantity, unit price, optional extras). A column-mapping file renames the user's columns
    and :func:`split_order_lines` derives the canonical customers/products/orders/order_items.
``baskets``
    One transaction per text line, items separated by ``,`` (the Groceries layout).
``customers`` / ``survey``
    One table read as it is (a customer table with tenure/churn columns; a survey with one row
    per respondent) into :attr:`Dataset.frame`.

Column-mapping files (YAML; ``data/mappings/online_retail.yaml`` is the worked example)::

    format: lines                    # optional; one of the five formats
    read: {sep: ",", decimal: ".", encoding: utf-8, date_format: "%d/%m/%Y %H:%M", sheet_name: 0}
    columns:                         # canonical name: the user's column
      order_id: InvoiceNo
      customer_id: CustomerID
    rules:
      cancelled_if: {column: InvoiceNo, startswith: "C"}
      returned_if: {column: Quantity, lt: 0}
      non_product_codes: [POST, DOT]
    value_maps:                      # canonical column: {user value: canonical value}
      channel: {Mobile: app, Desktop: web}

Rule language (``cancelled_if`` / ``returned_if``)
    A *condition* is a mapping with ``column`` (the user's column name or a canonical name)
    and one or more operators, all of which must hold: ``eq``, ``ne``, ``in``, ``not_in``
    (list), ``lt``, ``le``, ``gt``, ``ge`` (numbers), ``startswith``, ``endswith`` (text),
    ``isnull`` (true/false). A list of conditions holds when *any* of them holds. Rules are
    evaluated per line; an order takes the most severe status among its lines
    (cancelled > returned > completed) and the rules override a mapped ``status`` column.

Format detection (:func:`detect_format`) is deliberately simple: a folder is ``canonical``; a
table whose header holds the six required order-line columns is ``lines``; a text file whose
lines have varying numbers of comma-separated fields is ``baskets``; anything else must be
stated explicitly (``-p data_format X``). An explicit ``data_format`` always wins, and a
mapping file with ``format:`` counts as explicit.
"""


from .dataset import Dataset, load_dataset
from .formats import FORMATS, LINE_COLUMNS, LINE_OPTIONAL, LINE_REQUIRED, detect_format
from .lines import split_order_lines
from .mapping import CONDITION_OPS, MAPPING_KEYS, READ_OPTIONS, RULE_KEYS, ColumnMapping, load_mapping
from .reading import (
    EXCEL_EXTENSIONS,
    PARQUET_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    TEXT_EXTENSIONS,
    read_baskets,
    read_table,
    sniff_sep,
)

__all__ = [
    "FORMATS", "ColumnMapping", "Dataset", "load_dataset", "detect_format", "read_table", "read_baskets",
    "load_mapping", "split_order_lines", "LINE_COLUMNS", "LINE_REQUIRED", "LINE_OPTIONAL", "sniff_sep",
    "READ_OPTIONS", "MAPPING_KEYS", "RULE_KEYS", "CONDITION_OPS",
    "TEXT_EXTENSIONS", "PARQUET_EXTENSIONS", "EXCEL_EXTENSIONS", "SUPPORTED_EXTENSIONS",
]
