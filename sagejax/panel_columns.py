"""Saliency panels of a trained run: the columns of the figure (image, map, SAGE's views, the model's attention or
input gradient) for the first examples of a split; its command line is `sagejax panels`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from sagejax import data, models
from sagejax.errors import ConfigError
from sagejax.evaluate.evaluators import default_config
from sagejax.methods.saliency_views import SALIENCY_VIEW_DEFAULTS, config_views
from sagejax.methods.student_attention import attention_map
from sagejax.train.trained import Trained

COLUMNS = ("image", "saliency", "x~ (keep)", "x~' (degrade)")


MAP_KEYS = ("saliency", "density", "teacher_saliency")  # the map shown and blurred by, the first one present


def first_examples(config, split: str, count: int) -> dict[str, np.ndarray]:
    """The first `count` examples of `split` of the run's dataset, as the evaluators read them."""
    config = config.copy_and_resolve_references()
    config.evals = {"panels": default_config("classification", splits=(split,), batch_size=count)}
    batch = next(iter(data.eval_iter(config, "panels", split)))
    return {key: value[batch["valid"]] for key, value in batch.items()}


def panel_columns(run: Trained, batch: dict[str, np.ndarray], map_key: str = "") -> dict[str, np.ndarray]:
    """The COLUMNS of a host batch for the restored `run`, the views built from map `map_key` ('' = the first of
    MAP_KEYS the batch holds), and the model's attention ("attention (head)") or input-gradient map ("input
    gradient")."""
    map_key = map_key or next((key for key in MAP_KEYS if key in batch), "saliency")
    if map_key not in batch:
        features = sorted(batch)
        raise ConfigError(f"{run.config.data.name} examples have no {map_key!r} map to show (features: {features})")
    inputs = data.to_model_inputs({"image": jnp.asarray(batch["image"]), map_key: jnp.asarray(batch[map_key])})
    inputs["saliency"] = inputs.pop(map_key)
    settings = view_settings(run.config.method)
    views = config_views(settings, images=inputs["image"], saliency=inputs["saliency"], rng=jax.random.key(0))
    names = (COLUMNS[0], map_key, *COLUMNS[2:])  # the map column named by the map shown
    images = (np.asarray(inputs["image"]), *(np.asarray(views[k]) for k in ("saliency", "x_keep", "x_degrade")))
    columns = dict(zip(names, images))
    model = run.model()
    outputs = models.forward(model, inputs["image"])
    if "attention" in outputs:
        columns["attention (head)"] = np.asarray(attention_map(outputs, inputs["image"].shape[1:3]))
    else:
        columns["input gradient"] = np.asarray(input_gradient(model, inputs["image"]))
    return columns


def view_settings(method_config) -> ml_collections.ConfigDict:
    """The run's view settings when its method builds SAGE views (it has every SALIENCY_VIEW_DEFAULTS key), else the
    defaults: a student's `blur_sigma` is its SimCLR blur range, not a view setting."""
    builds_views = all(key in method_config for key in SALIENCY_VIEW_DEFAULTS)
    return ml_collections.ConfigDict(
        {key: method_config[key] if builds_views else default for key, default in SALIENCY_VIEW_DEFAULTS.items()}
    )


def input_gradient(model, images: jax.Array) -> jax.Array:
    """(B,H,W): max over channels of |∂ logit of the predicted class / ∂ image|, per example."""
    predicted = jnp.argmax(models.forward(model, images)["logits"], axis=-1)

    def score(x):
        logits = models.forward(model, x)["logits"]
        return jnp.sum(jnp.take_along_axis(logits, predicted[:, None], axis=1))

    return jnp.max(jnp.abs(jax.grad(score)(images)), axis=-1)
