"""SAGE with a KL logit alignment in place of Jensen–Shannon: a method defined outside the sagejax package.

  sagejax train --config examples/sage_kl_config.py --workdir workdirs/sage_kl

Everything SAGE does stays (the four views in one pass, the triplet); only the alignment term changes, to
KL(softmax(y~/T) ‖ softmax(y/T)) + KL(softmax(y~'/T) ‖ softmax(y'/T)): the view is pulled to its target.
"""

import jax.numpy as jnp

from sagejax import losses
from sagejax.methods import sage

DEFAULTS = {**{k: v for k, v in sage.DEFAULTS.items() if k != "w_js"}, "w_kl": 1.0}  # w_kl replaces w_js


def make_loss(config):
    """L = CE + w_kl·T²·[KL(y~‖y) + KL(y~'‖y')] + w_tri·triplet(z, z~, z~')."""

    def loss_fn(model, batch, rng):
        out, n = sage.forward_views(model, batch, rng, config)
        labels = batch["label"]
        ce = losses.softmax_cross_entropy(logits=out["x"]["logits"], labels=labels)
        kl_args = dict(temperature=config.temperature, t2_scale=config.t2_scale)
        kl = losses.kl_divergence(p_logits=out["x_keep"]["logits"], q_logits=out["x"]["logits"][:n], **kl_args)
        kl += losses.kl_divergence(p_logits=out["x_degrade"]["logits"], q_logits=out["x_blur"]["logits"], **kl_args)
        triplet = sage.triplet_term(config, out, anchor=out["x"]["embedding"][:n])  # SAGE's own term
        loss = ce + config.w_kl * kl + config.w_tri * triplet
        accuracy = jnp.mean(jnp.argmax(out["x"]["logits"], -1) == labels)
        return loss, {"ce": ce, "kl": kl, "triplet": triplet, "accuracy": accuracy}

    return loss_fn
