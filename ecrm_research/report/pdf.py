"""PDF copies of the HTML reports, printed by headless Chromium.

The reader report ``OUT/<name>/report.html`` is self-contained (images embedded, no external
scripts), so printing it needs nothing but a Chromium binary. When none is installed the HTML
reports are unaffected: :func:`print_pdf` returns a :class:`PdfResult` with ``status='skipped'``
and the reason, which the runner records in ``run.json`` and the index shows.

Chromium is looked up as ``$ECRM_CHROMIUM`` (a path, or ``none`` to switch PDFs off), then
``chromium``, ``chromium-browser``, ``google-chrome`` and ``google-chrome-stable`` on ``PATH``.
Debian/Ubuntu: ``apt-get install -y chromium`` (``make system-deps``).

Safety: a report is printed with JavaScript switched off (DevTools
``Emulation.setScriptExecutionDisabled``; the one-shot command line prints a copy carrying
:data:`~ecrm_research.report.render.NO_SCRIPT_CSP`) unless the report needs a script to render
(:func:`~ecrm_research.report.render.needs_scripts`: MathJax for math or Mermaid diagrams, which
none of the bundled notebooks uses). Chromium's sandbox stays on, except when running as root
(Chromium refuses to start sandboxed as root: containers, CI) or when ``ECRM_CHROMIUM_SANDBOX=0``
(a machine without user namespaces); a non-root start that fails for want of a sandbox is retried
without it and says so in :attr:`PdfResult.sandbox`. With scripts off, the page cannot act on
the missing sandbox.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .render import forbid_scripts, needs_scripts

__all__ = ["PdfResult", "PdfPrinter", "DevToolsBrowser", "find_chromium", "chromium_flags", "chromium_sandbox",
           "print_pdf", "scripts_needed", "INSTALL_HINT"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("install it with `apt-get install -y chromium` (or `make system-deps`) "
                "or set ECRM_CHROMIUM=/path/to/chrome")


@dataclass
class PdfResult:
    """Outcome of printing one report.

    Attributes
    ----------
    status : str
        ``'ok'``, ``'skipped'`` (no Chromium, or PDFs switched off) or ``'failed'``.
    path : str or None
        The PDF's file name relative to the report folder (``report.pdf``) when ok.
    reason : str or None
        Why it was skipped or failed, in words a user can act on.
    seconds : float
        Wall time of the Chromium call.
    scripts : bool or None
        Whether JavaScript was on while printing (only for a report that needs it).
    sandbox : bool or None
        Whether Chromium ran in its sandbox (see the module docstring for when it cannot).
    """

    status: str
    path: str | None = None
    reason: str | None = None
    seconds: float = 0.0
    scripts: bool | None = None
    sandbox: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None.

    ``$ECRM_CHROMIUM`` wins (``none``/``0``/``off`` disables); otherwise the usual names on PATH.
    """
    env = os.environ.get("ECRM_CHROMIUM", "").strip()
    if env.lower() in ("none", "0", "off", "false"):
        return None
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


_OFF = ("none", "0", "off", "false", "no")


def chromium_sandbox() -> bool:
    """Whether Chromium should run in its sandbox: yes, unless this process is root (Chromium
    refuses to) or ``ECRM_CHROMIUM_SANDBOX`` is ``0``/``off``/``no``."""
    if os.environ.get("ECRM_CHROMIUM_SANDBOX", "").strip().lower() in _OFF:
        return False
    return not (hasattr(os, "geteuid") and os.geteuid() == 0)


def chromium_flags(user_data_dir: str | Path, *, sandbox: bool | None = None) -> list[str]:
    """Flags for a quiet, offline headless Chromium; ``--no-sandbox`` only when `sandbox` is false
    (default :func:`chromium_sandbox`)."""
    sandbox = chromium_sandbox() if sandbox is None else sandbox
    return [
        "--headless",
        *([] if sandbox else ["--no-sandbox"]),
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={user_data_dir}",
    ]


