"""What the contrastive and supervised students share: their SimCLR views, the attention targets each view sees,
the attention term, and what they predict for evaluators (embeddings, and attention maps at image size)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sagejax import losses
from sagejax.augment import simclr
from sagejax.errors import ConfigError, DataError
from sagejax.models.tap import pool_embedding

ATTENTION_DEFAULTS = dict(
    kld_weight=0.0,  # λ of λ·KLD(m^t ‖ m^p); 0 with nss_weight 0 = no attention term
    nss_weight=0.0,  # β of −β·NSS(m^p, p^t)
    attention_map="teacher_saliency",  # the batch feature holding the target map m^t (written by sagejax.label)
    attention_fixations="teacher_fixations",  # ... and its fixations p^t
    attention_masked=False,  # True: only examples whose map has mass count (co-training on human maps)
)
DEFAULTS = {**simclr.VIEW_DEFAULTS, **ATTENTION_DEFAULTS}


def uses_attention(config) -> bool:
    return bool(config.kld_weight or config.nss_weight)


def check_config(config) -> None:
    """Impossible view or attention settings, named before anything is built."""
    for key in ("kld_weight", "nss_weight"):
        if config[key] < 0:
            raise ConfigError(f"method.{key} must be >= 0, got {config[key]}")
    for key in ("jitter_p", "grayscale_p", "blur_p"):
        if not 0 <= config[key] <= 1:
            raise ConfigError(f"method.{key} must be a probability in [0, 1], got {config[key]}")
    low, high = config.blur_sigma
    if not 0 < low <= high:
        raise ConfigError(f"method.blur_sigma must be a range 0 < low <= high, got {tuple(config.blur_sigma)}")
    if uses_attention(config) and not (config.attention_map and config.attention_fixations):
        raise ConfigError("method.attention_map and method.attention_fixations must name batch features")


def check_batch(config, batch) -> None:
    """The first training batch must hold the attention target: the features, a size that pools onto a grid, and
    (unless masked) mass in every map."""
    if not uses_attention(config):
        return
    for key in (config.attention_map, config.attention_fixations):
        if key not in batch:
            raise DataError(
                f"method.attention_map/attention_fixations: the batch has no {key!r}; it has {sorted(batch)}"
            )
    target = np.asarray(batch[config.attention_map])
    if target.shape != batch["image"].shape[:3]:
        raise DataError(
            f"method.attention_map {config.attention_map!r} is {target.shape[1:]} per example; the attention target "
            f"must have the image's size {batch['image'].shape[1:3]}"
        )
    empty = np.flatnonzero(target.reshape(len(target), -1).max(axis=1) == 0)
    if len(empty) == len(target) or (len(empty) and not config.attention_masked):
        raise DataError(
            f"method.attention_map {config.attention_map!r}: maps with no mass at batch indices {empty[:16].tolist()} "
            f"of the first batch ({len(empty)} of {len(target)})"
            + ("" if config.attention_masked else "; a co-training method (attention_masked) skips such examples")
        )


def view_settings(config) -> dict:
    """The method config's SimCLR view settings (ConfigDict lists back to tuples)."""
    return {
        key: tuple(config[key]) if isinstance(default, tuple) else config[key]
        for key, default in simclr.VIEW_DEFAULTS.items()
    }


def views(config, batch, rng, count: int):
    """`count` SimCLR views of the batch's images stacked on the batch axis, and the attention targets moved with
    each view ({} without an attention term)."""
    maps = {}
    if uses_attention(config):
        maps = {"target": batch[config.attention_map], "fixations": batch[config.attention_fixations]}
    images, targets = [], []
    for key in jax.random.split(rng, count):
        image, moved = simclr.simclr_view(key, batch["image"], maps, **view_settings(config))
        images.append(image)
        targets.append(moved)
    stacked = {name: jnp.concatenate([t[name] for t in targets]) for name in maps}
    return jnp.concatenate(images), stacked


def attention_term(config, outputs, targets) -> tuple[jax.Array, dict]:
    """The method's λ·KLD − β·NSS term on the views' attention (0 and no metrics without one), averaged over the
    views whose target has mass: an example without a map, or a view whose crop missed all of it, is left out
    (`attention_examples` = the fraction kept)."""
    if not uses_attention(config):
        return jnp.float32(0.0), {}
    if "attention" not in outputs:
        raise ConfigError("this method's attention term needs an attention head: set config.model.student.attention")
    log_prediction = outputs["attention"]
    where = jnp.max(targets["target"], axis=(1, 2)) > 0
    common = dict(log_prediction=log_prediction, target=targets["target"], fixations=targets["fixations"], where=where)
    term = losses.attention_loss(kld_weight=config.kld_weight, nss_weight=config.nss_weight, **common)
    kld = losses.attention_loss(kld_weight=1.0, nss_weight=0.0, **common)
    nss = -losses.attention_loss(kld_weight=0.0, nss_weight=1.0, **common)
    return term, {"attention_kld": kld, "attention_nss": nss, "attention_examples": jnp.mean(where.astype(jnp.float32))}


def require(outputs, key: str, method: str) -> jax.Array:
    if key not in outputs:
        raise ConfigError(f"{method} needs the model output {key!r}: set config.model.student (a Student model)")
    return outputs[key]


def attention_map(outputs, image_shape) -> jax.Array:
    """The model's attention as a probability map at the image size: the head's map; without a head, the spatial
    attention of the last feature map (mean over channels of the squared activations, Zagoruyko & Komodakis)."""
    if "attention" in outputs:
        grid = jnp.exp(outputs["attention"])
    else:
        grid = jnp.mean(jnp.square(outputs["feature_map"].astype(jnp.float32)), axis=-1)
    resized = jax.image.resize(grid, (grid.shape[0], *image_shape), "linear")
    return resized / jnp.maximum(jnp.sum(resized, axis=(1, 2), keepdims=True), 1e-12)


def predict(model, batch, config) -> dict:
    """What student evaluators read: backbone `embedding` (probes), `logits`, and `attention` at image size."""
    del config
    outputs = model(batch["image"])
    return {
        "embedding": pool_embedding(outputs["embedding"]),
        "logits": outputs["logits"],
        "attention": attention_map(outputs, batch["image"].shape[1:3]),
    }


def panels(config, batch, count: int = 8) -> dict[str, np.ndarray]:
    """The first training images, two views of each, and the attention target when there is one."""
    first = {key: value[:count] for key, value in batch.items() if getattr(value, "ndim", 0) >= 1}
    both = np.asarray(views(config, first, jax.random.key(0), 2)[0])
    out = {"panels/image": np.asarray(first["image"]), "panels/view1": both[:count], "panels/view2": both[count:]}
    if uses_attention(config):
        out["panels/attention_target"] = np.asarray(first[config.attention_map])
    return out
