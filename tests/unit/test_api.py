"""The Python API's functional SAGE loss: it gives the method's numbers, and finite gradients with empty and full
maps (a trained run's load, predict and export: tests/integration/test_api_runs.py)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

import sagejax
from sagejax import methods, models
from sagejax.configs import sage_decoy
from sagejax.errors import ConfigError
from sagejax.methods import sage


def _batch(seed=0, batch=8, size=16):
    rng = np.random.default_rng(seed)
    saliency = np.zeros((batch, size, size), np.float32)
    saliency[:, 4:12, 4:12] = 1.0
    return {
        "image": jnp.asarray(rng.uniform(size=(batch, size, size, 3)), jnp.float32),
        "saliency": jnp.asarray(saliency),
        "label": jnp.asarray(rng.integers(0, 10, batch), jnp.int32),
    }


def _model():
    config = sage_decoy.get_config("sage,smoke")
    return models.build_model(config), config


@pytest.mark.parametrize("settings", [{}, dict(view_fraction=0.5, w_js=3.0, temperature=4.0, batch_hard=True)])
def test_sage_loss_equals_the_method_loss(settings):
    model, config = _model()
    method_config = ml_collections.ConfigDict({**config.method.to_dict(), **settings})
    batch, rng = _batch(), jax.random.key(1)
    expected, expected_metrics = methods.make_loss(method_config)(model, batch, rng)
    keys = sorted(sage.DEFAULTS)
    chosen = {key: method_config[key] for key in keys}

    def apply_fn(images):
        return models.forward(model, images)

    loss, metrics = sagejax.sage_loss_from_apply(
        apply_fn, images=batch["image"], saliency=batch["saliency"], labels=batch["label"], rng=rng, **chosen
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    for key in expected_metrics:
        np.testing.assert_allclose(metrics[key], expected_metrics[key], rtol=1e-6, err_msg=key)
    out, _ = sage.forward_views(model, batch, rng, method_config)
    loss_views, _ = sagejax.sage_loss(views=out, labels=batch["label"], **chosen)
    np.testing.assert_allclose(loss_views, expected, rtol=1e-6)


def test_sage_loss_names_unknown_settings():
    with pytest.raises(ConfigError, match=r"unknown SAGE settings \['tempertaure'\]"):
        sagejax.sage_loss(views={}, labels=jnp.zeros(2, jnp.int32), tempertaure=2.0)


def test_sage_loss_has_finite_gradients_with_empty_and_full_maps():
    model, config = _model()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    batch = _batch()

    @jax.jit
    @jax.grad
    def grad_of_loss(params, saliency):
        m = nnx.merge(graphdef, params, rest, copy=True)
        return sagejax.sage_loss_from_apply(
            lambda x: models.forward(m, x),
            images=batch["image"],
            saliency=saliency,
            labels=batch["label"],
            rng=jax.random.key(0),
        )[0]

    for fill in (0.0, 1.0):
        grads = grad_of_loss(params, jnp.full((8, 16, 16), fill))
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads)), fill
