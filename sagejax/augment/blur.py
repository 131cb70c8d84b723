"""Separable Gaussian blur of NHWC image batches, as a depthwise convolution."""

import math

import jax
import jax.numpy as jnp
import numpy as np

# Padding names -> jnp.pad modes. "REFLECT" mirrors about the edge pixel without repeating it
# (d c b | a b c d; scipy.ndimage mode "mirror"); "SYMMETRIC" repeats it (c b a | a b c;
# scipy.ndimage mode "reflect"); "EDGE" repeats the edge value; "ZERO" pads with zeros.
PADDING_MODES = {"REFLECT": "reflect", "SYMMETRIC": "symmetric", "EDGE": "edge", "ZERO": "constant"}


def default_kernel_size(sigma: float) -> int:
    """Odd kernel size 2·ceil(3σ)+1, covering ±3σ."""
    return 2 * math.ceil(3.0 * sigma) + 1


def gaussian_kernel_1d(*, sigma: float, kernel_size: int) -> np.ndarray:
    """Normalised 1-D Gaussian taps (sum 1) of odd length `kernel_size`, as float64 numpy."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    if not isinstance(kernel_size, (int, np.integer)) or kernel_size <= 0 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
    radius = kernel_size // 2
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (offsets / sigma) ** 2)
    return taps / taps.sum()


def gaussian_blur(
    images: jax.Array, *, sigma: float, kernel_size: int | None = None, padding: str = "REFLECT"
) -> jax.Array:
    """Blur (B,H,W,C) float images over H and W with a Gaussian; same shape and dtype.

    Pads explicitly (see PADDING_MODES), then runs two 1-D depthwise passes (groups = C).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B,H,W,C), got shape {images.shape}")
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise ValueError(f"images must be floating point, got dtype {images.dtype}")
    if padding not in PADDING_MODES:
        raise ValueError(f"unknown padding {padding!r}; known: {sorted(PADDING_MODES)}")
    if kernel_size is None:
        kernel_size = default_kernel_size(sigma)
    taps = jnp.asarray(gaussian_kernel_1d(sigma=sigma, kernel_size=kernel_size), images.dtype)
    return separable_blur(images, taps=taps, padding=padding)


def gaussian_taps(sigma: jax.Array, kernel_size: int) -> jax.Array:
    """Normalised Gaussian taps of a traced σ (e.g. one drawn per example), float32 (kernel_size,)."""
    offsets = jnp.arange(kernel_size, dtype=jnp.float32) - kernel_size // 2
    taps = jnp.exp(-0.5 * jnp.square(offsets / sigma))
    return taps / jnp.sum(taps)


def separable_blur(images: jax.Array, *, taps: jax.Array, padding: str = "REFLECT") -> jax.Array:
    """Convolves (B,H,W,C) images over H and W with the 1-D `taps` (odd length): pads (see PADDING_MODES), then
    two depthwise passes (groups = C); same shape and dtype."""
    kernel_size = taps.shape[0]
    taps = taps.astype(images.dtype)
    radius = kernel_size // 2
    channels = images.shape[-1]
    pad = ((0, 0), (radius, radius), (radius, radius), (0, 0))
    out = jnp.pad(images, pad, mode=PADDING_MODES[padding])
    # HWIO depthwise kernels: I = 1 (one input channel per group), O = C.
    kernel_h = jnp.broadcast_to(taps[:, None, None, None], (kernel_size, 1, 1, channels))
    kernel_w = jnp.broadcast_to(taps[None, :, None, None], (1, kernel_size, 1, channels))
    for kernel in (kernel_h, kernel_w):
        out = jax.lax.conv_general_dilated(
            out,
            kernel,
            window_strides=(1, 1),
            padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=channels,
            precision=jax.lax.Precision.HIGHEST,
        )
    return out.astype(images.dtype)
