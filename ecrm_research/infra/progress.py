"""Stage-level progress for long jobs (mining, Spark preparation): a tqdm bar and stage timings."""

from __future__ import annotations

import sys
import time
from typing import Any


class Stages:
    """Stage-level progress (a tqdm bar on stderr when enabled) and the wall time of each stage."""

    def __init__(self, enabled: bool, total: int, desc: str = "association"):
        self._clock = time.perf_counter
        self.desc = desc
        self.timings: dict[str, float] = {}
        self._name: str | None = None
        self._t0 = self._clock()
        self.bar = None
        if enabled:
            from tqdm import tqdm  # why: only when a bar is shown (tqdm is slow-ish to import)

            self.bar = tqdm(total=total, desc=desc, unit="stage", file=sys.stderr, dynamic_ncols=True)

    def stage(self, name: str) -> None:
        self.end()
        self._name = name
        self._t0 = self._clock()
        if self.bar is not None:
            self.bar.set_description_str(f"{self.desc}: {name}")

    def note(self, **info: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix(info, refresh=True)

    def end(self) -> None:
        """End the current stage (its wall time goes into ``timings``)."""
        if self._name is not None:
            self.timings[self._name] = self.timings.get(self._name, 0.0) + self._clock() - self._t0
            self._name = None
            if self.bar is not None:
                self.bar.update(1)

    def close(self) -> None:
        self.end()
        if self.bar is not None:
            self.bar.set_description_str(f"{self.desc}: done")
            self.bar.close()
