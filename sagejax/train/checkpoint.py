"""Orbax checkpoints of the train state, the data-iterator position and the config the run was trained with.

Every process calls save/restore (orbax coordinates multi-host writes). Saves are asynchronous: the arrays
are copied to host memory when `save` returns and written in the background; `wait` blocks until they are on
disk (at SIGTERM and at the end of a run). The preservation policy keeps the newest `keep` steps. A restore
reads onto an abstract tree that carries the target shardings, so arrays land directly on the mesh.
"""

from __future__ import annotations

import json
import sys

import grain
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from sagejax import storage
from sagejax.errors import CheckpointError


def make_manager(workdir: str, *, keep: int = 2, asynchronous: bool = True) -> ocp.CheckpointManager:
    """A CheckpointManager over `workdir/checkpoints` (a folder or a gs:// bucket) that preserves the newest `keep`
    steps."""
    policies = getattr(ocp, "checkpoint_managers", None)
    if policies is not None and hasattr(policies, "LatestN"):
        retention = dict(preservation_policy=policies.LatestN(n=keep))
    else:  # orbax releases near the bottom of setup.py's range may lack preservation policies
        retention = dict(max_to_keep=keep)
    return ocp.CheckpointManager(
        storage.path(workdir) / "checkpoints",
        options=ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=asynchronous, **retention),
        item_names=("state", "data", "config", "checksums"),
    )


class _FrozenPosition:
    """The data iterator's position at save time, so a background write cannot see a later position."""

    def __init__(self, iterator):
        self._state = json.dumps(iterator.get_state(), indent=4).encode()

    def get_state(self) -> bytes:
        return self._state


def has_checkpoint(workdir: str) -> bool:
    """Whether `workdir` holds a checkpoint step folder (a resume), looked up without creating anything."""
    folder = storage.path(workdir) / "checkpoints"
    return folder.is_dir() and any(child.name.isdigit() for child in folder.iterdir())


def check_writable(workdir: str) -> None:
    """Raises naming the checkpoint folder of `workdir` when it cannot be created or written, before step 1."""
    storage.check_writable(storage.path(workdir) / "checkpoints", what="checkpoint folder")


def save(manager: ocp.CheckpointManager, step: int, state, data_iterator, *, config: dict) -> None:
    """Starts writing state, data position, `config` (a dict) and a checksum of every array for `step`; returns
    once the arrays are copied off the devices."""
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(_FrozenPosition(data_iterator)),
            config=ocp.args.JsonSave(json.loads(json.dumps(config, default=str))),
            checksums=ocp.args.JsonSave(checksums(state)),
        ),
        force=True,
    )


@jax.jit
def _leaf_sums(leaves):
    """Per array, the sum of its bits read as unsigned integers, modulo 2^32: exact in any order (so on any device
    layout), and changed by any flipped bit of a single element."""

    def words(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        if x.dtype == jnp.bool_:
            return x.astype(jnp.uint32)
        bits = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[x.dtype.itemsize]
        return jax.lax.bitcast_convert_type(x, bits).astype(jnp.uint32)

    return [jnp.sum(words(x), dtype=jnp.uint32) for x in leaves]


def checksums(state) -> dict[str, int]:
    """{array path: checksum} of every array of `state` (what `save` writes and `restore_state` verifies)."""
    paths, leaves = zip(*jax.tree_util.tree_leaves_with_path(state)) if jax.tree.leaves(state) else ((), ())
    sums = jax.device_get(_leaf_sums(list(leaves)))
    return {jax.tree_util.keystr(path): int(value) for path, value in zip(paths, sums)}


def has_checksums(manager: ocp.CheckpointManager, step: int) -> bool:
    """Whether the checkpoint of `step` was written with checksums (so its restore was verified)."""
    return (manager.directory / str(step) / "checksums").exists()


def _verify(manager: ocp.CheckpointManager, step: int, state) -> None:
    """Raises CheckpointError when the restored arrays differ from the checksums saved with them (files damaged on
    disk); a checkpoint written before checksums were kept is accepted unverified."""
    if not has_checksums(manager, step):
        return
    saved = manager.restore(step, args=ocp.args.Composite(checksums=ocp.args.JsonRestore()))["checksums"]
    restored = checksums(state)
    differ = sorted(path for path in saved.keys() | restored.keys() if saved.get(path) != restored.get(path))
    if differ:
        raise CheckpointError(
            f"checkpoint at step {step} in {manager.directory} does not match the checksums saved with it "
            f"({len(differ)} arrays differ, e.g. {differ[0]}: damaged files)"
        )


def saved_config(manager: ocp.CheckpointManager, step: int) -> dict | None:
    """The config stored with the checkpoint of `step`; None for a checkpoint written without one."""
    if not (manager.directory / str(step) / "config").exists():
        return None
    return manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]


