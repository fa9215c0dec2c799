"""Checks that headline findings never overstate (issue 15, item 4), shared by the report tests.

* every number of a finding's text appears in the report body — outside the cell that records the
  findings — at the finding's precision (a share may appear as a percentage and vice versa);
* no p-value is stated as 0, and no Python boolean (``True``/``False``) stands in for a word.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import nbformat

_NUMBER = re.compile(r"(?<![\w.])[-+−]?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?"
                     r"|(?<![\w.])[-+−]?\d+(?:\.\d+)?(?:e[-+−]?\d+)?%?")
_ZERO_P = re.compile(r"\bp(?:-value)?\s*[=<≤]\s*0(?:\.0+)?(?![.\d])", re.IGNORECASE)
_BOOL = re.compile(r"\b(?:True|False)\b")


def numbers(text: str) -> list[tuple[str, float, int]]:
    """Numeric tokens of `text`: (token, value, decimals); thousands separators and % understood."""
    out = []
    for m in _NUMBER.finditer(text):
        tok = m.group(0)
        plain = tok.replace("−", "-").replace(",", "").rstrip("%")
        try:
            value = float(plain)
        except ValueError:
            continue
        decimals = len(plain.split(".")[1]) if "." in plain and "e" not in plain.lower() else 0
        out.append((tok, value, decimals))
    return out


def report_body(nb: nbformat.NotebookNode) -> str:
    """Markdown and outputs of an executed notebook, except cells that record findings."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        if "out.finding(" in cell.source:
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            for kind in ("text/html", "text/markdown", "text/plain"):
                data = o.get("data", {}).get(kind)
                if data:
                    data = data if isinstance(data, str) else "".join(data)
                    parts.append(html.unescape(re.sub(r"<[^>]+>", " ", data)))
                    break
    return "\n".join(parts)


def finding_problems(folder: Path) -> list[str]:
    """Problems of the headline findings of one analysis output folder (empty: none)."""
    findings = json.loads((folder / "findings.json").read_text())["findings"]
    body = report_body(nbformat.read(folder / f"{folder.name}.ipynb", as_version=4))
    shown = [v for _, v, _ in numbers(body)]
    shown += [v * 100 for v in shown] + [v / 100 for v in shown]
    problems = []
    for f in findings:
        text = f["text"]
        if _ZERO_P.search(text):
            problems.append(f"{folder.name}/{f['key']}: a p-value stated as 0: {text!r}")
        if _BOOL.search(text):
            problems.append(f"{folder.name}/{f['key']}: a Python boolean instead of words: {text!r}")
        for tok, value, decimals in numbers(text):
            if decimals == 0 and abs(value) < 10:
                continue  # small counts (k = 4, top 3) are not headline numbers
            tol = 0.5 * 10.0 ** (-decimals) * (1 + 1e-9)
            if not any(abs(s - value) <= tol for s in shown):
                problems.append(f"{folder.name}/{f['key']}: {tok} is not in the report body: {text!r}")
    return problems
