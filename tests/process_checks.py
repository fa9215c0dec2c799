"""Process checks shared by the interrupt tests (run and reproduce): which kernels a command started, and
whether they are still alive."""

from __future__ import annotations

import time

import psutil


def kernels_of(proc: psutil.Process) -> list[psutil.Process]:
    """The ipykernel processes among ``proc``'s descendants."""
    try:
        kids = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for k in kids:
        try:
            if "ipykernel" in " ".join(k.cmdline()):
                out.append(k)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            pass
    return out


def alive(p: psutil.Process) -> bool:
    """Running and not a zombie (a zombie has exited and waits to be reaped)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def interrupt_and_wait(proc, sig: int, kernels: list[psutil.Process], *, within: float = 15) -> tuple[str, str]:
    """Send ``sig`` to the command ``proc`` (a ``subprocess.Popen``), then assert it exits with 130 within
    ``within`` seconds and leaves none of ``kernels`` running; returns its ``(stdout, stderr)``."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 130, (stdout, stderr)
    assert elapsed < within, elapsed
    time.sleep(0.5)  # killed kernels need a moment to be reaped
    assert not [k.pid for k in kernels if alive(k)], "kernel processes left running"
    return stdout, stderr
