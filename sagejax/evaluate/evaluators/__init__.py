"""Named evaluators the training loop runs: `config.evals.<name> = {type, splits, every_steps, batch_size, ...}`.

Each evaluator type is a class registered here with its default settings (`DEFAULTS`); the loop runs every
configured evaluator at its own cadence (`every_steps`, 0 = only at the end) and logs
`eval/<name>/<split>/<metric>`. What an evaluator scores comes from the method (`methods.Method.predict`), so
neither the loop nor the evaluators import a method module.
"""

from __future__ import annotations

import ml_collections

from sagejax.errors import ConfigError
from sagejax.evaluate.evaluators.base import Evaluator
from sagejax.evaluate.evaluators.classification import ClassificationEvaluator
from sagejax.evaluate.evaluators.embedding_geometry import EmbeddingGeometryEvaluator
from sagejax.evaluate.evaluators.linear_probe import LinearProbeEvaluator
from sagejax.evaluate.evaluators.retrieval import RetrievalEvaluator
from sagejax.evaluate.evaluators.robustness import RobustnessEvaluator
from sagejax.evaluate.evaluators.saliency import AttentionAlignmentEvaluator, SaliencyEvaluator

_REGISTRY: dict[str, type[Evaluator]] = {}


def register(type_name: str, evaluator_class: type[Evaluator]) -> None:
    """Makes `evaluator_class` available as `config.evals.<name>.type = type_name`."""
    _REGISTRY[type_name] = evaluator_class


def get(type_name: str) -> type[Evaluator]:
    """The evaluator class registered as `type_name`."""
    if type_name not in _REGISTRY:
        raise ConfigError(f"unknown evaluator type {type_name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[type_name]


def default_config(type_name: str, **overrides) -> ml_collections.ConfigDict:
    """An evaluator's config: its type's DEFAULTS, then `overrides` (which must be known keys, or `data`)."""
    defaults = dict(get(type_name).DEFAULTS)
    unknown = sorted(set(overrides) - set(defaults) - {"data"})
    if unknown:
        raise ConfigError(f"evaluator type {type_name!r} has no settings {unknown}; it has {sorted(defaults)}")
    config = ml_collections.ConfigDict({"type": type_name, **defaults, **overrides})
    return config


def make_evaluators(config, *, graphdef, mesh, predict) -> dict[str, Evaluator]:
    """One evaluator per entry of `config.evals`, in config order; each checks its dataset before training."""
    return {
        name: get(eval_config.type)(name, config, graphdef=graphdef, mesh=mesh, predict=predict)
        for name, eval_config in config.evals.items()
    }


register("classification", ClassificationEvaluator)
register("saliency", SaliencyEvaluator)
register("linear_probe", LinearProbeEvaluator)
register("attention_alignment", AttentionAlignmentEvaluator)
register("robustness", RobustnessEvaluator)
register("retrieval", RetrievalEvaluator)
register("embedding_geometry", EmbeddingGeometryEvaluator)

__all__ = [
    "AttentionAlignmentEvaluator",
    "ClassificationEvaluator",
    "EmbeddingGeometryEvaluator",
    "Evaluator",
    "LinearProbeEvaluator",
    "RetrievalEvaluator",
    "RobustnessEvaluator",
    "SaliencyEvaluator",
    "default_config",
    "get",
    "make_evaluators",
    "register",
]
