"""The pure train step: gradients of a method's loss, one optimizer update, metrics.

A loss function has the signature `loss_fn(model, batch, rng) -> (scalar, metrics)`, where
`model` is the NNX module rebuilt inside the step; BatchNorm statistics it updates are read
back out after the call. The step itself knows no method and no model architecture.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax
from flax import nnx
from jax.sharding import Mesh

from sagejax.train.mesh import batch_sharding, replicated, state_sharding
from sagejax.train.state import TrainState, merge_model

LossFn = Callable[[nnx.Module, dict, jax.Array], tuple[jax.Array, dict]]


def make_grad_fn(*, graphdef: nnx.GraphDef, loss_fn: LossFn):
    """Returns `grad_fn(state, batch, rng) -> (loss, metrics, grads, new_model_state)`."""

    def compute(params, model_state, batch, rng):
        model = merge_model(graphdef, params, model_state)
        loss, metrics = loss_fn(model, batch, rng)
        _, _, new_model_state = nnx.split(model, nnx.Param, ...)
        return loss, (metrics, new_model_state)

    def grad_fn(state: TrainState, batch, rng):
        (loss, (metrics, new_model_state)), grads = jax.value_and_grad(compute, has_aux=True)(
            state.params, state.model_state, batch, rng
        )
        return loss, metrics, grads, new_model_state

    return grad_fn


def make_train_step(*, graphdef: nnx.GraphDef, loss_fn: LossFn, optimizer: optax.GradientTransformation):
    """Returns the pure `step(state, batch, rng) -> (new_state, metrics)`."""
    grad_fn = make_grad_fn(graphdef=graphdef, loss_fn=loss_fn)

    def step(state: TrainState, batch, rng):
        loss, metrics, grads, model_state = grad_fn(state, batch, jax.random.fold_in(rng, state.step))
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        new_state = TrainState(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            model_state=model_state,
            opt_state=opt_state,
        )
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads)}
        return new_state, metrics

    return step


def jit_train_step(step, *, mesh: Mesh, state: TrainState):
    """Jits `step` over `mesh`: state donated and sharded, batch split on its leading axis."""
    state_shardings = state_sharding(mesh, state)
    return jax.jit(
        step,
        in_shardings=(state_shardings, batch_sharding(mesh), replicated(mesh)),
        out_shardings=(state_shardings, replicated(mesh)),
        donate_argnums=(0,),
    )
