"""Trainer building blocks: device mesh and shardings, train state, the pure jitted step."""

from sagejax.train.mesh import (
    BATCH_AXES,
    batch_sharding,
    global_batch,
    make_mesh,
    replicated,
    state_sharding,
)
from sagejax.train.state import StateSetup, TrainState, create_train_state, init_state, merge_model
from sagejax.train.step import batch_spec, compile_train_step, jit_train_step, make_grad_fn, make_train_step

__all__ = [
    "BATCH_AXES",
    "StateSetup",
    "TrainState",
    "batch_sharding",
    "batch_spec",
    "compile_train_step",
    "create_train_state",
    "global_batch",
    "init_state",
    "jit_train_step",
    "make_grad_fn",
    "make_mesh",
    "make_train_step",
    "merge_model",
    "replicated",
    "state_sharding",
]
