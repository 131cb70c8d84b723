"""What the contrastive and supervised students share: their SimCLR views, the attention targets each view sees,
the attention term, and what they predict for evaluators (embeddings, and attention maps at image size)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from sagejax import losses
from sagejax.augment import simclr
from sagejax.errors import ConfigError, DataError, DataWarning
from sagejax.methods import teacher
from sagejax.models.tap import pool_embedding
from sagejax.train.mesh import make_mesh

ATTENTION_DEFAULTS = dict(
    kld_weight=0.0,  # λ of λ·KLD(m^t ‖ m^p); 0 with nss_weight 0 = no attention term
    nss_weight=0.0,  # β of −β·NSS(m^p, p^t)
    attention_map="teacher_saliency",  # the batch feature holding the target map m^t (written by sagejax.tools.label)
    attention_fixations="teacher_fixations",  # ... and its fixations p^t
    attention_masked=False,  # True: maps are expected on some examples only (co-training on human maps), so
    # the first batch may hold empty ones; the attention term always averages over the views whose map has mass
    teacher_workdir="",  # a trained teacher run: its maps are made inside the step instead of read from the batch
    teacher_fixation_quantile=0.9,  # ... with fixations = each map's pixels at or above this quantile
)
DEFAULTS = {**simclr.SIMCLR_VIEW_DEFAULTS, **ATTENTION_DEFAULTS}


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
    if config.jitter_strength < 0:
        raise ConfigError(f"method.jitter_strength must be >= 0, got {config.jitter_strength}")
    if len(config.blur_sigma) != 2:
        raise ConfigError(f"method.blur_sigma must be a (low, high) range, got {config.blur_sigma!r}")
    low, high = config.blur_sigma
    if not 0 < low <= high:
        raise ConfigError(f"method.blur_sigma must be a range 0 < low <= high, got {tuple(config.blur_sigma)}")
    if uses_attention(config) and not (config.attention_map and config.attention_fixations):
        raise ConfigError("method.attention_map and method.attention_fixations must name batch features")


def check_batch(config, batch) -> None:
    """The first training batch must hold the attention target: the map and fixation features at the image's size,
    and (unless masked) mass in every map; a masked (co-training) batch without any map warns. A teacher run inside
    the step makes its own targets. (Whether the size pools onto the head's grid is checked when the step traces.)"""
    if not uses_attention(config) or config.teacher_workdir:
        return
    for key in (config.attention_map, config.attention_fixations):
        if key not in batch:
            raise DataError(
                f"method.attention_map/attention_fixations: the batch has no {key!r}; it has {sorted(batch)}"
            )
    for field in ("attention_map", "attention_fixations"):
        shape = np.shape(batch[config[field]])
        if shape != batch["image"].shape[:3]:
            raise DataError(
                f"method.{field} {config[field]!r} is {shape[1:]} per example; the attention target must have the "
                f"image's size {batch['image'].shape[1:3]}"
            )
    target = np.asarray(batch[config.attention_map])
    empty = np.flatnonzero(target.reshape(len(target), -1).max(axis=1) == 0)
    if config.attention_masked and len(empty) == len(target):
        warnings.warn(
            f"method.attention_map {config.attention_map!r}: no example of the first batch has a map; co-training "
            "needs some (check data.train_split and data.unannotated_splits)",
            DataWarning,
        )
    elif len(empty) and not config.attention_masked:
        raise DataError(
            f"method.attention_map {config.attention_map!r}: maps with no mass at batch indices {empty[:16].tolist()} "
            f"of the first batch ({len(empty)} of {len(target)}); a co-training method (attention_masked) skips such "
            "examples"
        )


def make_teacher_targets(config):
    """None, or `targets(images) -> {"target", "fixations"}` from the frozen teacher of `config.teacher_workdir`,
    computed as `sagejax.labeling` writes them (uint8 maps; top-quantile fixations), so a run with the teacher inside
    its step trains on the same numbers as one on labels written with `--fixation_rule top_quantile`."""
    if not (uses_attention(config) and config.teacher_workdir):
        return None
    trained = teacher.load_teacher(config.teacher_workdir, make_mesh({"data": -1}))

    def targets(images):
        maps, _, _ = teacher.teacher_maps(trained, trained.params, trained.model_state, images)
        fixations = teacher.top_quantile_fixations(maps, config.teacher_fixation_quantile)
        return {"target": maps.astype(jnp.float32) / 255, "fixations": fixations}  # as the batch's features read

    return targets


def simclr_views(config, batch, rng, count: int, teacher_targets=None):
    """`count` SimCLR views of the batch's images stacked on the batch axis, and the attention targets moved with
    each view ({} without an attention term): read from the batch, or made by `teacher_targets(images)`."""
    maps = {}
    if teacher_targets is not None:
        maps = teacher_targets(batch["image"])
    elif uses_attention(config):
        maps = {"target": batch[config.attention_map], "fixations": batch[config.attention_fixations]}
    images, targets = [], []
    for key in jax.random.split(rng, count):
        image, moved = simclr.simclr_view(key, batch["image"], maps, **simclr.view_settings(config))
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
    grid, size = log_prediction.shape[1:], targets["target"].shape[1:]
    if grid == (1, 1):
        raise ConfigError(
            "the attention head's grid is 1x1 (the backbone's last feature map for these images), so its map is "
            "constant and the attention term is 0: use a backbone or input size with a larger last feature map"
        )
    if size[0] % grid[0] or size[1] % grid[1]:
        raise ConfigError(
            f"method.attention_map is {size[0]}x{size[1]}, which does not pool onto the attention head's "
            f"{grid[0]}x{grid[1]} grid (the sizes must divide)"
        )
    where = jnp.max(targets["target"], axis=(1, 2)) > 0
    common = dict(log_prediction=log_prediction, target=targets["target"], fixations=targets["fixations"], where=where)
    kld = losses.attention_loss(kld_weight=1.0, nss_weight=0.0, **common)
    nss = -losses.attention_loss(kld_weight=0.0, nss_weight=1.0, **common)
    term = config.kld_weight * kld - config.nss_weight * nss  # the masked mean is linear in the two weights
    return term, {"attention_kld": kld, "attention_nss": nss, "attention_examples": jnp.mean(where.astype(jnp.float32))}


def require(outputs, key: str, method: str) -> jax.Array:
    if key not in outputs:
        raise ConfigError(f"{method} needs the model output {key!r}: set config.model.student (a Student model)")
    return outputs[key]


def attention_grid(outputs) -> jax.Array:
    """The model's attention on its last feature map's grid, (B, h, w) summing to 1: the head's map; without a head,
    the spatial attention of the feature map (mean over channels of the squared activations, Zagoruyko & Komodakis)."""
    if "attention" in outputs:
        return jnp.exp(outputs["attention"].astype(jnp.float32))
    grid = jnp.mean(jnp.square(outputs["feature_map"].astype(jnp.float32)), axis=-1)
    return grid / jnp.maximum(jnp.sum(grid, axis=(1, 2), keepdims=True), 1e-12)


def attention_map(outputs, image_shape) -> jax.Array:
    """`attention_grid` resized to the image size, as a probability map."""
    grid = attention_grid(outputs)
    resized = jax.image.resize(grid, (grid.shape[0], *image_shape), "linear")
    return resized / jnp.maximum(jnp.sum(resized, axis=(1, 2), keepdims=True), 1e-12)


def attention_pooled(outputs) -> jax.Array:
    """The last feature map averaged with `attention_grid` as weights, (B, C): the embedding a model that pools
    where it attends would probe with (the backbone's `embedding` weighs every position alike)."""
    features = outputs["feature_map"].astype(jnp.float32)
    return jnp.einsum("bhw,bhwc->bc", attention_grid(outputs), features)


def predict(model, batch, config) -> dict:
    """What student evaluators read: backbone `embedding` (probes), its `attention_pooled` counterpart, `logits`,
    and `attention` at image size."""
    del config
    outputs = model(batch["image"])
    return {
        "embedding": pool_embedding(outputs["embedding"]),
        "attention_pooled": attention_pooled(outputs),
        "logits": outputs["logits"],
        "attention": attention_map(outputs, batch["image"].shape[1:3]),
    }


def panels(config, batch, count: int = 8) -> dict[str, np.ndarray]:
    """The first training images, two views of each, and the attention target when the batch holds one."""
    images = batch["image"][:count]
    first, second = (
        simclr.simclr_view(key, images, **simclr.view_settings(config))[0]
        for key in jax.random.split(jax.random.key(0))
    )
    out = {"panels/image": np.asarray(images), "panels/view1": np.asarray(first), "panels/view2": np.asarray(second)}
    if uses_attention(config) and config.attention_map in batch:
        out["panels/attention_target"] = np.asarray(batch[config.attention_map][:count])
    return out
