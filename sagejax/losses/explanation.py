"""Explanation penalties: losses on a model's input gradients (RRR, Ross et al. 2017)."""

import jax
import jax.numpy as jnp

from sagejax.losses._reduction import reduce


def input_gradient_penalty(
    *,
    input_gradients: jax.Array,
    mask: jax.Array,
    reduction: str = "mean",
) -> jax.Array:
    """Σ (mask ⊙ input_gradients)² per example, over every pixel and channel: RRR's "right reasons" term.

    `input_gradients` (B, H, W, C); `mask` (B, H, W), broadcast over the channels, or (B, H, W, C): 1 where the
    gradient must vanish (RRR's annotation A), 0 where it is free. "mean" averages the per-example sums over the batch.
    """
    input_gradients = jnp.asarray(input_gradients)
    mask = jnp.asarray(mask, input_gradients.dtype)
    if mask.shape == input_gradients.shape[:-1]:
        mask = mask[..., None]  # one value per pixel, the same for every channel
    elif mask.shape != input_gradients.shape:
        raise ValueError(
            f"mask must be (B,H,W) or (B,H,W,C) = {input_gradients.shape} like the input gradients, got {mask.shape}"
        )
    values = jnp.sum(jnp.square(mask * input_gradients), axis=tuple(range(1, input_gradients.ndim)))
    return reduce(values, reduction)
