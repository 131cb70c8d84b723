"""Cross-entropy baselines: plain, and the augmentation control (CE on x and x~, no SAGE terms)."""

from __future__ import annotations

import jax.numpy as jnp

from sagejax import losses, models
from sagejax.methods.saliency_views import SALIENCY_VIEW_DEFAULTS, check_view_config, config_views, view_panels

DEFAULTS = dict(label_smoothing=0.0)
AUG_DEFAULTS = dict(label_smoothing=0.0, **SALIENCY_VIEW_DEFAULTS)  # the augmentation control builds SAGE's views
panels = view_panels


def _accuracy(logits, labels):
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def make_loss(config):
    """Softmax cross-entropy on the clean images only."""

    def loss_fn(model, batch, rng):
        del rng
        logits = models.forward(model, batch["image"])["logits"]
        ce = losses.softmax_cross_entropy(logits=logits, labels=batch["label"], label_smoothing=config.label_smoothing)
        return ce, {"ce": ce, "accuracy": _accuracy(logits, batch["label"])}

    return loss_fn


def make_augmentation_control_loss(config):
    """Cross-entropy on x and on the salient-preserving view x~: SAGE's views without its loss terms."""
    check_view_config(config)

    def loss_fn(model, batch, rng):
        images = batch["image"]
        views = config_views(config, images=images, saliency=batch["saliency"], rng=rng)
        logits = models.forward(model, jnp.concatenate([images, views["x_keep"]], axis=0))["logits"]
        labels = jnp.concatenate([batch["label"], batch["label"]], axis=0)
        ce = losses.softmax_cross_entropy(logits=logits, labels=labels, label_smoothing=config.label_smoothing)
        return ce, {"ce": ce, "accuracy": _accuracy(logits[: images.shape[0]], batch["label"])}

    return loss_fn
