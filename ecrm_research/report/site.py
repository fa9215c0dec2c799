"""The report index ``OUT/index.html``: one card per analysis, linking its reports and files.

The index is built from what is on disk, so it also lists analyses run earlier into the same
output folder (marked with their run date)::

    OUT/<name>/run.json        written by runner.run_notebook (status, error, seconds, parameters)
    OUT/<name>/findings.json   written by the notebook (question, headline findings)
    OUT/<name>/figures/*.png   the key figure (else the first written) is the thumbnail
    OUT/<name>/tables/*.csv    each one is linked
    OUT/<name>/report.pdf      linked when printed; otherwise run.json["pdf"]["reason"] is shown
    OUT/manifest.json          git commit, input digest and seeds shown in the header (reproducibility)

An interrupted run (SIGINT/SIGTERM) still writes the index: the analysis that was running is
marked ``interrupted`` (links only to the files it left), those it did not start ``not run``
(with a note when the files shown are from an earlier run).

All text is HTML-escaped and all links are relative, so the folder can be moved or zipped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .glossary import write_glossary

__all__ = ["AnalysisEntry", "collect_entries", "render_index", "write_index"]

_FIGURE_EXT = (".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp")
_CSS_FILE = Path(__file__).parent / "templates" / "index.css"
_FALLBACK_CSS = "body{font-family:sans-serif;max-width:1100px;margin:auto}.failed{color:#b42318}"
#: headline findings shown per card (the report has them all)
MAX_FINDINGS = 5


@dataclass
class AnalysisEntry:
    """What the index shows for one analysis (read from ``OUT/<name>/``)."""

    name: str
    dir: Path
    status: str = "unknown"
    error: str | None = None
    seconds: float | None = None
    started: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    question: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    this_run: bool = False
    pdf: dict[str, Any] | None = None
    key_figure: str | None = None  # relative path declared by the notebook (findings.json)

    def files(self) -> dict[str, Any]:
        """Existing files to link: reports, notebook, thumbnail (the key figure, else the first written), CSV tables."""
        figs = sorted((p for p in (self.dir / "figures").glob("*") if p.suffix.lower() in _FIGURE_EXT),
                      key=lambda p: (p.stat().st_mtime_ns, p.name)) if (self.dir / "figures").is_dir() else []
        tables = sorted((self.dir / "tables").glob("*.csv")) if (self.dir / "tables").is_dir() else []
        named = {
            "report": self.dir / "report.html",
            "student": self.dir / "report_student.html",
            "notebook": self.dir / f"{self.name}.ipynb",
            "pdf": self.dir / "report.pdf",
            "explore": self.dir / "explore.html",
        }
        out: dict[str, Any] = {k: p for k, p in named.items() if p.is_file()}
        key = self.dir / self.key_figure if self.key_figure else None
        out["thumbnail"] = key if key is not None and key.is_file() else (figs[0] if figs else None)
        out["tables"] = tables
        return out


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _entry(folder: Path, name: str) -> AnalysisEntry:
    run = read_json_object(folder / "run.json")
    fnd = read_json_object(folder / "findings.json")
    findings = [f for f in fnd.get("findings", []) if isinstance(f, dict)]
    return AnalysisEntry(
        name=name,
        dir=folder,
        status=str(run.get("status", "unknown")),
        error=run.get("error"),
        seconds=run.get("seconds"),
        started=run.get("started"),
        parameters=run.get("parameters") or {},
        question=fnd.get("question"),
        findings=findings,
        pdf=run.get("pdf") if isinstance(run.get("pdf"), dict) else None,
        key_figure=fnd.get("key_figure") if isinstance(fnd.get("key_figure"), str) else None,
    )


def collect_entries(out: str | Path, results: Sequence[Any] = (), *, order: Sequence[str] = ()) -> list[AnalysisEntry]:
    """Entries for every analysis in `out`: this run's `results` plus earlier runs found on disk.

    Parameters
    ----------
    out : str or Path
        Output root holding ``<name>/run.json``.
    results : sequence of RunResult
        This run's results (their status and error win over ``run.json``).
    order : sequence of str
        Preferred order of names (the notebooks' ``NN`` order); others follow alphabetically.
    """
    root = Path(out)
    names: list[str] = [r.name for r in results]
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if p.is_dir() and (p / "run.json").is_file() and p.name not in names:
                names.append(p.name)
    rank = {n: i for i, n in enumerate(order)}
    names.sort(key=lambda n: (rank.get(n, len(rank)), n))
    current = {r.name: r for r in results}
    entries = []
    for n in names:
        e = _entry(root / n, n)
        if n in current:
            r = current[n]
            e.status, e.error, e.this_run = r.status, r.error, True
            e.seconds = None if r.status == NOT_RUN else round(r.seconds, 1)
        entries.append(e)
    return entries


#: statuses of an analysis stopped by SIGINT/SIGTERM while it ran, and of one the stopped run did not start
INTERRUPTED, NOT_RUN = "interrupted", "not run"
#: status -> CSS class of its card and badge
_STATUS_CLASS = {"ok": "ok", "failed": "failed", INTERRUPTED: "interrupted", NOT_RUN: "not-run"}
#: status of an analysis the data does not fit (``ecrm run all`` on a lines file: no survey for loyalty)
SKIPPED = "skipped"
_STATUS_CLASS[SKIPPED] = "skipped"


def _skipped_card(parts: list[str], e: AnalysisEntry) -> str:
    """The card of a skipped analysis: the reason and how to provide the data; no findings or files
    (any in its folder are from an earlier run on other data)."""
    parts.append(f'<div class="skipped-reason"><strong>Skipped:</strong> {_e(e.error or "the data does not fit it")}'
                 "</div>")
    parts.append('</div><div class="thumb"><span class="none">Not run on this data.</span></div></section>')
    return "\n".join(parts)


def _stop_note(e: AnalysisEntry, files: Mapping[str, Any]) -> str:
    """The paragraph of an interrupted or not-run card: what happened, what the files are, what to do."""
    if e.status == INTERRUPTED:
        text = (f"{e.error or 'Interrupted'}. The files below are what it wrote before it was stopped; "
                "run again to complete it.")
    else:
        earlier = any(k in files for k in ("report", "notebook")) or files.get("tables")
        when = f" ({e.started})" if e.started else ""
        text = ("Not run: the run was interrupted before this analysis started."
                + (f" The files below are from an earlier run{when}." if earlier else "")
                + " Run again to complete it.")
    return f'<div class="error">{_e(text)}</div>'


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _href(root: Path, path: Path) -> str:
    return quote(path.relative_to(root).as_posix())


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _meta_rows(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("Data", params.get("data") or "bundled sample (data/sample)"),
        ("Data format", params.get("data_format") or "detected"),
    ]
    if params.get("mapping") is not None:
        rows.append(("Column mapping", params["mapping"]))
    others = {k: v for k, v in params.items() if k not in ("data", "data_format", "mapping")}
    rows.append(("Parameters", ", ".join(f"{k} = {_format_value(v)}" for k, v in others.items())
                 or "notebook defaults"))
    return rows


def _manifest_rows(root: Path) -> list[tuple[str, str]]:
    """Reproducibility facts from ``manifest.json``: input digest, seeds, code version."""
    m = read_json_object(root / "manifest.json")
    if not m:
        return []
    rows = []
    data = (m.get("inputs") or {}).get("data") or {}
    if data.get("sha256"):
        rows.append(("Input files", f"{len(data.get('files') or [])} file(s), sha256 {data['sha256'][:16]}…"))
    seeds = sorted({str(nb.get("seed")) for nb in (m.get("notebooks") or {}).values() if nb.get("seed") is not None})
    if seeds:
        rows.append(("Seed", ", ".join(seeds)))
    git = m.get("git") or {}
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    code = f"git {git['commit'][:10]}{dirty}" if git.get("commit") else "no git"
    pk = m.get("packages") or {}
    shown = ("pandas", "scikit-learn", "lifelines", "mlxtend")
    versions = ", ".join(f"{k} {v}" for k, v in pk.items() if v and k in shown)
    rows.append(("Code", f"{code}; Python {m.get('python', '?')}" + (f"; {versions}" if versions else "")))
    rows.append(("Reproduce", f"ecrm reproduce {root}"))
    return rows


def _card(root: Path, e: AnalysisEntry) -> str:
    f = e.files()
    status = e.status if e.status in _STATUS_CLASS else "unknown"
    css = _STATUS_CLASS.get(status, "unknown")
    parts = [f'<section class="card {css}" id="{_e(e.name)}"><div>']
    title = [f'<h2>{_e(e.name)}</h2>', f'<span class="badge {css}">{_e(status)}</span>']
    if e.seconds is not None:
        title.append(f'<span class="secs">{_e(e.seconds)} s</span>')
    if not e.this_run:
        when = e.started or "an earlier run"
        title.append(f'<span class="earlier">from an earlier run ({_e(when)})</span>')
    parts.append(f'<div class="title">{"".join(title)}</div>')
    if status == SKIPPED and e.this_run:
        return _skipped_card(parts, e)
    if e.question:
        parts.append(f'<p class="question">{_e(e.question)}</p>')
    if status == "failed":
        parts.append(f'<div class="error">{_e(e.error or "failed (no message)")}</div>')
    elif status in (INTERRUPTED, NOT_RUN):
        parts.append(_stop_note(e, f))
    if e.findings:
        items = "".join(
            f'<li title="{_e(fd.get("key"))} = {_e(_format_value(fd.get("value")))}">'
            f'{_e(fd.get("text") or fd.get("key"))}</li>'
            for fd in e.findings[:MAX_FINDINGS]
        )
        more = len(e.findings) - MAX_FINDINGS
        if more > 0:
            items += f'<li class="more">… {more} more in the report</li>'
        parts.append(f'<ul class="findings">{items}</ul>')
    elif status == "ok":
        parts.append('<p class="secs">No findings recorded.</p>')
    links = []
    for key, label in (("report", "Report"), ("pdf", "PDF"), ("student", "Report with code"),
                       ("explore", "Explore (interactive)"), ("notebook", "Executed notebook")):
        if key in f:
            links.append(f'<a class="{key}" href="{_href(root, f[key])}">{label}</a>')
    parts.append(f'<div class="links">{"".join(links)}</div>')
    if "pdf" not in f and e.pdf and e.pdf.get("status") in ("skipped", "failed"):
        parts.append(f'<p class="pdf-note">PDF {_e(e.pdf.get("status"))}: {_e(e.pdf.get("reason"))}</p>')
    if f["tables"]:
        tl = "".join(f'<a href="{_href(root, p)}">{_e(p.name)}</a>' for p in f["tables"])
        parts.append(f'<div class="links"><span class="label">Tables (CSV):</span>{tl}</div>')
    parts.append('</div><div class="thumb">')
    if f["thumbnail"] is not None:
        href = _href(root, f["thumbnail"])
        target = _href(root, f["report"]) if "report" in f else href
        parts.append(f'<a href="{target}"><img src="{href}" alt="{_e(e.name)}: {_e(f["thumbnail"].stem)}" '
                     f'loading="lazy"></a>')
    else:
        parts.append('<span class="none">No figure.</span>')
    parts.append("</div></section>")
    return "\n".join(parts)


def render_index(
    out: str | Path,
    results: Sequence[Any] = (),
    *,
    params: Mapping[str, Any] | None = None,
    run_date: datetime | None = None,
    order: Sequence[str] = (),
    title: str = "ecrm-research reports",
) -> str:
    """HTML of the report index for output root `out` (see :func:`write_index`)."""
    root = Path(out)
    entries = collect_entries(root, results, order=order)
    when = (run_date or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z").strip()
    try:
        css = _CSS_FILE.read_text(encoding="utf-8")
    except OSError:
        css = _FALLBACK_CSS
    n_ok = sum(e.status == "ok" for e in entries)
    n_failed = sum(e.status == "failed" for e in entries)
    meta = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _meta_rows(params or {}))
    meta += f"<dt>Run date</dt><dd>{_e(when)}</dd>"
    meta += "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _manifest_rows(root))
    cards = "\n".join(_card(root, e) for e in entries) or "<p>No analyses have been run yet.</p>"
    summary = f"{len(entries)} {'analysis' if len(entries) == 1 else 'analyses'}: {n_ok} ok, {n_failed} failed"
    for stopped in (INTERRUPTED, NOT_RUN, SKIPPED):
        n_stopped = sum(e.status == stopped for e in entries)
        summary += f", {n_stopped} {stopped}" if n_stopped else ""
    summary += "." + (" The run was interrupted; run it again to complete it."
                      if any(e.this_run and e.status in (INTERRUPTED, NOT_RUN) for e in entries) else "")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>\n{css}\n</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(title)}</h1><p><a href=\"glossary.html\">Glossary</a> of the terms the reports use</p>"
        f"<dl class=\"meta\">{meta}</dl>"
        f"<p class=\"summary\">{_e(summary)}</p></header>\n<main>\n{cards}\n</main>\n"
        "<footer>Generated by <code>ecrm run</code>. Reports without code: “Report” (and its PDF); "
        "with code for students: “Report with code”."
        + (' Inputs, parameters, seeds and package versions: <a href="manifest.json">manifest.json</a>.'
           if (root / "manifest.json").is_file() else "")
        + "</footer>\n</body>\n</html>\n"
    )


def write_index(
    out: str | Path,
    results: Sequence[Any] = (),
    *,
    params: Mapping[str, Any] | None = None,
    run_date: datetime | None = None,
    order: Sequence[str] = (),
) -> Path:
    """Write ``out/index.html`` (and ``out/glossary.html``) and return the index's path.

    Parameters
    ----------
    out : str or Path
        Output root (``reports/`` by default in the runner).
    results : sequence of RunResult
        This run's results, shown first-hand; earlier runs found in `out` are listed too.
    params : dict, optional
        Data source and parameters of this run, shown at the top.
    run_date : datetime, optional
        Shown at the top; default now.
    order : sequence of str
        Order of the analyses (notebook ``NN`` order).
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "index.html"
    path.write_text(render_index(root, results, params=params, run_date=run_date, order=order),
                    encoding="utf-8")
    write_glossary(root)  # every report links ../glossary.html
    return path
