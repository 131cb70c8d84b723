"""RRR, "Right for the Right Reasons" (Ross, Hughes, Doshi-Velez, IJCAI 2017): CE + λ·Σ ‖A ⊙ ∂x Σ_k log p_k‖².

The explanation is the input gradient of the summed log-probabilities; A = 1 − s marks where it must vanish (s = the
human map, 1 = salient, broadcast over channels). The training gradient differentiates through that input gradient
(double back-propagation, inside the jitted step). Normalisation: the penalty sums over pixels and channels; the
paper's Decoy MNIST code sums both it and the CE over the batch, here both are batch means (the same ratio). The
paper's small L2 on the weights is left to `config.optim.weight_decay` (AdamW's decoupled decay, not the same term).

The input gradient is that of the batch's sum, one backward pass (as PyTorch ports do with autograd.grad): exact per
example when examples are independent (eval-mode BatchNorm, the paper's MLP). With train-mode BatchNorm it also
carries, through the batch statistics, each example's influence on the others' outputs: O(1/B) per pair but as large
as the per-example gradient in sum (measured at initialisation on a width-4 ResNet-18). The exact per-example
gradient would take B backward passes (one per example's cotangent); vmapping the model over single examples would
change what train-mode BatchNorm computes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sagejax import augment, losses, models
from sagejax.errors import ConfigError, DataError

_EMPTY = ("ones", "zeros")
DEFAULTS = dict(
    label_smoothing=0.0,
    # λ: the paper's Decoy MNIST value, 1000, was set on raw 0..255 pixels; the gradient here is per unit of the
    # [0, 1] image the model reads, 255× larger, so the same strength is 1000 / 255² ≈ 0.0154.
    l2_grads=1000.0 / 255**2,
    invert_saliency=False,  # the sanity check: penalise the gradient inside the salient region instead (A = s)
    empty_saliency="ones",  # an all-zero map = no map: "ones" = all salient, no penalty; "zeros" = all penalised
)


def check_config(config) -> None:
    """An impossible setting, named before anything is built."""
    if not config.l2_grads >= 0:
        raise ConfigError(f"method.l2_grads (λ) must be >= 0, got {config.l2_grads}")
    if config.empty_saliency not in _EMPTY:
        raise ConfigError(f"method.empty_saliency must be one of {_EMPTY}, got {config.empty_saliency!r}")


def check_batch(config, batch) -> None:
    """The first training batch must hold a saliency map at each image's height and width."""
    del config
    if "saliency" not in batch:
        raise DataError(f"method rrr needs 'saliency' maps in the batch; it has {sorted(batch)}")
    shape, image = np.shape(batch["saliency"]), np.shape(batch["image"])
    if shape[1:3] != image[1:3]:
        raise DataError(f"method rrr needs saliency maps of the images' size {image[1:3]}, got {shape[1:3]}")


def irrelevant_region(config, saliency: jax.Array) -> jax.Array:
    """RRR's annotation A = 1 − s, (B, H, W) in [0, 1]; with `invert_saliency` A = s for the examples that have a map
    (an example without one keeps the `empty_saliency` convention, so the sanity check changes only annotated ones)."""
    prepared = augment.prepare_saliency(saliency, empty=config.empty_saliency)
    if config.invert_saliency:
        has_map = jnp.max(saliency.reshape(saliency.shape[0], -1), axis=1) > 0
        prepared = jnp.where(has_map[:, None, None], 1.0 - prepared, prepared)
    return 1.0 - prepared


def explanation_gradients(model, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """∂/∂x Σ_n Σ_k log p_k(x_n) and the float32 logits of that same forward pass, whose BatchNorm statistics (in
    train mode) are written back to `model`; differentiable again with respect to the parameters."""

    def summed_log_probabilities(module, x):
        logits = models.forward(module, x)["logits"].astype(jnp.float32)
        return jnp.sum(jax.nn.log_softmax(logits, axis=-1)), logits

    return nnx.grad(summed_log_probabilities, argnums=1, has_aux=True)(model, images)


def make_loss(config):
    """Builds the RRR loss of `config` (l2_grads, invert_saliency, empty_saliency, label_smoothing)."""
    check_config(config)

    def loss_fn(model, batch, rng):
        del rng
        gradients, logits = explanation_gradients(model, batch["image"])
        labels = batch["label"]
        ce = losses.softmax_cross_entropy(logits=logits, labels=labels, label_smoothing=config.label_smoothing)
        penalty = losses.input_gradient_penalty(
            input_gradients=gradients, mask=irrelevant_region(config, batch["saliency"])
        )
        loss = ce + config.l2_grads * penalty
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == labels)
        return loss, {"ce": ce, "penalty": penalty, "accuracy": accuracy}

    return loss_fn
