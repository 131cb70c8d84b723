"""SimCLR's augmentation on the device: per example a random-resized crop and flip (moving that example's maps with
it), colour jitter in random order, grayscale and Gaussian blur, each drawn from the example's own key.

Images are float (B, H, W, C) in [0, 1], C = 1 or 3 (saturation and hue act on RGB only). Jitter follows SimCLR's
`data_util.py`: brightness is multiplicative (v2), contrast and saturation blend with the mean gray and the
grayscale image, each by a factor drawn from U[max(0, 1 − 0.8·s), 1 + 0.8·s]; hue rotates the chroma plane of YIQ
by 2π·δ, δ ~ U[−0.2·s, 0.2·s] (a linear stand-in for the HSV hue shift); the image is clipped to [0, 1] after
each op. Blur draws σ ~ U(blur_sigma) per example.
"""

import math

import jax
import jax.numpy as jnp

from sagejax.augment.blur import gaussian_taps, separable_blur
from sagejax.augment.geometric import crop_and_resize, sample_crops

VIEW_DEFAULTS = dict(
    crop_scale=(0.08, 1.0),
    crop_ratio=(3 / 4, 4 / 3),
    flip=True,
    jitter_p=0.8,
    jitter_strength=0.5,  # s: brightness, contrast, saturation 0.8·s, hue 0.2·s
    grayscale_p=0.2,
    blur_p=0.5,
    blur_sigma=(0.1, 2.0),  # pixels
)
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as tf.image.rgb_to_grayscale
_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def gray(image: jax.Array) -> jax.Array:
    """(…, C) → (…, 1) luminance; a 1-channel image is its own."""
    if image.shape[-1] == 1:
        return image
    return jnp.sum(image * jnp.asarray(LUMA, image.dtype), axis=-1, keepdims=True)


def adjust_brightness(image, factor):
    return image * factor


def adjust_contrast(image, factor):
    mean = jnp.mean(gray(image))
    return (image - mean) * factor + mean


def adjust_saturation(image, factor):
    g = gray(image)
    return (image - g) * factor + g


def rotate_hue(image, delta):
    """Rotates the (I, Q) chroma of an RGB image by 2π·delta (a 1-channel image is unchanged)."""
    if image.shape[-1] == 1:
        return image
    yiq = jnp.asarray(_YIQ, jnp.float32)
    angle = 2 * math.pi * delta
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    rotation = jnp.array([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    transform = jnp.linalg.inv(yiq) @ rotation @ yiq
    return (image @ transform.T).astype(image.dtype)


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
        lambda x: rotate_hue(x, hue),
    )
    for index in jax.random.permutation(k_order, len(ops)):
        image = jnp.clip(jax.lax.switch(index, ops, image), 0.0, 1.0)
    return image


def _blur(key, image, sigma_range, kernel_size):
    sigma = jax.random.uniform(key, (), minval=sigma_range[0], maxval=sigma_range[1])
    return separable_blur(image[None], taps=gaussian_taps(sigma, kernel_size))[0]


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
    with its image (floats bilinearly, integers by nearest neighbour). `settings` override VIEW_DEFAULTS.

    Example i uses key `jax.random.fold_in(rng, i)`, so a view depends only on its key and image.
    """
    unknown = sorted(set(settings) - set(VIEW_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown SimCLR view settings {unknown}; known: {sorted(VIEW_DEFAULTS)}")
    settings = {**VIEW_DEFAULTS, **settings}
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (B, H, W, 1 or 3), got shape {images.shape}")
    maps = dict(maps or {})
    for name, value in maps.items():
        if value.shape[0] != images.shape[0] or value.ndim < 3:
            raise ValueError(f"map {name!r} must be (B, h, w[, c]) with B = {images.shape[0]}, got {value.shape}")
    kernel_size = blur_kernel_size(settings["blur_sigma"][1], min(images.shape[1:3]))
    keys = jax.vmap(lambda i: jax.random.fold_in(rng, i))(jnp.arange(images.shape[0]))
    return jax.vmap(lambda k, x, m: _one_view(k, x, m, settings, kernel_size))(keys, images, maps)
