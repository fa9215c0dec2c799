"""Rendering an executed notebook to its HTML reports (nbconvert).

``report.html`` is the reader version (markdown and outputs, no code), ``report_student.html``
the student version (with the code); both stand alone and open offline. nbconvert is called only
from this module, so its API drift is handled here.

Public names: :func:`render_reports`, :func:`add_navigation`, :func:`needs_scripts`, :func:`forbid_scripts`,
:data:`REPORT_CSS`,
:data:`READER_DROP`, :data:`STUDENT_DROP`, :data:`NO_SCRIPT_CSP`.
"""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path
from typing import Any

REPORT_CSS = Path(__file__).parent / "templates" / "report.css"
#: cells dropped from the reports: exercises and their hints in neither, solutions not in the student report
READER_DROP = {"remove-cell", "remove_cell", "exercise", "hint", "solution", "your-turn"}
STUDENT_DROP = {"remove-cell", "remove_cell", "solution"}
#: put into the ``<head>`` of every report that needs no script: the browser (and the PDF printer)
#: then refuses any script, inline event handler (``onerror=...``) or plugin in the page
NO_SCRIPT_CSP = ('<meta http-equiv="Content-Security-Policy" '
                 'content="script-src \'none\'; object-src \'none\'; base-uri \'none\'">')


def render_reports(notebook: str | Path, out_dir: str | Path, *, title: str | None = None) -> dict[str, Path]:
    """Render an executed notebook to a reader and a student HTML report.

    Parameters
    ----------
    notebook : str or Path
        Executed ``.ipynb``.
    out_dir : str or Path
        Folder for ``report.html`` (no code: markdown and outputs) and
        ``report_student.html`` (with the code).
    title : str, optional
        HTML page title; default the notebook's stem.

    Returns
    -------
    dict
        ``{"reader": Path, "student": Path}``.

    Notes
    -----
    Cells tagged ``remove-cell`` are dropped from both; ``remove-input`` hides the code of a
    cell in the student version too. Exercise cells (``exercise``, ``solution``, ``your-turn``;
    see ``docs/teaching.md``) are left out of the reader report, and ``solution`` cells out of the
    student report. Images are embedded, the report stylesheet (``templates/report.css``) is
    inlined and the CDN scripts nbconvert links (require.js, MathJax when no cell holds LaTeX,
    the Mermaid loader when no cell draws a Mermaid diagram) are dropped, so each HTML file stands
    alone and opens offline. A report left without scripts (all of ours today: no notebook uses
    math) carries a Content-Security-Policy (:data:`NO_SCRIPT_CSP`) that forbids every script, so a
    value that slipped past :func:`~ecrm_research.report.display.escape_md` still cannot run.
    """
    import nbformat  # lazy, as nbconvert below: ~0.5 s of import that `ecrm --help` should not pay

    nb_path = Path(notebook)
    out_dir = Path(out_dir)
    nb = nbformat.read(str(nb_path), as_version=4)
    name = title or nb_path.stem
    try:
        css = REPORT_CSS.read_text(encoding="utf-8")
    except OSError:
        css = ""
    keep_mathjax = _has_math(nb)
    paths = {"reader": out_dir / "report.html", "student": out_dir / "report_student.html"}
    for kind, target in paths.items():
        exporter = _exporter(kind)
        body, _ = exporter.from_notebook_node(
            nb, resources={"metadata": {"name": name, "path": str(nb_path.parent)}}
        )
        body = _self_contained(body, keep_mathjax=keep_mathjax)
        body = add_navigation(body, kind=kind, explore=(out_dir / "explore.html").is_file())
        if css:
            body = body.replace("</head>", f'<style id="ecrm-report-css">\n{css}\n</style>\n</head>', 1)
        target.write_text(body, encoding="utf-8")
    return paths


_EXPORTERS: dict[str, Any] = {}


def _exporter(kind: str) -> Any:
    """The HTML exporter for ``'reader'`` or ``'student'`` reports, built once per process.

    Building one loads and compiles nbconvert's Jinja templates (about half a second); the
    exporters hold no per-notebook state, so ``run_all`` reuses them for every notebook.
    """
    if kind not in _EXPORTERS:
        # lazy: nbconvert takes ~1 s to import and only rendering needs it
        from nbconvert import HTMLExporter
        from nbconvert.preprocessors import TagRemovePreprocessor

        exporter = HTMLExporter(
            exclude_input=(kind == "reader"),
            exclude_input_prompt=(kind == "reader"),
            exclude_output_prompt=True,
            embed_images=True,
        )
        tags = TagRemovePreprocessor(
            remove_cell_tags=READER_DROP if kind == "reader" else STUDENT_DROP,
            remove_input_tags={"remove-input", "remove_input"},
            enabled=True,
        )
        exporter.register_preprocessor(tags, enabled=True)
        _EXPORTERS[kind] = exporter
    return _EXPORTERS[kind]


