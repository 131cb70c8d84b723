"""SimCLR's augmentation on the device: per example a random-resized crop and flip (moving that example's maps with
it), colour jitter in random order, grayscale and Gaussian blur, each drawn from the example's own key.

Images are float (B, H, W, C) in [0, 1], C = 1 or 3 (saturation and hue act on RGB only). Jitter follows SimCLR's
`data_util.py` (tf.image semantics): brightness multiplies (v2), contrast pulls each channel toward its own mean,
saturation scales S and hue shifts H in HSV (S clipped to [0, 1], H wrapped), by factors from
U[max(0, 1 − 0.8·s), 1 + 0.8·s] and a shift from U[−0.2·s, 0.2·s]; the ops run in a random order, the image
clipped to [0, 1] after each. Blur draws σ ~ U(blur_sigma) per example.
"""

import math

import jax
import jax.numpy as jnp

from sagejax.augment.blur import gaussian_taps, separable_blur
from sagejax.augment.geometric import crop_and_resize, sample_crops

SIMCLR_VIEW_DEFAULTS = dict(
    crop_scale=(0.08, 1.0),
    crop_ratio=(3 / 4, 4 / 3),
    flip=True,
    jitter_p=0.8,
    jitter_strength=0.5,  # s: brightness, contrast, saturation 0.8·s, hue 0.2·s
    grayscale_p=0.2,
    blur_p=0.5,
    blur_sigma=(0.1, 2.0),  # pixels
)
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 (tf.image.rgb_to_grayscale rounds the first to 0.2989)
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


def gray(image: jax.Array) -> jax.Array:
    """(…, C) → (…, 1) luminance; a 1-channel image is its own."""
    if image.shape[-1] == 1:
        return image
    return jnp.sum(image * jnp.asarray(LUMA, image.dtype), axis=-1, keepdims=True)


def rgb_to_hsv(rgb: jax.Array) -> jax.Array:
    """(…, 3) RGB in [0, 1] → HSV with H in [0, 1) (the colorsys / tf.image convention); gray pixels get H = S = 0."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = jnp.max(rgb, axis=-1)
    chroma = value - jnp.min(rgb, axis=-1)
    safe = jnp.where(chroma > 0, chroma, 1.0)
    saturation = jnp.where(value > 0, chroma / jnp.where(value > 0, value, 1.0), 0.0)
    hue = jnp.where(value == r, (g - b) / safe, jnp.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = jnp.where(chroma > 0, (hue / 6.0) % 1.0, 0.0)
    return jnp.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(hsv: jax.Array) -> jax.Array:
    """Inverse of rgb_to_hsv."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    k = jnp.stack([(5.0 + 6.0 * h) % 6.0, (3.0 + 6.0 * h) % 6.0, (1.0 + 6.0 * h) % 6.0], axis=-1)
    return v[..., None] - (v * s)[..., None] * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)


def adjust_brightness(image, factor):
    return image * factor


def adjust_contrast(image, factor):
    """Each channel pulled toward (factor < 1) or pushed from its own spatial mean, as tf.image.adjust_contrast."""
    mean = jnp.mean(image, axis=(0, 1), keepdims=True)
    return (image - mean) * factor + mean


def adjust_saturation(image, factor):
    """HSV saturation × factor, clipped to [0, 1] (tf.image.adjust_saturation); a 1-channel image is unchanged."""
    if image.shape[-1] == 1:
        return image
    hsv = rgb_to_hsv(image)
    return hsv_to_rgb(hsv.at[..., 1].set(jnp.clip(hsv[..., 1] * factor, 0.0, 1.0)))


def adjust_hue(image, delta):
    """HSV hue + delta, wrapped to [0, 1) (tf.image.adjust_hue); a 1-channel image is unchanged."""
    if image.shape[-1] == 1:
        return image
    hsv = rgb_to_hsv(image)
    return hsv_to_rgb(hsv.at[..., 0].set((hsv[..., 0] + delta) % 1.0))


def jitter_order(key) -> jax.Array:
    """The order in which the four jitter ops (JITTER_OPS indices) are applied: a uniform random permutation."""
    return jax.random.permutation(key, len(JITTER_OPS))


