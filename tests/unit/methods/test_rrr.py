"""RRR: CE + λ·mean_n Σ ‖(1 − s) ⊙ ∂x Σ_k log p_k‖², against NumPy finite differences on a tiny model."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from sagejax import losses, methods, models
from sagejax.configs import sage_decoy
from sagejax.data.device import to_model_inputs
from sagejax.errors import ConfigError, DataError
from sagejax.methods import rrr
from sagejax.train import create_train_state, make_grad_fn, make_train_step


class TinyMLP(nnx.Module):
    """4×4×1 images → tanh hidden layer → 3 logits: smooth, so central differences are accurate."""

    def __init__(self, rngs):
        self.hidden = nnx.Linear(16, 6, rngs=rngs)
        self.out = nnx.Linear(6, 3, rngs=rngs)

    def __call__(self, x):
        return {"logits": self.out(jnp.tanh(self.hidden(x.reshape(x.shape[0], -1))))}


def np_summed_log_probs(model, x):
    """NumPy float64 Σ_k log p_k(x) per example of TinyMLP, from its parameters."""
    layers = (model.hidden.kernel, model.hidden.bias, model.out.kernel, model.out.bias)
    w1, b1, w2, b2 = (np.asarray(v[...], np.float64) for v in layers)
    logits = np.tanh(x.reshape(x.shape[0], -1) @ w1 + b1) @ w2 + b2
    shifted = logits - logits.max(-1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))).sum(-1)


def ref_penalty(model, images, irrelevant, eps=1e-5):
    """mean_n Σ ((A ⊙ ∂x Σ_k log p_k)²) with the input gradient by central differences (float64)."""
    x = np.asarray(images, np.float64)
    grads = np.zeros_like(x)
    for index in np.ndindex(x.shape[1:]):
        step = np.zeros_like(x)
        step[(slice(None), *index)] = eps
        difference = np_summed_log_probs(model, x + step) - np_summed_log_probs(model, x - step)
        grads[(slice(None), *index)] = difference / (2 * eps)
    return np.mean(np.sum((np.asarray(irrelevant, np.float64)[..., None] * grads) ** 2, axis=(1, 2, 3)))


def _tiny_batch(saliency=None, batch_size=5, seed=0):
    rng = np.random.default_rng(seed)
    if saliency is None:  # a salient 2×2 centre; example 1 has no map (all zero)
        saliency = np.zeros((batch_size, 4, 4), np.float32)
        saliency[:, 1:3, 1:3] = 1.0
        saliency[1] = 0.0
    return {
        "image": jnp.asarray(rng.uniform(size=(batch_size, 4, 4, 1)), jnp.float32),
        "saliency": jnp.asarray(saliency, jnp.float32),
        "label": jnp.asarray(rng.integers(0, 3, size=batch_size), jnp.int32),
    }


def _config(**overrides):
    return methods.default_config("rrr", **overrides)


def test_penalty_matches_numpy_finite_differences_and_no_map_examples_are_free():
    model, batch = TinyMLP(nnx.Rngs(0)), _tiny_batch()
    loss, metrics = rrr.make_loss(_config(l2_grads=0.5))(model, batch, jax.random.key(0))
    irrelevant = 1.0 - np.asarray(batch["saliency"])
    irrelevant[1] = 0.0  # the example without a map: all salient (empty_saliency="ones"), no penalty
    expected = ref_penalty(model, batch["image"], irrelevant)
    assert expected > 1e-3  # the reference is not trivially zero
    np.testing.assert_allclose(metrics["penalty"], expected, rtol=1e-4)
    logits = model(batch["image"])["logits"]
    ce = losses.softmax_cross_entropy(logits=logits, labels=batch["label"])
    np.testing.assert_allclose(metrics["ce"], ce, rtol=1e-6)
    np.testing.assert_allclose(loss, ce + 0.5 * metrics["penalty"], rtol=1e-6)
    np.testing.assert_allclose(metrics["accuracy"], np.mean(np.argmax(logits, -1) == batch["label"]))


def test_edges_all_salient_and_all_zero_maps_give_finite_gradients():
    model = TinyMLP(nnx.Rngs(1))
    graphdef, state = create_train_state(model, optax.sgd(0.1))
    cases = {  # (map, empty_saliency) -> the irrelevant region the penalty must use
        "all salient": (np.ones((5, 4, 4), np.float32), "ones", np.zeros((5, 4, 4))),
        "no map": (np.zeros((5, 4, 4), np.float32), "ones", np.zeros((5, 4, 4))),
        "no map, penalised": (np.zeros((5, 4, 4), np.float32), "zeros", np.ones((5, 4, 4))),
    }
    for name, (saliency, empty, irrelevant) in cases.items():
        batch = _tiny_batch(saliency)
        grad_fn = jax.jit(make_grad_fn(graphdef=graphdef, loss_fn=rrr.make_loss(_config(empty_saliency=empty))))
        loss, metrics, grads, _ = grad_fn(state, batch, jax.random.key(0))
        assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads)), name
        np.testing.assert_allclose(metrics["penalty"], ref_penalty(model, batch["image"], irrelevant), rtol=1e-4)
    assert float(metrics["penalty"]) > 1e-3


def test_outer_gradient_differentiates_through_the_input_gradient():
    """Double back-propagation: the parameter gradient of the loss matches its directional finite difference, and
    differs from the cross-entropy's alone."""
    model, batch = TinyMLP(nnx.Rngs(2)), _tiny_batch()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    direction = jax.tree.map(lambda p: jax.random.normal(jax.random.key(3), p.shape), params)

    def slope(l2_grads):
        loss_fn = rrr.make_loss(_config(l2_grads=l2_grads))

        def loss_of(p):
            return loss_fn(nnx.merge(graphdef, p, rest, copy=True), batch, jax.random.key(0))[0]

        grads = jax.grad(loss_of)(params)
        along = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction)))
        eps = 2e-3
        shifted = [loss_of(jax.tree.map(lambda p, d, s=s: p + s * eps * d, params, direction)) for s in (1, -1)]
        return float(along), float(shifted[0] - shifted[1]) / (2 * eps)

    along, finite_difference = slope(2.0)
    np.testing.assert_allclose(along, finite_difference, rtol=5e-4)
    assert abs(along - slope(0.0)[0]) > 0.1 * abs(along)


