"""Weight conversion: timm / torchvision ResNets and timm / big_vision ViTs reproduce an independent NumPy forward of
the same state dict; the strict match names what is missing, left over or of another shape."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from torch_reference import (
    as_big_vision,
    random_resnet_state,
    random_vit_state,
    resnet_forward,
    vit_forward,
)

from sagejax.errors import ConfigError
from sagejax.models import convert, create_model
from sagejax.models.named import assign, named_arrays

IMAGES = np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)


def _load(model, converted, skip=()):
    targets = {name: value.shape for name, value in named_arrays(model).items()}
    assign(model, {k: jnp.asarray(v) for k, v in convert.match(converted, targets, skip=skip, origin="f").items()})
    model.eval()
    return model


@pytest.mark.parametrize(
    "name, bottleneck, stages",
    [("resnet18", False, (2, 2, 2, 2)), ("resnet50", True, (3, 4, 6, 3))],
)
def test_a_converted_resnet_reproduces_the_state_dicts_logits(name, bottleneck, stages):
    sd = random_resnet_state(
        np.random.default_rng(0), bottleneck=bottleneck, stage_sizes=stages, width=4, num_classes=5
    )
    model = create_model(name, num_classes=5, width=4, rngs=nnx.Rngs(0))
    converted = convert.to_sagejax(sd, fmt="torchvision", family="resnet", origin="f")
    assert any(k.startswith("batch_stats/") for k in converted)  # running statistics carried over
    logits = _load(model, converted)(jnp.asarray(IMAGES))["logits"]
    expected = resnet_forward(sd, IMAGES, bottleneck=bottleneck, stage_sizes=stages)
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def _vit_state():
    return random_vit_state(np.random.default_rng(0), patch=4, dim=32, depth=2, mlp_dim=64, grid=8, num_classes=5)


@pytest.mark.parametrize("fmt", ["timm", "big_vision"])
def test_a_converted_vit_reproduces_the_state_dicts_logits(fmt):
    sd = _vit_state()
    source = sd if fmt == "timm" else as_big_vision(sd, heads=2, depth=2)
    model = create_model("vit_tiny", num_classes=5, pool="cls", rngs=nnx.Rngs(0))
    logits = _load(model, convert.to_sagejax(source, fmt=fmt, family="vit", origin="f"))(jnp.asarray(IMAGES))
    expected = vit_forward(sd, IMAGES, patch=4, heads=2, depth=2)
    np.testing.assert_allclose(np.asarray(logits["logits"]), expected, rtol=1e-4, atol=1e-4)


def test_big_vision_scanned_blocks_are_unstacked():
    flat = as_big_vision(_vit_state(), heads=2, depth=2)
    scanned = {k: v for k, v in flat.items() if "encoderblock_" not in k}
    for key in [k for k in flat if k.startswith("Transformer/encoderblock_0/")]:
        rest = key.removeprefix("Transformer/encoderblock_0/")
        scanned[f"params/Transformer/encoderblock/{rest}"] = np.stack(
            [flat[key], flat[key.replace("encoderblock_0/", "encoderblock_1/")]]
        )
    scanned = {k if k.startswith("params/") else f"params/{k}": v for k, v in scanned.items()}
    a = convert.to_sagejax(flat, fmt="big_vision", family="vit", origin="f")
    b = convert.to_sagejax(scanned, fmt="big_vision", family="vit", origin="f")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_position_embeddings_are_resized_for_another_image_size():
    converted = convert.to_sagejax(_vit_state(), fmt="timm", family="vit", origin="f")  # an 8×8 grid
    model = _load(create_model("vit_tiny", num_classes=5, pool="cls", image_size=48, rngs=nnx.Rngs(0)), converted)
    pos = np.asarray(model.pos_embed[...])
    assert pos.shape == (1, 1 + 12 * 12, 32)
    np.testing.assert_array_equal(pos[:, 0], converted["params/pos_embed"][:, 0])  # the class-token row is kept
    constant = np.ones((1, 1 + 64, 4), np.float32)
    np.testing.assert_allclose(
        convert.resize_pos_embed(constant, (1, 1 + 144, 4), name="p", origin="f"), 1.0, rtol=1e-6
    )
    same = convert.resize_pos_embed(converted["params/pos_embed"], (1, 65, 32), name="p", origin="f")
    np.testing.assert_allclose(same, converted["params/pos_embed"], atol=1e-6)
    patches_only = np.arange(64 * 4, dtype=np.float32).reshape(1, 64, 4)  # big_vision: no class-token row
    with_token = convert.resize_pos_embed(patches_only, (1, 65, 4), name="p", origin="f")
    np.testing.assert_array_equal(with_token[:, 0], 0.0)
    np.testing.assert_array_equal(with_token[:, 1:], patches_only)
    with pytest.raises(ConfigError, match="class token.*model.kwargs.pool"):
        convert.resize_pos_embed(constant, (1, 64, 4), name="params/pos_embed", origin="f")


def test_the_match_is_strict_and_names_what_does_not_fit():
    sd = random_resnet_state(
        np.random.default_rng(0), bottleneck=False, stage_sizes=(2, 2, 2, 2), width=4, num_classes=1000
    )
    converted = convert.to_sagejax(sd, fmt="timm", family="resnet", origin="r.pth")
    model = create_model("resnet18", num_classes=5, width=4, rngs=nnx.Rngs(0))
    targets = {name: value.shape for name, value in named_arrays(model).items()}
    with pytest.raises(
        ConfigError,
        match=r"params/head/dense/bias: r.pth holds shape \(1000,\), the model needs "
        r"\(5,\) \(another number of classes\? add 'head/\*' to config.init.skip",
    ):
        convert.match(converted, targets, origin="r.pth")
    fresh = named_arrays(model)["params/head/dense/kernel"]
    loaded = convert.match(converted, targets, skip=("head/*",), origin="r.pth")
    assert "params/head/dense/kernel" not in loaded and len(loaded) == len(targets) - 2
    assert np.array_equal(_load(model, converted, skip=("head/*",)).head.dense.kernel[...], fresh)
    with pytest.raises(ConfigError, match=r"r.pth has no value for 2 model parameters.*params/stem/bn/bias"):
        convert.match(
            {k: v for k, v in converted.items() if "stem/bn/" not in k or "mean" in k or "var" in k},
            targets,
            skip=("head/*",),
            origin="r.pth",
        )
    with pytest.raises(ConfigError, match=r"r.pth holds 1 tensors the model has no place for.*params/extra"):
        convert.match({**converted, "params/extra": np.zeros(1)}, targets, skip=("head/*",), origin="r.pth")
    with pytest.raises(ConfigError, match=r"skip patterns \['haed/\*'\] match no parameter"):
        convert.match(converted, targets, skip=("head/*", "haed/*"), origin="r.pth")


def test_a_file_of_another_layout_is_named():
    vit = _vit_state()
    with pytest.raises(ConfigError, match=r"f: \d+ torchvision tensors fit no resnet parameter.*blocks.0.attn"):
        convert.to_sagejax(vit, fmt="torchvision", family="resnet", origin="f")
    with pytest.raises(ConfigError, match="torchvision weights of a vit cannot be converted; this model reads timm or"):
        convert.to_sagejax(vit, fmt="torchvision", family="vit", origin="f")
    assert convert.infer_format(vit, {}) == ("timm", "vit")
    assert convert.infer_format(as_big_vision(vit, heads=2, depth=2), {}) == ("big_vision", "vit")
    assert convert.infer_format({"conv_proj.weight": 0, "encoder.layers.encoder_layer_0.x": 0}, {}) == (
        "torchvision",
        "vit",
    )
    assert convert.infer_format({"conv1.weight": 0, "layer1.0.conv1.weight": 0}, {})[1] == "resnet"
    assert convert.infer_format({"params/stem/conv/kernel": 0}, {}) == ("sagejax", None)
    assert convert.infer_format({"weights": 0}, {}) == ("", None)
