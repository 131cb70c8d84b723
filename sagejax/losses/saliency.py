"""Saliency-map losses and metrics (MIT saliency-benchmark conventions) and the CYBORG CAM loss.

Maps are (..., H, W); every function gives one value per map (reduction="none") over the leading axes.
KLD and cam_mse are losses (lower is better); NSS, CC and SIM are scores (higher is better), so a
method that trains on them negates them.
"""

import jax
import jax.numpy as jnp

from sagejax.losses._reduction import reduce

MIT_EPS = 2.2204e-16


def _to_float(x: jax.Array) -> jax.Array:
    """Integer or bool maps (fixation counts, uint8 images) as float32; float maps unchanged."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _normalize_sum(x: jax.Array) -> jax.Array:
    """Divides each map by its sum; an all-zero map stays all-zero (MIT), with finite gradients."""
    total = jnp.sum(x, axis=(-2, -1), keepdims=True)
    return x / jnp.where(total != 0, total, 1.0)


def _zscore(x: jax.Array) -> jax.Array:
    """Per-map (x − mean) / std, population std; a constant map gives exactly 0 (mean subtracted only).

    The first pixel is subtracted before the statistics (the z-score is shift-invariant), so a constant
    map has variance exactly 0 rather than rounding noise.
    """
    x = x - x[..., :1, :1]
    centered = x - jnp.mean(x, axis=(-2, -1), keepdims=True)
    var = jnp.mean(jnp.square(centered), axis=(-2, -1), keepdims=True)
    nonconstant = var > 0
    return centered / jnp.where(nonconstant, jnp.sqrt(jnp.where(nonconstant, var, 1.0)), 1.0)


def _minmax(x: jax.Array) -> jax.Array:
    """Per-map rescale to [0, 1]; a constant map becomes all zeros (no NaN, finite gradients)."""
    lo = jnp.min(x, axis=(-2, -1), keepdims=True)
    span = jnp.max(x, axis=(-2, -1), keepdims=True) - lo
    return jnp.where(span > 0, (x - lo) / jnp.where(span > 0, span, 1.0), 0.0)


def kld(
    *,
    prediction: jax.Array,
    target: jax.Array,
    eps: float = MIT_EPS,
    reduction: str = "mean",
) -> jax.Array:
    """MIT KLD = Σ G·log(eps + G/(S + eps)), S and G each divided by its sum: KL(ground truth ‖ prediction).

    An all-zero map stays all-zero (MIT): zero target → 0; zero prediction → a large finite penalty (≈ −log eps).
    """
    s = _normalize_sum(_to_float(prediction))
    g = _normalize_sum(_to_float(target))
    loss = jnp.sum(g * jnp.log(eps + g / (s + eps)), axis=(-2, -1))
    return reduce(loss, reduction)


def nss(
    *,
    prediction: jax.Array,
    fixations: jax.Array,
    reduction: str = "mean",
) -> jax.Array:
    """MIT NSS: mean of the z-scored prediction (population std) over pixels where `fixations` > 0.

    Duplicate fixations count once (binary map); a map with no fixations scores 0; a constant prediction scores 0.
    """
    z = _zscore(_to_float(prediction))
    mask = (jnp.asarray(fixations) > 0).astype(z.dtype)
    count = jnp.sum(mask, axis=(-2, -1))
    total = jnp.sum(z * mask, axis=(-2, -1))
    loss = jnp.where(count > 0, total / jnp.where(count > 0, count, 1.0), 0.0)
    return reduce(loss, reduction)


def cc(
    *,
    prediction: jax.Array,
    target: jax.Array,
    reduction: str = "mean",
) -> jax.Array:
    """Pearson correlation of prediction and target per map, in [−1, 1]; 0 if either map is constant."""
    zs = _zscore(_to_float(prediction))
    zg = _zscore(_to_float(target))
    loss = jnp.mean(zs * zg, axis=(-2, -1))
    return reduce(loss, reduction)


def sim(
    *,
    prediction: jax.Array,
    target: jax.Array,
    reduction: str = "mean",
) -> jax.Array:
    """Similarity Σ min(S, G) of non-negative maps each normalised to sum 1, in [0, 1].

    Newer-benchmark convention: no min-max rescale first; an all-zero map stays zero, so SIM = 0 against it.
    """
    s = _normalize_sum(_to_float(prediction))
    g = _normalize_sum(_to_float(target))
    loss = jnp.sum(jnp.minimum(s, g), axis=(-2, -1))
    return reduce(loss, reduction)


def cam_mse(
    *,
    feature_map: jax.Array,
    class_weights: jax.Array,
    classes: jax.Array,
    target_map: jax.Array,
    reduction: str = "mean",
) -> jax.Array:
    """CYBORG loss: MSE between the min-max-normalised CAM of `classes` and the human map on the CAM grid.

    CAM = feature_map (B,h,w,C) · class_weights[:, classes] (C,K kernel); target_map (B,H,W) is resized by
    jax.image.resize "linear" with antialias (area-weighted when shrinking), then min-max normalised only
    where it leaves [0, 1]; constant CAMs/targets become zeros.
    """
    feature_map = _to_float(feature_map)
    cam = jnp.einsum("bhwc,cb->bhw", feature_map, jnp.take(class_weights, classes, axis=1))
    cam = _minmax(cam)
    target = _to_float(target_map)
    target = jax.image.resize(target, target.shape[:-2] + cam.shape[-2:], method="linear", antialias=True)
    in_unit = (jnp.min(target, axis=(-2, -1), keepdims=True) >= 0) & (
        jnp.max(target, axis=(-2, -1), keepdims=True) <= 1
    )
    target = jnp.where(in_unit, target, _minmax(target))
    loss = jnp.mean(jnp.square(cam - target), axis=(-2, -1))
    return reduce(loss, reduction)


def to_grid(maps: jax.Array, grid: tuple[int, int], *, reduce_op: str = "mean") -> jax.Array:
    """(B, H, W) maps onto an (h, w) grid dividing them: each cell's mean (area downsampling) or max (a cell is
    fixated when any of its pixels is)."""
    if reduce_op not in ("mean", "max"):
        raise ValueError(f"reduce_op must be 'mean' or 'max', got {reduce_op!r}")
    maps = _to_float(maps)
    b, height, width = maps.shape
    h, w = grid
    if height % h or width % w:
        raise ValueError(f"maps of {height}x{width} cannot be pooled onto a {h}x{w} grid (sizes must divide)")
    cells = maps.reshape(b, h, height // h, w, width // w)
    return jnp.mean(cells, axis=(2, 4)) if reduce_op == "mean" else jnp.max(cells, axis=(2, 4))


def attention_loss(
    *,
    log_prediction: jax.Array,
    target: jax.Array,
    fixations: jax.Array,
    kld_weight: float,
    nss_weight: float,
    where: jax.Array | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """λ·KLD(m^t ‖ m^p) − β·NSS(m^p, p^t) per map: m^p = softmax of log_prediction (B, h, w) over its grid (for
    log-probabilities, exp of them), m^t = `target` area-pooled
    onto that grid (KLD normalises it to sum 1), p^t = `fixations` max-pooled onto it.

    `where` (B,) keeps only the examples that have a target (e.g. human maps in co-training): "mean" averages
    over them, and a batch with none gives 0.
    """
    grid = log_prediction.shape[-2:]
    # softmax over the grid: the identity on a log-softmax input, and its gradient stays finite where exp() of
    # the log-probabilities underflows (dividing by a vanishing sum would not)
    flat = log_prediction.reshape(*log_prediction.shape[:-2], -1)
    prediction = jax.nn.softmax(flat, axis=-1).reshape(log_prediction.shape)
    values = kld_weight * kld(prediction=prediction, target=to_grid(target, grid), reduction="none")
    values -= nss_weight * nss(
        prediction=prediction, fixations=to_grid(fixations, grid, reduce_op="max"), reduction="none"
    )
    if where is None:
        return reduce(values, reduction)
    keep = jnp.asarray(where, values.dtype)
    if reduction == "mean":
        count = jnp.sum(keep)
        return jnp.sum(values * keep) / jnp.where(count > 0, count, 1.0)
    return reduce(values * keep, reduction)
