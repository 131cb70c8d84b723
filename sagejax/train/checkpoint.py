"""Orbax checkpoints of the train state and the data-iterator position.

Every process calls save/restore (orbax coordinates multi-host writes). A restore reads onto
an abstract tree that carries the target shardings, so arrays land directly on the mesh.
"""

from __future__ import annotations

import os

import grain
import jax
import orbax.checkpoint as ocp


def make_manager(workdir: str, *, max_to_keep: int = 2) -> ocp.CheckpointManager:
    """A CheckpointManager over `workdir/checkpoints` keeping the newest `max_to_keep` steps."""
    return ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        item_names=("state", "data"),
    )


def save(manager: ocp.CheckpointManager, step: int, state, data_iterator) -> None:
    """Writes state and data position for `step` and waits until it is on disk."""
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(data_iterator),
        ),
        force=True,
    )
    manager.wait_until_finished()


def restore_latest(manager: ocp.CheckpointManager, abstract_state, data_iterator):
    """Restores the newest checkpoint onto `abstract_state`'s shapes and shardings; None when there is none."""
    step = manager.latest_step()
    if step is None:
        return None
    return restore_state(manager, abstract_state, step=step, data_iterator=data_iterator)


def restore_state(manager: ocp.CheckpointManager, abstract_state, *, step: int, data_iterator=None):
    """Restores the train state of `step`, and the data position into `data_iterator` when given (without it,
    e.g. to use a trained model); a damaged checkpoint raises RuntimeError naming it and is left in place."""
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
        items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as error:  # orbax raises several types for damaged files
        raise RuntimeError(
            f"checkpoint at step {step} in {manager.directory} could not be restored ({error}); "
            "move it aside to use an earlier step"
        ) from error
    return restored["state"]


def abstract_like(state, shardings):
    """ShapeDtypeStructs of `state` carrying `shardings`, the restore target."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings)
