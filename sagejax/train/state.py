"""Train state as a plain pytree, so jit, sharding and orbax see only arrays.

The NNX model is split once into a static `graphdef` (kept outside the state) and two
array trees: trainable `params` and the rest (`model_state`: BatchNorm statistics, RNG counts).
`init_state` creates it directly on the mesh: shapes first (`jax.eval_shape`), then one jitted
initialiser with the target shardings, so no device ever holds a full unsharded copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct
from jax.sharding import Mesh

from sagejax import models
from sagejax.train.mesh import state_sharding


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


@dataclasses.dataclass(frozen=True)
class StateSetup:
    """What a run needs before any array exists: the model graph, the abstract state carrying its shardings
    (restore target, AOT input) and `init()`, which materialises the initial state directly with them."""

    graphdef: nnx.GraphDef
    abstract: TrainState
    init: Callable[[], TrainState]


def init_state(config, optimizer: optax.GradientTransformation, mesh: Mesh) -> StateSetup:
    """The train state of `config` (model from `models.build_model`) laid out on `mesh`, without allocating it."""

    def initial_state() -> TrainState:
        return create_train_state(models.build_model(config), optimizer)[1]

    graphdef, _, _ = nnx.split(nnx.eval_shape(lambda: models.build_model(config)), nnx.Param, ...)
    shapes = jax.eval_shape(initial_state)
    shardings = state_sharding(mesh, shapes)
    abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings)
    return StateSetup(graphdef, abstract, jax.jit(initial_state, out_shardings=shardings))
