"""Saliency teacher (DESIGN §1.2): a dense network's per-pixel logits as a density over the image's pixels,
trained against human maps with w_kld·KLD − w_cc·CC − w_nss·NSS (MIT conventions, `sagejax.losses`); and inference with
a trained teacher: its maps and fixations, for the offline labeler (`sagejax.labeling`) and for students that run
the teacher inside their step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sagejax import augment, data, losses
from sagejax.errors import ConfigError
from sagejax.methods.saliency_views import PANEL_COUNT
from sagejax.train.mesh import batch_sharding, replicated
from sagejax.train.state import merge_model
from sagejax.train.trained import Trained, restore_trained

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


def check_config(config) -> None:
    """Negative term weights, named before anything is built."""
    for key in ("w_kld", "w_cc", "w_nss"):
        if config[key] < 0:
            raise ConfigError(f"method.{key} must be >= 0, got {config[key]}")


def make_loss(config):
    """w_kld·KLD(human ‖ teacher) − w_cc·CC − w_nss·NSS of the teacher's pixel density, batch means."""
    check_config(config)

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


# ---------------------------------------------------------------------------------------- a trained teacher

Teacher = Trained  # a restored `method.name = "teacher"` run
FIXATION_RULES = ("points", "top_quantile")


def load_teacher(workdir: str, mesh) -> Teacher:
    """The newest checkpoint of a `method.name = "teacher"` run in `workdir`, replicated over `mesh`."""
    teacher = restore_trained(workdir, mesh)
    if teacher.config.method.name != "teacher":
        raise ConfigError(
            f"the run in {teacher.workdir} trained method {teacher.config.method.name!r}, not a saliency teacher"
        )
    return teacher


def teacher_maps(teacher: Teacher, params, model_state, images, resolution: tuple[int, int] | None = None):
    """Images (B, H, W, C), uint8 or float in [0, 1] → (maps uint8 (B, h, w), finite (B,), peak (B,)): the
    teacher's density resized to `resolution` (None = input size), divided by its maximum and scaled to 0..255.
    Traceable: the labeler jits it, and a student can run it inside its step."""
    model = merge_model(teacher.graphdef, params, model_state)
    model.eval()
    batch = data.to_model_inputs({"image": images})
    density = predict(model, batch, teacher.config.method)["density"]
    if resolution is not None and tuple(resolution) != density.shape[1:]:
        density = jax.image.resize(density, (density.shape[0], *resolution), "linear", antialias=True)
    finite = jnp.all(jnp.isfinite(density), axis=(1, 2))
    peak = jnp.max(density, axis=(1, 2))
    scaled = density / jnp.where(peak > 0, peak, 1.0)[:, None, None]
    maps = jnp.round(255 * jnp.clip(jnp.nan_to_num(scaled), 0.0, 1.0)).astype(jnp.uint8)
    return maps, finite, peak


def make_map_fn(teacher: Teacher, mesh, resolution: tuple[int, int] | None):
    """`teacher_maps` jitted over `mesh`: (params, model_state, uint8 images) → (maps, finite, peak)."""

    def map_fn(params, model_state, images):
        return teacher_maps(teacher, params, model_state, images, resolution)

    return jax.jit(
        map_fn, in_shardings=(replicated(mesh), replicated(mesh), batch_sharding(mesh)), out_shardings=replicated(mesh)
    )


def top_quantile_fixations(saliency_map, quantile: float):
    """0/1 uint8: the positive pixels at or above the map's `quantile` quantile (linear interpolation); numpy or
    jax arrays, (h, w) or batched (B, h, w) maps."""
    xp = jnp if isinstance(saliency_map, jax.Array) else np
    values = saliency_map.astype(xp.float32)
    threshold = xp.quantile(values, quantile, axis=(-2, -1), keepdims=True)
    return ((values >= threshold) & (values > 0)).astype(xp.uint8)


def derive_fixations(
    saliency_map: np.ndarray, *, rule: str = "points", count: int = 16, quantile: float = 0.9, seed: int, index: int
) -> np.ndarray:
    """A 0/1 uint8 fixation map from a non-empty `saliency_map`, depending on the example alone (not on batching,
    sharding or the process): rule "points" = `count` pixels drawn with replacement ∝ the map, seeded by
    (seed, index); "top_quantile" = the positive pixels at or above the map's `quantile` quantile."""
    if rule == "top_quantile":
        return top_quantile_fixations(saliency_map, quantile)
    p = saliency_map.astype(np.float64).ravel()
    drawn = np.random.default_rng((seed, index)).choice(p.size, size=count, p=p / p.sum())
    fixations = np.zeros(p.size, np.uint8)
    fixations[drawn] = 1
    return fixations.reshape(saliency_map.shape)
