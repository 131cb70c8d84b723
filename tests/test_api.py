"""The Python API: SAGE's functional loss gives the method's numbers; a trained run loads, predicts on uint8 and
float images, exports to safetensors and loads back with equal logits; bad inputs are named."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

import sagejax
from sagejax import data, methods, models
from sagejax.configs import sage_decoy
from sagejax.errors import ConfigError, DataError, MissingError
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
    for fill in (0.0, 1.0):
        batch = {**_batch(), "saliency": jnp.full((8, 16, 16), fill)}

        def loss(params):
            m = nnx.merge(graphdef, params, rest, copy=True)
            return sagejax.sage_loss_from_apply(
                lambda x: models.forward(m, x),
                images=batch["image"],
                saliency=batch["saliency"],
                labels=batch["label"],
                rng=jax.random.key(0),
            )[0]

        grads = jax.grad(loss)(params)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads)), fill


# ------------------------------------------------------------------------------------------ a trained run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step SAGE smoke run (ResNet with BatchNorm) on a small Decoy MNIST build."""
    root = tmp_path_factory.mktemp("api")
    data_dir = str(root / "tfds")
    data.build_dataset("decoy_mnist", data_dir=data_dir, config="swatch_32_rgb", max_examples_per_split=64)
    config = sage_decoy.get_config("sage,smoke")
    config.data.data_dir = data_dir
    config.train.update(steps=2, checkpoint_every_steps=2, tensorboard=False)
    for settings in config.evals.values():
        settings.every_steps = 0
    from sagejax.trainer import train_and_evaluate

    train_and_evaluate(config, str(root / "run"))
    return root / "run"


@pytest.mark.slow
def test_a_run_loads_predicts_exports_and_loads_back(trained, tmp_path):
    run = sagejax.load(str(trained))
    assert run.step == 2 and run.config.method.name == "sage"
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    out = run.predict(images)
    assert out["logits"].shape == (4, 10) and out["embedding"].shape[0] == 4
    np.testing.assert_allclose(run.predict(images.astype(np.float32) / 255)["logits"], out["logits"], atol=1e-6)

    path = sagejax.export(str(trained), str(tmp_path / "weights.safetensors"))
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        keys = list(f.keys())
    assert any(k.startswith("batch_stats/") for k in keys) and any(k.startswith("params/") for k in keys)
    assert not any("opt" in k or "count" in k for k in keys)  # no optimizer state, no RNG counters
    model = sagejax.load_exported(path)
    again = sagejax.make_predict(model, run.config)(images)
    np.testing.assert_array_equal(again["logits"], out["logits"])


@pytest.mark.slow
def test_bad_inputs_are_named(trained, tmp_path):
    run = sagejax.load(str(trained))
    with pytest.raises(DataError, match=r"images must be \(B, H, W, C\)"):
        run.predict(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(DataError, match="uint8 or float"):
        run.predict(np.zeros((1, 32, 32, 3), np.int64))
    with pytest.raises(MissingError, match="no exported weights file"):
        sagejax.load_exported(str(tmp_path / "none.safetensors"))
    path = sagejax.export(str(trained), str(tmp_path / "w.safetensors"))
    wider = run.config.copy_and_resolve_references()
    wider.model.kwargs.width = 8
    with pytest.raises(ConfigError, match=r"params/.*: .* holds shape .* the model needs"):
        sagejax.load_exported(path, wider)
