"""Stopping a run cleanly on Ctrl-C (SIGINT) or SIGTERM.

:func:`~ecrm_research.report.runner.run_all` executes notebooks in worker threads and waits in the
main thread. While it runs, :func:`stop_on_signals` replaces the SIGINT and SIGTERM handlers: the
first signal sets :attr:`StopControl.requested`, so no further notebook starts, and ends every
kernel the run started (their whole process group: SIGTERM, SIGKILL two seconds later). Kernels
run in their own session (jupyter_client), so without this a terminal's Ctrl-C would not reach
them and a SIGTERM to the runner would leave them running. The executing threads then see a dead
kernel within a second (nbclient polls it) and the run writes its index and records as
interrupted (see the runner), then raises :class:`RunInterrupted` (a ``KeyboardInterrupt``: the
CLI exits with 130).

Public names: :class:`StopControl`, :func:`stop_on_signals`, :class:`RunInterrupted`,
:data:`KILL_GRACE_SECONDS`.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .ownership import process_alive

__all__ = ["StopControl", "stop_on_signals", "RunInterrupted", "KILL_GRACE_SECONDS"]

#: seconds a kernel has to exit after SIGTERM before it is killed
KILL_GRACE_SECONDS = 2.0


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM after recording what was done.

    Attributes
    ----------
    signal_name : str
        ``"SIGINT"`` or ``"SIGTERM"``.
    results : list of RunResult
        One per analysis: ``ok``/``failed`` when it finished, ``interrupted``, or ``not run``.
    """

    def __init__(self, message: str, *, signal_name: str = "SIGINT", results: Any = ()):
        super().__init__(message)
        self.signal_name = signal_name
        self.results = list(results)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "interrupted"


class StopControl:
    """The stop request of one run and the kernels it started."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.signal_name: str | None = None
        self._kernels: dict[int, tuple[int, int | None]] = {}
        self._lock = threading.Lock()
        self._manager_class: type | None = None

    def request(self, signal_name: str = "SIGINT") -> None:
        """Stop: start nothing new and end the running kernels (safe to call more than once)."""
        with self._lock:
            first = not self.requested.is_set()
            self.requested.set()
            if first:
                self.signal_name = signal_name
            kernels = list(self._kernels.values())
        for pid, pgid in kernels:
            _signal_kernel(pid, pgid, signal.SIGTERM)
        if kernels:
            threading.Thread(target=_kill_survivors, args=(kernels,), name="ecrm-kill", daemon=True).start()

    @property
    def stopped(self) -> bool:
        return self.requested.is_set()

    def running_kernels(self) -> list[int]:
        """Pids of the kernels started and not yet shut down."""
        with self._lock:
            return [pid for pid, _ in self._kernels.values()]

    def _register(self, key: int, pid: int | None, pgid: int | None) -> bool:
        """Record a started kernel; False (and the kernel is ended) when a stop came first."""
        if pid is None:
            return not self.stopped
        with self._lock:
            if not self.requested.is_set():
                self._kernels[key] = (pid, pgid)
                return True
        _signal_kernel(pid, pgid, signal.SIGKILL)
        return False

    def _forget(self, key: int) -> None:
        with self._lock:
            self._kernels.pop(key, None)

    def kernel_manager_class(self) -> type:
        """An ``AsyncKernelManager`` that registers its kernel with this control (nbclient's
        ``kernel_manager_class``)."""
        if self._manager_class is not None:
            return self._manager_class
        from jupyter_client.manager import AsyncKernelManager  # lazy: only execution needs it

        control = self

        class TrackedKernelManager(AsyncKernelManager):
            async def start_kernel(self, **kw: Any) -> None:
                if control.stopped:
                    raise RuntimeError("run interrupted before this kernel started")
                await super().start_kernel(**kw)
                prov = self.provisioner
                if not control._register(id(self), getattr(prov, "pid", None), getattr(prov, "pgid", None)):
                    raise RuntimeError("run interrupted while this kernel started")

            async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
                try:
                    await super().shutdown_kernel(now=now, restart=restart)
                finally:
                    control._forget(id(self))

        self._manager_class = TrackedKernelManager
        return TrackedKernelManager


def _signal_kernel(pid: int, pgid: int | None, sig: int) -> None:
    """Send `sig` to a kernel's process group (its own session), else to its process."""
    try:
        if pgid and pgid != os.getpgid(0) and hasattr(os, "killpg"):
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_survivors(kernels: list[tuple[int, int | None]]) -> None:
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while time.monotonic() < deadline:
        if not any(process_alive(pid) for pid, _ in kernels):
            return
        time.sleep(0.05)
    for pid, pgid in kernels:
        _signal_kernel(pid, pgid, signal.SIGKILL)


    return True


@contextmanager
def stop_on_signals(control: StopControl) -> Iterator[StopControl]:
    """While in the block, SIGINT and SIGTERM call ``control.request`` instead of raising.

    Only the main thread can set signal handlers; elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield control
        return
    names = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}

    def handler(signum: int, _frame: Any) -> None:
        control.request(names.get(signum, str(signum)))

    previous = {s: signal.signal(s, handler) for s in names}
    try:
        yield control
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
