"""Methods: each turns model outputs on a batch into one scalar loss and its metrics.

`make_loss(method_config)` returns `loss_fn(model, batch, rng) -> (loss, metrics)`, the only
thing the trainer needs from a method. Adding a method = one file here + one registry entry.
"""

from __future__ import annotations

from sagejax.methods import cyborg, sage, teacher, xent

_REGISTRY = {
    "xent": xent.make_loss,
    "xent_aug": xent.make_augmentation_control_loss,
    "cyborg": cyborg.make_loss,
    "sage": sage.make_loss,
    "teacher": teacher.make_loss,
}


def make_loss(config):
    """Looks up `config.name` and builds its loss function from the rest of `config`."""
    if config.name not in _REGISTRY:
        raise ValueError(f"unknown method {config.name!r}; known methods: {sorted(_REGISTRY)}")
    return _REGISTRY[config.name](config)


def method_names() -> list[str]:
    """Names accepted by `config.method.name`."""
    return sorted(_REGISTRY)