def wait(manager: ocp.CheckpointManager) -> None:
    """Blocks until every started save is on disk."""
    manager.wait_until_finished()


def restore_state(manager: ocp.CheckpointManager, abstract_state, *, step: int, data_iterator=None):
    """Restores the train state of `step`, and the data position into `data_iterator` when given (without it,
    e.g. to use a trained model), verified against its checksums; a damaged checkpoint raises RuntimeError naming
    it and is left in place."""
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    position = None
    if data_iterator is not None:
        _check_position_format(manager, step)
        position = _position_of_other_process_count(manager, step)
    if data_iterator is not None and position is None:
        items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as error:  # orbax raises several types for damaged files
        raise CheckpointError(
            f"checkpoint at step {step} in {manager.directory} could not be restored ({error})"
        ) from error
    _verify(manager, step, restored["state"])
    if position is not None:
        data_iterator.set_state(position)
    return restored["state"]


def _position_of_other_process_count(manager: ocp.CheckpointManager, step: int) -> dict | None:
    """The data position of a checkpoint written by another number of processes, or None when this process has its
    own file. Each process reads its rows of one global stream and counts global batches, so every process's position
    is the same number and is this process's position too (a checkpoint of 2 processes resumes in 1 and back)."""
    folder = manager.directory / str(step) / "data"
    if (folder / f"process_{jax.process_index()}-of-{jax.process_count()}.json").exists():
        return None
    files = sorted(folder.glob("process_*-of-*.json"))
    if not files:
        return None
    positions = [json.loads(path.read_text()) for path in files]
    if any(position != positions[0] for position in positions):
        raise CheckpointError(
            f"checkpoint at step {step} in {manager.directory}: its {len(files)} processes saved different data "
            f"positions, which {jax.process_count()} process(es) cannot take over; resume it with {len(files)}"
        )
    return positions[0]


def all_finite(tree) -> bool:
    """Whether every floating-point leaf of `tree` is finite (one device reduction)."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return bool(jax.device_get(jnp.all(jnp.stack(leaves)))) if leaves else True


def restore_newest_good(manager: ocp.CheckpointManager, abstract_state, *, data_iterator=None):
    """(step, state) of the newest checkpoint that restores, matches its checksums and is finite, or (None, None)
    when there is none.
    A newer checkpoint that fails is moved aside to `checkpoints/damaged-<step>` (kept, never deleted) with a
    message; when no earlier one exists, the error names it and it is left in place."""
    steps = sorted(manager.all_steps(), reverse=True)
    for position, step in enumerate(steps):
        try:
            state = restore_state(manager, abstract_state, step=step, data_iterator=data_iterator)
            if not all_finite(state):
                raise CheckpointError(
                    f"checkpoint at step {step} in {manager.directory} restored non-finite values (damaged files)"
                )
            return step, state
        except IncompatibleCheckpointError:
            raise
        except RuntimeError as error:
            if position == len(steps) - 1:
                raise CheckpointError(f"{error}; no earlier checkpoint to fall back to") from error
            aside = _move_aside(manager, step)
            print(
                f"warning: {error}; moved it to {aside}, resuming from step {steps[position + 1]}",
                file=sys.stderr,
                flush=True,
            )
    return None, None


def _move_aside(manager: ocp.CheckpointManager, step: int) -> str:
    """Renames the checkpoint of `step` to `damaged-<step>` (`damaged-<step>-<n>` when that is taken: every damaged
    copy is kept) on process 0; returns the name (on other processes, the one it was meant to get)."""
    aside, copy = f"damaged-{step}", 1
    if jax.process_index() == 0:
        while (manager.directory / aside).exists():
            aside, copy = f"damaged-{step}-{copy}", copy + 1
        (manager.directory / str(step)).rename(manager.directory / aside)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"sagejax: checkpoint {step} moved aside")
    manager.reload()
    return aside


class IncompatibleCheckpointError(CheckpointError):
    """A checkpoint written by an earlier sagejax that this version cannot resume (not damaged: kept as it is)."""


def _check_position_format(manager: ocp.CheckpointManager, step: int) -> None:
    """A data position written by the loaders before the grain Dataset API cannot place the new iterator."""
    for path in (manager.directory / str(step) / "data").glob("process_*.json"):
        try:
            position = json.loads(path.read_text())
        except ValueError:
            return  # damaged: the restore names the checkpoint
        if isinstance(position, dict) and "next_index" not in position:
            raise IncompatibleCheckpointError(
                f"checkpoint at step {step} in {manager.directory} holds a data position of the earlier sagejax "
                "loader, which cannot be resumed exactly; start the run in a new workdir, or evaluate this one "
                "with --mode=eval (which does not read the data position)"
            )
