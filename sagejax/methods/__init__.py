"""Methods: each turns model outputs on a batch into one scalar loss and its metrics.

A method is registered under a name with `register(name, make_loss, defaults=..., predict=..., train_panels=...)`:
- `make_loss(method_config) -> loss_fn(model, batch, rng) -> (loss, metrics)`, all the trainer needs;
- `defaults`, the method's hyperparameters, merged into `config.method` by the config files;
- `predict(model, batch, method_config) -> dict`, what evaluators read (default: classifier `logits`);
- `train_panels(method_config, batch) -> {name: images}`, TensorBoard panels of the first training batch;
- `check_batch(method_config, batch)`, raising naming what the first training batch lacks (before step 1).
`config.method.name` may also be an import path "package.module:make_loss" (defaults = the module's `DEFAULTS`),
so a method can live outside sagejax.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping

import ml_collections
import numpy as np

from sagejax import models
from sagejax.errors import ConfigError
from sagejax.methods.saliency_views import PANEL_COUNT


def classify(model, batch, config) -> dict:
    """Class logits of the images (what classification evaluators score) and the pooled penultimate embedding
    (what retrieval ranks by)."""
    del config
    outputs = models.forward(model, batch["image"])
    return {"logits": outputs["logits"], "embedding": outputs["embedding"]}


def image_panels(config, batch, count: int = PANEL_COUNT) -> dict[str, np.ndarray]:
    """The first training images, and their saliency maps when the batch has them."""
    del config
    keys = [key for key in ("image", "saliency") if key in batch]
    return {f"panels/{key}": np.asarray(batch[key][:count]) for key in keys}


def accept_batch(config, batch) -> None:
    """The default first-batch check: a method that reads only images, labels and saliency needs none."""
    del config, batch


def accept_config(config) -> None:
    """The default settings check: a method whose hyperparameters cannot be impossible needs none."""
    del config


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered method: its loss builder, default hyperparameters, eval predictions and training panels."""

    name: str
    make_loss: Callable
    defaults: Mapping = dataclasses.field(default_factory=dict)
    predict: Callable = classify
    train_panels: Callable = image_panels
    check_batch: Callable = accept_batch
    check_config: Callable = accept_config  # names an impossible setting without building the loss


_REGISTRY: dict[str, Method] = {}


def register(
    name: str,
    make_loss: Callable,
    *,
    defaults: Mapping | None = None,
    predict: Callable = classify,
    train_panels: Callable = image_panels,
    check_batch: Callable = accept_batch,
    check_config: Callable = accept_config,
) -> Method:
    """Registers a method under `name` (replacing an earlier one of that name) and returns it."""
    method = Method(name, make_loss, dict(defaults or {}), predict, train_panels, check_batch, check_config)
    _REGISTRY[name] = method
    return method


def _from_import_path(path: str) -> Method:
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"method {path!r}: cannot import module {module_name!r} ({error})") from error
    if not hasattr(module, attribute):
        raise ConfigError(f"method {path!r}: module {module_name!r} has no {attribute!r}")
    return Method(
        path,
        getattr(module, attribute),
        dict(getattr(module, "DEFAULTS", {})),
        getattr(module, "predict", classify),
        getattr(module, "train_panels", image_panels),
        getattr(module, "check_batch", accept_batch),
        getattr(module, "check_config", accept_config),
    )


def get(name: str) -> Method:
    """The method registered as `name`, or the one an import path "package.module:make_loss" names."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        return _from_import_path(name)
    raise ConfigError(
        f"unknown method {name!r}; known methods: {method_names()} (or an import path 'module:make_loss')"
    )


def make_loss(config):
    """Looks up `config.name` and builds its loss function from the rest of `config`."""
    return get(config.name).make_loss(config)


def check_config(config) -> None:
    """Raises naming an impossible setting of `config` (a method block), without building the loss, restoring a
    teacher or compiling anything: what validating a config (a sweep point, --print_config) may do."""
    get(config.name).check_config(config)


def default_config(name: str, **overrides) -> ml_collections.ConfigDict:
    """`config.method` for `name`: its registered defaults, then `overrides` (which must be known keys)."""
    defaults = dict(get(name).defaults)
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ConfigError(f"method {name!r} has no hyperparameters {unknown}; it has {sorted(defaults)}")
    return ml_collections.ConfigDict({"name": name, **defaults, **overrides})


def method_names() -> list[str]:
    """Names accepted by `config.method.name`."""
    return sorted(_REGISTRY)


def _register_builtin() -> None:
    from sagejax.methods import (
        cyborg,
        rrr,
        sage,
        saliency_views,
        simclr,
        student_attention,
        supervised,
        teacher,
        xent,
    )

    register("xent", xent.make_loss, defaults=xent.DEFAULTS)
    register(
        "xent_aug",
        xent.make_augmentation_control_loss,
        defaults=xent.AUG_DEFAULTS,
        train_panels=xent.panels,
        check_config=saliency_views.check_view_config,
    )
    register("cyborg", cyborg.make_loss, defaults=cyborg.DEFAULTS, check_config=cyborg.check_config)
    register("rrr", rrr.make_loss, defaults=rrr.DEFAULTS, check_batch=rrr.check_batch, check_config=rrr.check_config)
    register("sage", sage.make_loss, defaults=sage.DEFAULTS, train_panels=sage.panels, check_config=sage.check_config)
    for name, make, defaults, check in (
        ("simclr", simclr.make_loss, simclr.DEFAULTS, simclr.check_config),
        ("simclr_attn", simclr.make_loss, simclr.ATTENTION_DEFAULTS, simclr.check_config),
        ("simclr_cotrain", simclr.make_loss, simclr.COTRAIN_DEFAULTS, simclr.check_config),
        ("supervised", supervised.make_loss, supervised.DEFAULTS, student_attention.check_config),
        ("supervised_attn", supervised.make_loss, supervised.ATTENTION_DEFAULTS, student_attention.check_config),
    ):
        register(
            name,
            make,
            defaults=defaults,
            predict=student_attention.predict,
            train_panels=student_attention.panels,
            check_batch=student_attention.check_batch,
            check_config=check,
        )
    register(
        "teacher",
        teacher.make_loss,
        defaults=teacher.DEFAULTS,
        predict=teacher.predict,
        train_panels=teacher.panels,
        check_config=teacher.check_config,
    )


_register_builtin()
