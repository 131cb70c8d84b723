"""Classification losses."""

import jax
import jax.numpy as jnp
import optax

from sagejax.losses._reduction import reduce


def softmax_cross_entropy(
    *,
    logits: jax.Array,
    labels: jax.Array,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> jax.Array:
    """Cross-entropy of `logits` (..., K) against integer `labels` (...), optionally label-smoothed.

    Smoothing ε uses targets (1−ε)·onehot + ε/K, i.e. (1−ε)·CE + ε·mean_k(−log p_k); ε = 0 is optax's loss.
    """
    loss = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
    if not (isinstance(label_smoothing, (int, float)) and label_smoothing == 0):
        uniform = -jnp.mean(jax.nn.log_softmax(logits, axis=-1), axis=-1)
        loss = (1.0 - label_smoothing) * loss + label_smoothing * uniform
    return reduce(loss, reduction)
