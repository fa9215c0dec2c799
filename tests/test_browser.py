"""The report site in a real browser: headless Chromium opens index.html and every report.

A tiny Chrome DevTools Protocol client (``websocket-client``, already a Jupyter dependency) loads
each page from disk and fails on

* a console error, an uncaught exception or a resource that failed to load;
* a local link or image (``href``/``src``) that does not resolve to an existing file, or an image
  that does not decode;
* an error output in a report whose analysis is recorded as ok (and no visible error in one that
  failed);
* and, as a report-quality check of every report page (:func:`_quality_problems`): a table cell cut
  with "…" or "...", a raw Python repr in an output (``PosixPath(``, ``dtype: float64``, a list or
  dict repr, ``frozenset(``), a table wider than its container without a scroll container, an image
  without alt text (or with nbconvert's placeholder), a missing back-link to the index; and for
  every PDF, a table whose header or last column is missing from the PDF's text (cut at the margin).

Screenshots of every page are kept as test artefacts: ``$ECRM_TEST_ARTIFACTS/browser/...`` or a
pytest temporary folder printed in the output (``-s`` shows it). Chromium missing: skip locally,
fail in CI (``CI=true`` or ``ECRM_REQUIRE_DATASETS=1``); install with ``make system-deps``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest
from conftest import skip_or_fail
from findings_checks import finding_problems

from ecrm_research.cli import main
from ecrm_research.paths import NOTEBOOKS_DIR
from ecrm_research.report.pdf import INSTALL_HINT, DevToolsBrowser, find_chromium

NB_DIR = Path(__file__).parent / "notebooks"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    exe = find_chromium()
    if exe is None:
        skip_or_fail(f"headless Chromium is needed for the browser tests: {INSTALL_HINT}")
    return exe


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    base = os.environ.get("ECRM_TEST_ARTIFACTS")
    root = Path(base) / "browser" if base else tmp_path_factory.mktemp("browser-artifacts")
    root.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {root}")
    return root


# --------------------------------------------------------------------------- a tiny CDP client


class Browser(DevToolsBrowser):
    """The library's DevTools client with the page checks of this test."""

    def __init__(self, exe: str):
        super().__init__(exe, ("--window-size=1280,1600",))
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def open(self, path: Path) -> dict:
        """Load a file; return its problems, links and image states."""
        self.load(path, settle_ms=200)  # thumbnails are loading="lazy": load() makes every image load and decode
        info = self.call("Runtime.evaluate", returnByValue=True, expression="""(() => ({
            links: [...document.querySelectorAll('a[href], link[href]')].map(a => a.href),
            srcs: [...document.querySelectorAll('img[src], script[src], iframe[src]')].map(e => e.src),
            broken_images: [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
                                               .map(i => i.src.slice(0, 120)),
            n_images: document.images.length,
            text: document.body ? document.body.innerText : '',
            output_text: [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText).join(String.fromCharCode(10)),
            cut_cells: [...document.querySelectorAll('td, th')].map(c => c.innerText.trim())
                           .filter(t => /(…|[.][.][.])$/.test(t)).slice(0, 10),
            no_alt: [...document.images].filter(i => !(i.getAttribute('alt') || '').trim()
                        || /No description has been provided/.test(i.getAttribute('alt')))
                        .map(i => i.src.slice(0, 60)).slice(0, 10),
            unscrolled: [...document.querySelectorAll('table')].filter(t => {
                let box = t.parentElement;
                while (box && box !== document.body) {
                    const o = getComputedStyle(box).overflowX;
                    if (o === 'auto' || o === 'scroll') return false;
                    box = box.parentElement;
                }
                return t.getBoundingClientRect().right > document.documentElement.clientWidth + 1;
            }).map(t => (t.innerText || '').slice(0, 60)),
            back_link: !!document.querySelector('a[href="../index.html"]'),
            tables: [...document.querySelectorAll('.jp-OutputArea-output table')].map(t => {
                const head = [...t.querySelectorAll('thead th')].map(c => c.innerText.trim());
                const rows = [...t.querySelectorAll('tbody tr')].slice(0, 3);
                const last = rows.map(r => { const c = r.querySelectorAll('td'); return c.length ? c[c.length - 1].innerText.trim() : ''; });
                return {head, last};
            })}))()""")["result"]["value"]
        problems = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                problems.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                      for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                problems.append("exception: " + p["exceptionDetails"].get("text", "") + " "
                                + str(p["exceptionDetails"].get("exception", {}).get("description", "")))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                problems.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                problems.append(f"load failed: {p.get('errorText')}")
        info["problems"] = problems
        return info

    def screenshot(self, target: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        target.write_bytes(data)
        return data


@pytest.fixture(scope="module")
def browser(chromium_path):
    b = Browser(chromium_path)
    yield b
    b.close()


# --------------------------------------------------------------------------- checks


def _local(url: str) -> Path | None:
    u = urlparse(url)
    return Path(unquote(u.path)) if u.scheme == "file" else None


#: Python reprs that must never reach a reader: paths, Series footers, containers, numpy/pandas scalars
_RAW_REPR = re.compile(r"PosixPath\(|WindowsPath\(|dtype: (?:float|int|object|bool|category)|Name: \w+, dtype|"
                       r"frozenset\(|\[\'[^\'\n]{1,80}\'(?:, \'[^\'\n]{1,80}\')*\]|\{\'[^\'\n]{1,80}\': |"
                       r"<class \'|array\(\[|Timestamp\(\'|np\.float64\(|Index\(\[")


def _quality_problems(info: dict, page: Path) -> list[str]:
    """Report-quality problems of one rendered report page (see the module docstring)."""
    problems = [f"cut table cell: {c!r}" for c in info["cut_cells"]]
    problems += [f"raw Python repr in an output: {m.group(0)!r} in "
                 f"{info['output_text'][max(0, m.start() - 60):m.end() + 40]!r}"
                 for m in list(_RAW_REPR.finditer(info["output_text"]))[:5]]
    problems += [f"table wider than the page without a scroll container: {t!r}" for t in info["unscrolled"]]
    problems += [f"image without alt text: {src}" for src in info["no_alt"]]
    if not info["back_link"]:
        problems.append("no back-link to the index (../index.html)")
    return [f"{page}: {p}" for p in problems]


def _words(text: str) -> list[str]:
    # underscores split words: a header such as hit_rate_ci_lower wraps after its underscores
    return re.findall(r"[A-Za-z0-9][A-Za-z0-9%.,€£$-]*[A-Za-z0-9%]|[A-Za-z0-9]", text)


def _pdf_cut_tables(tables: list[dict], pdf: Path) -> list[str]:
    """Tables of the HTML report whose header words or last-column cells are missing from the PDF's
    text: Chromium clips what runs past the margin, so a cut column leaves no text in the PDF."""
    import pypdf

    text = " ".join(page.extract_text() or "" for page in pypdf.PdfReader(str(pdf)).pages)
    have = set(_words(text))
    out = []
    for i, t in enumerate(tables):
        wanted = [w for cell in t["head"] + t["last"] for w in _words(cell)]
        missing = sorted({w for w in wanted if w not in have})
        if missing:
            out.append(f"{pdf}: table {i + 1} (columns {t['head'][:6]}...) is cut in the PDF: "
                       f"missing {missing[:8]}")
    return out


def _check_page(browser: Browser, page: Path, shots: Path, root: Path) -> dict:
    from PIL import Image

    info = browser.open(page)
    name = page.relative_to(root).as_posix().replace("/", "__")
    png = browser.screenshot(shots / f"{name}.png")
    with Image.open(io.BytesIO(png)) as img:
        assert img.size[0] > 0 and len(set(img.convert("L").resize((32, 32)).getdata())) > 1, f"{page}: blank page"
    assert not info["problems"], f"{page}: {info['problems']}"
    assert not info["broken_images"], f"{page}: images that do not decode: {info['broken_images']}"
    for url in info["links"] + info["srcs"]:
        if url.startswith(("data:", "about:", "javascript:", "mailto:")):
            continue
        local = _local(url)
        if local is None:
            continue  # external links (docs in markdown) are not checked offline
        assert local.exists(), f"{page}: broken link {url}"
        assert root in local.parents or local == root, f"{page}: link leaves the report folder: {url}"
        if local.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".webp"):
            with Image.open(local) as img:
                img.verify()
    return info


