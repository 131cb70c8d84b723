"""The saliency teacher: its loss against a NumPy reference, edge gradients, and training it with the trainer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sagejax import models
from sagejax.configs import teacher_unet
from sagejax.methods import make_loss
from sagejax.methods.teacher import human_fixations, predict_log_density

MIT_EPS = 2.2204e-16


class PixelLogits(nnx.Module):
    """A 'model' returning fixed per-pixel logits, so the loss can be checked against NumPy exactly."""

    def __init__(self, logits):
        self.logits = nnx.Param(jnp.asarray(logits))

    def __call__(self, images):
        del images
        return self.logits[...]


def _np_loss(logits, density, fixations, w_kld, w_cc, w_nss):
    """Float64 reference: softmax over pixels, then MIT KLD, CC and NSS (population std), batch means."""
    b = logits.shape[0]
    flat = logits.reshape(b, -1).astype(np.float64)
    p = np.exp(flat - flat.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = density.reshape(b, -1).astype(np.float64)
    g = g / np.where(g.sum(1, keepdims=True) > 0, g.sum(1, keepdims=True), 1)
    kld = (g * np.log(MIT_EPS + g / (p + MIT_EPS))).sum(1)
    zp = (p - p.mean(1, keepdims=True)) / p.std(1, keepdims=True)
    zg_std = g.std(1, keepdims=True)
    zg = np.where(zg_std > 0, (g - g.mean(1, keepdims=True)) / np.where(zg_std > 0, zg_std, 1), 0)
    cc = (zp * zg).mean(1)
    f = fixations.reshape(b, -1) > 0
    nss = np.array([zp[i][f[i]].mean() if f[i].any() else 0.0 for i in range(b)])
    return w_kld * kld.mean() - w_cc * cc.mean() - w_nss * nss.mean()


def _method(**overrides):
    config = teacher_unet.get_config("").method
    config.unlock()
    config.update(overrides)
    return config


def test_teacher_loss_matches_numpy_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 8, 6, 1)).astype(np.float32)
    density = rng.uniform(size=(3, 8, 6)).astype(np.float32)
    fixations = (rng.uniform(size=(3, 8, 6)) > 0.8).astype(np.float32)
    method = _method(w_kld=1.0, w_cc=0.5, w_nss=0.25)
    batch = {"image": np.zeros((3, 8, 6, 3), np.float32), "density": density, "fixations": fixations}
    loss, metrics = jax.jit(make_loss(method))(PixelLogits(logits), batch, jax.random.key(0))
    expected = _np_loss(logits[..., 0], density, fixations, 1.0, 0.5, 0.25)
    np.testing.assert_allclose(float(loss), expected, rtol=2e-5, atol=1e-6)
    assert set(metrics) == {"kld", "cc", "nss"}


def test_predicted_density_sums_to_one_per_image():
    model = models.create_model("unet", num_classes=1, rngs=nnx.Rngs(0), base_width=4, depth=2)
    images = jax.random.uniform(jax.random.key(1), (2, 16, 12, 3))
    log_density = predict_log_density(model, images)
    assert log_density.shape == (2, 16, 12)
    np.testing.assert_allclose(np.exp(np.asarray(log_density, np.float64)).sum(axis=(1, 2)), 1.0, rtol=1e-5)


def test_a_model_with_several_output_channels_is_refused():
    model = models.create_model("unet", num_classes=2, rngs=nnx.Rngs(0), base_width=4, depth=1)
    with pytest.raises(ValueError, match=r"\(B, H, W, 1\)"):
        predict_log_density(model, jnp.zeros((1, 8, 8, 3)))


def test_fixations_are_read_or_derived_from_the_map():
    density = np.array([[[0.0, 0.2], [0.5, 1.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    stored = np.array([[[1, 0], [0, 0]], [[0, 1], [0, 0]]], np.uint8)
    batch = {"density": density, "fixations": stored}
    np.testing.assert_array_equal(human_fixations(batch, _method()), stored)
    derived = human_fixations(batch, _method(fixations_key="", fixation_threshold=0.5))
    np.testing.assert_array_equal(derived, [[[0, 0], [1, 1]], [[0, 0], [0, 0]]])  # an all-zero map has none


@pytest.mark.parametrize("case", ["zero_map", "constant_logits", "peaked_logits"])
def test_gradients_are_finite_at_the_edges(case):
    logits = np.zeros((2, 8, 8, 1), np.float32)
    density = np.random.default_rng(0).uniform(size=(2, 8, 8)).astype(np.float32)
    if case == "zero_map":
        density[:] = 0
    if case == "peaked_logits":
        logits[:, 3, 3] = 80.0  # nearly all mass on one pixel
    batch = {"image": np.zeros((2, 8, 8, 3)), "density": density, "fixations": (density > 0.5).astype(np.float32)}
    loss_fn = make_loss(_method())

    def loss_of(logits):
        return loss_fn(PixelLogits(logits), batch, None)[0]

    value, grad = jax.value_and_grad(loss_of)(jnp.asarray(logits))
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))


def test_negative_weights_are_refused():
    with pytest.raises(ValueError, match="w_nss"):
        make_loss(_method(w_nss=-1.0))


def test_decoy_variant_derives_fixations_from_the_stroke_maps():
    config = teacher_unet.get_config("decoy")
    assert (config.data.name, config.method.density_key, config.method.fixations_key) == ("decoy_mnist", "saliency", "")
    assert (config.evals.saliency.map_key, config.evals.saliency.fixations_key) == ("saliency", "")
    assert config.data.train_split == "train[:500]"
