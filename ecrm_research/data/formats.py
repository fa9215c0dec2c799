"""The five data formats and how a file's format is told (:func:`detect_format`).

``canonical`` (a folder of canonical tables), ``lines`` (one row per order line), ``baskets``
(one transaction per text line), ``customers`` and ``survey`` (one table read as it is); see
:mod:`ecrm_research.data.io` for the whole reading story.

Public names: :data:`FORMATS`, the canonical names an order-lines file may hold
(:data:`LINE_REQUIRED`, :data:`LINE_OPTIONAL`, :data:`LINE_COLUMNS` and the per-table groups
:data:`LINE_PRODUCT_COLUMNS`, :data:`LINE_ORDER_COLUMNS`, :data:`LINE_CUSTOMER_COLUMNS`) and
:func:`detect_format`.
"""

from __future__ import annotations

from pathlib import Path

from ..exceptions import FormatError
from .reading import TEXT_EXTENSIONS, check_file, file_suffix, read_header

FORMATS: tuple[str, ...] = ("canonical", "lines", "baskets", "customers", "survey")

#: Canonical names a ``lines`` mapping may target (required ones first).
LINE_REQUIRED = ("order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price")
LINE_OPTIONAL = (
    "product_name", "category", "list_price",                     # -> products
    "status", "channel", "discount_rate", "delivery_days", "promised_days",  # -> orders
    "region", "registered_at", "age_band", "acquisition_source", "is_member",  # -> customers
)
LINE_COLUMNS = LINE_REQUIRED + LINE_OPTIONAL
#: Optional order-line columns that describe the product, the order and the customer.
LINE_PRODUCT_COLUMNS = ("product_name", "category", "list_price")
LINE_ORDER_COLUMNS = ("status", "channel", "discount_rate", "delivery_days", "promised_days")
LINE_CUSTOMER_COLUMNS = ("region", "registered_at", "age_band", "acquisition_source", "is_member")


def _looks_like_baskets(path: Path, encoding: str = "utf-8", n_lines: int = 200) -> bool:
    """True for a text file whose first lines have varying numbers of comma-separated fields."""
    if file_suffix(path) not in TEXT_EXTENSIONS:
        return False
    try:
        with open(path, encoding=encoding, errors="replace") as fh:
            lines = [ln.rstrip("\r\n") for _, ln in zip(range(n_lines), fh)]
    except OSError:
        return False
    lines = [ln for ln in lines if ln.strip()]
    if len(lines) < 2:
        return False
    counts = {ln.count(",") + 1 for ln in lines}
    # a table has the same number of fields on every line; baskets vary in length
    return len(counts) > 1 and max(counts) > 1 and not any(";" in ln or "\t" in ln for ln in lines[:5])


def detect_format(path: str | Path) -> str:
    """Guess the data format of a file or folder.

    Rules, in order: a folder is ``canonical``; a table whose header holds the required
    order-line columns (``order_id, customer_id, ordered_at, product_id, quantity, unit_price``)
    is ``lines``; a text file whose lines have varying numbers of comma-separated fields is
    ``baskets``. Anything else raises :class:`FormatError` asking for ``data_format``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.csv"
    >>> _ = p.write_text("milk,bread\\neggs\\nmilk,eggs,tea\\n")
    >>> detect_format(p)
    'baskets'
    """
    p = Path(path)
    if p.is_dir():
        return "canonical"
    check_file(p)
    if set(LINE_REQUIRED) <= set(read_header(p)):
        return "lines"
    if _looks_like_baskets(p):
        return "baskets"
    raise FormatError(
        f"{path}: cannot tell the data format. State it with `-p data_format X` (data_format=X), X one of "
        f"{', '.join(FORMATS)}: canonical = a folder of canonical tables, lines = one row per order line "
        "(with a --mapping file for your column names), baskets = one transaction per line, customers = "
        "one row per customer, survey = one row per respondent.", source=str(path))
