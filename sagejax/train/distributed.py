"""Multi-process start-up: `jax.distributed.initialize` from the environment, with errors that name what is missing.

`SAGEJAX_DISTRIBUTED=1` turns it on. Under a launcher JAX detects (SLURM, Cloud TPU pods, Open MPI, Kubernetes
jobs) nothing else is needed. Elsewhere (processes started by hand, e.g. several on one machine) set all three of
SAGEJAX_COORDINATOR_ADDRESS (host:port of process 0), SAGEJAX_NUM_PROCESSES and SAGEJAX_PROCESS_ID.
SAGEJAX_CONNECT_TIMEOUT (seconds, default 300) bounds the wait for every process to connect at start-up, and
SAGEJAX_STALL_TIMEOUT (seconds, default 1800; 0 = off) bounds how long a process waits without progress, e.g. on a
peer that stopped, before it exits with an error (`sagejax.train.watchdog`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

import jax
from absl import logging

from sagejax.errors import ConfigError
from sagejax.train import watchdog

EXPLICIT = ("SAGEJAX_COORDINATOR_ADDRESS", "SAGEJAX_NUM_PROCESSES", "SAGEJAX_PROCESS_ID")
DEFAULT_CONNECT_TIMEOUT_S = 300.0  # JAX's own default wait for the other processes


def explicit_arguments(environ: Mapping[str, str]) -> dict:
    """`jax.distributed.initialize` keyword arguments from the SAGEJAX_* variables ({} when none is set)."""
    given = {name: environ[name] for name in EXPLICIT if environ.get(name)}
    if not given:
        return {}
    missing = [name for name in EXPLICIT if name not in given]
    if missing:
        raise ConfigError(f"multi-process run: {', '.join(given)} set but {', '.join(missing)} missing; set all three")
    try:
        num_processes, process_id = int(given["SAGEJAX_NUM_PROCESSES"]), int(given["SAGEJAX_PROCESS_ID"])
    except ValueError:
        raise ConfigError(
            f"SAGEJAX_NUM_PROCESSES={given['SAGEJAX_NUM_PROCESSES']!r} and SAGEJAX_PROCESS_ID="
            f"{given['SAGEJAX_PROCESS_ID']!r} must be integers"
        ) from None
    if not 0 <= process_id < num_processes:
        raise ConfigError(f"SAGEJAX_PROCESS_ID={process_id} must be in [0, SAGEJAX_NUM_PROCESSES={num_processes})")
    address = given["SAGEJAX_COORDINATOR_ADDRESS"]
    if address.rpartition(":")[0] == "" or not address.rpartition(":")[2].isdigit():
        raise ConfigError(f"SAGEJAX_COORDINATOR_ADDRESS={address!r} must be host:port, e.g. localhost:12355")
    return dict(coordinator_address=address, num_processes=num_processes, process_id=process_id)


def initialize_from_env(environ: Mapping[str, str] = os.environ) -> bool:
    """Starts jax.distributed when SAGEJAX_DISTRIBUTED=1 (True), else does nothing (False); coordinator variables
    without the switch are refused, since such processes would each train the whole job into one workdir."""
    if environ.get("SAGEJAX_DISTRIBUTED") != "1":
        given = [name for name in EXPLICIT if environ.get(name)]
        if given:
            raise ConfigError(
                f"{', '.join(given)} set but not SAGEJAX_DISTRIBUTED=1: set it to start a multi-process run, or unset "
                "them for a single-process one"
            )
        return False
    arguments = explicit_arguments(environ)
    connect = _seconds(environ, "SAGEJAX_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_S)
    if arguments:
        print(
            f"process {arguments['process_id']} of {arguments['num_processes']}: connecting to the coordinator at "
            f"{arguments['coordinator_address']}; waiting up to {connect:.0f} s for all processes",
            file=sys.stderr,
            flush=True,
        )
    # JAX aborts the process with a C++ stack when processes never connect; this one line comes first.
    waiting = watchdog.Watchdog(connect, lambda idle, where: _never_connected(idle, arguments)) if connect else None
    try:
        jax.distributed.initialize(**arguments, initialization_timeout=int(connect + 60) if connect else 300)
    except ValueError as error:
        if arguments or "coordinator_address" not in str(error):
            raise
        raise ConfigError(
            "SAGEJAX_DISTRIBUTED=1 but no coordinator address: this is not a launcher JAX detects (SLURM, TPU pod, "
            f"MPI, Kubernetes); set {', '.join(EXPLICIT)} (or JAX_COORDINATOR_ADDRESS)"
        ) from None
    finally:
        if waiting is not None:
            waiting.stop()
    if jax.process_count() > 1:
        if jax.default_backend() == "cpu":
            _compile_without_persistent_cache()
        process = f"process {jax.process_index()} of {jax.process_count()}"
        watchdog.start(stall_timeout(environ), process=process)
    return True


def stall_timeout(environ: Mapping[str, str]) -> float:
    """SAGEJAX_STALL_TIMEOUT in seconds (default `watchdog.DEFAULT_TIMEOUT_S`; 0 turns the watchdog off)."""
    return _seconds(environ, "SAGEJAX_STALL_TIMEOUT", watchdog.DEFAULT_TIMEOUT_S)


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name, "")
    try:
        seconds = float(value) if value else default
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise ConfigError(f"{name}={value!r} must be a number of seconds >= 0 (0 = no limit)")
    return seconds


def _never_connected(idle: float, arguments: dict) -> None:
    where = f" at {arguments['coordinator_address']}" if arguments else ""
    count = f"all {arguments['num_processes']} processes" if arguments else "all processes"
    print(
        f"error: not {count} connected to the coordinator{where} within {idle:.0f} s: start every process with the "
        "same coordinator address and process count (SAGEJAX_CONNECT_TIMEOUT sets the limit)",
        file=sys.stderr,
        flush=True,
    )
    os._exit(watchdog.EXIT_CODE)


def _compile_without_persistent_cache() -> None:
    """With jax/jaxlib 0.12.1 a multi-process CPU run whose programs are compiled with the persistent compilation
    cache on hangs in a cross-process collective (0.12.0.1 does not; seen with 2 processes × 4 devices); such
    runs (simulated multi-host on one machine) compile without it."""
    if jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_enable_compilation_cache", False)
        logging.warning("multi-process CPU run: the persistent compilation cache is off (it hangs with jax 0.12.1)")
