"""The Python API: load a trained run and predict with it, export its weights to safetensors and load them back,
and SAGE's loss for someone else's training loop.

    import sagejax
    run = sagejax.load("workdirs/sage_texture")          # config, model in eval mode, checkpoint step
    out = run.predict(images)                           # uint8 or [0, 1] float (B, H, W, C) → logits, embedding, ...
    sagejax.export("workdirs/sage_texture", "sage.safetensors")
    model = sagejax.load_exported("sage.safetensors")   # the same model, its weights from the file
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from sagejax import data, methods, models, storage
from sagejax.errors import ConfigError, DataError, MissingError
from sagejax.methods import sage
from sagejax.models import convert, weight_files
from sagejax.models.named import assign, named_arrays
from sagejax.train.mesh import make_mesh
from sagejax.train.trained import restore_trained


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A trained run ready to use: its config, its model in eval mode and the checkpoint step it came from."""

    workdir: str
    config: ml_collections.ConfigDict
    model: nnx.Module
    step: int
    _predict: Callable = dataclasses.field(repr=False)

    def predict(self, images) -> dict[str, np.ndarray]:
        """The method's predictions on (B, H, W, C) images, uint8 (0..255) or float in [0, 1]: logits and embedding,
        for students also the attention map, for teachers the density."""
        return self._predict(images)


def load(workdir: str) -> LoadedRun:
    """The newest checkpoint of the run in `workdir` on this process's first device."""
    mesh = make_mesh({"data": 1}, devices=jax.local_devices()[:1])
    trained = restore_trained(workdir, mesh)
    model = trained.model()
    return LoadedRun(trained.workdir, trained.config, model, trained.step, make_predict(model, trained.config))


def make_predict(model: nnx.Module, config) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """`predict(images)`: `config`'s method predictions of `model` in eval mode on (B, H, W, C) uint8 or [0, 1]
    float images, as numpy; compiled once per image shape and dtype."""
    model.eval()
    graphdef, arrays = nnx.split(model)
    method_predict, method_config = methods.get(config.method.name).predict, config.method

    @jax.jit
    def forward(arrays, images):
        return method_predict(nnx.merge(graphdef, arrays), data.to_model_inputs({"image": images}), method_config)

    def predict(images) -> dict[str, np.ndarray]:
        images = np.asarray(images)
        if images.ndim != 4:
            raise DataError(f"images must be (B, H, W, C), got shape {images.shape}")
        if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
            raise DataError(f"images must be uint8 or float in [0, 1], got {images.dtype}")
        return jax.tree.map(np.asarray, forward(arrays, images))

    return predict


# ---------------------------------------------------------------------------------------------- weights export


def export(workdir: str, out: str) -> str:
    """Writes the parameters and BatchNorm statistics of the run in `workdir` (newest checkpoint; no optimizer
    state) to the safetensors file `out` (a path or a gs:// object), with the run's config and step as metadata;
    returns `out`."""
    from safetensors.numpy import save

    run = load(workdir)
    tensors = {name: np.asarray(value) for name, value in named_arrays(run.model).items()}
    metadata = {"format": "sagejax", "config": run.config.to_json(), "step": str(run.step)}
    storage.write_bytes(out, save(tensors, metadata=metadata))
    return out


def load_exported(path: str, config=None) -> nnx.Module:
    """The model of `config` (default: the config stored in the file) with the weights of an exported file, in
    eval mode. Strict: every parameter and statistic must be in the file with its shape, and no key may be left
    over."""
    if not storage.path(path).is_file():
        raise MissingError(f"no exported weights file {path}")
    tensors, metadata = weight_files.read(path)
    if config is None:
        if "config" not in metadata:
            raise ConfigError(f"{path} stores no config (not written by sagejax export); pass config=")
        config = ml_collections.ConfigDict(json.loads(metadata["config"]))
    model = models.build_model(config)
    targets = {name: value.shape for name, value in named_arrays(model).items()}
    assign(model, {name: jnp.asarray(v) for name, v in convert.match(tensors, targets, origin=path).items()})
    model.eval()
    return model


# ---------------------------------------------------------------------------------------------------- SAGE loss


def sage_loss(*, views: Mapping[str, Mapping[str, jax.Array]], labels: jax.Array, **settings):
    """SAGE's loss and metrics (as `method.name = "sage"` computes them) from your model's outputs on the four views:
    `views[v] = {"logits": (N, K), "embedding": (N, D)}` for v in "x" (whole batch, N = B), "x_blur", "x_keep",
    "x_degrade" (the first n examples); `settings` override `sagejax.methods.sage.DEFAULTS` (temperature, w_js,
    w_tri, margin, distance, ...). Build the views with `sagejax.augment.saliency_views`."""
    return sage.loss_from_views(_sage_settings(settings), views, labels)


def sage_loss_from_apply(
    apply_fn: Callable[[jax.Array], Mapping[str, jax.Array]], *, images, saliency, labels, rng, **settings
):
    """SAGE's loss with your `apply_fn(images) -> {"logits", "embedding"}`: builds the views of (B, H, W, C) float
    images with their (B, H, W) maps on the device, runs `apply_fn` once over all four stacked, as the method does."""
    config = _sage_settings(settings)
    n = sage.num_view_examples(images.shape[0], config.view_fraction)
    built = sage.config_views(config, images=images[:n], saliency=saliency[:n], rng=rng)

    def apply(x):
        out = apply_fn(x)
        return {key: out[key] for key in ("logits", "embedding")}

    views = {"x": images, **{name: built[name] for name in sage.VIEW_NAMES[1:]}}
    return sage.loss_from_views(config, sage.forward_stacked(apply, views), labels)


def _sage_settings(settings: Mapping) -> ml_collections.ConfigDict:
    unknown = sorted(set(settings) - set(sage.DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown SAGE settings {unknown}; known: {sorted(sage.DEFAULTS)}")
    return ml_collections.ConfigDict({**sage.DEFAULTS, **settings})
