"""The `reduction` argument shared by every loss in this package."""

import jax
import jax.numpy as jnp

REDUCTIONS = ("mean", "sum", "none")


def reduce(values: jax.Array, reduction: str) -> jax.Array:
    """Reduces per-example loss values: "mean" and "sum" over all of them, "none" keeps them."""
    if reduction == "mean":
        return jnp.mean(values)
    if reduction == "sum":
        return jnp.sum(values)
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
