"""Tests of sagejax.models: registry, shapes, parameter counts, taps, BatchNorm modes, dtypes, jit.

Tiny models on 32×32 inputs; full-size models only through nnx.eval_shape (nothing materialised).
Keys use the "rbg" PRNG, whose CPU compile is several times faster than threefry's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sagejax import models
from sagejax.errors import ConfigError
from sagejax.models import (
    AttentionHead,
    ClassifierHead,
    ProjectionHead,
    available_taps,
    create_model,
    forward,
    model_names,
    tap,
)

BACKBONE_FEATURES = {  # name -> (embedding width, feature-map side at 32×32 input)
    "resnet18": (512, 4),
    "resnet34": (512, 4),
    "resnet50": (2048, 4),
    "vit_tiny": (32, 8),
    "vit_ti16": (192, 2),
    "vit_s16": (384, 2),
    "vit_b16": (768, 2),
}
SMALL_32 = {"resnet": dict(stem="small"), "vit": dict(image_size=32)}


def rngs(seed=0):
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def images(shape=(4, 32, 32, 3), seed=0):
    """Standard-normal test inputs (numpy RNG: no per-shape compile)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32))


def small_kwargs(name):
    return dict(SMALL_32["resnet" if name.startswith("resnet") else "vit"])


def abstract_apply(make, x_shape):
    """Output shapes/dtypes of `make()(x)` without materialising parameters."""
    graphdef, state = nnx.split(nnx.eval_shape(make))
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x)


def param_count(make):
    return sum(p.size for p in jax.tree.leaves(nnx.state(nnx.eval_shape(make), nnx.Param)))


def batch_stats(model):
    return jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat))


@pytest.fixture(scope="module")
def resnet_init():
    return create_model("resnet18", num_classes=10, rngs=rngs(), width=8, stem="small")


@pytest.fixture(scope="module")
def vit_init():
    return create_model("vit_tiny", num_classes=10, rngs=rngs())


@pytest.fixture
def resnet(resnet_init):
    """A fresh copy (train mode, initial running statistics) of the tiny ResNet-18."""
    return nnx.clone(resnet_init)


@pytest.fixture
def vit(vit_init):
    """A fresh copy of the tiny ViT."""
    return nnx.clone(vit_init)


# ---------------------------------------------------------------- registry


def test_registry_lists_every_backbone_and_rejects_unknown_name():
    assert set(model_names()) == set(BACKBONE_FEATURES) | {"unet"}
    with pytest.raises(ValueError, match="unknown model 'resnet101'.*resnet18.*vit_b16"):
        create_model("resnet101", num_classes=10, rngs=rngs())


def test_registry_rejects_unknown_and_architecture_fixing_options():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['widht'\].*'width'"):
        create_model("resnet18", num_classes=10, rngs=rngs(), widht=8)
    with pytest.raises(TypeError, match=r"\['depth'\].*'image_size'"):
        create_model("vit_b16", num_classes=10, rngs=rngs(), depth=2)


class Affine(nnx.Module):
    """A model from outside the package, built by its import path."""

    def __init__(self, *, num_classes, rngs, dtype=jnp.float32, param_dtype=jnp.float32, features: int = 3):
        self.linear = nnx.Linear(features, num_classes, dtype=dtype, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, x):
        embedding = jnp.mean(x, axis=(1, 2))
        return {"logits": self.linear(embedding), "embedding": embedding}


def test_a_model_outside_the_package_is_built_by_its_import_path():
    path = f"{__name__}:Affine"
    assert models.model_defaults(path) == {"features": 3}
    model = create_model(path, num_classes=4, rngs=rngs(), features=3)
    assert models.forward(model, jnp.ones((2, 5, 5, 3)))["logits"].shape == (2, 4)
    with pytest.raises(ConfigError, match="model 'no_such_module:Net': cannot import module 'no_such_module'"):
        models.model_defaults("no_such_module:Net")
    with pytest.raises(ConfigError, match=f"module '{__name__}' has no class 'Afine'"):
        models.model_defaults(f"{__name__}:Afine")
    with pytest.raises(ConfigError, match=r"options \['depth'\] have no default"):
        models.model_defaults(f"{__name__}:NeedsDepth")