def _jitter(key, image, strength):
    """The four jitter ops in a random order, each with a drawn factor, clipped to [0, 1] after each."""
    k_order, k_b, k_c, k_s, k_h = jax.random.split(key, 5)

    def factor(k, amount):
        return jax.random.uniform(k, (), minval=max(0.0, 1.0 - amount), maxval=1.0 + amount)

    amounts = (factor(k_b, 0.8 * strength), factor(k_c, 0.8 * strength), factor(k_s, 0.8 * strength))
    hue = jax.random.uniform(k_h, (), minval=-0.2 * strength, maxval=0.2 * strength)
    ops = (
        lambda x: adjust_brightness(x, amounts[0]),
        lambda x: adjust_contrast(x, amounts[1]),
        lambda x: adjust_saturation(x, amounts[2]),
        lambda x: adjust_hue(x, hue),
    )
    for index in jitter_order(k_order):
        image = jnp.clip(jax.lax.switch(index, ops, image), 0.0, 1.0)
    return image


def _blur(key, image, sigma_range, kernel_size):
    sigma = jax.random.uniform(key, (), minval=sigma_range[0], maxval=sigma_range[1])
    return separable_blur(image[None], taps=gaussian_taps(sigma, kernel_size))[0]


def view_settings(config) -> dict:
    """The SimCLR view settings a config (e.g. `config.method`) holds, ConfigDict lists back to tuples; those it lacks
    keep SIMCLR_VIEW_DEFAULTS in `simclr_view`."""
    return {
        key: tuple(config[key]) if isinstance(default, tuple) else config[key]
        for key, default in SIMCLR_VIEW_DEFAULTS.items()
        if key in config
    }


def blur_kernel_size(sigma_max: float, side: int) -> int:
    """Odd kernel covering ±3σ_max, at most the odd size below the image side (reflect padding needs radius < side)."""
    return min(2 * math.ceil(3 * sigma_max) + 1, side - 1 if side % 2 == 0 else side - 2)


def _one_view(key, image, maps, settings, kernel_size):
    k_crop, k_jitter, k_apply_jitter, k_gray, k_blur, k_apply_blur = jax.random.split(key, 6)
    crops = sample_crops(k_crop, 1, scale=settings["crop_scale"], ratio=settings["crop_ratio"], flip=settings["flip"])
    image = crop_and_resize(image[None], crops)[0]
    maps = {
        name: crop_and_resize(value[None], crops, nearest=not jnp.issubdtype(value.dtype, jnp.floating))[0]
        for name, value in maps.items()
    }
    jittered = _jitter(k_jitter, image, settings["jitter_strength"])
    image = jnp.where(jax.random.bernoulli(k_apply_jitter, settings["jitter_p"]), jittered, image)
    grayscale = jnp.broadcast_to(gray(image), image.shape)
    image = jnp.where(jax.random.bernoulli(k_gray, settings["grayscale_p"]), grayscale, image)
    if settings["blur_p"] > 0:
        blurred = _blur(k_blur, image, settings["blur_sigma"], kernel_size)
        image = jnp.where(jax.random.bernoulli(k_apply_blur, settings["blur_p"]), blurred, image)
    return image, maps


def simclr_view(rng, images: jax.Array, maps: dict | None = None, **settings) -> tuple[jax.Array, dict]:
    """One SimCLR view of every image, and each map of `maps` ((B, h, w[, c]), any resolution) cropped and flipped
    with its image (floats bilinearly, integers by nearest neighbour). `settings` override SIMCLR_VIEW_DEFAULTS.

    Example i uses key `jax.random.fold_in(rng, i)`, so a view depends only on its key and image.
    """
    unknown = sorted(set(settings) - set(SIMCLR_VIEW_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown SimCLR view settings {unknown}; known: {sorted(SIMCLR_VIEW_DEFAULTS)}")
    settings = {**SIMCLR_VIEW_DEFAULTS, **settings}
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (B, H, W, 1 or 3), got shape {images.shape}")
    maps = dict(maps or {})
    for name, value in maps.items():
        if value.shape[0] != images.shape[0] or value.ndim < 3:
            raise ValueError(f"map {name!r} must be (B, h, w[, c]) with B = {images.shape[0]}, got {value.shape}")
    kernel_size = blur_kernel_size(settings["blur_sigma"][1], min(images.shape[1:3]))
    keys = jax.vmap(lambda i: jax.random.fold_in(rng, i))(jnp.arange(images.shape[0]))
    return jax.vmap(lambda k, x, m: _one_view(k, x, m, settings, kernel_size))(keys, images, maps)
