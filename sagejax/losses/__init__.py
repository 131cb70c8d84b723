"""Pure, jittable losses: f(*, arrays..., hyperparameters, reduction="mean"|"sum"|"none")."""

from sagejax.losses.classification import softmax_cross_entropy
from sagejax.losses.contrastive import nt_xent, triplet_margin
from sagejax.losses.divergence import js_divergence, kl_divergence
from sagejax.losses.explanation import input_gradient_penalty
from sagejax.losses.saliency import attention_loss, cam_mse, cc, kld, nss, sim, to_grid

__all__ = [
    "attention_loss",
    "cam_mse",
    "cc",
    "input_gradient_penalty",
    "js_divergence",
    "kl_divergence",
    "kld",
    "nss",
    "nt_xent",
    "sim",
    "softmax_cross_entropy",
    "to_grid",
    "triplet_margin",
]
