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
from sagejax.models.named import assign, path_name
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
    (restore target, AOT input) and `init(pretrained=None)`, which materialises the initial state directly with
    them, its arrays named in `pretrained` ({name: host array}, `models.named` names) taken from there."""

    graphdef: nnx.GraphDef
    abstract: TrainState
    init: Callable[..., TrainState]


def init_state(config, optimizer: optax.GradientTransformation, mesh: Mesh) -> StateSetup:
    """The train state of `config` (model from `models.build_model`) laid out on `mesh`, without allocating it."""

    def initial_state(pretrained) -> TrainState:
        model = models.build_model(config)
        assign(model, pretrained)
        return create_train_state(model, optimizer)[1]

    graphdef, _, _ = nnx.split(nnx.eval_shape(lambda: models.build_model(config)), nnx.Param, ...)
    shapes = jax.eval_shape(initial_state, {})
    shardings = state_sharding(mesh, shapes)
    abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings)
    jitted = jax.jit(initial_state, out_shardings=shardings)
    placement = _named_shardings(shardings)

    def init(pretrained=None) -> TrainState:
        # Each host array goes to the devices as the shards its parameter has, so no device holds an extra copy.
        placed = {
            name: jax.make_array_from_callback(value.shape, placement[name], lambda index, v=value: v[index])
            for name, value in (pretrained or {}).items()
        }
        return jitted(placed)

    return StateSetup(graphdef, abstract, init)


def _named_shardings(shardings: TrainState) -> dict:
    """{"params/<path>" or "batch_stats/<path>": sharding} of a TrainState of shardings (`models.named` names)."""
    named = {}
    for prefix, tree in (("params", shardings.params), ("batch_stats", shardings.model_state)):
        leaves = jax.tree_util.tree_flatten_with_path(tree.to_pure_dict())[0]
        for path, sharding in leaves:
            named[f"{prefix}/{path_name(path)}"] = sharding
    return named
