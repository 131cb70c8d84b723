"""Orbax checkpoints of the train state and the data-iterator position.

Every process calls save/restore (orbax coordinates multi-host writes). Saves are asynchronous: the arrays
are copied to host memory when `save` returns and written in the background; `wait` blocks until they are on
disk (at SIGTERM and at the end of a run). The preservation policy keeps the newest `keep` steps. A restore
reads onto an abstract tree that carries the target shardings, so arrays land directly on the mesh.
"""

from __future__ import annotations

import json
import os

import grain
import orbax.checkpoint as ocp


def make_manager(workdir: str, *, keep: int = 2, asynchronous: bool = True) -> ocp.CheckpointManager:
    """A CheckpointManager over `workdir/checkpoints` that preserves the newest `keep` steps."""
    policies = getattr(ocp, "checkpoint_managers", None)
    if policies is not None and hasattr(policies, "LatestN"):
        retention = dict(preservation_policy=policies.LatestN(n=keep))
    else:  # orbax < 0.11.22 (Python 3.11 installs) has no preservation policies
        retention = dict(max_to_keep=keep)
    return ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"),
        options=ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=asynchronous, **retention),
        item_names=("state", "data"),
    )


class _FrozenPosition:
    """The data iterator's position at save time, so a background write cannot see a later position."""

    def __init__(self, iterator):
        self._state = json.dumps(iterator.get_state(), indent=4).encode()

    def get_state(self) -> bytes:
        return self._state


def save(manager: ocp.CheckpointManager, step: int, state, data_iterator) -> None:
    """Starts writing state and data position for `step`; returns once the arrays are copied off the devices."""
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(_FrozenPosition(data_iterator)),
        ),
        force=True,
    )


def wait(manager: ocp.CheckpointManager) -> None:
    """Blocks until every started save is on disk."""
    manager.wait_until_finished()


def restore_state(manager: ocp.CheckpointManager, abstract_state, *, step: int, data_iterator=None):
    """Restores the train state of `step`, and the data position into `data_iterator` when given (without it,
    e.g. to use a trained model); a damaged checkpoint raises RuntimeError naming it and is left in place."""
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
        items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    if data_iterator is not None:
        _check_position_format(manager, step)
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as error:  # orbax raises several types for damaged files
        raise RuntimeError(
            f"checkpoint at step {step} in {manager.directory} could not be restored ({error}); "
            "move it aside to use an earlier step"
        ) from error
    return restored["state"]


def _check_position_format(manager: ocp.CheckpointManager, step: int) -> None:
    """A data position written by the loaders before the grain Dataset API cannot place the new iterator."""
    for path in (manager.directory / str(step) / "data").glob("process_*.json"):
        try:
            position = json.loads(path.read_text())
        except ValueError:
            return  # damaged: the restore names the checkpoint
        if isinstance(position, dict) and "next_index" not in position:
            raise RuntimeError(
                f"checkpoint at step {step} in {manager.directory} holds a data position of the earlier sagejax "
                "loader, which cannot be resumed exactly; start the run in a new workdir, or evaluate this one "
                "with --mode=eval (which does not read the data position)"
            )
