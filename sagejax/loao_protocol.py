"""Leave-one-attack-type-out: one run per held-out attack type (trained or reused), scored on bona fide + that type;
its command line is `sagejax loao`."""

from __future__ import annotations

import os

from sagejax import data, runs
from sagejax.errors import ConfigError, SagejaxError

_NO_ATTACK = "none"


def attack_types(config) -> list[str]:
    """The attack-type names of the config's dataset (bona fide excluded)."""
    builder = data.build(config.data)
    if "attack_type" not in builder.info.features:
        raise ConfigError(f"{builder.info.full_name} has no attack_type feature: leave-one-attack-out needs one")
    return [name for name in builder.info.features["attack_type"].names if name != _NO_ATTACK]


def run_protocol(config, workdir: str) -> dict[str, dict[str, float]]:
    """Trains and evaluates one run per held-out attack type; returns {type: {metric: value}}. A classification
    evaluator of validation splits only scores bona fide + the types seen in training (settings chosen there never
    see the held-out type); every other one scores bona fide + the held-out type."""
    results = {}
    types = attack_types(config)
    for held_out in types:
        run_config = config.copy_and_resolve_references()
        run_config.data.train_exclude_attack_types = (held_out,)
        classifiers = [name for name, e in run_config.evals.items() if e.type == "classification"]
        if not classifiers:
            raise ConfigError("leave-one-attack-type-out needs a classification evaluator in config.evals")
        for name in classifiers:
            validation = all(split.startswith("validation") for split in run_config.evals[name].splits)
            seen = tuple(t for t in types if t != held_out)
            run_config.evals[name].attack_types = seen if validation else (held_out,)
        metrics = runs.train_or_reuse(run_config, os.path.join(workdir, held_out))
        if metrics is None:
            raise SagejaxError(f"stopped by SIGTERM in {workdir}/{held_out} (checkpoint saved); rerun to continue")
        metrics = {key: value for key, value in metrics.items() if key.startswith("eval/")}
        # eval/<evaluator>/<split>/<metric> -> the shortest name that stays unique: <metric> for one evaluator
        # and one split, <split>/<metric> for one evaluator, else <evaluator>/<split>/<metric>
        splits = {key.split("/")[2] for key in metrics}
        depth = 1 if len(classifiers) > 1 else (3 if len(splits) == 1 else 2)
        results[held_out] = {key.split("/", depth)[-1]: v for key, v in metrics.items()}
    return results
