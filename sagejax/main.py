"""The trainer's command line: `sagejax train --config NAME[:variant] --workdir DIR` (or `python -m sagejax.main`);
NAME is a packaged config (`sage_decoy`, `sage_csv`, `student`, `teacher_unet`) or a .py path.

Overrides: `--config.method.temperature=2`; `--print_config` prints the resolved config as YAML and exits.
`--mode=eval` (`sagejax eval`) evaluates the newest checkpoint of `--workdir` and writes `results.json` /
`results.md` there. Multi-process runs set SAGEJAX_DISTRIBUTED=1 (and, outside a launcher JAX detects, the
coordinator variables of `sagejax.train.distributed`).
"""

from __future__ import annotations

import json

import jax
import tensorflow_datasets as tfds
import yaml
from absl import app, flags, logging

from sagejax import configs, errors
from sagejax.train import distributed
from sagejax.trainer import evaluate_checkpoint, train_and_evaluate

_CONFIG = configs.define_flag("config")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory: checkpoints, logs, config.json.")
_PRINT_CONFIG = flags.DEFINE_bool("print_config", False, "Print the resolved config (YAML) and exit.")
_MODE = flags.DEFINE_enum(
    "mode", "train", ["train", "eval"], "train (resumes if possible) or eval the newest checkpoint."
)
flags.mark_flags_as_required(["config"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _PRINT_CONFIG.value:
        print(yaml.safe_dump(json.loads(_CONFIG.value.to_json()), sort_keys=False), end="")
        return
    if not _WORKDIR.value:
        raise app.UsageError("--workdir is required (the run directory)")
    logging.set_verbosity(logging.WARNING)  # orbax and tfds log every file operation at INFO
    tfds.disable_progress_bar()
    distributed.initialize_from_env()
    run = train_and_evaluate if _MODE.value == "train" else evaluate_checkpoint
    results = run(_CONFIG.value, _WORKDIR.value)
    if jax.process_index() == 0 and results:
        print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    errors.run(main)