def print_pdf(html: str | Path, pdf: str | Path | None = None, *, timeout: float = 120) -> PdfResult:
    """Print an HTML file to PDF with headless Chromium.

    Parameters
    ----------
    html : str or Path
        The HTML file (a self-contained report).
    pdf : str or Path, optional
        Target file; default the HTML path with suffix ``.pdf``.
    timeout : float
        Seconds before Chromium is stopped and the PDF counted as failed.

    Returns
    -------
    PdfResult
        Never raises for a missing or failing Chromium: the reason is in ``.reason``.
    """
    html = Path(html).resolve()
    target = Path(pdf) if pdf is not None else html.with_suffix(".pdf")
    exe = find_chromium()
    if exe is None:
        why = ("PDFs switched off (ECRM_CHROMIUM=none)"
               if os.environ.get("ECRM_CHROMIUM", "").strip().lower() in ("none", "0", "off", "false")
               else f"Chromium not found on PATH; {INSTALL_HINT}")
        return PdfResult("skipped", reason=why)
    if target.exists():
        target.unlink()
    scripts = scripts_needed(html)
    source = html if scripts else _no_script_copy(html)
    try:
        sandbox = chromium_sandbox()
        result = _print_once(exe, source, target, timeout, sandbox=sandbox)
        if result.status == "failed" and sandbox and "sandbox" in (result.reason or "").lower():
            sandbox = False  # no usable sandbox on this machine (no user namespaces): scripts are off anyway
            result = _print_once(exe, source, target, timeout, sandbox=False)
    finally:
        if source != html:
            source.unlink(missing_ok=True)
    result.scripts, result.sandbox = scripts, sandbox
    return result


