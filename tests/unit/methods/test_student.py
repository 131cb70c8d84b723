"""The student: attention loss against NumPy, the model's heads, the methods' losses and their bad inputs, LARS
masks on real parameter paths, linear probes against closed-form references."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from sagejax import losses, methods, models
from sagejax.configs import student as student_configs
from sagejax.errors import DataWarning
from sagejax.evaluate import probes
from sagejax.evaluate.evaluators.linear_probe import LinearProbeEvaluator
from sagejax.methods import student_attention as student
from sagejax.train import make_mesh
from sagejax.train.mesh import global_batch
from sagejax.train.optim import adapted_parameters, make_optimizer, scaled_lr
from sagejax.train.state import merge_model

MIT_EPS = 2.2204e-16


# ----------------------------------------------------------------------------- attention loss


def ref_attention_loss(log_prediction, target, fixations, kld_weight, nss_weight, where=None):
    """Independent NumPy: cell means / maxima by loops, MIT KLD and NSS (population std) per map."""
    b, h, w = log_prediction.shape
    fy, fx = target.shape[1] // h, target.shape[2] // w
    values = []
    for i in range(b):
        p = np.exp(log_prediction[i].astype(np.float64))
        t = np.array(
            [[target[i, r * fy : (r + 1) * fy, c * fx : (c + 1) * fx].mean() for c in range(w)] for r in range(h)]
        )
        f = np.array(
            [[fixations[i, r * fy : (r + 1) * fy, c * fx : (c + 1) * fx].max() for c in range(w)] for r in range(h)]
        )
        s, g = p / p.sum(), (t / t.sum() if t.sum() > 0 else t)
        kld = np.sum(g * np.log(MIT_EPS + g / (s + MIT_EPS)))
        z = (p - p.mean()) / p.std() if p.std() > 0 else np.zeros_like(p)
        nss = z[f > 0].mean() if (f > 0).any() else 0.0
        values.append(kld_weight * kld - nss_weight * nss)
    values = np.array(values)
    if where is None:
        return values.mean()
    return values[where].mean() if where.any() else 0.0


def _attention_inputs(seed=0, b=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(b, 4 * 4)).astype(np.float32)
    log_prediction = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).reshape(b, 4, 4)
    target = rng.uniform(size=(b, 16, 16)).astype(np.float32)
    fixations = (rng.uniform(size=(b, 16, 16)) > 0.9).astype(np.uint8)
    return log_prediction, target, fixations


@pytest.mark.parametrize("where", [None, np.array([True, False, True, False]), np.zeros(4, bool)])
def test_attention_loss_matches_numpy(where):
    log_prediction, target, fixations = _attention_inputs()
    got = losses.attention_loss(
        log_prediction=log_prediction, target=target, fixations=fixations, kld_weight=1.0, nss_weight=0.3, where=where
    )
    np.testing.assert_allclose(got, ref_attention_loss(log_prediction, target, fixations, 1.0, 0.3, where), rtol=1e-5)


def test_attention_loss_gradients_are_finite_at_the_edges():
    log_prediction, target, fixations = _attention_inputs(b=3)
    uniform = np.full_like(log_prediction, -np.log(16.0))  # a constant map: NSS 0, std 0
    target[0] = 0  # no mass
    fixations[1] = 0  # no fixations

    def loss(lp):
        return losses.attention_loss(
            log_prediction=lp,
            target=target,
            fixations=fixations,
            kld_weight=1.0,
            nss_weight=0.1,
            where=target.max((1, 2)) > 0,
        )

    for lp in (log_prediction, uniform, np.full_like(log_prediction, -60.0)):
        assert np.isfinite(loss(lp)) and np.all(np.isfinite(jax.grad(loss)(jnp.asarray(lp))))


def test_to_grid_needs_dividing_sizes():
    with pytest.raises(ValueError, match="cannot be pooled onto a 3x3 grid"):
        losses.to_grid(jnp.zeros((1, 16, 16)), (3, 3))


# ----------------------------------------------------------------------------- model


def _student_config(method="simclr_attn", **method_overrides):
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.data = ml_collections.ConfigDict({"num_classes": 10})
    config.model = ml_collections.ConfigDict(
        {
            "name": "resnet18",
            "dtype": "float32",
            "kwargs": {"stem": "small", "width": 4},
            "student": {"projection_hidden": 16, "projection_dim": 8, "attention": method != "simclr"},
        }
    )
    config.method = methods.default_config(method, **method_overrides)
    return config


def test_student_outputs_and_log_softmax_attention():
    model = models.build_model(_student_config())
    out = nnx.jit(lambda m, x: m(x))(model, jnp.zeros((2, 32, 32, 3)))
    assert out["projection"].shape == (2, 8) and out["attention"].shape == (2, 4, 4) and out["logits"].shape == (2, 10)
    np.testing.assert_allclose(jnp.exp(out["attention"]).sum(axis=(1, 2)), 1.0, rtol=1e-5)
    without_head = models.build_model(_student_config("simclr"))
    assert "attention" not in nnx.jit(lambda m, x: m(x))(without_head, jnp.zeros((2, 32, 32, 3)))


def test_attention_pooling_weighs_the_feature_map_by_the_attention_grid():
    rng = np.random.default_rng(0)
    feature_map = jnp.asarray(rng.normal(size=(2, 4, 4, 3)), jnp.float32)
    uniform = jnp.full((2, 4, 4), -np.log(16.0))
    pooled = student.attention_pooled({"feature_map": feature_map, "attention": uniform})
    np.testing.assert_allclose(pooled, feature_map.mean(axis=(1, 2)), rtol=1e-5)  # uniform = the average pool
    one_hot = jnp.log(jnp.zeros((2, 4, 4)).at[:, 1, 2].set(1.0) + 1e-30)
    pooled = student.attention_pooled({"feature_map": feature_map, "attention": one_hot})
    np.testing.assert_allclose(pooled, feature_map[:, 1, 2], rtol=1e-5)
    without_head = student.attention_pooled({"feature_map": feature_map})  # activation attention: Σ a² / Σ Σ a²
    energy = np.mean(np.asarray(feature_map) ** 2, axis=-1)
    weights = energy / energy.sum(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(without_head, np.einsum("bhw,bhwc->bc", weights, feature_map), rtol=1e-5)


def test_unknown_student_option_is_named():
    config = _student_config()
    config.model.student.attention_heads = 2
    with pytest.raises(ValueError, match="config.model.student has unknown keys \\['attention_heads'\\]"):
        models.build_model(config)


# ----------------------------------------------------------------------------- methods


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.uniform(size=(n, 32, 32)).astype(np.float32)
    return {
        "image": rng.uniform(size=(n, 32, 32, 3)).astype(np.float32),
        "label": rng.integers(0, 10, n).astype(np.int32),
        "teacher_saliency": target,
        "teacher_fixations": (target > 0.9).astype(np.uint8),
    }


def _loss(config, batch, rng=0):
    model = models.build_model(config)
    model.train()
    return methods.make_loss(config.method)(model, {k: jnp.asarray(v) for k, v in batch.items()}, jax.random.key(rng))


@pytest.mark.parametrize("method", ["simclr", "simclr_attn", "supervised", "supervised_attn"])
def test_student_losses_are_finite_and_report_their_terms(method):
    loss, metrics = _loss(_student_config(method), _batch())
    assert np.isfinite(loss)
    expected = {"simclr": {"contrastive"}, "supervised": {"ce", "accuracy"}}[method.split("_")[0]]
    if method.endswith("_attn"):
        expected |= {"attention_kld", "attention_nss", "attention_examples"}
    assert set(metrics) == expected


def test_simclr_attn_is_nt_xent_plus_the_attention_term_of_the_views():
    config = _student_config("simclr_attn", kld_weight=0.7, nss_weight=0.2)
    batch = {k: jnp.asarray(v) for k, v in _batch().items()}
    model = models.build_model(config)
    model.train()
    loss, _ = methods.make_loss(config.method)(model, batch, jax.random.key(3))
    model = models.build_model(config)  # fresh BatchNorm statistics: the same forward again
    model.train()
    images, targets = student.simclr_views(config.method, batch, jax.random.key(3), 2)
    out = model(images)
    expected = float(losses.nt_xent(embeddings=out["projection"], temperature=config.method.temperature))
    expected += ref_attention_loss(
        np.asarray(out["attention"]), np.asarray(targets["target"]), np.asarray(targets["fixations"]), 0.7, 0.2
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_the_two_views_of_a_batch_differ():
    batch = {k: jnp.asarray(v) for k, v in _batch().items()}
    images, targets = student.simclr_views(_student_config("simclr_attn").method, batch, jax.random.key(0), 2)
    first, second = np.split(np.asarray(images), 2)
    assert np.all(np.abs(first - second).mean(axis=(1, 2, 3)) > 1e-3) and targets["target"].shape == (16, 32, 32)


def test_cotrain_counts_only_examples_with_maps_and_a_batch_without_any_gives_no_attention_loss():
    batch = _batch()
    batch["density"], batch["fixations"] = batch.pop("teacher_saliency"), batch.pop("teacher_fixations")
    batch["density"][:] = 0
    _, metrics = _loss(_student_config("simclr_cotrain"), batch)
    assert metrics["attention_examples"] == 0 and metrics["attention_kld"] == 0 and metrics["attention_nss"] == 0
    with pytest.warns(DataWarning, match="no example of the first batch has a map"):
        student.check_batch(_student_config("simclr_cotrain").method, batch)


def test_simclr_attn_on_8_devices_equals_1_device(devices):
    # In float32 the sharded program's other reduction order is amplified by the width-4 BatchNorm network
    # (2 examples per device) to ~2e-3 of the stem's and first stage's gradients, by an amount that depends on
    # the XLA build; in float64 the two agree to ~1e-7 (the views are still built in float32). A real sharding
    # bug (per-device BatchNorm statistics, per-device NT-Xent negatives) moves a gradient by O(1).
    with jax.enable_x64(True):
        config = _student_config("simclr_attn", jitter_p=0.0)
        config.model.dtype = "float64"
        batch = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in _batch(16).items()}
        results = []
        for mesh in (make_mesh({"data": 1}, devices=devices[:1]), make_mesh({"data": 8}, devices=devices)):
            graphdef, params, rest = nnx.split(models.build_model(config), nnx.Param, ...)
            params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
            loss_fn = methods.make_loss(config.method)

            def value(params, rest, batch):
                model = merge_model(graphdef, params, rest)
                model.train()
                return loss_fn(model, batch, jax.random.key(0))[0]

            grad = jax.jit(jax.value_and_grad(value))(params, rest, global_batch(mesh, batch))
            results.append(jax.device_get(grad))
    # The loss: the float32 views leave ~1e-7 of it to the reduction order (unoptimized programs order them apart).
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    one_device, eight_devices = (jax.tree_util.tree_leaves_with_path(grads) for _, grads in results)
    total = np.sqrt(sum(np.sum(np.square(g)) for _, g in one_device))  # floor for the gradients that are 0
    for (path, one), (_, eight) in zip(one_device, eight_devices, strict=True):
        error = np.linalg.norm(eight - one) / (np.linalg.norm(one) + 1e-3 * total)
        assert error < 1e-5, f"{jax.tree_util.keystr(path)}: relative gradient difference {error:.2e}"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b.pop("teacher_fixations"), "the batch has no 'teacher_fixations'"),
        (lambda b: b.update(teacher_saliency=b["teacher_saliency"][:, :16, :16]), "must have the image's size"),
        (lambda b: b["teacher_saliency"].__setitem__(2, 0), "maps with no mass at batch indices \\[2\\]"),
    ],
)
def test_bad_attention_targets_are_named(change, message):
    batch = _batch()
    change(batch)
    with pytest.raises(ValueError, match=message):
        student.check_batch(_student_config("simclr_attn").method, batch)


@pytest.mark.parametrize(
    "method, overrides, message",
    [
        ("simclr", dict(temperature=0.0), "method.temperature must be > 0"),
        ("simclr_attn", dict(kld_weight=-1.0), "method.kld_weight must be >= 0"),
        ("supervised", dict(blur_p=1.5), "method.blur_p must be a probability"),
    ],
)
def test_bad_method_settings_are_named(method, overrides, message):
    with pytest.raises(ValueError, match=message):
        methods.make_loss(_student_config(method, **overrides).method)


def test_a_grid_the_target_does_not_pool_onto_is_named():
    config = _student_config("simclr_attn")
    batch = _batch()
    batch["image"] = np.zeros((8, 40, 40, 3), np.float32)  # a 5x5 grid; the 32x32 targets do not divide onto it
    with pytest.raises(
        ValueError, match="method.attention_map is 32x32, which does not pool onto the attention head's 5x5"
    ):
        _loss(config, batch)


def test_nt_xent_needs_negatives_and_attention_needs_a_head():
    with pytest.raises(ValueError, match="at least 2 examples"):
        _loss(_student_config("simclr"), _batch(1))
    config = _student_config("simclr_attn")
    config.model.student.attention = False
    with pytest.raises(ValueError, match="needs an attention head"):
        _loss(config, _batch())


# ----------------------------------------------------------------------------- optimiser


def test_lars_masks_exclude_biases_and_norm_parameters_on_real_paths():
    params = nnx.state(models.build_model(_student_config()), nnx.Param)
    mask = dict(nnx.to_flat_state(adapted_parameters(params)))
    for path, adapted in mask.items():
        name = ".".join(map(str, path))
        is_norm = "bn" in name or path[-1] in ("bias", "scale")
        assert bool(adapted.get_value() if hasattr(adapted, "get_value") else adapted) == (not is_norm), name
    assert any("kernel" in str(p[-1]) for p, a in mask.items())


def test_lars_trains_and_scales_its_learning_rate_with_the_batch():
    optim = ml_collections.ConfigDict(
        dict(
            name="lars",
            lr=1.0,
            lr_scaling="linear",
            weight_decay=0.5,
            momentum=0.9,
            schedule="constant",
            warmup_steps=0,
            final_lr_fraction=0.0,
            clip_grad_norm=0.0,
        )
    )
    assert scaled_lr(optim, 512) == 2.0
    optim.lr_scaling = "sqrt"
    assert scaled_lr(optim, 1024) == 2.0
    params = {"w": jnp.ones((4, 4)), "b": jnp.ones(4)}
    optimizer = make_optimizer(optim, total_steps=10, batch_size=256)
    updates, _ = optimizer.update({"w": jnp.ones((4, 4)), "b": jnp.ones(4)}, optimizer.init(params), params)
    # kernel: decayed g + 0.5·w = 1.5, trust ratio 0.001·‖w‖/‖1.5‖ → step 0.001; the bias is neither decayed nor
    # adapted: step = lr·g exactly (a decayed bias would step 1.5, an adapted one 0.001)
    np.testing.assert_allclose(updates["w"], -0.001, rtol=1e-5)
    np.testing.assert_allclose(updates["b"], -1.0, rtol=1e-7)


# ----------------------------------------------------------------------------- linear probes


def test_ridge_matches_the_normal_equations_in_both_shapes():
    rng = np.random.default_rng(0)
    for n, d in ((40, 6), (5, 12)):
        x, y = rng.normal(size=(n, d)), rng.integers(0, 3, n)
        (w,) = probes.ridge_weights(x, y, num_classes=3, lambdas=[0.5])
        xb = np.concatenate([x, np.full((n, 1), 100.0)], axis=1)
        targets = 2 * np.eye(3)[y] - 1
        np.testing.assert_allclose(w, np.linalg.solve(xb.T @ xb + 0.5 * np.eye(d + 1), xb.T @ targets), atol=1e-8)


def test_probes_separate_separable_classes_and_subsets_are_stratified():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 30)
    x = rng.normal(size=(120, 8)) + 4 * np.eye(8)[y]
    fit, held = probes.holdout_split(y, fraction=0.2, seed=0)
    assert len(np.intersect1d(fit, held)) == 0 and np.all(np.bincount(y[held]) == 6)
    (w,) = probes.ridge_weights(x[fit], y[fit], num_classes=4, lambdas=[1.0])
    assert np.mean(probes.ridge_predict(w, x[held]) == y[held]) == 1.0
    params = probes.logistic_fit(x[fit], y[fit], num_classes=4, l2=1e-3, steps=50)
    assert np.mean(probes.logistic_predict(params, x[held]) == y[held]) == 1.0
    shots = probes.few_shot_indices(y, shots=5, seed=0)
    assert np.all(np.bincount(y[shots]) == 5) and not np.array_equal(shots, probes.few_shot_indices(y, shots=5, seed=1))
    with pytest.raises(ValueError, match="class 0 has 30 training examples, fewer than 31 shots"):
        probes.few_shot_indices(y, shots=31, seed=0)


@pytest.mark.parametrize("method", student_configs.METHODS)
def test_every_student_variant_builds(method):
    config = student_configs.get_config(f"{method},resnet50")
    assert config.model.name == "resnet50" and config.method.name == method
    assert config.model.student.attention == method.endswith(("_attn", "_cotrain"))


def test_heldout_variant_scores_test_beside_validation_in_every_evaluator():
    config = student_configs.get_config("simclr_attn,grid8,heldout,robust")
    assert config.data.builder_config == "heldout" and config.model.kwargs.last_stride == 1
    assert {name: tuple(settings.splits) for name, settings in config.evals.items()} == {
        name: ("validation", "test") for name in config.evals
    }
    assert config.evals.attention_pooled_probe.feature_key == "attention_pooled"
    assert student_configs.get_config("simclr").data.builder_config == "default"
    assert config.data.train_dir == "workdirs/labels/mnist_attention_heldout"  # not the default config's labels


class _ProbeOnFeatures(LinearProbeEvaluator):
    """The probe evaluator on given (features, labels) per split, without a model or dataset."""

    def __init__(self, splits, **settings):
        self.name, self._splits = "probe", splits
        self.settings = ml_collections.ConfigDict({**LinearProbeEvaluator.DEFAULTS, "logistic_steps": 30, **settings})
        self.config = ml_collections.ConfigDict({"seed": 0, "data": {"num_classes": 4}})

    def _features(self, state, split):
        return self._splits[split]


def _separable(n_per_class, seed):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), n_per_class)
    return rng.normal(size=(len(y), 8)) + 5 * np.eye(8)[y], y


def test_probe_evaluator_chooses_on_train_only_and_scores_each_split():
    train, validation = _separable(30, 0), _separable(10, 1)
    metrics, _ = _ProbeOnFeatures({"train": train, "validation": validation}, shots=(1, 5), shot_seeds=2).run(None)
    assert metrics["validation/ridge_accuracy"] == 1.0 and metrics["validation/logistic_accuracy"] == 1.0
    assert {"validation/ridge_5shot_accuracy", "validation/logistic_1shot_accuracy"} <= set(metrics)
    scrambled = (validation[0], np.random.default_rng(2).permutation(validation[1]))
    other, _ = _ProbeOnFeatures({"train": train, "validation": scrambled}, shots=(1, 5), shot_seeds=2).run(None)
    for key in ("probe/ridge_lambda", "probe/logistic_l2"):  # the evaluated split's labels never steer a choice
        assert other[key] == metrics[key]
    with pytest.raises(ValueError, match="config.evals.probe.shots: class 0 has 30 training examples, fewer than 31"):
        _ProbeOnFeatures({"train": train, "validation": validation}, shots=(31,)).run(None)
