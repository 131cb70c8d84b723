"""Leave-one-attack-type-out: for each attack type, train without it and test on bona fide + it.

`sagejax loao --config sage_csv:sage,resnet50,pad=attack --workdir workdirs/loao \
    --config.data.manual_dir=/path/to/folder` trains one run per attack type found in the dataset
(each in `workdir/<type>`, resumable), then writes `loao.json` and prints a markdown table of the
held-out types' metrics with a mean ± std row. This is the open-set protocol of DESIGN §1.1.
"""

from __future__ import annotations

import os

from absl import flags, logging

from sagejax import configs, data, errors
from sagejax.errors import ConfigError
from sagejax.evaluate import summarize_results, to_json
from sagejax.trainer import train_and_evaluate

_NO_ATTACK = "none"
FLAGS = flags.FLAGS


def _define_flags() -> None:
    """Command-line flags, defined only when run as a program so the module imports cleanly."""
    configs.define_flag("config", lock=False, help_text="Experiment config (a PAD task)")
    flags.DEFINE_string("workdir", None, "Parent directory of the per-type runs.")
    flags.mark_flags_as_required(["config", "workdir"])


def attack_types(config) -> list[str]:
    """The attack-type names of the config's dataset (bona fide excluded)."""
    builder = data.build(config.data)
    if "attack_type" not in builder.info.features:
        raise ConfigError(f"{builder.info.full_name} has no attack_type feature: leave-one-attack-out needs one")
    return [name for name in builder.info.features["attack_type"].names if name != _NO_ATTACK]


def run_protocol(config, workdir: str) -> dict[str, dict[str, float]]:
    """Trains and evaluates one run per held-out attack type; returns {type: {metric: value}}."""
    results = {}
    for held_out in attack_types(config):
        run_config = config.copy_and_resolve_references()
        run_config.data.train_exclude_attack_types = (held_out,)
        classifiers = [name for name, e in run_config.evals.items() if e.type == "classification"]
        if not classifiers:
            raise ConfigError("leave-one-attack-type-out needs a classification evaluator in config.evals")
        for name in classifiers:
            run_config.evals[name].attack_types = (held_out,)
        metrics = train_and_evaluate(run_config, os.path.join(workdir, held_out))
        # eval/<evaluator>/<split>/<metric> -> the shortest name that stays unique: <metric> for one evaluator
        # and one split, <split>/<metric> for one evaluator, else <evaluator>/<split>/<metric>
        splits = {key.split("/")[2] for key in metrics}
        depth = 1 if len(classifiers) > 1 else (3 if len(splits) == 1 else 2)
        results[held_out] = {key.split("/", depth)[-1]: v for key, v in metrics.items()}
    return results


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    results = run_protocol(FLAGS.config, FLAGS.workdir)
    to_json(results, os.path.join(FLAGS.workdir, "loao.json"))
    print(summarize_results(results, row_header="held-out attack type"))


if __name__ == "__main__":
    _define_flags()
    errors.run(main)
