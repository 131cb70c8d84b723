"""Data parallelism: a step sharded over 8 devices equals the same step on 1 device."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from sagejax import losses, models
from sagejax.train import (
    create_train_state,
    global_batch,
    jit_train_step,
    make_grad_fn,
    make_mesh,
    make_train_step,
)
from sagejax.train.mesh import mesh_devices, spmd_verified

GLOBAL_BATCH = 16
needs_verified_jax = pytest.mark.skipif(
    not spmd_verified(),
    reason=f"jax {jax.__version__} gives 0.3-0.7% different BatchNorm gradients on 8 devices (make_mesh warns)",
)


def _tiny_model():
    return models.create_model("resnet18", num_classes=10, rngs=nnx.Rngs(0), stem="small", width=4)


def _xent_loss(model, batch, rng):
    del rng
    out = model(batch["image"])
    loss = losses.softmax_cross_entropy(logits=out["logits"], labels=batch["label"])
    return loss, {"embedding_norm": jnp.linalg.norm(out["embedding"], axis=-1).mean()}


def _batch():
    rng = np.random.default_rng(0)
    return {
        "image": rng.normal(size=(GLOBAL_BATCH, 32, 32, 3)).astype(np.float32),
        "label": rng.integers(0, 10, size=(GLOBAL_BATCH,)).astype(np.int32),
    }


def _grads_on(mesh):
    graphdef, state = create_train_state(_tiny_model(), optax.sgd(0.1))
    grad_fn = jax.jit(make_grad_fn(graphdef=graphdef, loss_fn=_xent_loss))
    loss, metrics, grads, model_state = grad_fn(state, global_batch(mesh, _batch()), jax.random.key(0))
    return jax.device_get((loss, metrics, grads, model_state))


@needs_verified_jax
@pytest.mark.parametrize("axes", [{"data": 8}, {"data": 4, "fsdp": 2}])
def test_sharded_gradients_equal_single_device(devices, axes):
    one = _grads_on(make_mesh({"data": 1}, devices=devices[:1]))
    many = _grads_on(make_mesh(axes, devices=devices))
    chex.assert_trees_all_close(one[0], many[0], rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(one[1], many[1], rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(one[2], many[2], rtol=1e-4, atol=1e-6)
    # BatchNorm running statistics are computed over the global batch on both meshes.
    chex.assert_trees_all_close(one[3], many[3], rtol=1e-5, atol=1e-6)


@needs_verified_jax
def test_jitted_step_on_8_devices_matches_1_device_and_learns(devices, optimized):
    batch = _batch()
    results = []
    for mesh in (make_mesh({"data": 1}, devices=devices[:1]), make_mesh({"data": 8}, devices=devices)):
        optimizer = optax.sgd(0.05, momentum=0.9)
        graphdef, state = create_train_state(_tiny_model(), optimizer)
        step = jit_train_step(
            make_train_step(graphdef=graphdef, loss_fn=_xent_loss, optimizer=optimizer),
            mesh=mesh,
            state=state,
        )
        losses_seen = []
        for _ in range(4):
            state, metrics = step(state, global_batch(mesh, batch), jax.random.key(1))
            losses_seen.append(float(metrics["loss"]))
        results.append((losses_seen, jax.device_get(state.params)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    # Four steps amplify float reduction-order differences; one step is checked at 1e-5 above.
    chex.assert_trees_all_close(results[0][1], results[1][1], rtol=1e-3, atol=2e-4)
    assert results[1][0][-1] < results[1][0][0], "four SGD steps on one batch should lower the loss"


def test_a_mesh_spans_all_devices_or_the_first_num_devices(devices):
    assert mesh_devices(0) == devices and mesh_devices(8) == devices and mesh_devices(2) == devices[:2]
    assert make_mesh({"data": -1}, devices=mesh_devices(2)).size == 2
    for wrong in (-1, 9):
        with pytest.raises(ValueError, match=f"config.mesh.num_devices={wrong}: this run has 8 devices"):
            mesh_devices(wrong)


def test_batch_is_split_across_devices(devices):
    mesh = make_mesh({"data": 8}, devices=devices)
    batch = global_batch(mesh, _batch())
    assert len(batch["image"].addressable_shards) == 8
    assert batch["image"].addressable_shards[0].data.shape == (GLOBAL_BATCH // 8, 32, 32, 3)


def test_nt_xent_sharded_equals_unsharded(devices):
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(32, 16)).astype(np.float32)
    expected = losses.nt_xent(embeddings=jnp.asarray(embeddings), temperature=0.2)
    mesh = make_mesh({"data": 8}, devices=devices)
    sharded = global_batch(mesh, {"z": embeddings})["z"]
    got = jax.jit(lambda z: losses.nt_xent(embeddings=z, temperature=0.2))(sharded)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5)


@pytest.mark.parametrize(
    "axes, message",
    [({"model": 2}, "unknown mesh axes"), ({"data": 3}, "needs 3 devices"), ({"data": -1, "fsdp": -1}, "at most one")],
)
def test_bad_mesh_configs_are_named(devices, axes, message):
    with pytest.raises(ValueError, match=message):
        make_mesh(axes, devices=devices)


@pytest.mark.parametrize("version", ["0.10.2", "0.12.1"])
def test_multi_device_mesh_warns_on_jax_releases_whose_gradients_differ(devices, monkeypatch, version):
    monkeypatch.setattr(jax, "__version__", version)
    with pytest.warns(RuntimeWarning, match="use Python 3.12 and jax 0.12.0.1"):
        make_mesh({"data": 8}, devices=devices)
    assert spmd_verified("0.12.0.1") and spmd_verified("0.13.0") and not spmd_verified(version)