class NeedsDepth(Affine):
    def __init__(self, *, num_classes, rngs, depth, **kwargs):
        super().__init__(num_classes=num_classes, rngs=rngs)


def test_a_config_switched_to_another_model_names_the_options_it_lacks():
    from sagejax.configs import student

    config = student.get_config("simclr_attn,smoke")
    config.model.name = "vit_tiny"  # --config.model.name=vit_tiny on a ResNet config
    with pytest.raises(
        ConfigError, match=r"has \['last_stride', 'stem', 'width', 'zero_init_residual'\], which model 'vit_tiny'"
    ):
        models.build_model(config)


# ---------------------------------------------------------------- shapes and sizes


def test_last_stride_1_doubles_the_feature_map_side_with_the_same_parameters():
    x = jnp.zeros((2, 32, 32, 3))
    shapes = {}
    for last_stride in (2, 1):
        model = create_model("resnet18", num_classes=10, rngs=rngs(), width=8, stem="small", last_stride=last_stride)
        shapes[last_stride] = jax.tree.map(jnp.shape, nnx.state(model, nnx.Param))
        assert model(x)["feature_map"].shape == (2, 32 // (4 * last_stride), 32 // (4 * last_stride), 64)
    assert shapes[1] == shapes[2]  # weights trained at either stride load into the other
    with pytest.raises(ValueError, match="last_stride must be 1 or 2, got 4"):
        create_model("resnet18", num_classes=10, rngs=rngs(), last_stride=4)


def test_the_student_grid8_variant_gives_an_8x8_attention_grid():
    from sagejax.configs import student

    for variant, side in (("simclr_attn,smoke", 4), ("simclr_attn,grid8,smoke", 8)):
        model = models.build_model(student.get_config(variant))
        assert model(jnp.zeros((1, 32, 32, 3)))["attention"].shape == (1, side, side)
    with pytest.raises(ConfigError, match="variant grid8 is for the resnet18 backbone"):
        student.get_config("simclr_attn,resnet50,grid8")


@pytest.mark.parametrize("name", sorted(BACKBONE_FEATURES))
def test_backbone_output_contract(name):
    dim, side = BACKBONE_FEATURES[name]
    out = abstract_apply(lambda: create_model(name, num_classes=10, rngs=rngs(), **small_kwargs(name)), (2, 32, 32, 3))
    assert set(out) == {"logits", "embedding", "feature_map"}
    assert out["logits"].shape == (2, 10) and out["logits"].dtype == jnp.float32
    assert out["embedding"].shape == (2, dim) and out["embedding"].dtype == jnp.float32
    assert out["feature_map"].shape == (2, side, side, dim)


@pytest.mark.parametrize("name,size,side", [("resnet50", 224, 7), ("resnet18", 64, 2), ("vit_s16", 224, 14)])
def test_imagenet_resolution_feature_maps(name, size, side):
    out = abstract_apply(lambda: create_model(name, num_classes=1000, rngs=rngs()), (1, size, size, 3))
    assert out["feature_map"].shape == (1, side, side, BACKBONE_FEATURES[name][0])


def test_vit_rejects_other_image_size(vit):
    with pytest.raises(ValueError, match="set image_size"):
        vit(images((1, 64, 64, 3)))


@pytest.mark.parametrize(
    "name,kwargs,expected",
    [
        ("resnet18", {}, 11_689_512),
        ("resnet50", {}, 25_557_032),
        ("vit_b16", dict(pool="cls"), 86_567_656),
        # GAP: no CLS token and one position embedding fewer than the CLS model (2 × 768).
        ("vit_b16", dict(pool="gap"), 86_567_656 - 2 * 768),
    ],
)
def test_parameter_counts_match_reference_models(name, kwargs, expected):
    count = param_count(lambda: create_model(name, num_classes=1000, rngs=rngs(), **kwargs))
    assert count == expected


def test_tiny_backbones_run_and_are_finite(resnet, vit):
    for model, side in [(resnet, 4), (vit, 8)]:
        out = model(images())
        assert out["logits"].shape == (4, 10)
        assert out["feature_map"].shape[1:3] == (side, side)
        assert all(bool(jnp.isfinite(v).all()) for v in out.values())


def test_unet_output_has_input_spatial_size():
    unet = create_model("unet", num_classes=1, rngs=rngs(), base_width=4, depth=2)
    y = unet(images((2, 32, 32, 3)))
    assert y.shape == (2, 32, 32, 1) and y.dtype == jnp.float32
    assert bool(jnp.isfinite(y).all()) and float(jnp.std(y)) > 0
    for size in (224, 30):  # default depth 4; 30 is not a multiple of 2**4
        out = abstract_apply(lambda: create_model("unet", num_classes=1, rngs=rngs()), (1, size, size, 3))
        assert out.shape == (1, size, size, 1)
    with pytest.raises(ValueError, match="at least 4 pixels"):
        unet(images((1, 2, 2, 3)))


# ---------------------------------------------------------------- taps


def test_tap_of_last_stage_reproduces_resnet_outputs(resnet):
    resnet.eval()
    x = images()
    out, taps = tap(resnet, x, ["layers.3", "pool", "head"])
    np.testing.assert_array_equal(taps["layers.3"], out["feature_map"])
    np.testing.assert_array_equal(taps["pool"], out["embedding"])
    np.testing.assert_array_equal(taps["head"], out["logits"])
    dense = resnet.head.dense
    by_hand = jnp.mean(taps["layers.3"], axis=(1, 2)) @ dense.kernel[...] + dense.bias[...]
    np.testing.assert_allclose(by_hand, out["logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["logits"], resnet(x)["logits"], rtol=1e-6, atol=1e-6)


def test_tap_of_last_block_reproduces_vit_outputs(vit):
    vit.eval()
    out, taps = tap(vit, images(), ["blocks.1", "norm"])
    tokens = vit.norm(taps["blocks.1"])
    np.testing.assert_array_equal(tokens, taps["norm"])
    np.testing.assert_array_equal(tokens.reshape(4, 8, 8, 32), out["feature_map"])
    by_hand = jnp.mean(tokens, axis=1) @ vit.head.dense.kernel[...] + vit.head.dense.bias[...]
    np.testing.assert_allclose(by_hand, out["logits"], rtol=1e-5, atol=1e-5)


def test_vit_cls_pooling_reads_the_cls_token():
    model = create_model("vit_tiny", num_classes=10, rngs=rngs(), pool="cls")
    out, taps = tap(model, images(), "norm")
    assert taps["norm"].shape == (4, 65, 32)  # CLS + 8×8 patches
    np.testing.assert_array_equal(out["embedding"], taps["norm"][:, 0])
    np.testing.assert_array_equal(out["feature_map"], taps["norm"][:, 1:].reshape(4, 8, 8, 32))


def test_vit_attention_matches_reference(vit):
    _, taps = tap(vit, images(), ["blocks.0.norm1", "blocks.0.attn"])
    attn = vit.blocks[0].attn
    x = np.asarray(taps["blocks.0.norm1"], np.float64)
    qkv = x @ np.asarray(attn.qkv.kernel[...]) + np.asarray(attn.qkv.bias[...])
    b, n, _ = qkv.shape
    q, k, v = (qkv[..., i * 32 : (i + 1) * 32].reshape(b, n, 2, 16) for i in range(3))
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(16)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    y = np.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, n, 32)
    expected = y @ np.asarray(attn.proj.kernel[...]) + np.asarray(attn.proj.bias[...])
    np.testing.assert_allclose(taps["blocks.0.attn"], expected, rtol=1e-4, atol=1e-5)


def test_available_taps_are_all_tappable(resnet, vit):
    for model, expected in [
        (resnet, {"stem", "layers.2", "layers.2.blocks.1.bn2", "pool"}),
        (vit, {"patch_embed", "blocks.1.mlp", "blocks.0.attn", "norm"}),
    ]:
        names = available_taps(model)
        assert expected <= set(names) and "head" in names
        assert "" not in names and "layers" not in names and "blocks" not in names
        _, taps = tap(model, images(), names)
        assert set(taps) == set(names)
        assert all(v.shape[0] == 4 for v in taps.values())


def test_unknown_tap_lists_close_names(resnet):
    with pytest.raises(ValueError, match=r"unknown tap 'layer.3'.*'layers\.3'"):
        tap(resnet, images(), "layer.3")
    with pytest.raises(ValueError, match=r"unknown tap.*'layers\.2\.blocks\.1'"):
        forward(resnet, images(), hook="layers.2.block.1")


def test_forward_hook_replaces_embedding(resnet, vit):
    resnet.eval()
    vit.eval()
    x = images()
    plain = forward(resnet, x)
    hooked = forward(resnet, x, hook="layers.2")
    _, taps = tap(resnet, x, "layers.2")
    assert hooked["embedding"].shape == (4, 32) and hooked["embedding"].dtype == jnp.float32
    np.testing.assert_allclose(hooked["embedding"], jnp.mean(taps["layers.2"], axis=(1, 2)), rtol=1e-6)
    np.testing.assert_array_equal(hooked["logits"], plain["logits"])
    np.testing.assert_array_equal(forward(resnet, x, hook="pool")["embedding"], plain["embedding"])
    vit_hooked = forward(vit, x, hook="blocks.0.mlp")
    _, taps = tap(vit, x, "blocks.0.mlp")
    assert vit_hooked["embedding"].shape == (4, 32)
    np.testing.assert_allclose(vit_hooked["embedding"], jnp.mean(taps["blocks.0.mlp"], axis=1), rtol=1e-6)
    assert not np.allclose(vit_hooked["embedding"], forward(vit, x)["embedding"])


# ---------------------------------------------------------------- train / eval modes


def test_batchnorm_train_uses_batch_statistics_and_updates_running_stats(resnet):
    model = resnet
    x = images()
    before = batch_stats(model)
    out_train, taps = tap(model, x, ["stem.conv", "stem.bn"])
    conv = np.asarray(taps["stem.conv"], np.float64)
    normed = np.asarray(taps["stem.bn"], np.float64)
    np.testing.assert_allclose(normed.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(normed.var(axis=(0, 1, 2)), 1, atol=1e-3)
    # momentum 0.9 from the initial (mean 0, var 1) running statistics
    np.testing.assert_allclose(model.stem.bn.mean[...], 0.1 * conv.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.stem.bn.var[...], 0.9 + 0.1 * conv.var(axis=(0, 1, 2)), rtol=1e-4)
    after_train = batch_stats(model)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before, after_train)
    assert all(jax.tree.leaves(changed))

    model.eval()
    out_eval = model(x)
    assert not np.allclose(out_eval["logits"], out_train["logits"], atol=1e-3)
    jax.tree.map(np.testing.assert_array_equal, batch_stats(model), after_train)
    np.testing.assert_array_equal(model(x)["logits"], out_eval["logits"])


def test_dropout_only_in_train_mode():
    model = create_model("vit_tiny", num_classes=10, rngs=rngs(), dropout_rate=0.5)
    x = images()
    model.train()
    assert not np.allclose(model(x)["logits"], model(x)["logits"])
    model.eval()
    np.testing.assert_array_equal(model(x)["logits"], model(x)["logits"])


def test_zero_init_residual_makes_identity_blocks_pass_through():
    model = create_model("resnet18", num_classes=10, rngs=rngs(), width=8, stem="small", zero_init_residual=True)
    for stage in model.layers:
        for block in stage.blocks:
            assert not np.any(block.bn2.scale[...])
    _, taps = tap(model, images(), ["layers.0.blocks.0", "layers.0.blocks.1"])
    np.testing.assert_array_equal(taps["layers.0.blocks.1"], taps["layers.0.blocks.0"])


# ---------------------------------------------------------------- dtypes and jit


@pytest.mark.parametrize("name,kwargs", [("resnet18", dict(width=8, stem="small")), ("vit_tiny", {})])
def test_bf16_compute_keeps_f32_params_and_logits(name, kwargs):
    f32 = create_model(name, num_classes=10, rngs=rngs(), **kwargs)
    bf16 = create_model(name, num_classes=10, rngs=rngs(), dtype=jnp.bfloat16, **kwargs)
    assert {p.dtype for p in jax.tree.leaves(nnx.state(bf16, nnx.Param))} == {np.dtype(np.float32)}
    x = images()
    ref, out = f32(x), bf16(x)
    assert out["logits"].dtype == jnp.float32 and out["embedding"].dtype == jnp.float32
    assert out["feature_map"].dtype == jnp.bfloat16
    assert bool(jnp.isfinite(out["logits"]).all())
    scale = float(jnp.abs(ref["logits"]).max())
    np.testing.assert_allclose(out["logits"], ref["logits"], atol=0.1 * scale)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_jitted_pure_forward_matches_eager(resnet, mode):
    eager_model, pure_model = resnet, nnx.clone(resnet)
    getattr(eager_model, mode)()
    getattr(pure_model, mode)()
    graphdef, state = nnx.split(pure_model)

    @jax.jit
    def step(state, x):
        model = nnx.merge(graphdef, state)
        out = forward(model, x, hook="layers.2")
        return out, nnx.state(model)

    x = images()
    out, new_state = step(state, x)
    expected = forward(eager_model, x, hook="layers.2")
    for key in expected:
        np.testing.assert_allclose(out[key], expected[key], rtol=1e-5, atol=1e-5)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        nnx.state(new_state, nnx.BatchStat),
        batch_stats(eager_model),
    )


def test_gradient_reaches_only_modules_up_to_the_hook(resnet):
    graphdef, params, rest = nnx.split(resnet, nnx.Param, ...)

    @jax.jit
    def grad_of_embedding(params, rest, x):
        def loss(params):
            model = nnx.merge(graphdef, params, rest, copy=True)
            return jnp.sum(forward(model, x, hook="layers.2")["embedding"] ** 2)

        return jax.grad(loss)(params)

    grads = grad_of_embedding(params, rest, images())
    sq_norm = {
        key: sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(tree))
        for key, tree in [
            ("stem", grads["stem"]),
            ("layers.2", grads["layers"][2]),
            ("layers.3", grads["layers"][3]),
            ("head", grads["head"]),
        ]
    }
    assert sq_norm["stem"] > 0 and sq_norm["layers.2"] > 0
    assert sq_norm["layers.3"] == 0 and sq_norm["head"] == 0


