"""A deliberately slow method for the trainer's dispatch test: cross-entropy plus a host callback that sleeps
and appends a line to $SAGEJAX_TEST_STEP_LOG each time a step actually executes on the device."""

import os
import time

import jax
import jax.numpy as jnp

from sagejax.methods import xent

DEFAULTS = dict(xent.DEFAULTS, sleep_seconds=0.5)


def make_loss(config):
    """xent's loss; each execution sleeps `sleep_seconds` and is recorded."""
    base = xent.make_loss(config)
    log_path = os.environ["SAGEJAX_TEST_STEP_LOG"]

    def record(value):
        time.sleep(config.sleep_seconds)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write("executed\n")
        return value

    def loss_fn(model, batch, rng):
        loss, metrics = base(model, batch, rng)
        token = jax.pure_callback(record, jax.ShapeDtypeStruct((), jnp.float32), jax.lax.stop_gradient(loss))
        return loss + 0.0 * jax.lax.stop_gradient(token), metrics

    return loss_fn
