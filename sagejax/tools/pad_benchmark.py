"""The open-set PAD benchmark: for every method and seed, leave-one-attack-type-out on Digit PAD.

`sagejax pad_benchmark --methods xent,sage --seeds 0,1,2 --workdir workdirs/digit_pad` trains one run per
held-out attack type for each method and seed (each in `workdir/<method>/seed<seed>/<type>`, reused when finished,
so an interrupted benchmark continues), then writes `pad_benchmark.json` / `.md` and prints AUROC and APCER at
BPCER = 1 % on `test` (bona fide + the held-out type) per held-out type, mean ± std over seeds.
"""

from __future__ import annotations

from absl import flags, logging

from sagejax import errors, pad_benchmark, report

flags.DEFINE_string("config", "digit_pad", "Packaged config name or .py path whose method variants are run.")
flags.DEFINE_list("methods", ["xent", "xent_aug", "cyborg", "rrr", "sage", "sage_inverted"], "Method variants.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_string("variant_suffix", "", "Extra variants for every run, e.g. 'smoke'.")
flags.DEFINE_string("workdir", "workdirs/digit_pad", "Parent directory of the runs.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    results = pad_benchmark.run(
        FLAGS.config, FLAGS.methods, FLAGS.seeds, FLAGS.workdir, variant_suffix=FLAGS.variant_suffix
    )
    report.write_outputs(FLAGS.workdir, "pad_benchmark", data=results, markdown=pad_benchmark.summarize(results))


if __name__ == "__main__":
    errors.run(main)
