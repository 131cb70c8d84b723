"""Train state as a plain pytree, so jit, sharding and orbax see only arrays.

The NNX model is split once into a static `graphdef` (kept outside the state) and two
array trees: trainable `params` and the rest (`model_state`: BatchNorm statistics, RNG counts).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct


@struct.dataclass
class TrainState:
    """Step counter, parameters, non-trainable model state and optimizer state."""

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any


def create_train_state(model: nnx.Module, optimizer: optax.GradientTransformation) -> tuple[nnx.GraphDef, TrainState]:
    """Splits `model` into its static graph and an initial TrainState."""
    graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=optimizer.init(params),
    )
    return graphdef, state


def merge_model(graphdef: nnx.GraphDef, params, model_state) -> nnx.Module:
    """Rebuilds the NNX module from its graph and array trees; a fresh copy, so it is safe inside jax.grad."""
    return nnx.merge(graphdef, params, model_state, copy=True)
