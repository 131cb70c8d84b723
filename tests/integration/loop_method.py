"""A one-layer model and a cross-entropy method on it, so the training loop's rules (resume, checkpoints, cadences,
stops, errors) are tested in seconds: the loop knows methods and models only by name, so these stand in for any.

Used by import path: `config.model.name = "loop_method:OneLayer"`, `config.method.name = "loop_method:make_loss"`
(the folder of this file on sys.path, as pytest and the tests' subprocesses have it)."""

import os
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from sagejax import losses

DEFAULTS = dict(
    sleep_seconds=0.0,  # > 0: each executed step sleeps and appends a line to $SAGEJAX_TEST_STEP_LOG
    nan_above_norm=0.0,  # > 0: the loss is NaN once the parameters' norm passes this (a divergence at a known step)
)


class OneLayer(nnx.Module):
    """A 1x1 convolution to class scores, averaged over the image: logits and the pooled input as the embedding."""

    def __init__(self, *, num_classes, rngs, dtype=jnp.float32, param_dtype=jnp.float32, in_channels: int = 3):
        self.conv = nnx.Conv(in_channels, num_classes, (1, 1), dtype=dtype, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, x):
        return {"logits": jnp.mean(self.conv(x), axis=(1, 2)).astype(jnp.float32), "embedding": jnp.mean(x, (1, 2))}


def _record_step(value, seconds, log_path):
    time.sleep(seconds)
    with open(log_path, "a", encoding="utf-8") as f:
        f.write("executed\n")
    return value


def make_loss(config):
    """Softmax cross-entropy of the model's logits; with `sleep_seconds`, a host callback makes every step slow and
    records that it executed (what a SIGTERM test counts); with `nan_above_norm`, large weights give a NaN loss."""
    seconds, nan_above = config.sleep_seconds, config.nan_above_norm
    log_path = os.environ.get("SAGEJAX_TEST_STEP_LOG", "")

    def loss_fn(model, batch, rng):
        del rng
        logits = model(batch["image"])["logits"]
        ce = losses.softmax_cross_entropy(logits=logits, labels=batch["label"])
        if nan_above > 0:
            norm = optax.tree.norm(nnx.state(model, nnx.Param))
            ce = jnp.where(norm > nan_above, jnp.nan, ce)
        if seconds > 0:
            record = lambda value: _record_step(value, seconds, log_path)  # noqa: E731
            token = jax.pure_callback(record, jax.ShapeDtypeStruct((), jnp.float32), jax.lax.stop_gradient(ce))
            ce = ce + 0.0 * jax.lax.stop_gradient(token)
        return ce, {"ce": ce, "rows": jnp.float32(batch["image"].shape[0])}

    return loss_fn
