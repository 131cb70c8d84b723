"""Student comparison (Yao et al.'s tables on our data): the five student variants × seeds on `mnist_attention`,
then a linear-probe table and an attention-alignment table, mean ± std over seeds.

`sagejax student_compare --workdir workdirs/student_compare` trains the saliency teacher and labels the
`unlabeled` split with it when the labels are missing (`--teacher_workdir`, `--labels` reuse earlier ones), then
runs sagejax/configs/student.py for every method and seed. Finished runs are reused, so an interrupted comparison
continues where it stopped. Probes are fit on `train` (regularisation chosen on a held-out part of it) and scored
on `validation`, which no choice here looks at; with `--variant_suffix heldout` the runs also score mnist_attention's
`test` split and the tables report it, so `--kld_weight`/`--nss_weight` chosen on validation by `sagejax sweep` are
scored on examples no choice saw. Writes `student_compare.json` and `student_compare.md`.
"""

from __future__ import annotations

import os

from absl import flags, logging

from sagejax import errors, report
from sagejax.comparisons import run_variant
from sagejax.student_comparisons import METHODS, reported_split, run_overrides, summarize, teacher_labels

flags.DEFINE_list("methods", list(METHODS), "Student variants of sagejax/configs/student.py.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_string(
    "variant_suffix",
    "",
    "Extra variants for every student run, e.g. 'grid8' or 'robust'; 'smoke' shrinks the teacher too.",
)
flags.DEFINE_integer("steps", 0, "Training steps of every student run (0 = the config's).")
flags.DEFINE_float("kld_weight", None, "λ of the attention term, for the methods that have one (default: theirs).")
flags.DEFINE_float("nss_weight", None, "β of the attention term, for the methods that have one (default: theirs).")
flags.DEFINE_string("workdir", "workdirs/student_compare", "Parent directory of the runs.")
flags.DEFINE_string("teacher_workdir", "", "Trained teacher run ('' = <workdir>/teacher, trained if missing).")
flags.DEFINE_string("labels", "", "Teacher-labelled `unlabeled` split ('' = <workdir>/labels, made if missing).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    workdir = FLAGS.workdir
    suffix = FLAGS.variant_suffix
    labels = FLAGS.labels or os.path.join(workdir, "labels")
    if any(method.endswith("_attn") for method in FLAGS.methods):
        teacher_labels(FLAGS.teacher_workdir or os.path.join(workdir, "teacher"), labels, suffix)
    results = {}
    for method in FLAGS.methods:
        for seed in FLAGS.seeds:
            run_dir = os.path.join(workdir, method, f"seed{seed}")
            variants = [method, f"labels={labels}", suffix]
            overrides = run_overrides(
                method, steps=FLAGS.steps, kld_weight=FLAGS.kld_weight, nss_weight=FLAGS.nss_weight
            )
            results.setdefault(method, []).append(
                run_variant("student", variants, int(seed), run_dir, evaluator="linear_probe", overrides=overrides)
            )
    markdown = summarize(results, reported_split(suffix))
    report.write_outputs(workdir, "student_compare", data=results, markdown=markdown)


if __name__ == "__main__":
    errors.run(main)
