"""Input normalisation inside the model: [0, 1] pixels become (x − mean) / std as the network's first op, on the
device, so every caller (the training step, evaluators, corruptions, the API) keeps feeding [0, 1] images."""

from __future__ import annotations

import jax.numpy as jnp

from sagejax.errors import ConfigError

PRESETS = {
    "none": None,
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # torchvision and timm ResNets
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # [-1, 1]: big_vision and timm's augreg ViTs
}


def parse(spec: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """`config.data.normalize`: "none", "imagenet", "inception", or "MEAN/STD" with one value or one per channel
    ("0.5/0.25", "0.48,0.46,0.41/0.23,0.22,0.23"); None for "none"."""
    if spec in PRESETS:
        return PRESETS[spec]
    mean, sep, std = str(spec).partition("/")
    try:
        pair = tuple(float(v) for v in mean.split(",")), tuple(float(v) for v in std.split(","))
    except ValueError:
        pair = None
    if not sep or pair is None or len(pair[0]) != len(pair[1]) or min(pair[1]) <= 0:
        raise ConfigError(
            f"config.data.normalize={spec!r}: use {list(PRESETS)} or 'MEAN/STD' (comma-separated per channel, std > 0)"
        )
    return pair


def apply(x, stats):
    """(x − mean) / std over the last (channel) axis, in float32; `x` as it is when `stats` is None."""
    if stats is None:
        return x
    mean, std = stats
    return (jnp.asarray(x, jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
