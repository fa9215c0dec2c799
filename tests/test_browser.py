"""The report site in a real browser: headless Chromium opens index.html and every report.

A tiny Chrome DevTools Protocol client (``websocket-client``, already a Jupyter dependency) loads
each page from disk and fails on

* a console error, an uncaught exception or a resource that failed to load;
* a local link or image (``href``/``src``) that does not resolve to an existing file, or an image
  that does not decode;
* an error output in a report whose analysis is recorded as ok (and no visible error in one that
  failed).

Screenshots of every page are kept as test artefacts: ``$ECRM_TEST_ARTIFACTS/browser/...`` or a
pytest temporary folder printed in the output (``-s`` shows it). Chromium missing: skip locally,
fail in CI (``CI=true`` or ``ECRM_REQUIRE_DATASETS=1``); install with ``make system-deps``.
"""

from __future__ import annotations

import base64
import io
import json
import os
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
            text: document.body ? document.body.innerText : ''}))()""")["result"]["value"]
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
    """Open index.html and every report under `root`; return {analysis: status}."""
    shots.mkdir(parents=True, exist_ok=True)
    _check_page(browser, root / "index.html", shots, root)
    statuses = {}
    for run_json in sorted(root.glob("*/run.json")):
        folder = run_json.parent
        run = json.loads(run_json.read_text())
        statuses[folder.name] = run["status"]
        executed = nbformat.read(folder / f"{folder.name}.ipynb", as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        for report in ("report.html", "report_student.html"):
            info = _check_page(browser, folder / report, shots, root)
            if run["status"] == "ok":
                assert not errors, f"{folder.name}: error output in a notebook recorded ok"
                assert "Traceback (most recent call last)" not in info["text"], f"{folder / report}: error cell"
            else:
                assert errors and run["error"].split(":")[0] in info["text"], \
                    f"{folder / report}: the failure is not visible"
        if run.get("pdf", {}).get("status") == "ok":
            assert (folder / "report.pdf").read_bytes()[:5] == b"%PDF-"
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


def _pdf_pages(data: bytes) -> int:
    import re

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
