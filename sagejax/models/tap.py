"""Embedding taps (the paper's "hook"): any submodule's output, by dotted path, without editing the model.

Names are attribute paths with list indices ("layers.2", "blocks.1.mlp"); values come from `nnx.capture`.
"""

import difflib

import jax.numpy as jnp
from flax import nnx

from sagejax.errors import ConfigError


def _name(path):
    return ".".join(str(part) for part in path)


def available_taps(model):
    """Tap names of every submodule of `model` (containers such as `nnx.List` excluded)."""
    paths = [path for path, module in nnx.iter_modules(model) if path and not isinstance(module, nnx.List)]
    paths.sort(key=lambda path: [(isinstance(part, str), part) for part in path])
    return [_name(path) for path in paths]


def _check_names(model, names):
    valid = available_taps(model)
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=8, cutoff=0.6)
            top = [v for v in valid if "." not in v]
            raise ConfigError(
                f"unknown tap {name!r}; close matches: {close}; top-level taps: "
                f"{top}; see available_taps(model) for all"
            )


def tap(model, x, names):
    """Run `model(x)` once; return (outputs, {name: that submodule's output}) for `names`."""
    names = [names] if isinstance(names, str) else list(names)
    _check_names(model, names)
    outputs, captured = nnx.capture(model, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
    calls = {_name(path[:-1]): var.get_value() for path, var in nnx.to_flat_state(captured) if path[-1] == "__call__"}
    taps = {}
    for name in names:
        values = calls.get(name, ())
        if len(values) != 1:
            raise ConfigError(
                f"tap {name!r}: the submodule was called {len(values)} times in "
                "the forward pass; a tap needs exactly one call"
            )
        taps[name] = values[0]
    return outputs, taps


def pool_embedding(y):
    """(B,h,w,C) → spatial mean, (B,N,D) → token mean, (B,D) unchanged; returned in float32."""
    if y.ndim == 4:
        y = jnp.mean(y, axis=(1, 2))
    elif y.ndim == 3:
        y = jnp.mean(y, axis=1)
    elif y.ndim != 2:
        raise ConfigError(f"cannot pool a tapped output of shape {y.shape} to (B, D)")
    return y.astype(jnp.float32)


def forward(model, x, *, hook=None):
    """Backbone outputs; with `hook` (a tap name), "embedding" is that output, pooled to (B,D)."""
    if hook is None:
        return model(x)
    outputs, taps = tap(model, x, hook)
    return {**outputs, "embedding": pool_embedding(taps[hook])}
