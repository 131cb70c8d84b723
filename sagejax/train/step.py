"""The pure train step: the batch's device transform, gradients of a method's loss (optionally accumulated over
micro-batches), one optimizer update, metrics (with the finiteness check fused in), and its ahead-of-time
compilation.

A loss function has the signature `loss_fn(model, batch, rng) -> (scalar, metrics)`, where
`model` is the NNX module rebuilt inside the step; BatchNorm statistics it updates are read
back out after the call. The step itself knows no method and no model architecture.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from sagejax.train.mesh import batch_sharding, replicated, state_sharding
from sagejax.train.state import TrainState, merge_model

LossFn = Callable[[nnx.Module, dict, jax.Array], tuple[jax.Array, dict]]
BatchTransform = Callable[[dict, jax.Array], dict]


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


def micro_batches(batch: dict, count: int) -> dict:
    """(B, ...) → (count, B/count, ...): micro-batch j holds rows j, j + count, ..., so each one keeps an equal share
    of every device's rows and stays split over the same devices."""
    return jax.tree.map(lambda x: jnp.swapaxes(x.reshape(x.shape[0] // count, count, *x.shape[1:]), 0, 1), batch)


def accumulate_gradients(grad_fn, state: TrainState, batch, rng, count: int):
    """`grad_fn` on `count` micro-batches in turn (a scan: one micro-batch's activations live at a time); the mean
    loss, metrics and gradients, and the model state (BatchNorm statistics) after the last micro-batch."""

    def micro_step(carry, inputs):
        grads_sum, model_state = carry
        index, micro = inputs
        current = state.replace(model_state=model_state)
        loss, metrics, grads, model_state = grad_fn(current, micro, jax.random.fold_in(rng, index))
        return (jax.tree.map(jnp.add, grads_sum, grads), model_state), (loss, metrics)

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    inputs = (jnp.arange(count), micro_batches(batch, count))
    (grads_sum, model_state), (losses, metrics) = jax.lax.scan(micro_step, (zeros, state.model_state), inputs)
    grads = jax.tree.map(lambda g: g / count, grads_sum)
    return jnp.mean(losses), jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics), grads, model_state


STOP_KEY = "sigterm"  # a batch key the step reduces over all rows into a metric: the processes' agreed stop


def make_train_step(
    *,
    graphdef: nnx.GraphDef,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    transform: BatchTransform | None = None,
    accumulate_steps: int = 1,
):
    """Returns the pure `step(state, batch, rng) -> (new_state, metrics)`; `transform(batch, rng)` runs first on
    the device (uint8 → float, joint augmentation). With `accumulate_steps` k > 1 the batch is k micro-batches whose
    mean gradient makes the one update (the full batch's gradient for a loss that is a mean over independent
    examples; BatchNorm statistics and in-batch negatives are per micro-batch). Metrics include `finite` (1.0 when
    the loss, the gradients and the new parameters are all finite), so the loop checks finiteness without walking
    the tree itself, and with a `STOP_KEY` column in the batch, its maximum over all processes' rows (the agreed
    SIGTERM decision, reduced inside the step instead of in a collective of its own)."""
    grad_fn = make_grad_fn(graphdef=graphdef, loss_fn=loss_fn)
    if accumulate_steps > 1:
        grad_fn = functools.partial(accumulate_gradients, grad_fn, count=accumulate_steps)

    def step(state: TrainState, batch, rng):
        batch = dict(batch)
        stop = batch.pop(STOP_KEY, None)  # each process's SIGTERM flag, one per row (multi-process runs only)
        rng = jax.random.fold_in(rng, state.step)
        augment_rng, loss_rng = jax.random.split(rng)
        if transform is not None:
            batch = transform(batch, augment_rng)
        loss, metrics, grads, model_state = grad_fn(state, batch, loss_rng)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = TrainState(step=state.step + 1, params=params, model_state=model_state, opt_state=opt_state)
        grad_norm, param_norm = optax.tree.norm(grads), optax.tree.norm(params)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(param_norm)
        metrics = {
            **metrics,
            "loss": loss,
            "grad_norm": grad_norm,
            "param_norm": param_norm,
            "update_norm": optax.tree.norm(updates),
            "finite": finite.astype(jnp.float32),
        }
        if stop is not None:
            metrics[STOP_KEY] = jnp.max(stop).astype(jnp.float32)  # 1.0 when any process saw SIGTERM
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


def batch_spec(mesh: Mesh, local_batch: dict) -> dict:
    """ShapeDtypeStructs of the global batch that `local_batch` (this process's numpy part) belongs to."""
    sharding = batch_sharding(mesh)
    processes = jax.process_count()
    return {
        key: jax.ShapeDtypeStruct((value.shape[0] * processes, *value.shape[1:]), value.dtype, sharding=sharding)
        for key, value in local_batch.items()
    }


def compile_train_step(step, *, mesh: Mesh, abstract_state: TrainState, batch: dict):
    """Lowers and compiles the jitted step before the loop (errors such as out-of-memory show here, not at step
    1); returns the executable and its report: compile seconds and XLA's memory analysis in bytes."""
    jitted = jit_train_step(step, mesh=mesh, state=abstract_state)
    rng = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=replicated(mesh))
    start = time.perf_counter()
    compiled = jitted.lower(abstract_state, batch, rng).compile()
    report = {"compile_seconds": time.perf_counter() - start}
    memory = compiled.memory_analysis()
    for name in ("argument", "output", "temp", "alias", "generated_code"):
        value = getattr(memory, f"{name}_size_in_bytes", None) if memory is not None else None
        if value is not None:
            report[f"{name}_bytes"] = int(value)
    return compiled, report
