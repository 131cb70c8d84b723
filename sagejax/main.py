"""Command line: `python -m sagejax.main --config configs/<file>.py[:variant] --workdir DIR`.

Overrides: `--config.method.temperature=2`. `--mode=eval` evaluates the newest checkpoint of
`--workdir` and writes `results.json` / `results.md` there. Multi-process runs set SAGEJAX_DISTRIBUTED=1 (and, outside
a launcher JAX detects, the coordinator variables of `sagejax.train.distributed`).
"""

from __future__ import annotations

import json

import jax
import tensorflow_datasets as tfds
from absl import app, flags, logging
from ml_collections import config_flags

from sagejax import errors
from sagejax.train import distributed
from sagejax.train.loop import evaluate_checkpoint, train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory: checkpoints, logs, config.json.")
_MODE = flags.DEFINE_enum(
    "mode", "train", ["train", "eval"], "train (resumes if possible) or eval the newest checkpoint."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax and tfds log every file operation at INFO
    tfds.disable_progress_bar()
    distributed.initialize_from_env()
    run = train_and_evaluate if _MODE.value == "train" else evaluate_checkpoint
    results = run(_CONFIG.value, _WORKDIR.value)
    if jax.process_index() == 0 and results:
        print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    errors.run(main)