def _check_site(root: Path, browser: Browser, shots: Path) -> dict[str, str]:
    """Open index.html, the glossary and every report under `root`; return {analysis: status}."""
    shots.mkdir(parents=True, exist_ok=True)
    _check_page(browser, root / "index.html", shots, root)
    _check_page(browser, root / "glossary.html", shots, root)
    statuses, pdf_pages = {}, {}
    for run_json in sorted(root.glob("*/run.json")):
        folder = run_json.parent
        run = json.loads(run_json.read_text())
        statuses[folder.name] = run["status"]
        executed = nbformat.read(folder / f"{folder.name}.ipynb", as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        for report in ("report.html", "report_student.html"):
            info = _check_page(browser, folder / report, shots, root)
            quality = _quality_problems(info, folder / report)
            assert not quality, "report-quality problems:\n" + "\n".join(quality)
            if report == "report.html" and (folder / "report.pdf").is_file():
                cut = _pdf_cut_tables(info["tables"], folder / "report.pdf")
                assert not cut, "\n".join(cut)
                pdf_pages[folder.name] = _pdf_pages((folder / "report.pdf").read_bytes())
            if run["status"] == "ok":
                assert not errors, f"{folder.name}: error output in a notebook recorded ok"
                assert "Traceback (most recent call last)" not in info["text"], f"{folder / report}: error cell"
            else:
                assert errors and run["error"].split(":")[0] in info["text"], \
                    f"{folder / report}: the failure is not visible"
        if run.get("pdf", {}).get("status") == "ok":
            assert (folder / "report.pdf").read_bytes()[:5] == b"%PDF-"
        if (folder / "explore.html").is_file():  # the interactive page: scripts on, offline, no console error
            info = _check_page(browser, folder / "explore.html", shots, root)
            quality = _quality_problems(info, folder / "explore.html")
            assert not quality, "explore-page problems:\n" + "\n".join(quality)
        checks = folder / "figures" / "figure_checks.json"
        if checks.is_file():
            bad = {k: v for k, v in json.loads(checks.read_text()).items() if v}
            assert not bad, f"{folder.name}: figures not readable at print size: {bad}"
    if pdf_pages:
        print("\nPDF pages: " + ", ".join(f"{k} {v}" for k, v in sorted(pdf_pages.items())))
    return statuses


def test_report_site_of_test_notebooks_in_browser(tmp_path, browser, artifacts, capsys):
    t0 = time.perf_counter()
    code = main(["run", "all", "--out", str(tmp_path), "--notebooks-dir", str(NB_DIR), "--no-progress"])
    assert code == 1  # boom fails on purpose
    t1 = time.perf_counter()
    statuses = _check_site(tmp_path, browser, artifacts / "test-notebooks")
    t2 = time.perf_counter()
    assert statuses == {"hello": "ok", "boom": "failed"}
    for name in statuses:  # with Chromium present every reader report has its PDF
        assert json.loads((tmp_path / name / "run.json").read_text())["pdf"]["status"] == "ok"
        assert (tmp_path / name / "report.pdf").is_file()
    index = (tmp_path / "index.html").read_text()
    assert 'href="hello/report.pdf"' in index
    with capsys.disabled():
        print(f"\nrun all (2 notebooks + PDFs): {t1 - t0:.1f} s; browser checks of 5 pages: {t2 - t1:.1f} s")


def test_pdf_skipped_without_chromium_is_recorded_and_shown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECRM_CHROMIUM", "/nonexistent/chromium")
    code = main(["run", "hello", "--out", str(tmp_path), "--notebooks-dir", str(NB_DIR), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0
    pdf = json.loads((tmp_path / "hello" / "run.json").read_text())["pdf"]
    assert pdf["status"] == "skipped" and "Chromium not found" in pdf["reason"]
    assert "PDF skipped: Chromium not found" in captured.err
    assert (tmp_path / "hello" / "report.html").is_file() and not (tmp_path / "hello" / "report.pdf").exists()
    assert "PDF skipped: Chromium not found" in (tmp_path / "index.html").read_text()


@pytest.mark.notebook
def test_report_site_of_real_notebooks_in_browser(tmp_path, browser, artifacts, sample_dir):
    """Every notebook in notebooks/ on the bundled sample: the site must be clean in a browser."""
    if not any(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        pytest.skip("no analysis notebooks yet")
    main(["run", "all", "--out", str(tmp_path), "--no-progress"])
    statuses = _check_site(tmp_path, browser, artifacts / "real-notebooks")
    assert statuses
    failed = {n: json.loads((tmp_path / n / "run.json").read_text())["error"] for n, s in statuses.items() if s != "ok"}
    assert not failed, f"analysis notebooks failed on the sample: {failed}"
    problems = [p for n in statuses for p in finding_problems(tmp_path / n)]
    assert not problems, "headline findings that overstate or are not in the report body:\n" + "\n".join(problems)


def test_browser_check_catches_console_error_broken_link_and_image(tmp_path, browser, artifacts):
    """The checker itself: each planted defect must fail the page check."""
    from PIL import Image

    Image.new("RGB", (4, 4), "red").save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    pages = {
        "console.html": '<p>x</p><script>console.error("planted console error")</script>',
        "link.html": '<p>x</p><a href="missing/report.html">gone</a>',
        "image.html": '<p>x</p><img src="bad.png" alt="bad">',
        "fine.html": '<p>fine</p><img src="ok.png" alt="ok"><a href="ok.png">ok</a>',
    }
    for name, body in pages.items():
        (tmp_path / name).write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>")
    shots = artifacts / "checker"
    shots.mkdir(parents=True, exist_ok=True)
    _check_page(browser, tmp_path / "fine.html", shots, tmp_path)
    for name, expected in (("console.html", "planted console error"), ("link.html", "missing/report.html"),
                           ("image.html", "bad.png")):
        with pytest.raises(AssertionError, match=expected):
            _check_page(browser, tmp_path / name, shots, tmp_path)


def test_report_quality_check_catches_each_planted_defect(tmp_path, browser, artifacts):
    """The report-quality checker itself: each planted defect is named; a clean page passes."""
    back = '<a href="../index.html">back</a>'
    (tmp_path / "index.html").write_text("<html><body>index</body></html>")
    site = tmp_path / "a"
    site.mkdir()
    from PIL import Image

    Image.new("RGB", (4, 4), "red").save(site / "ok.png")
    out = '<div class="jp-OutputArea-output">{}</div>'
    wide_row = "".join(f"<td>column{i}value</td>" for i in range(80))
    pages = {
        "fine.html": back + out.format('<table><thead><tr><th>n</th></tr></thead><tbody><tr><td>2,968</td></tr>'
                                       '</tbody></table><img src="ok.png" alt="Figure: sizes">'),
        "cut.html": back + out.format("<table><tr><td>a long decision that was cut…</td></tr></table>"),
        "repr.html": back + out.format("<pre>PosixPath('/tmp/findings.json')</pre>"),
        "series.html": back + out.format("<pre>budget    100.0\ncontacts  20.0\ndtype: float64</pre>"),
        "list.html": back + out.format("<p>constructs: ['trust', 'service_quality']</p>"),
        "wide.html": back + f'<table style="white-space:nowrap"><tr>{wide_row}</tr></table>',
        "alt.html": back + out.format('<img src="ok.png">'),
        "nbalt.html": back + out.format('<img src="ok.png" alt="No description has been provided for this image">'),
        "noback.html": out.format("<p>fine otherwise</p>"),
    }
    expected = {"cut.html": "cut table cell", "repr.html": "PosixPath", "series.html": "dtype: float64",
                "list.html": "raw Python repr", "wide.html": "wider than the page", "alt.html": "without alt",
                "nbalt.html": "without alt", "noback.html": "no back-link"}
    shots = artifacts / "quality-checker"
    shots.mkdir(parents=True, exist_ok=True)
    for name, body in pages.items():
        (site / name).write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>")
        problems = _quality_problems(_check_page(browser, site / name, shots, tmp_path), site / name)
        if name == "fine.html":
            assert problems == []
        else:
            assert len(problems) >= 1 and expected[name] in " ".join(problems), (name, problems)


def test_pdf_check_finds_a_table_cut_at_the_margin_and_the_renderer_fits_it(tmp_path, browser, artifacts):
    """A 16-column table printed as-is loses its right columns at the margin; rendered with
    report.tables and the report stylesheet it fits (landscape page, smaller type)."""
    import pandas as pd

    from ecrm_research.report.pdf import print_pdf
    from ecrm_research.report.render import REPORT_CSS
    from ecrm_research.report.tables import render_table

    df = pd.DataFrame({f"measure_{i:02d}": [1000.0 * i + 0.5, 2.25] for i in range(16)})
    css = REPORT_CSS.read_text()
    raw = df.to_html(index=False).replace("<table", '<table style="white-space:nowrap"')
    pages = {"raw": raw, "rendered": render_table(df)}
    shots = artifacts / "pdf-checker"
    shots.mkdir(parents=True, exist_ok=True)
    cut = {}
    for name, table in pages.items():
        page = tmp_path / f"{name}.html"
        page.write_text(f"<!DOCTYPE html><html><head><style>{css}</style></head><body><div class='jp-Cell'>"
                        f"<div class='jp-OutputArea-output'>{table}</div></div></body></html>")
        info = browser.open(page)
        assert len(info["tables"]) == 1 and len(info["tables"][0]["head"]) == 16
        res = print_pdf(page, tmp_path / f"{name}.pdf")
        assert res.status == "ok", res.reason
        cut[name] = _pdf_cut_tables(info["tables"], tmp_path / f"{name}.pdf")
    assert cut["raw"] and "15000.5" in cut["raw"][0]  # the last column (header, values) is missing
    assert cut["rendered"] == []


def _pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


def test_pdf_printer_reuses_one_browser_and_prints_like_the_command_line(chromium_path, tmp_path):
    from ecrm_research.report.pdf import PdfPrinter, print_pdf

    pages = []
    for i, n_par in enumerate((3, 120)):  # one page, then several
        html = tmp_path / f"r{i}.html"
        html.write_text("<html><body><h1>Report</h1>" + "<p>line of text</p>" * n_par + "</body></html>")
        pages.append(html)
    with PdfPrinter() as printer:
        first = printer.print(pages[0], tmp_path / "a.pdf")
        pid = printer._browser.proc.pid
        second = printer.print(pages[1], tmp_path / "b.pdf")
        assert printer._browser.proc.pid == pid  # the same Chromium printed both
    assert first.status == second.status == "ok"
    cli = print_pdf(pages[1], tmp_path / "b_cli.pdf")
    assert cli.status == "ok"
    got, ref = (tmp_path / "b.pdf").read_bytes(), (tmp_path / "b_cli.pdf").read_bytes()
    assert got[:5] == b"%PDF-" and _pdf_pages(got) == _pdf_pages(ref) > 1
    assert _pdf_pages((tmp_path / "a.pdf").read_bytes()) == 1


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, from /proc."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(stat.parent.name)] = (int(fields[1]), fields[0])
    return out


def test_browser_close_stops_every_process_and_removes_profile(chromium_path, tmp_path):
    """Chromium's helper processes outlived the main one and kept writing to the profile, so
    removing it failed in CI ("Directory not empty"): close() must stop all of them."""
    page = tmp_path / "p.html"
    page.write_text("<html><body><p>x</p><img src='missing.png'></body></html>")
    for _ in range(3):
        b = DevToolsBrowser(chromium_path)
        try:
            b.call("Page.enable")
            b.load(page)
        except BaseException:
            b.close()
            raise
        procs = _processes()
        family, grew = {b.proc.pid}, True
        while grew:  # the browser and all its descendants
            new = {pid for pid, (ppid, _) in procs.items() if ppid in family} - family
            family |= new
            grew = bool(new)
        assert len(family) > 1  # Chromium runs helper processes
        profile = Path(b._profile.name)
        b.close()
        assert not profile.exists()
        after = _processes()
        alive = [pid for pid in family if pid in after and after[pid][1] not in "ZX"]  # zombies wait to be reaped
        assert alive == []
