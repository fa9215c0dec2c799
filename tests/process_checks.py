"""Process checks shared by the interrupt tests (run and reproduce): which kernels a command started, and
whether they are still alive."""

from __future__ import annotations

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
