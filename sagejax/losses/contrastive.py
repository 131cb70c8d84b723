"""Embedding losses: triplet margin (SAGE) and NT-Xent / InfoNCE (SimCLR)."""

import jax
import jax.numpy as jnp
import optax

from sagejax.losses._reduction import reduce

DISTANCES = ("squared_normalized_l2", "l2", "cosine")

# Floor on the squared norm when normalising: a zero vector maps to zero with a finite gradient.
_NORM_EPS = 1e-12


def _normalize(x: jax.Array) -> jax.Array:
    """x / ‖x‖ along the last axis, with the squared norm floored at 1e-12 (zero → zero, finite grad)."""
    sq = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(sq, _NORM_EPS))


def _safe_sqrt(sq: jax.Array) -> jax.Array:
    """sqrt with gradient 0 (not inf/NaN) at 0, via the double-where trick."""
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _distance(a: jax.Array, b: jax.Array, distance: str) -> jax.Array:
    """Distance between `a` and `b` along the last axis (broadcasting over the leading axes)."""
    if distance == "squared_normalized_l2":
        return jnp.sum(jnp.square(_normalize(a) - _normalize(b)), axis=-1)
    if distance == "l2":
        return _safe_sqrt(jnp.sum(jnp.square(a - b), axis=-1))
    if distance == "cosine":
        return 1.0 - jnp.sum(_normalize(a) * _normalize(b), axis=-1)
    raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")


def triplet_margin(
    *,
    anchor: jax.Array,
    positive: jax.Array,
    negative: jax.Array,
    margin: float = 1.0,
    distance: str = "squared_normalized_l2",
    batch_hard: bool = False,
    reduction: str = "mean",
) -> jax.Array:
    """max(0, d(a, p) − d(a, n) + margin) per row of (B, D) embeddings; SAGE's d is ‖a/‖a‖ − b/‖b‖‖².

    `batch_hard=True` takes, for anchor i, the closest negative among all B negatives of the batch.
    """
    d_pos = _distance(anchor, positive, distance)
    if batch_hard:
        d_neg = jnp.min(_distance(anchor[:, None, :], negative[None, :, :], distance), axis=1)
    else:
        d_neg = _distance(anchor, negative, distance)
    loss = jnp.maximum(d_pos - d_neg + margin, 0.0)
    return reduce(loss, reduction)


def nt_xent(
    *,
    embeddings: jax.Array,
    temperature: float = 0.1,
    reduction: str = "mean",
) -> jax.Array:
    """SimCLR NT-Xent (InfoNCE) of (2N, D) embeddings stacked [view1; view2]: row i's positive is i ± N.

    Cosine similarity / T, self-similarity masked out, the other 2N − 2 rows are negatives; one value per row.
    """
    rows = embeddings.shape[0]
    if rows % 2:
        raise ValueError(f"nt_xent needs an even number of rows ([view1; view2]), got {rows}")
    z = _normalize(embeddings)
    logits = (z @ z.T) / temperature
    positives = (jnp.arange(rows) + rows // 2) % rows
    not_self = ~jnp.eye(rows, dtype=bool)
    loss = optax.losses.softmax_cross_entropy_with_integer_labels(logits, positives, where=not_self)
    return reduce(loss, reduction)
