"""CYBORG (Boyd et al., WACV 2023): α·CE + (1−α)·MSE(CAM, human map resized to the CAM grid).

The CAM is the classifier-weight column of the true class (or, as in the original code, the
predicted class) applied to the last spatial feature map, min-max normalised.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sagejax import augment, losses, models
from sagejax.errors import ConfigError

_CAM_CLASSES = ("true", "predicted")
DEFAULTS = dict(
    label_smoothing=0.0,
    alpha=0.5,  # weight of the cross-entropy; 1 - alpha weighs the CAM term
    cam_class="true",  # or "predicted", as the original CYBORG code
    empty_saliency="ones",
)


def classifier_kernel(model) -> jax.Array:
    """The (features, classes) kernel of the model's classifier head, which the CAM reuses."""
    try:
        return model.head.dense.kernel[...]
    except AttributeError as error:
        raise ConfigError(
            f"CYBORG needs a backbone with a linear classifier at `head.dense`; {type(model).__name__} has none"
        ) from error


def check_config(config) -> None:
    """An impossible setting, named before anything is built."""
    if config.cam_class not in _CAM_CLASSES:
        raise ConfigError(f"method.cam_class must be one of {_CAM_CLASSES}, got {config.cam_class!r}")


def make_loss(config):
    """Builds the CYBORG loss of `config` (alpha, cam_class)."""
    check_config(config)
    alpha = config.alpha

    def loss_fn(model, batch, rng):
        del rng
        out = models.forward(model, batch["image"])
        labels = batch["label"]
        ce = losses.softmax_cross_entropy(logits=out["logits"], labels=labels, label_smoothing=config.label_smoothing)
        predicted = jnp.argmax(out["logits"], axis=-1)
        classes = labels if config.cam_class == "true" else jax.lax.stop_gradient(predicted)
        cam = losses.cam_mse(
            feature_map=out["feature_map"].astype(jnp.float32),
            class_weights=classifier_kernel(model),
            classes=classes,
            target_map=augment.prepare_saliency(batch["saliency"], empty=config.empty_saliency),
        )
        loss = alpha * ce + (1.0 - alpha) * cam
        return loss, {"ce": ce, "cam_mse": cam, "accuracy": jnp.mean(predicted == labels)}

    return loss_fn
