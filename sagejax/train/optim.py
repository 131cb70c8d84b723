"""Optimizers and learning-rate schedules built from `config.optim`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sagejax.errors import ConfigError

_OPTIMIZERS = ("sgd", "adam", "adamw", "lars")
_SCHEDULES = ("constant", "cosine")
_LR_SCALINGS = ("none", "linear", "sqrt")
# lr = optim.lr × batch/256 ("linear", SimCLR's rule, whose ImageNet base is 0.3) or × sqrt(batch/256) ("sqrt"; SimCLR's
# square-root rule 0.075·sqrt(batch) is this with optim.lr = 1.2)
REFERENCE_BATCH = 256


def adapted_parameters(params):
    """True for the parameters LARS decays and adapts (weight matrices and conv kernels), False for biases and
    normalisation scales and offsets (the 1-D leaves), as SimCLR excludes them."""
    return jax.tree.map(lambda p: p.ndim > 1, params)


def scaled_lr(optim_config, batch_size: int | None) -> float:
    """`optim.lr` scaled by the global batch as `optim.lr_scaling` says (none, linear, sqrt)."""
    scaling = optim_config.get("lr_scaling", "none")
    if scaling not in _LR_SCALINGS:
        raise ConfigError(f"unknown optim.lr_scaling {scaling!r}; known: {list(_LR_SCALINGS)}")
    if scaling == "none":
        return optim_config.lr
    if batch_size is None:
        raise ConfigError(f"optim.lr_scaling={scaling!r} needs the global batch size")
    ratio = batch_size / REFERENCE_BATCH
    return optim_config.lr * (ratio if scaling == "linear" else ratio**0.5)


class ParamsEmaState(NamedTuple):
    """The exponential moving average of the parameters that `params_ema` keeps in the optimizer state."""

    ema: Any


def params_ema(decay: float) -> optax.GradientTransformation:
    """Keeps `ema ← decay·ema + (1 − decay)·params` of the parameters after each update (starting from the initial
    ones) in the optimizer state, so it is sharded, checkpointed and restored with it; updates pass unchanged."""

    def init(params):
        return ParamsEmaState(ema=jax.tree.map(jnp.copy, params))

    def update(updates, state, params=None):
        new_params = optax.apply_updates(params, updates)
        ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state.ema, new_params)
        return updates, ParamsEmaState(ema=ema)

    return optax.GradientTransformation(init, update)


def ema_params(opt_state):
    """The parameters' moving average in `opt_state` (what evaluators score when `optim.ema_decay` > 0), or None."""
    kept = jax.tree.leaves(opt_state, is_leaf=lambda node: isinstance(node, ParamsEmaState))
    return next((node.ema for node in kept if isinstance(node, ParamsEmaState)), None)


def make_schedule(optim_config, total_steps: int, batch_size: int | None = None) -> optax.Schedule:
    """Linear warmup to the (batch-scaled) lr, then constant or cosine decay to `lr·final_lr_fraction`."""
    lr, warmup = scaled_lr(optim_config, batch_size), optim_config.warmup_steps
    if optim_config.schedule not in _SCHEDULES:
        raise ConfigError(f"unknown optim.schedule {optim_config.schedule!r}; known: {list(_SCHEDULES)}")
    if optim_config.schedule == "constant":
        after = optax.constant_schedule(lr)
    else:
        after = optax.cosine_decay_schedule(lr, max(1, total_steps - warmup), alpha=optim_config.final_lr_fraction)
    if warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), after], [warmup])


def make_optimizer(optim_config, total_steps: int, batch_size: int | None = None) -> optax.GradientTransformation:
    """The optax chain of `config.optim`: optional global-norm clipping, then the optimizer; `batch_size` (global)
    scales the lr when `optim.lr_scaling` asks."""
    schedule = make_schedule(optim_config, total_steps, batch_size)
    name = optim_config.name
    if name == "sgd":
        opt = optax.sgd(schedule, momentum=optim_config.momentum, nesterov=True)
        if optim_config.weight_decay:
            opt = optax.chain(optax.add_decayed_weights(optim_config.weight_decay), opt)
    elif name == "adam":
        opt = optax.adam(schedule)
    elif name == "adamw":
        opt = optax.adamw(schedule, weight_decay=optim_config.weight_decay)
    elif name == "lars":
        opt = optax.lars(
            schedule,
            weight_decay=optim_config.weight_decay,
            weight_decay_mask=adapted_parameters,
            trust_ratio_mask=adapted_parameters,
            momentum=optim_config.momentum,
        )
    else:
        raise ConfigError(f"unknown optim.name {name!r}; known: {list(_OPTIMIZERS)}")
    if optim_config.clip_grad_norm:
        opt = optax.chain(optax.clip_by_global_norm(optim_config.clip_grad_norm), opt)
    decay = optim_config.get("ema_decay", 0.0)
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"config.optim.ema_decay={decay} must be in [0, 1) (0 = no moving average)")
    return optax.chain(opt, params_ema(decay)) if decay else opt
