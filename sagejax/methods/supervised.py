"""Supervised students: cross-entropy on a SimCLR view in place of NT-Xent, with the same optional attention term
(`supervised_attn`: teacher maps written by `sagejax.tools.label`)."""

from __future__ import annotations

import jax.numpy as jnp

from sagejax import losses
from sagejax.methods import student_attention

DEFAULTS = dict(label_smoothing=0.0, **student_attention.DEFAULTS)
ATTENTION_DEFAULTS = {**DEFAULTS, "kld_weight": 1.0, "nss_weight": 0.1}


def make_loss(config):
    """Softmax cross-entropy of the backbone's logits on one view, plus the attention term when its weights are set."""
    student_attention.check_config(config)
    teacher_targets = student_attention.make_teacher_targets(config)

    def loss_fn(model, batch, rng):
        images, targets = student_attention.simclr_views(config, batch, rng, 1, teacher_targets)
        outputs = model(images)
        logits = outputs["logits"]
        ce = losses.softmax_cross_entropy(logits=logits, labels=batch["label"], label_smoothing=config.label_smoothing)
        attention, metrics = student_attention.attention_term(config, outputs, targets)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
        return ce + attention, {"ce": ce, "accuracy": accuracy, **metrics}

    return loss_fn