def test_inverted_saliency_penalises_the_salient_region_of_annotated_examples_only():
    model, batch = TinyMLP(nnx.Rngs(3)), _tiny_batch()
    inverted = rrr.make_loss(_config(invert_saliency=True))(model, batch, jax.random.key(0))[1]["penalty"]
    irrelevant = np.asarray(batch["saliency"]).copy()  # A = s where there is a map
    np.testing.assert_allclose(inverted, ref_penalty(model, batch["image"], irrelevant), rtol=1e-4)
    assert abs(float(inverted) - float(rrr.make_loss(_config())(model, batch, jax.random.key(0))[1]["penalty"])) > 1e-4


def _resnet():
    return models.create_model("resnet18", num_classes=10, rngs=nnx.Rngs(0), stem="imagenet", width=4)


def _image_batch(batch_size=8):
    rng = np.random.default_rng(0)
    saliency = np.zeros((batch_size, 32, 32), np.uint8)
    saliency[:, 8:24, 6:20] = 255
    return {
        "image": rng.integers(0, 256, size=(batch_size, 32, 32, 3), dtype=np.uint8),
        "saliency": saliency,
        "label": rng.integers(0, 10, size=batch_size).astype(np.int32),
    }


def test_zero_lambda_gives_xent_loss_and_gradient_on_a_batchnorm_resnet():
    """Train-mode BatchNorm: the same loss, parameter gradients and updated batch statistics as xent."""
    batch = {k: jnp.asarray(v, jnp.float32) / (255 if v.dtype == np.uint8 else 1) for k, v in _image_batch().items()}
    batch["label"] = batch["label"].astype(jnp.int32)
    results = []
    for config in (methods.default_config("xent"), _config(l2_grads=0.0)):
        graphdef, state = create_train_state(_resnet(), optax.sgd(0.1))
        grad_fn = jax.jit(make_grad_fn(graphdef=graphdef, loss_fn=methods.make_loss(config)))
        loss, metrics, grads, model_state = grad_fn(state, batch, jax.random.key(0))
        results.append((loss, metrics["ce"], grads, model_state))
    np.testing.assert_allclose(results[1][:2], results[0][:2], rtol=1e-6)
    chex.assert_trees_all_close(results[1][2], results[0][2], rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(results[1][3], results[0][3], rtol=1e-6)


def test_one_compiled_train_step_on_uint8_batches():
    """The project's step (uint8 → float transform, AdamW update) runs RRR under jit and changes the parameters."""
    config = sage_decoy.get_config("rrr,smoke")
    assert config.method.name == "rrr" and config.method.l2_grads > 0
    graphdef, state = create_train_state(_resnet(), optax.adamw(1e-3))
    step = jax.jit(
        make_train_step(
            graphdef=graphdef,
            loss_fn=methods.make_loss(config.method),
            optimizer=optax.adamw(1e-3),
            transform=lambda batch, rng: to_model_inputs(batch),
        )
    )
    before = jax.tree.leaves(state.params)
    new_state, metrics = step(state, _image_batch(), jax.random.key(0))
    assert float(metrics["finite"]) == 1.0 and float(metrics["penalty"]) > 0
    assert any(not np.allclose(a, b) for a, b in zip(before, jax.tree.leaves(new_state.params)))


def test_registry_config_and_checks():
    method = methods.get("rrr")
    assert method.predict is methods.classify and "rrr" in sage_decoy.METHODS
    assert sage_decoy.get_config("rrr_inverted").method.invert_saliency
    with pytest.raises(ConfigError, match="l2_grads"):
        methods.check_config(_config(l2_grads=-1.0))
    with pytest.raises(ConfigError, match="empty_saliency"):
        methods.check_config(_config(empty_saliency="half"))
    batch = _image_batch()
    method.check_batch(_config(), batch)
    with pytest.raises(DataError, match="saliency"):
        method.check_batch(_config(), {"image": batch["image"], "label": batch["label"]})
    with pytest.raises(DataError, match="size"):
        method.check_batch(_config(), {**batch, "saliency": batch["saliency"][:, :16]})
