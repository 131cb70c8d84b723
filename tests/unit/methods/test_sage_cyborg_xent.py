"""Methods: SAGE, CYBORG and the cross-entropy baselines compose the losses as DESIGN §1.1 says."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from sagejax import augment, losses, methods, models
from sagejax.configs import sage_decoy
from sagejax.errors import ConfigError
from sagejax.methods import cyborg, sage
from sagejax.train import create_train_state, global_batch, make_grad_fn, make_mesh


def _config(variant="sage,smoke"):
    return sage_decoy.get_config(variant)


def _model(eval_mode=True):
    model = models.create_model("resnet18", num_classes=10, rngs=nnx.Rngs(0), stem="imagenet", width=4)
    if eval_mode:
        model.eval()
    return model


def _batch(batch_size=8, seed=0, saliency=None):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    blob = ((yy - 16) ** 2 + (xx - 12) ** 2 < 64).astype(np.float32)
    return {
        "image": jnp.asarray(rng.uniform(size=(batch_size, 32, 32, 3)), jnp.float32),
        "saliency": jnp.asarray(np.broadcast_to(blob, (batch_size, 32, 32)) if saliency is None else saliency),
        "label": jnp.asarray(rng.integers(0, 10, size=batch_size), jnp.int32),
    }


def test_sage_loss_is_ce_plus_weighted_js_and_triplet():
    config = _config().method
    config.w_js, config.w_tri, config.temperature = 0.7, 1.3, 3.0
    model, batch, rng = _model(), _batch(), jax.random.key(0)
    loss, metrics = sage.make_loss(config)(model, batch, rng)

    views = augment.saliency_views(
        images=batch["image"],
        saliency=augment.prepare_saliency(batch["saliency"]),
        sigma=config.blur_sigma,
        kernel_size=config.blur_kernel_size,
    )
    out = {name: model(views[name]) for name in sage.VIEW_NAMES}  # eval mode: views are independent
    ce = losses.softmax_cross_entropy(logits=out["x"]["logits"], labels=batch["label"])
    js = losses.js_divergence(logits_a=out["x"]["logits"], logits_b=out["x_keep"]["logits"], temperature=3.0)
    js += losses.js_divergence(logits_a=out["x_blur"]["logits"], logits_b=out["x_degrade"]["logits"], temperature=3.0)
    hinges = losses.triplet_margin(
        anchor=out["x"]["embedding"],
        positive=out["x_keep"]["embedding"],
        negative=out["x_degrade"]["embedding"],
        margin=config.margin,
        reduction="none",
    )
    triplet = hinges.mean()
    expected = ce + 0.7 * 9.0 * js + 1.3 * triplet
    # One pass over the stacked views vs four separate passes: convolutions of other batch sizes round
    # differently (~1e-7 in the logits, CPU-model dependent), hence an absolute floor for the small terms.
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["js"], 9.0 * js, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["triplet"], triplet, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["triplet_active"], np.mean(hinges > 1e-6), atol=1 / len(hinges))


def test_sage_inverted_saliency_equals_sage_on_the_complement_map():
    config = _config("sage_inverted,smoke").method
    assert config.invert_saliency
    model, rng = _model(), jax.random.key(0)
    blob = np.asarray(_batch()["saliency"])
    inverted = sage.make_loss(config)(model, _batch(saliency=blob), rng)[0]
    config.invert_saliency = False
    complement = sage.make_loss(config)(model, _batch(saliency=1.0 - blob), rng)[0]
    plain = sage.make_loss(config)(model, _batch(saliency=blob), rng)[0]
    np.testing.assert_allclose(inverted, complement, rtol=1e-6)
    assert abs(float(inverted) - float(plain)) > 1e-4


def test_empty_saliency_maps_switch_off_logit_alignment():
    config = _config().method
    loss, metrics = sage.make_loss(config)(
        _model(), _batch(saliency=np.zeros((8, 32, 32), np.float32)), jax.random.key(0)
    )
    assert np.isfinite(loss)
    np.testing.assert_allclose(metrics["js"], 0.0, atol=1e-6)


def test_view_fraction_limits_the_views_to_the_first_examples():
    config = _config().method
    config.view_fraction = 0.25
    out, n = sage.forward_views(_model(), _batch(), jax.random.key(0), config)
    assert n == 2
    assert out["x"]["logits"].shape == (8, 10)
    assert out["x_keep"]["logits"].shape == out["x_degrade"]["logits"].shape == (2, 10)
    with pytest.raises(ValueError, match="view_fraction"):
        sage.num_view_examples(8, 1.5)


def test_sage_gradients_are_finite_and_reach_the_backbone():
    config = _config().method
    graphdef, state = create_train_state(_model(eval_mode=False), optax.sgd(0.1))
    grad_fn = jax.jit(make_grad_fn(graphdef=graphdef, loss_fn=sage.make_loss(config)))
    loss, _, grads, _ = grad_fn(state, _batch(), jax.random.key(0))
    leaves = jax.tree.leaves(grads)
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in leaves)
    assert float(optax.tree.norm(grads["stem"])) > 0


def test_sage_step_on_8_devices_equals_1_device(devices):
    config = _config().method
    results = []
    for mesh in (make_mesh({"data": 1}, devices=devices[:1]), make_mesh({"data": 8}, devices=devices)):
        graphdef, state = create_train_state(_model(eval_mode=False), optax.sgd(0.1))
        grad_fn = jax.jit(make_grad_fn(graphdef=graphdef, loss_fn=sage.make_loss(config)))
        batch = global_batch(mesh, {k: np.asarray(v) for k, v in _batch(batch_size=16).items()})
        results.append(jax.device_get(grad_fn(state, batch, jax.random.key(3))))
    chex.assert_trees_all_close(results[0][0], results[1][0], rtol=1e-5)
    chex.assert_trees_all_close(results[0][1], results[1][1], rtol=1e-5, atol=1e-6)
    # Per-leaf relative error of the gradient: reduction order differs across 8 shards.
    rel = jax.tree.map(lambda a, b: np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12), results[0][2], results[1][2])
    assert max(jax.tree.leaves(rel)) < 3e-5


def test_cyborg_is_alpha_ce_plus_cam_mse_with_the_classifier_weights():
    config = _config("cyborg,smoke").method
    model, batch = _model(), _batch()
    loss, metrics = cyborg.make_loss(config)(model, batch, jax.random.key(0))
    out = model(batch["image"])
    cam = losses.cam_mse(
        feature_map=out["feature_map"],
        class_weights=model.head.dense.kernel[...],
        classes=batch["label"],
        target_map=augment.prepare_saliency(batch["saliency"]),
    )
    ce = losses.softmax_cross_entropy(logits=out["logits"], labels=batch["label"])
    np.testing.assert_allclose(loss, 0.5 * ce + 0.5 * cam, rtol=1e-5)
    np.testing.assert_allclose(metrics["cam_mse"], cam, rtol=1e-5)

    config.cam_class = "predicted"
    predicted = cyborg.make_loss(config)(model, batch, jax.random.key(0))[1]["cam_mse"]
    expected = losses.cam_mse(
        feature_map=out["feature_map"],
        class_weights=model.head.dense.kernel[...],
        classes=jnp.argmax(out["logits"], -1),
        target_map=augment.prepare_saliency(batch["saliency"]),
    )
    np.testing.assert_allclose(predicted, expected, rtol=1e-5)
    config.cam_class = "other"
    with pytest.raises(ValueError, match="cam_class"):
        cyborg.make_loss(config)


def test_augmentation_control_is_ce_on_x_and_salient_view():
    config = _config("xent_aug,smoke").method
    model, batch = _model(), _batch()
    loss, _ = methods.make_loss(config)(model, batch, jax.random.key(0))
    keep = augment.saliency_views(
        images=batch["image"],
        saliency=augment.prepare_saliency(batch["saliency"]),
        sigma=config.blur_sigma,
        kernel_size=config.blur_kernel_size,
    )["x_keep"]
    ce_x = losses.softmax_cross_entropy(logits=model(batch["image"])["logits"], labels=batch["label"])
    ce_keep = losses.softmax_cross_entropy(logits=model(keep)["logits"], labels=batch["label"])
    np.testing.assert_allclose(loss, 0.5 * (ce_x + ce_keep), rtol=1e-5)


def test_xent_is_plain_cross_entropy():
    config = _config("xent,smoke").method
    model, batch = _model(), _batch()
    loss, metrics = methods.make_loss(config)(model, batch, jax.random.key(0))
    logits = model(batch["image"])["logits"]
    np.testing.assert_allclose(loss, losses.softmax_cross_entropy(logits=logits, labels=batch["label"]), rtol=1e-6)
    np.testing.assert_allclose(metrics["accuracy"], np.mean(np.argmax(logits, -1) == batch["label"]))


def test_sage_hook_reads_the_embedding_at_the_named_layer():
    config = _config().method
    model, batch = _model(), _batch()
    default = sage.make_loss(config)(model, batch, jax.random.key(0))[1]["triplet"]
    config.hook = "layers.2"
    hooked = sage.make_loss(config)(model, batch, jax.random.key(0))[1]["triplet"]
    assert abs(float(default) - float(hooked)) > 1e-6
    config.hook = "layers.9"
    with pytest.raises(ValueError, match="unknown tap"):
        sage.make_loss(config)(model, batch, jax.random.key(0))


def test_unknown_method_and_views_are_named():
    config = _config().method
    config.name = "sagex"
    with pytest.raises(ValueError, match="unknown method 'sagex'"):
        methods.make_loss(config)
    config = _config().method
    config.ce_views = ("x", "x_sharp")
    with pytest.raises(ValueError, match="x_sharp"):
        methods.make_loss(config)


def test_check_config_names_impossible_settings_without_building_anything(tmp_path):
    for name in methods.method_names():
        methods.check_config(methods.default_config(name))  # every method's defaults are possible
    bad = [
        ("sage", dict(temperature=0.0), "method.temperature must be > 0"),
        ("sage", dict(blur_kernel_size=4), "positive odd number"),
        ("sage", dict(view_fraction=1.5), r"view_fraction must be in \[0, 1\]"),
        ("xent_aug", dict(degrade="smudge"), "unknown method.degrade"),
        ("cyborg", dict(cam_class="best"), "method.cam_class must be one of"),
        ("simclr", dict(temperature=-1.0), "method.temperature must be > 0"),
        ("supervised_attn", dict(kld_weight=-1.0), "method.kld_weight must be >= 0"),
        ("teacher", dict(w_cc=-1.0), "method.w_cc must be >= 0"),
    ]
    for name, overrides, message in bad:
        with pytest.raises(ConfigError, match=message):
            methods.check_config(methods.default_config(name, **overrides))
    # A student with a teacher inside its step: checking its settings restores nothing, building its loss does.
    config = methods.default_config("simclr_attn", teacher_workdir=str(tmp_path / "no_teacher"))
    methods.check_config(config)
    with pytest.raises(FileNotFoundError):
        methods.make_loss(config)
