"""A model's arrays by name ("params/layers/0/blocks/1/conv1/kernel", "batch_stats/stem/bn/mean"): the names that
exports, pretrained initialisation and weight converters share."""

from __future__ import annotations

from collections.abc import Mapping

import jax
from flax import nnx

COLLECTIONS = {"params": nnx.Param, "batch_stats": nnx.BatchStat}  # what weights files hold (no optimizer state)


def path_name(path) -> str:
    """ "layers/0/blocks/1/conv1/kernel" of a pytree key path."""
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _collection_leaves(model: nnx.Module, collection):
    state = nnx.state(model, collection)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state.to_pure_dict())
    names = [path_name(path) for path, _ in leaves]
    return state, names, [leaf for _, leaf in leaves], treedef


def named_arrays(model: nnx.Module) -> dict[str, jax.Array]:
    """{"<collection>/<path>": array} of every parameter and BatchNorm statistic of `model`."""
    named = {}
    for prefix, collection in COLLECTIONS.items():
        _, names, leaves, _ = _collection_leaves(model, collection)
        named.update({f"{prefix}/{name}": leaf for name, leaf in zip(names, leaves)})
    return named


def assign(model: nnx.Module, values: Mapping[str, jax.Array]) -> None:
    """Sets the arrays of `model` named in `values` (names as `named_arrays` gives them), cast to each variable's
    dtype; the others keep their value. Works on concrete and traced arrays."""
    for prefix, collection in COLLECTIONS.items():
        state, names, leaves, treedef = _collection_leaves(model, collection)
        new = [
            values[f"{prefix}/{n}"].astype(leaf.dtype) if f"{prefix}/{n}" in values else leaf
            for n, leaf in zip(names, leaves)
        ]
        nnx.replace_by_pure_dict(state, jax.tree_util.tree_unflatten(treedef, new))
        nnx.update(model, state)