def scripts_needed(html: Path) -> bool:
    """Whether the report at `html` needs JavaScript to render (:func:`render.needs_scripts`)."""
    try:
        return needs_scripts(html.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False


def _no_script_copy(html: Path) -> Path:
    """`html` itself when it already forbids scripts, else a hidden copy beside it that does (same
    folder, so relative links still resolve); the caller removes the copy."""
    try:
        text = html.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return html
    safe = forbid_scripts(text)
    if safe == text:
        return html
    copy = html.with_name(f".{html.stem}.noscript-print.html")
    copy.write_text(safe, encoding="utf-8")
    return copy


def _print_once(exe: str, html: Path, target: Path, timeout: float, *, sandbox: bool) -> PdfResult:
    t0 = time.perf_counter()
    # helper processes may outlive the main one for a moment: a leftover profile must not fail the print
    with tempfile.TemporaryDirectory(prefix="ecrm-chromium-", ignore_cleanup_errors=True) as profile:
        cmd = [exe, *chromium_flags(profile, sandbox=sandbox), "--no-pdf-header-footer", "--print-to-pdf-no-header",
               f"--print-to-pdf={target.resolve()}", "--virtual-time-budget=5000", html.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return PdfResult("failed", reason=f"Chromium did not finish within {timeout:.0f} s",
                             seconds=time.perf_counter() - t0)
        except OSError as exc:
            return PdfResult("failed", reason=f"cannot start Chromium ({exe}): {exc}",
                             seconds=time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    if target.is_file() and target.stat().st_size > 0 and target.read_bytes()[:5] == b"%PDF-":
        return PdfResult("ok", path=target.name, seconds=seconds)
    tail = " ".join((proc.stderr or "").strip().splitlines()[-2:])[:300]
    return PdfResult("failed", reason=f"Chromium exited with {proc.returncode} without writing a PDF: {tail}",
                     seconds=seconds)


# --------------------------------------------------------------------------- one browser, many PDFs


class DevToolsBrowser:
    """A headless Chromium driven over the Chrome DevTools protocol (one page, sequential calls).

    Starting Chromium costs about a second; :class:`PdfPrinter` keeps one running for all the
    reports of a run, and the browser test (``tests/test_browser.py``) uses it to inspect pages.
    Not thread-safe: use it from one thread. ``websocket-client`` (a Jupyter dependency) talks to it.

    Parameters
    ----------
    exe : str
        The Chromium binary (:func:`find_chromium`).
    extra_flags : sequence of str
        More command-line flags (e.g. a window size).
    timeout : float
        Seconds to wait for the browser to start and for each call.
    """

    def __init__(self, exe: str, extra_flags: tuple[str, ...] = (), *, timeout: float = 30):
        import websocket  # websocket-client: optional (test/PDF extra); lazy so a run without Chromium needs none

        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="ecrm-chromium-")
        self.ws = None
        self.proc = subprocess.Popen(
            [exe, *chromium_flags(self._profile.name), "--remote-debugging-port=0",
             "--remote-allow-origins=*", *extra_flags, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: close() can stop its helper processes too
        try:
            port_file = Path(self._profile.name) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not (port_file.is_file() and port_file.read_text().strip()):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"Chromium did not open its DevTools port within {timeout:.0f} s")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            pages: list[dict[str, Any]] = []
            while not pages:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Chromium opened no page within {timeout:.0f} s")
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if not pages:
                    time.sleep(0.05)
            self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                                  suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events seen meanwhile go to ``events``)."""
        self._id += 1
        my = self._id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, name: str, timeout: float | None = None) -> None:
        """Block until an event called `name` has arrived (since ``events`` was last cleared)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not any(e["method"] == name for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {name} within {timeout or self.timeout} s")
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
        self.ws.settimeout(self.timeout)

    def load(self, path: str | Path, settle_ms: int = 50, *, scripts: bool = True) -> None:
        """Open a local file and wait until it and every image in it (also lazy ones) have loaded,
        then `settle_ms` more milliseconds.

        With ``scripts=False`` (after ``Emulation.setScriptExecutionDisabled``) no script can wait
        for the images: the load event (which waits for every eager image, and our reports embed
        theirs) and `settle_ms` must do.
        """
        self.events = []
        self.call("Page.navigate", url=Path(path).resolve().as_uri())
        self.wait_event("Page.loadEventFired")
        if not scripts:
            time.sleep(settle_ms / 1000)
            return
        self.call("Runtime.evaluate", awaitPromise=True, expression="""Promise.all([...document.images].map(i => {
            i.loading = 'eager'; return i.decode().catch(() => null); }))
            .then(() => new Promise(r => setTimeout(r, """ + str(int(settle_ms)) + ")))")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and self.ws is not None

    def close(self) -> None:
        """Stop the browser and remove its profile.

        Chromium's helper processes (renderer, GPU, zygote) could still be writing to the
        profile after the main process has gone -- removing it then failed with "Directory not
        empty". So the whole process group is killed (the profile is throw-away; nothing needs a
        graceful shutdown) and the removal is retried; a profile that still cannot be removed is
        left in the temporary folder rather than failing the run that used the browser.
        """
        try:
            if self.ws is not None:
                self.ws.close()
                self.ws = None
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            _wait_until_group_dead(self.proc.pid)
            for attempt in range(8):
                shutil.rmtree(self._profile.name, ignore_errors=True)
                if not os.path.exists(self._profile.name):
                    break
                time.sleep(0.05 * (attempt + 1))
            try:
                self._profile.cleanup()
            except OSError:
                pass

def _wait_until_group_dead(pgid: int, timeout: float = 5.0) -> None:
    """Wait until no live (non-zombie) process is left in process group ``pgid``.

    SIGKILL is delivered asynchronously: on a loaded machine a helper could still be running for
    a moment after ``killpg`` returned (a CI run saw one). Linux only (``/proc``); elsewhere it
    returns at once.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[-1].split()
            except OSError:  # the process ended while we looked
                continue
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                live = True
                break
        if not live:
            return
        time.sleep(0.02)


class PdfPrinter:
    """Print several reports with one headless Chromium (``Page.printToPDF``).

    Same output as :func:`print_pdf` (no header or footer, the page's own print CSS) without
    starting a browser per report: on two cores that saved about a second per report. Falls back
    to :func:`print_pdf` when the browser cannot be driven (e.g. ``websocket-client`` missing).
    Use from one thread, as a context manager::

        with PdfPrinter() as printer:
            printer.print(Path("reports/churn/report.html"), Path("reports/churn/report.pdf"))
    """

    def __init__(self, *, timeout: float = 120):
        self.timeout = timeout
        self._browser: DevToolsBrowser | None = None
        self._broken = False

    def __enter__(self) -> PdfPrinter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def print(self, html: str | Path, pdf: str | Path | None = None) -> PdfResult:
        """Print `html` to `pdf` (default: same name, ``.pdf``). Never raises; see :class:`PdfResult`."""
        html = Path(html).resolve()
        target = Path(pdf) if pdf is not None else html.with_suffix(".pdf")
        exe = find_chromium()
        if exe is None or self._broken:
            return print_pdf(html, target, timeout=self.timeout)
        t0 = time.perf_counter()
        scripts = scripts_needed(html)
        try:
            if self._browser is None or not self._browser.alive:
                self._browser = DevToolsBrowser(exe, timeout=self.timeout)
                self._browser.call("Page.enable")
            self._browser.call("Emulation.setScriptExecutionDisabled", value=not scripts)
            self._browser.load(html, scripts=scripts)
            data = self._browser.call("Page.printToPDF", displayHeaderFooter=False, printBackground=False,
                                      preferCSSPageSize=True)["data"]
            if target.exists():
                target.unlink()
            target.write_bytes(base64.b64decode(data))
        except Exception:  # any trouble with the protocol: the one-shot command line still works
            self._broken = True
            self.close()
            return print_pdf(html, target, timeout=self.timeout)
        seconds = time.perf_counter() - t0
        if target.is_file() and target.read_bytes()[:5] == b"%PDF-":
            return PdfResult("ok", path=target.name, seconds=seconds, scripts=scripts, sandbox=chromium_sandbox())
        return PdfResult("failed", reason="Chromium returned no PDF data", seconds=seconds, scripts=scripts,
                         sandbox=chromium_sandbox())

    def close(self) -> None:
        if self._browser is not None:
            try:
                self._browser.close()
            finally:
                self._browser = None
