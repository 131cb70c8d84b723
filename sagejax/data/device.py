"""What happens to a batch on the device, inside the jitted step: uint8 images and maps become float32 in
[0, 1] (they travel host→device as uint8, a quarter of the bytes), then the optional joint geometric augmentation
(`config.data.augment`) moves every map with its image."""

from __future__ import annotations

import jax.numpy as jnp

from sagejax.augment import geometric
from sagejax.errors import ConfigError

# Features stored as uint8 0..255 that models read as float32 in [0, 1]; binary maps (fixations) stay integers.
# (The cast runs under jit, where XLA multiplies by 1/255: up to 1 ulp from a host-side division.)
UNIT_SCALED = ("image", "saliency", "density", "teacher_saliency")
SALIENCY_MAPS = ("saliency", "teacher_saliency")  # maps whose all-zero value means "no map" to the methods
AUGMENTATIONS = ("", "crop_flip", "flip")


def to_model_inputs(batch: dict) -> dict:
    """uint8 unit-scaled features → float32 / 255; everything else unchanged (float inputs pass as they are)."""
    return {
        key: value.astype(jnp.float32) / 255 if key in UNIT_SCALED and value.dtype == jnp.uint8 else value
        for key, value in batch.items()
    }


def make_train_transform(data_config):
    """`transform(batch, rng) -> batch` of the training step: the cast, then `data_config.augment` ("" = none,
    "crop_flip" = random-resized crop with `crop_scale` / `crop_ratio` plus a horizontal flip, "flip" = flip only).
    With `data_config.image_size` > 0 the loader has already cropped and flipped on the host: the cast only."""
    kind = data_config.get("augment", "")
    if kind not in AUGMENTATIONS:
        raise ConfigError(f"unknown data.augment {kind!r}; choose from {list(AUGMENTATIONS)}")
    if data_config.get("image_size", 0):
        kind = ""
    if kind == "crop_flip":
        crop = dict(scale=tuple(data_config.crop_scale), ratio=tuple(data_config.crop_ratio))
    else:
        crop = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0))

    def transform(batch, rng):
        batch = to_model_inputs(batch)
        if not kind:
            return batch
        augmented = geometric.augment_batch(batch, rng, flip=True, **crop)
        # A crop that misses all of an example's salient region would read as "no map" downstream (an all-zero
        # map is the missing-map convention): such examples keep their unaugmented view instead.
        lost = jnp.zeros(batch["image"].shape[0], bool)
        for key in SALIENCY_MAPS:
            if key in batch:
                lost |= (_peak(batch[key]) > 0) & (_peak(augmented[key]) == 0)
        return {key: jnp.where(_per_example(lost, value), batch[key], value) for key, value in augmented.items()}

    return transform


def _peak(maps):
    return jnp.max(maps.reshape(maps.shape[0], -1), axis=1)


def _per_example(flags, like):
    return flags.reshape((-1,) + (1,) * (like.ndim - 1))
