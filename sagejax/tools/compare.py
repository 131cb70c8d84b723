"""Method comparison: methods × decoy families × seeds, each a full training run, then one table.

`sagejax compare --workdir workdirs/compare` runs the variants of sagejax/configs/sage_decoy.py
(xent, xent_aug, cyborg, sage, sage_inverted) on both decoy families with seeds 0,1,2 and prints
mean ± std accuracy on `test` (decoy randomised) and `test_clean`. Finished runs are reused, so an
interrupted comparison continues where it stopped. Writes `compare.json` and `compare.md`.
"""

from __future__ import annotations

import json
import os

from absl import flags, logging

from sagejax import configs, errors
from sagejax.errors import ConfigError
from sagejax.report import tables
from sagejax.trainer import train_and_evaluate

_SPLITS = ("test", "test_clean")
_EVALUATOR = "classification"
FLAGS = flags.FLAGS


def _define_flags() -> None:
    """Command-line flags, defined only when run as a program so the module imports cleanly."""
    flags.DEFINE_string("config", "sage_decoy", "Packaged config name or .py path whose variants are compared.")
    flags.DEFINE_list("methods", ["xent", "xent_aug", "cyborg", "sage", "sage_inverted"], "Method variants.")
    flags.DEFINE_list("families", ["swatch", "texture"], "Decoy families (config variants; swatch = default).")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
    flags.DEFINE_string("variant_suffix", "", "Extra variants for every run, e.g. 'smoke' or 'small_stem'.")
    flags.DEFINE_string("workdir", "workdirs/compare", "Parent directory of the runs.")


def run_variant(config: str, variants: list[str], seed: int, workdir: str, *, evaluator: str) -> dict:
    """Final eval metrics of the run of `config:variants` (config: a packaged name or a .py path) with `seed`,
    training it unless `workdir/results.json` already exists (which must hold `evaluator`'s metrics)."""
    results_path = os.path.join(workdir, "results.json")
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
        if not any(key.startswith(f"eval/{evaluator}/") for key in results):
            raise ConfigError(
                f"{results_path} has no eval/{evaluator}/... metrics (written by another config or an older "
                "sagejax); use another --workdir or move the run aside to retrain it"
            )
        return results
    loaded = configs.load(f"{config}:{','.join(v for v in variants if v)}")
    loaded.seed = seed
    return train_and_evaluate(loaded, workdir)


def run_one(config: str, method: str, family: str, seed: int, workdir: str, suffix: str) -> dict[str, float]:
    """One run of the decoy comparison (family "swatch" is the config's default)."""
    variants = [method, "" if family == "swatch" else family, suffix]
    return run_variant(config, variants, seed, workdir, evaluator=_EVALUATOR)


def summarize(results: dict) -> str:
    """Markdown table: a row per method, mean ± std over seeds of each family's test / test_clean accuracy."""
    families = list(next(iter(results.values())))
    header = ["method"] + [f"{family} {split}" for family in families for split in _SPLITS]
    rows = []
    for method, by_family in results.items():
        cells = [method]
        for family in families:
            for split in _SPLITS:
                values = [run[f"eval/{_EVALUATOR}/{split}/accuracy"] for run in by_family[family]]
                cells.append(tables.mean_std(values, scale=100))
        rows.append(cells)
    return tables.markdown_table(header, rows)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    results = {}
    for method in FLAGS.methods:
        for family in FLAGS.families:
            for seed in FLAGS.seeds:
                workdir = os.path.join(FLAGS.workdir, family, method, f"seed{seed}")
                run = run_one(FLAGS.config, method, family, int(seed), workdir, FLAGS.variant_suffix)
                results.setdefault(method, {}).setdefault(family, []).append(run)
    table = summarize(results)
    os.makedirs(FLAGS.workdir, exist_ok=True)
    with open(os.path.join(FLAGS.workdir, "compare.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(FLAGS.workdir, "compare.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    _define_flags()
    errors.run(main)
