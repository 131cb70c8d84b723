"""SPMD data parallelism: a device mesh from config, shardings, and global batches.

The batch's leading axis is split over every batch axis of the mesh ("data", and "fsdp"
when present); with an "fsdp" axis the largest evenly divisible dimension of each large
state leaf is split over it as well. Under jit the global-batch semantics make BatchNorm
statistics and InfoNCE negatives global without any explicit collective.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from sagejax.errors import ConfigError

BATCH_AXES = ("data", "fsdp")
_MIN_FSDP_SHARD_SIZE = 2**14
# jax 0.10 (the newest jaxlib for Python 3.11) was seen to give ~0.3% different BatchNorm-network gradients on 8 CPU
# devices than on 1, and jax 0.12.1 up to 0.7%; jax 0.12.0.1 agrees to float tolerance
# (tests/unit/train/test_parallel.py).
SPMD_VERIFIED_JAX = (0, 12)
SPMD_DIFFERING_JAX = ("0.12.1",)


def spmd_verified(version: str | None = None) -> bool:
    """Whether jax `version` (default: this one) was seen to give multi-device steps equal to the 1-device step."""
    version = version or jax.__version__
    release = tuple(int(part) for part in version.split(".")[:2])
    return release >= SPMD_VERIFIED_JAX and version not in SPMD_DIFFERING_JAX


def mesh_devices(num_devices: int = 0) -> list[jax.Device]:
    """The devices a run's mesh spans: all of them (`num_devices` 0), or the first `num_devices` of a single-process
    run (a multi-process mesh must hold every process's devices)."""
    devices = jax.devices()
    if num_devices in (0, len(devices)):
        return devices
    if not 0 < num_devices < len(devices):
        raise ConfigError(f"config.mesh.num_devices={num_devices}: this run has {len(devices)} devices (0 = all)")
    if jax.process_count() > 1:
        raise ConfigError(
            f"config.mesh.num_devices={num_devices}: a {jax.process_count()}-process run's mesh spans every process's "
            "devices; set 0"
        )
    return devices[:num_devices]


def make_mesh(axes: Mapping[str, int] | None = None, *, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Builds an Auto-typed mesh; `axes` maps names in BATCH_AXES to sizes, one size may be -1 (fill)."""
    axes = dict(axes or {"data": -1})
    unknown = sorted(set(axes) - set(BATCH_AXES))
    if unknown:
        raise ConfigError(f"unknown mesh axes {unknown}; known axes are {list(BATCH_AXES)}")
    devices = list(jax.devices() if devices is None else devices)
    sizes = dict(axes)
    free = [name for name, size in sizes.items() if size == -1]
    if len(free) > 1:
        raise ConfigError(f"at most one mesh axis may be -1, got {free}")
    fixed = math.prod(size for size in sizes.values() if size != -1)
    if any(size == 0 or size < -1 for size in sizes.values()):
        raise ConfigError(f"mesh axis sizes must be positive or -1, got {sizes}")
    if free:
        if len(devices) % fixed:
            raise ConfigError(f"{len(devices)} devices cannot be split into mesh {sizes}")
        sizes[free[0]] = len(devices) // fixed
    if math.prod(sizes.values()) != len(devices):
        raise ConfigError(f"mesh {sizes} needs {math.prod(sizes.values())} devices, have {len(devices)}")
    if len(devices) > 1 and not spmd_verified():
        warnings.warn(
            f"jax {jax.__version__}: multi-device steps were seen to differ from the 1-device step by 0.3-0.7% in "
            "BatchNorm gradients; use Python 3.12 and jax 0.12.0.1 (what setup.py installs) for multi-device runs",
            RuntimeWarning,
            stacklevel=2,
        )
    return jax.make_mesh(
        tuple(sizes.values()),
        tuple(sizes),
        axis_types=(AxisType.Auto,) * len(sizes),
        devices=devices,
    )


def _batch_axes(mesh: Mesh) -> tuple[str, ...]:
    return tuple(name for name in mesh.axis_names if name in BATCH_AXES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over all batch axes of the mesh, the rest replicated."""
    return NamedSharding(mesh, P(_batch_axes(mesh)))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, P())


def replicated_key(mesh: Mesh, seed: int) -> jax.Array:
    """The PRNG key of `seed` held whole by every device of `mesh`; made under jit, because device_put cannot place
    an array on other processes' devices in a multi-process run."""
    return jax.jit(lambda: jax.random.key(seed), out_shardings=replicated(mesh))()


def _leaf_sharding(mesh: Mesh, shape: tuple[int, ...]) -> NamedSharding:
    fsdp = mesh.shape.get("fsdp", 1)
    if fsdp == 1 or math.prod(shape) < _MIN_FSDP_SHARD_SIZE:
        return replicated(mesh)
    divisible = [d for d in range(len(shape)) if shape[d] % fsdp == 0]
    if not divisible:
        return replicated(mesh)
    dim = max(divisible, key=lambda d: shape[d])
    spec = [None] * len(shape)
    spec[dim] = "fsdp"
    return NamedSharding(mesh, P(*spec))


def state_sharding(mesh: Mesh, tree):
    """Shardings for a train-state pytree (arrays or ShapeDtypeStructs): replicated, or split over "fsdp" when the
    mesh has it."""
    return jax.tree.map(lambda leaf: _leaf_sharding(mesh, tuple(getattr(leaf, "shape", np.shape(leaf)))), tree)


def global_batch(mesh: Mesh, local_batch):
    """Assembles process-local numpy arrays into global jax.Arrays sharded along the batch axis."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)
