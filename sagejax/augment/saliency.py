"""Saliency maps for SAGE: host-side validation, on-device preparation, and the four views."""

import jax
import jax.numpy as jnp
import numpy as np

from sagejax.augment import degradations
from sagejax.augment.blur import gaussian_blur

# A map whose range is below this fraction of its maximum is treated as constant: float32
# rounding in resize/blur must not be stretched into a spurious [0, 1] pattern.
_FLAT_RTOL = 1e-5
_EMPTY_VALUES = {"ones": 1.0, "zeros": 0.0}
_MAX_LISTED = 16


def validate_saliency(maps) -> None:
    """Host-side check of (B,H,W) or (B,H,W,1) maps; raises ValueError naming bad batch indices.

    Rejects wrong rank, NaN, ±Inf and negative values (the jitted ops cannot raise on values).
    """
    arr = np.asarray(maps)
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 1)):
        raise ValueError(f"saliency maps must be (B,H,W) or (B,H,W,1), got shape {arr.shape}")
    flat = arr.reshape(arr.shape[0], -1).astype(np.float64)
    problems = []
    checks = (("NaN", np.isnan(flat)), ("Inf", np.isinf(flat)), ("negative values", flat < 0))
    for what, bad in checks:
        idx = np.flatnonzero(bad.any(axis=1)).tolist()
        if idx:
            more = f" ... ({len(idx)} maps)" if len(idx) > _MAX_LISTED else ""
            problems.append(f"{what} at batch indices {idx[:_MAX_LISTED]}{more}")
    if problems:
        raise ValueError("invalid saliency maps: " + "; ".join(problems))


def prepare_saliency(
    maps: jax.Array,
    *,
    size: tuple[int, int] | None = None,
    dilate: int = 0,
    blur_sigma: float = 0.0,
    empty: str = "ones",
) -> jax.Array:
    """Non-negative (B,H,W[,1]) maps -> float32 (B,H',W') in [0,1]: resize, dilate, blur, min-max.

    A constant map has no spatial information: non-zero -> all ones; all-zero -> `empty`
    ("ones": the whole image is salient, so x~ = x, x~' = x' and SAGE's extra terms vanish for
    that example; "zeros": nothing is salient). NaN/Inf inputs are the data layer's job
    (validate_saliency); here they propagate.
    """
    if empty not in _EMPTY_VALUES:
        raise ValueError(f"unknown empty={empty!r}; known: {sorted(_EMPTY_VALUES)}")
    maps = jnp.asarray(maps)
    if maps.ndim == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    if maps.ndim != 3:
        raise ValueError(f"saliency maps must be (B,H,W) or (B,H,W,1), got shape {maps.shape}")
    if dilate < 0:
        raise ValueError(f"dilate must be >= 0, got {dilate}")
    maps = maps.astype(jnp.float32)
    if size is not None:
        maps = jax.image.resize(maps, (maps.shape[0], *size), method="bilinear")
    if dilate:
        window = (1, 2 * dilate + 1, 2 * dilate + 1)
        maps = jax.lax.reduce_window(maps, -jnp.inf, jax.lax.max, window, (1, 1, 1), "SAME")
    if blur_sigma > 0:
        maps = gaussian_blur(maps[..., None], sigma=blur_sigma)[..., 0]
    lo = jnp.min(maps, axis=(1, 2), keepdims=True)
    hi = jnp.max(maps, axis=(1, 2), keepdims=True)
    flat = (hi - lo) <= _FLAT_RTOL * hi
    scaled = (maps - lo) / jnp.where(flat, 1.0, hi - lo)
    constant = jnp.where(hi > 0, 1.0, _EMPTY_VALUES[empty])
    return jnp.where(flat, constant, scaled)


def saliency_views(
    *,
    images: jax.Array,
    saliency: jax.Array,
    sigma: float | None,
    kernel_size: int | None = None,
    degrade: str = "blur",
    invert: bool = False,
    rng: jax.Array | None = None,
    noise_std: float = 0.5,
) -> dict[str, jax.Array]:
    """SAGE's views of (B,H,W,C) images under (B,H,W) saliency s in [0,1] (DESIGN.md §1.1).

    x_blur = D(x) (D = `degrade` op, see degradations.DEGRADATIONS), x_keep = s·x + (1−s)·D(x),
    x_degrade = (1−s)·x + s·D(x); invert=True uses 1−s (exactly swaps x_keep and x_degrade).
    """
    if saliency.shape != images.shape[:3]:
        raise ValueError(
            f"saliency must be (B,H,W) = {images.shape[:3]} for images {images.shape}, got {saliency.shape}"
        )
    x_blur = degradations.degrade(
        images, op=degrade, sigma=sigma, kernel_size=kernel_size, rng=rng, noise_std=noise_std
    )
    keep = saliency.astype(images.dtype)[..., None]
    drop = 1 - keep
    if invert:
        keep, drop = drop, keep
    return {
        "x": images,
        "x_blur": x_blur,
        "x_keep": keep * images + drop * x_blur,
        "x_degrade": drop * images + keep * x_blur,
    }


def fixations_of(batch, *, map_key: str, fixations_key: str = "", threshold: float = 0.5) -> jax.Array:
    """Binary fixation maps of a batch: `batch[fixations_key] > 0` when given, else the pixels of `batch[map_key]`
    at or above `threshold` × each map's maximum (for data that store a map but no fixations, e.g. Decoy MNIST)."""
    if fixations_key:
        return (batch[fixations_key] > 0).astype(jnp.float32)
    target = batch[map_key]
    peak = jnp.max(target, axis=(-2, -1), keepdims=True)
    return ((target >= threshold * peak) & (peak > 0)).astype(jnp.float32)
