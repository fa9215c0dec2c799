"""PDF copies of the HTML reports, printed by headless Chromium.

The reader report ``OUT/<name>/report.html`` is self-contained (images embedded, no external
scripts), so printing it needs nothing but a Chromium binary. When none is installed the HTML
reports are unaffected: :func:`print_pdf` returns a :class:`PdfResult` with ``status='skipped'``
and the reason, which the runner records in ``run.json`` and the index shows.

Chromium is looked up as ``$ECRM_CHROMIUM`` (a path, or ``none`` to switch PDFs off), then
``chromium``, ``chromium-browser``, ``google-chrome`` and ``google-chrome-stable`` on ``PATH``.
Debian/Ubuntu: ``apt-get install -y chromium`` (``make system-deps``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["PdfResult", "find_chromium", "chromium_flags", "print_pdf", "INSTALL_HINT"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install it with `apt-get install -y chromium` (or `make system-deps`) or set ECRM_CHROMIUM=/path/to/chrome"


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
    """

    status: str
    path: str | None = None
    reason: str | None = None
    seconds: float = 0.0

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


def chromium_flags(user_data_dir: str | Path) -> list[str]:
    """Flags for a quiet, offline, sandbox-free headless Chromium (as used in CI containers)."""
    return [
        "--headless",
        "--no-sandbox",
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
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ecrm-chromium-") as profile:
        cmd = [exe, *chromium_flags(profile), "--no-pdf-header-footer", "--print-to-pdf-no-header",
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
