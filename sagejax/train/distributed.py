"""Multi-process start-up: `jax.distributed.initialize` from the environment, with errors that name what is missing.

`SAGEJAX_DISTRIBUTED=1` turns it on. Under a launcher JAX detects (SLURM, Cloud TPU pods, Open MPI, Kubernetes
jobs) nothing else is needed. Elsewhere (processes started by hand, e.g. several on one machine) set all three of
SAGEJAX_COORDINATOR_ADDRESS (host:port of process 0), SAGEJAX_NUM_PROCESSES and SAGEJAX_PROCESS_ID.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax

from sagejax.errors import ConfigError

EXPLICIT = ("SAGEJAX_COORDINATOR_ADDRESS", "SAGEJAX_NUM_PROCESSES", "SAGEJAX_PROCESS_ID")


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
    """Starts jax.distributed when SAGEJAX_DISTRIBUTED=1 (True), else does nothing (False)."""
    if environ.get("SAGEJAX_DISTRIBUTED") != "1":
        return False
    arguments = explicit_arguments(environ)
    try:
        jax.distributed.initialize(**arguments)
    except ValueError as error:
        if arguments or "coordinator_address" not in str(error):
            raise
        raise ConfigError(
            "SAGEJAX_DISTRIBUTED=1 but no coordinator address: this is not a launcher JAX detects (SLURM, TPU pod, "
            f"MPI, Kubernetes); set {', '.join(EXPLICIT)} (or JAX_COORDINATOR_ADDRESS)"
        ) from None
    return True
