"""The stall watchdog of multi-process runs: fires once after its timeout without progress, never while progress is
marked, and its timeout is read from SAGEJAX_STALL_TIMEOUT with bad values named."""

import threading
import time

import pytest

from sagejax.errors import ConfigError
from sagejax.train import distributed, watchdog


def _watch(timeout_s):
    stalls, fired = [], threading.Event()

    def on_stall(idle, where):
        stalls.append((idle, where))
        fired.set()

    return watchdog.Watchdog(timeout_s, on_stall), stalls, fired


def test_watchdog_fires_once_after_the_timeout_naming_the_last_progress():
    dog, stalls, fired = _watch(0.2)
    dog.beat("step 7")
    assert fired.wait(5.0)
    time.sleep(0.2)
    dog.stop()
    assert len(stalls) == 1
    idle, where = stalls[0]
    assert idle > 0.2 and where == "step 7"


def test_watchdog_stays_quiet_while_progress_is_marked():
    dog, stalls, _ = _watch(0.3)
    for step in range(12):  # 0.6 s in all, twice the timeout, with a beat every 0.05 s
        dog.beat(f"step {step}")
        time.sleep(0.05)
    dog.stop()
    assert stalls == []


def test_beat_without_a_watchdog_does_nothing():
    assert watchdog.start(0, process="process 0 of 1") is None
    watchdog.beat("step 1")


def test_stall_timeout_comes_from_the_environment():
    assert distributed.stall_timeout({}) == watchdog.DEFAULT_TIMEOUT_S
    assert distributed.stall_timeout({"SAGEJAX_STALL_TIMEOUT": "90"}) == 90.0
    assert distributed.stall_timeout({"SAGEJAX_STALL_TIMEOUT": "0"}) == 0.0
    for bad in ("ten", "-1", "nan"):
        with pytest.raises(ConfigError, match=f"SAGEJAX_STALL_TIMEOUT='{bad}' must be a number of seconds >= 0"):
            distributed.stall_timeout({"SAGEJAX_STALL_TIMEOUT": bad})
