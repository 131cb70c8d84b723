"""Divergences between the softmax distributions of two sets of logits, computed in log space."""

import math

import jax
import jax.numpy as jnp
import optax

from sagejax.losses._reduction import reduce


def _log_probs(logits: jax.Array, temperature) -> jax.Array:
    """log softmax(logits / T) over the last axis."""
    return jax.nn.log_softmax(logits / temperature, axis=-1)


def kl_divergence(
    *,
    p_logits: jax.Array,
    q_logits: jax.Array,
    temperature: float = 1.0,
    t2_scale: bool = False,
    reduction: str = "mean",
) -> jax.Array:
    """KL(softmax(p/T) ‖ softmax(q/T)) over the last axis, from log-softmax so extreme logits stay finite.

    `t2_scale=True` multiplies by T² (Hinton distillation scaling, keeps gradient size independent of T).
    """
    log_p = _log_probs(p_logits, temperature)
    log_q = _log_probs(q_logits, temperature)
    loss = optax.losses.kl_divergence_with_log_targets(log_q, log_p)
    if t2_scale:
        loss = loss * temperature**2
    return reduce(loss, reduction)


def js_divergence(
    *,
    logits_a: jax.Array,
    logits_b: jax.Array,
    temperature: float = 1.0,
    t2_scale: bool = False,
    reduction: str = "mean",
) -> jax.Array:
    """Jensen–Shannon divergence ½KL(P‖M) + ½KL(Q‖M), M = ½(P+Q), of softmax(a/T) and softmax(b/T).

    log M = logaddexp(log P, log Q) − log 2, so it stays finite and ≤ ln 2 (nats) for any logits; T² if `t2_scale`.
    """
    log_p = _log_probs(logits_a, temperature)
    log_q = _log_probs(logits_b, temperature)
    log_m = jnp.logaddexp(log_p, log_q) - math.log(2.0)
    loss = 0.5 * (
        optax.losses.kl_divergence_with_log_targets(log_m, log_p)
        + optax.losses.kl_divergence_with_log_targets(log_m, log_q)
    )
    if t2_scale:
        loss = loss * temperature**2
    return reduce(loss, reduction)
