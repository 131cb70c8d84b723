"""Saliency teacher (DESIGN §1.2): a dense network's per-pixel logits as a density over the image's pixels,
trained against human maps with w_kld·KLD − w_cc·CC − w_nss·NSS (MIT conventions, `sagejax.losses`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sagejax import losses


def predict_log_density(model, images: jax.Array) -> jax.Array:
    """(B, H, W, C) images → (B, H, W) log-probabilities over the H·W pixels (log-softmax of the one output channel)."""
    logits = model(images)
    if logits.ndim != 4 or logits.shape[-1] != 1:
        raise ValueError(f"a saliency teacher must output (B, H, W, 1) logits, got {logits.shape}")
    flat = logits[..., 0].reshape(logits.shape[0], -1)
    return jax.nn.log_softmax(flat, axis=-1).reshape(logits.shape[:3])


def human_fixations(batch, config) -> jax.Array:
    """The batch's binary fixation maps: `config.fixations_key` when set, else pixels of the human map at or above
    `config.fixation_threshold` × its maximum (for datasets that store a map but no fixations, e.g. Decoy MNIST)."""
    if config.fixations_key:
        return (batch[config.fixations_key] > 0).astype(jnp.float32)
    target = batch[config.density_key]
    peak = jnp.max(target, axis=(-2, -1), keepdims=True)
    return ((target >= config.fixation_threshold * peak) & (peak > 0)).astype(jnp.float32)


def make_loss(config):
    """w_kld·KLD(human ‖ teacher) − w_cc·CC − w_nss·NSS of the teacher's pixel density, batch means."""
    for key in ("w_kld", "w_cc", "w_nss"):
        if config[key] < 0:
            raise ValueError(f"method.{key} must be >= 0, got {config[key]}")

    def loss_fn(model, batch, rng):
        del rng
        prediction = jnp.exp(predict_log_density(model, batch["image"]))
        target = batch[config.density_key]
        kld = losses.kld(prediction=prediction, target=target)
        cc = losses.cc(prediction=prediction, target=target)
        nss = losses.nss(prediction=prediction, fixations=human_fixations(batch, config))
        loss = config.w_kld * kld - config.w_cc * cc - config.w_nss * nss
        return loss, {"kld": kld, "cc": cc, "nss": nss}

    return loss_fn
