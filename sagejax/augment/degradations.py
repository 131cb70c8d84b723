"""Degradation ops D(x) for saliency views; a new op is one function + one DEGRADATIONS entry."""

from typing import Callable

import jax
import jax.numpy as jnp

from sagejax.augment.blur import gaussian_blur


def _blur(images, *, sigma, kernel_size, rng, noise_std):
    """Gaussian blur: removes high frequencies, keeps each region's total intensity."""
    del rng, noise_std
    if sigma is None:
        raise ValueError("degrade op 'blur' needs sigma")
    return gaussian_blur(images, sigma=sigma, kernel_size=kernel_size)


def _mean(images, *, sigma, kernel_size, rng, noise_std):
    """Per-image per-channel mean fill: removes all spatial structure, low frequencies too."""
    del sigma, kernel_size, rng, noise_std
    return jnp.broadcast_to(jnp.mean(images, axis=(1, 2), keepdims=True), images.shape)


def _zero(images, *, sigma, kernel_size, rng, noise_std):
    """Zero (black) fill: the same for every image, so no cue of the degraded region survives, not even its mean."""
    del sigma, kernel_size, rng, noise_std
    return jnp.zeros_like(images)


def _noise(images, *, sigma, kernel_size, rng, noise_std):
    """Additive Gaussian noise x + N(0, noise_std²)."""
    del sigma, kernel_size
    if rng is None:
        raise ValueError("degrade op 'noise' needs an rng key, e.g. rng=jax.random.key(0)")
    return images + noise_std * jax.random.normal(rng, images.shape, images.dtype)


DEGRADATIONS: dict[str, Callable[..., jax.Array]] = {
    "blur": _blur,
    "mean": _mean,
    "noise": _noise,
    "zero": _zero,
}


def degrade(
    images: jax.Array,
    *,
    op: str,
    sigma: float | None = None,
    kernel_size: int | None = None,
    rng: jax.Array | None = None,
    noise_std: float = 0.5,
) -> jax.Array:
    """Apply the degradation `op` (a DEGRADATIONS key) to (B,H,W,C) images; same shape, dtype."""
    if op not in DEGRADATIONS:
        raise ValueError(f"unknown degrade op {op!r}; known: {sorted(DEGRADATIONS)}")
    if images.ndim != 4:
        raise ValueError(f"images must be (B,H,W,C), got shape {images.shape}")
    out = DEGRADATIONS[op](images, sigma=sigma, kernel_size=kernel_size, rng=rng, noise_std=noise_std)
    return out.astype(images.dtype)
