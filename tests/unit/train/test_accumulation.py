"""Gradient accumulation (`optim.accumulate_steps`): k micro-batches make one update equal to the full batch's for a
model without BatchNorm, on one device and split over two; BatchNorm statistics follow the micro-batches in turn."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from sagejax import losses
from sagejax.train import create_train_state, global_batch, jit_train_step, make_mesh, make_train_step
from sagejax.train.step import make_grad_fn, micro_batches


class MLP(nnx.Module):
    def __init__(self, *, batch_norm: bool = False):
        rngs = nnx.Rngs(0)
        self.hidden = nnx.Linear(12, 16, rngs=rngs)
        self.norm = nnx.BatchNorm(16, rngs=rngs) if batch_norm else None
        self.out = nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x):
        h = self.hidden(x)
        h = self.norm(h) if self.norm is not None else h
        return self.out(jax.nn.relu(h))


def _loss(model, batch, rng):
    del rng
    logits = model(batch["x"])
    ce = losses.softmax_cross_entropy(logits=logits, labels=batch["label"])
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return ce, {"ce": ce, "accuracy": accuracy, "rows": jnp.float32(batch["x"].shape[0])}


def _batch(size=16):
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(size, 12)).astype(np.float32), "label": rng.integers(0, 3, size).astype(np.int32)}


def _step(model, accumulate_steps):
    optimizer = optax.sgd(0.1, momentum=0.9)
    graphdef, state = create_train_state(model, optimizer)
    step = make_train_step(graphdef=graphdef, loss_fn=_loss, optimizer=optimizer, accumulate_steps=accumulate_steps)
    return step, state, graphdef


def test_micro_batches_take_every_kth_row():
    rows = micro_batches({"x": jnp.arange(8)}, 4)["x"]
    np.testing.assert_array_equal(rows, [[0, 4], [1, 5], [2, 6], [3, 7]])


def test_accumulated_update_equals_the_full_batch_update_without_batchnorm(devices):
    results = {}
    for k in (1, 4):
        step, state, _ = _step(MLP(), k)
        new_state, metrics = jax.jit(step)(state, _batch(), jax.random.key(0))
        results[k] = (new_state.params, metrics)
        assert metrics["rows"] == 16 // k  # the loss saw k micro-batches
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), results[1][0], results[4][0])
    for key in ("loss", "ce", "accuracy", "grad_norm", "update_norm"):
        np.testing.assert_allclose(results[1][1][key], results[4][1][key], rtol=1e-5, err_msg=key)
    # The same with the batch split over 2 devices.
    mesh = make_mesh({"data": 2}, devices=devices[:2])
    step, state, _ = _step(MLP(), 4)
    sharded, _ = jit_train_step(step, mesh=mesh, state=state)(state, global_batch(mesh, _batch()), jax.random.key(0))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), results[1][0], sharded.params)


def test_batchnorm_statistics_follow_the_micro_batches_in_turn():
    step, state, graphdef = _step(MLP(batch_norm=True), 2)
    new_state, metrics = jax.jit(step)(state, _batch(), jax.random.key(0))
    grad_fn = make_grad_fn(graphdef=graphdef, loss_fn=_loss)
    expected, losses_seen = state, []
    for micro in (jax.tree.map(lambda x, i=i: x[i], micro_batches(_batch(), 2)) for i in range(2)):
        loss, _, _, model_state = grad_fn(expected, micro, jax.random.key(0))
        expected, _ = expected.replace(model_state=model_state), losses_seen.append(loss)
    jax.tree.map(np.testing.assert_allclose, new_state.model_state, expected.model_state)
    np.testing.assert_allclose(metrics["loss"], np.mean(losses_seen), rtol=1e-6)
