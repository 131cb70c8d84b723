"""Which config changes a resumed run accepts: a checkpoint stores the config it was trained with, and a rerun
may change only what cannot alter the trajectory up to that checkpoint (run length, logging, cadences) or alters it
only to float tolerance (the device count: the global batch and its order do not depend on it)."""

from __future__ import annotations

import fnmatch
import json

from sagejax import models
from sagejax.errors import ConfigError

# Changes a training resume accepts (dotted keys; `*` matches one level, e.g. an evaluator's name).
RESUMABLE_CHANGES = (
    "mesh.num_devices",  # a checkpoint restores onto any device count (orbax reshards it onto the new mesh)
    "train.steps",
    "train.log_every_steps",
    "train.checkpoint_every_steps",
    "train.tensorboard",
    "evals.*.every_steps",
)
# What evaluating a checkpoint (--mode=eval) must share with its training run: the network that was saved.
EVAL_MUST_MATCH = ("model.*", "data.num_classes", "method.name")


class ConfigMismatchError(ConfigError):
    """Raised when a run directory's checkpoint was written under a config that the new one contradicts."""


def flatten(config: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}, values normalised as JSON stores them (tuples become lists)."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.loads(json.dumps(value, default=str))
    return flat


# Keys added to configs since runs were first saved, with the value a run saved before them behaved as.
ADDED_KEYS = (
    ("mesh", "num_devices", 0),
    ("optim", "accumulate_steps", 1),
    ("optim", "ema_decay", 0.0),
    ("data", "normalize", "none"),
    ("data", "image_size", 0),
    ("data", "eval_crop_fraction", 0.875),
    ("init", "path", ""),
    ("init", "format", ""),
    ("init", "skip", []),
)


def with_defaults(config: dict) -> dict:
    """`config` (a dict) with every option of its model in `model.kwargs` and every ADDED_KEYS entry (defaults where
    absent): runs written before configs carried them compare equal to configs that do."""
    for block, key, default in ADDED_KEYS:
        if config.get(block) is None or isinstance(config.get(block), dict):  # a whole block may be new (init)
            config = {**config, block: {key: default, **(config.get(block) or {})}}
    model = config.get("model") or {}
    try:
        defaults = models.model_defaults(model.get("name"))
    except ConfigError:  # an unknown model name is reported where the model is built
        return config
    return {**config, "model": {**model, "kwargs": {**defaults, **(model.get("kwargs") or {})}}}


def check_resume(saved: dict, new: dict, *, step: int, workdir: str, evaluating: bool = False) -> None:
    """Raises ConfigMismatchError naming every key of `new` that may not differ from the checkpoint's `saved`."""
    a, b = flatten(with_defaults(saved)), flatten(with_defaults(new))
    changed = sorted(key for key in a.keys() | b.keys() if a.get(key, "<absent>") != b.get(key, "<absent>"))
    if evaluating:
        refused = [key for key in changed if any(fnmatch.fnmatchcase(key, p) for p in EVAL_MUST_MATCH)]
    else:
        refused = [key for key in changed if not any(fnmatch.fnmatchcase(key, p) for p in RESUMABLE_CHANGES)]
    if refused:
        shown = "; ".join(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}" for key in refused[:12])
        more = f" (and {len(refused) - 12} more)" if len(refused) > 12 else ""
        raise ConfigMismatchError(
            f"{workdir} holds a run checkpointed at step {step} under another config: {shown}{more}. A resume may "
            f"change only {list(RESUMABLE_CHANGES)}; use a new --workdir for a new experiment, or rerun with the "
            "run's own settings (its config.json)"
        )
