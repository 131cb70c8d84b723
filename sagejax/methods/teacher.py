"""Saliency teacher (DESIGN §1.2): a dense network's per-pixel logits as a density over the image's pixels,
trained against human maps with w_kld·KLD − w_cc·CC − w_nss·NSS (MIT conventions, `sagejax.losses`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sagejax import augment, losses
from sagejax.errors import ConfigError
from sagejax.methods.views import PANEL_COUNT

DEFAULTS = dict(
    density_key="density",  # the human map the teacher learns
    fixations_key="fixations",  # "" = derive fixations from the map (below)
    fixation_threshold=0.5,  # with no fixations stored: pixels ≥ this × the map's maximum
    w_kld=1.0,
    w_cc=1.0,
    w_nss=0.1,
)


def predict_log_density(model, images: jax.Array) -> jax.Array:
    """(B, H, W, C) images → (B, H, W) log-probabilities over the H·W pixels (log-softmax of the one output channel)."""
    logits = model(images)
    if logits.ndim != 4 or logits.shape[-1] != 1:
        raise ConfigError(f"a saliency teacher must output (B, H, W, 1) logits, got {logits.shape}")
    flat = logits[..., 0].reshape(logits.shape[0], -1)
    return jax.nn.log_softmax(flat, axis=-1).reshape(logits.shape[:3])


def predict(model, batch, config) -> dict:
    """The teacher's pixel density (B, H, W), what saliency evaluators score."""
    del config
    return {"density": jnp.exp(predict_log_density(model, batch["image"]))}


def panels(config, batch, count: int = PANEL_COUNT) -> dict[str, np.ndarray]:
    """Images and human maps of the first training examples."""
    return {
        "panels/image": np.asarray(batch["image"][:count]),
        "panels/human": np.asarray(batch[config.density_key][:count]),
    }


def human_fixations(batch, config) -> jax.Array:
    """The batch's binary fixation maps: `config.fixations_key` when set, else pixels of the human map at or above
    `config.fixation_threshold` × its maximum (for datasets that store a map but no fixations, e.g. Decoy MNIST)."""
    return augment.fixations_of(
        batch, map_key=config.density_key, fixations_key=config.fixations_key, threshold=config.fixation_threshold
    )


def make_loss(config):
    """w_kld·KLD(human ‖ teacher) − w_cc·CC − w_nss·NSS of the teacher's pixel density, batch means."""
    for key in ("w_kld", "w_cc", "w_nss"):
        if config[key] < 0:
            raise ConfigError(f"method.{key} must be >= 0, got {config[key]}")

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