# ---------------------------------------------------------------- heads


def test_heads():
    z = images((6, 16)).astype(jnp.bfloat16)
    classifier = ClassifierHead(16, 5, dtype=jnp.bfloat16, rngs=rngs())
    assert classifier(z).shape == (6, 5) and classifier(z).dtype == jnp.float32

    projection = ProjectionHead(16, 32, 8, rngs=rngs())
    p = projection(z)
    assert p.shape == (6, 8) and p.dtype == jnp.float32
    assert not np.allclose(projection.bn.mean[...], 0)  # train mode: batch stats updated

    fmap = images((2, 4, 4, 16))
    attention = AttentionHead(16, rngs=rngs())
    m = attention(fmap)
    kernel, bias = attention.conv.kernel[...], attention.conv.bias[...]
    assert m.shape == (2, 4, 4) and m.dtype == jnp.float32
    np.testing.assert_allclose(m, (fmap @ kernel[0, 0] + bias)[..., 0], rtol=1e-5, atol=1e-6)
    stack = AttentionHead(16, hidden_layers=2, hidden_channels=8, rngs=rngs())
    assert stack(fmap).shape == (2, 4, 4) and [conv.kernel.shape for conv in stack.hidden] == [
        (3, 3, 16, 8),
        (3, 3, 8, 8),
    ]
