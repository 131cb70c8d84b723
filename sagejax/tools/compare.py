"""Method comparison: methods × decoy families × seeds, each a full training run, then one table.

`sagejax compare --workdir workdirs/compare` runs the variants of sagejax/configs/sage_decoy.py
(xent, xent_aug, cyborg, sage, sage_inverted) on both decoy families with seeds 0,1,2 and prints
mean ± std accuracy on `test` (decoy randomised) and `test_clean`. Finished runs are reused, so an
interrupted comparison continues where it stopped. Writes `compare.json` and `compare.md`.
"""

from __future__ import annotations

import os

from absl import flags, logging

from sagejax import errors, report
from sagejax.comparisons import run_one, summarize

flags.DEFINE_string("config", "sage_decoy", "Packaged config name or .py path whose variants are compared.")
flags.DEFINE_list("methods", ["xent", "xent_aug", "cyborg", "sage", "sage_inverted"], "Method variants.")
flags.DEFINE_list("families", ["swatch", "texture"], "Decoy families (config variants; swatch = default).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_string("variant_suffix", "", "Extra variants for every run, e.g. 'smoke' or 'small_stem'.")
flags.DEFINE_string("workdir", "workdirs/compare", "Parent directory of the runs.")
FLAGS = flags.FLAGS


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
    report.write_outputs(FLAGS.workdir, "compare", data=results, markdown=summarize(results))


if __name__ == "__main__":
    errors.run(main)
