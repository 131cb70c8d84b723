"""Optimizers and learning-rate schedules built from `config.optim`."""

from __future__ import annotations

import optax

from sagejax.errors import ConfigError

_OPTIMIZERS = ("sgd", "adam", "adamw")
_SCHEDULES = ("constant", "cosine")


def make_schedule(optim_config, total_steps: int) -> optax.Schedule:
    """Linear warmup to `lr`, then constant or cosine decay to `lr·final_lr_fraction`."""
    lr, warmup = optim_config.lr, optim_config.warmup_steps
    if optim_config.schedule not in _SCHEDULES:
        raise ConfigError(f"unknown optim.schedule {optim_config.schedule!r}; known: {list(_SCHEDULES)}")
    if optim_config.schedule == "constant":
        after = optax.constant_schedule(lr)
    else:
        after = optax.cosine_decay_schedule(lr, max(1, total_steps - warmup), alpha=optim_config.final_lr_fraction)
    if warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), after], [warmup])


def make_optimizer(optim_config, total_steps: int) -> optax.GradientTransformation:
    """The optax chain of `config.optim`: optional global-norm clipping, then the optimizer."""
    schedule = make_schedule(optim_config, total_steps)
    name = optim_config.name
    if name == "sgd":
        opt = optax.sgd(schedule, momentum=optim_config.momentum, nesterov=True)
        if optim_config.weight_decay:
            opt = optax.chain(optax.add_decayed_weights(optim_config.weight_decay), opt)
    elif name == "adam":
        opt = optax.adam(schedule)
    elif name == "adamw":
        opt = optax.adamw(schedule, weight_decay=optim_config.weight_decay)
    else:
        raise ConfigError(f"unknown optim.name {name!r}; known: {list(_OPTIMIZERS)}")
    if optim_config.clip_grad_norm:
        opt = optax.chain(optax.clip_by_global_norm(optim_config.clip_grad_norm), opt)
    return opt
