"""Stall watchdog of multi-process runs: a process whose peer stops making progress (a hung collective, a peer
stuck in I/O) would otherwise wait forever inside the collective; the watchdog ends it with one message instead.

Progress is marked with `beat(where)` (each train step, each eval batch, each checkpoint); a run that goes
`timeout_s` seconds without one is stopped. Single-process runs start no watchdog, so `beat` costs nothing there.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

DEFAULT_TIMEOUT_S = 1800.0  # above any first compile or single evaluation batch seen at 224² on one host
EXIT_CODE = 3


class Watchdog:
    """Calls `on_stall(seconds, where)` once when `timeout_s` pass without a `beat`; checks from a daemon thread."""

    def __init__(self, timeout_s: float, on_stall: Callable[[float, str], None]):
        self.timeout_s, self._on_stall = timeout_s, on_stall
        self._last, self._where = time.monotonic(), "start-up"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sagejax-watchdog", daemon=True)
        self._thread.start()

    def beat(self, where: str) -> None:
        self._last, self._where = time.monotonic(), where

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stopped.wait(min(self.timeout_s / 10, 5.0)):
            idle = time.monotonic() - self._last
            if idle > self.timeout_s:
                self._on_stall(idle, self._where)
                return


_ACTIVE: Watchdog | None = None


def start(timeout_s: float, *, process: str) -> Watchdog | None:
    """Starts the process's watchdog (none for `timeout_s` <= 0); on a stall it prints one error line naming
    `process` and the last progress, and exits with EXIT_CODE without waiting for the hung computation."""
    global _ACTIVE
    if _ACTIVE is not None:
        _ACTIVE.stop()
    _ACTIVE = Watchdog(timeout_s, lambda idle, where: _exit(idle, where, process)) if timeout_s > 0 else None
    return _ACTIVE


def beat(where: str) -> None:
    """Marks progress (no-op without a watchdog)."""
    if _ACTIVE is not None:
        _ACTIVE.beat(where)


def _exit(idle: float, where: str, process: str) -> None:
    print(
        f"error: {process}: no progress for {idle:.0f} s since {where}: a peer process stopped or a collective "
        "hangs; exiting (SAGEJAX_STALL_TIMEOUT sets the limit in seconds)",
        file=sys.stderr,
        flush=True,
    )
    os._exit(EXIT_CODE)  # the main thread is blocked inside the runtime; a normal exit would wait for it