_HEADING_RE = re.compile(r'<h([23])\s+id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_TAG_RE = re.compile(r"<[^>]+>")
_BODY_RE = re.compile(r"<main[^>]*>|<body[^>]*>", re.I)


def add_navigation(html: str, *, kind: str = "reader", explore: bool = False) -> str:
    """Put a navigation bar and a table of contents at the top of a rendered report.

    The bar links back to the index (``../index.html``), to the glossary (``../glossary.html``), to
    the other version of the report and, when the notebook wrote one, to the interactive page
    (``explore.html``). The contents list every section (``##``) and subsection (``###``) heading
    with nbconvert's anchors. Idempotent: a report that has a bar is returned unchanged.
    """
    if 'class="ecrm-nav"' in html:
        return html

    other = ('<a href="report_student.html">Report with code</a>' if kind == "reader"
             else '<a href="report.html">Report without code</a>')
    links = ['<a class="ecrm-back" href="../index.html">← All reports</a>',
             '<a href="../glossary.html">Glossary</a>', other]
    if explore:
        links.append('<a href="explore.html">Explore (interactive tables and charts)</a>')
    sections: list[tuple[str, str, list[tuple[str, str]]]] = []  # (anchor, label, subsections)
    for level, anchor, text in _HEADING_RE.findall(html):
        label = html_lib.unescape(_TAG_RE.sub("", text)).replace("¶", "").strip()
        if not label:
            continue
        if level == "3" and sections:
            sections[-1][2].append((anchor, label))
        else:  # a section, or a subsection before the first section
            sections.append((anchor, label, []))
    items = []
    for anchor, label, subs in sections:
        sub = "".join(f'<li><a href="#{a}">{html_lib.escape(t)}</a></li>' for a, t in subs)
        items.append(f'<li><a href="#{anchor}">{html_lib.escape(label)}</a>{f"<ol>{sub}</ol>" if sub else ""}</li>')
    toc = (f'<details class="ecrm-toc" open><summary>Contents</summary><ol>{"".join(items)}</ol></details>'
           if items else "")
    block = f'<nav class="ecrm-nav" aria-label="Report navigation">{" ".join(links)}</nav>{toc}'
    m = _BODY_RE.search(html)
    return html[:m.end()] + block + html[m.end():] if m else block + html


_MATH_RE = re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$|\\\(|\\\[|\\begin\{")


_REQUIREJS_RE = re.compile(r'<script src="https?://[^"]*require(?:\.min)?\.js"[^>]*>\s*</script>\s*', re.I)


_MATHJAX_RE = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->\s*", re.S)


#: nbconvert's loader for Mermaid diagrams (imports mermaid.js from a CDN when a diagram is present)
_MERMAID_SCRIPT_RE = re.compile(
    r'<script type="module">\s*document\.addEventListener\("DOMContentLoaded"[^<]*?jp-Mermaid.*?</script>\s*', re.S)
_MERMAID_USED_RE = re.compile(r'class="[^"]*\bjp-Mermaid\b')
_SCRIPT_RE = re.compile(r"<script\b", re.I)


def _has_math(nb: Any) -> bool:
    """True when a markdown cell or an output holds LaTeX that MathJax would typeset."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and _MATH_RE.search(cell.source or ""):
            return True
        for o in cell.get("outputs", []):
            if "text/latex" in o.get("data", {}):
                return True
    return False


def _self_contained(html: str, *, keep_mathjax: bool) -> str:
    """Drop nbconvert's CDN scripts (require.js always; MathJax unless the notebook has math)."""
    html = _REQUIREJS_RE.sub("", html)
    if not keep_mathjax:
        html = _MATHJAX_RE.sub("", html)
    if not _MERMAID_USED_RE.search(html):
        html = _MERMAID_SCRIPT_RE.sub("", html)
    return html if needs_scripts(html) else forbid_scripts(html)


def forbid_scripts(html: str) -> str:
    """`html` with :data:`NO_SCRIPT_CSP` at the top of its ``<head>`` (unchanged if already there)."""
    if NO_SCRIPT_CSP in html:
        return html
    head = re.search(r"<head[^>]*>(\s*<meta charset=[^>]*>)?", html, re.I)
    if head is None:
        return NO_SCRIPT_CSP + "\n" + html
    return html[:head.end()] + "\n" + NO_SCRIPT_CSP + html[head.end():]


def needs_scripts(html: str) -> bool:
    """True when a rendered report holds a script it needs (MathJax for math, Mermaid diagrams).

    The PDF printer (:mod:`~ecrm_research.report.pdf`) runs Chromium with JavaScript off for every
    other page; our own notebooks hold no math and no diagrams, so none of their reports needs one.
    """
    return bool(_SCRIPT_RE.search(html))
