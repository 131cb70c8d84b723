r"""Corruption robustness of trained runs: clean accuracy and accuracy under every corruption × severity.

  sagejax robustness --workdirs workdirs/compare/texture/sage,workdirs/compare/texture/xent \
      --baseline workdirs/compare/texture/xent --out workdirs/robustness

Each --workdirs entry (globs allowed) is a run directory or a directory of runs (its seeds), grouped under its name.
Every run's newest checkpoint is scored by the `robustness` evaluator (cached in the run as
robustness-<table>-<split>[-probe].json) with its own logits or, for self-supervised runs
(--classifier=logistic_probe), a logistic probe fit on clean --probe_split features. The groups are summarised as
mean ± std over their runs: per corruption the accuracy averaged over severities, the 15 main corruptions' mean, the
4 validation corruptions (speckle noise, Gaussian blur, spatter, saturate) apart, and with --baseline the mCE and
relative mCE against that group's mean errors. Writes robustness.json, robustness.md and robustness.png (accuracy
against severity) in --out.
"""

from __future__ import annotations

import functools

from absl import flags, logging

from sagejax import errors, report, runs
from sagejax.robustness_tables import evaluate_groups, markdown, summarize

flags.DEFINE_list("workdirs", None, "Runs or directories of runs (globs allowed), one group each.")
flags.DEFINE_string("baseline", "", "A run or directory of runs to compute mCE against ('' = no mCE).")
flags.DEFINE_string("out", None, "Where robustness.json / .md / .png go.")
flags.DEFINE_string("split", "test", "The evaluated split (slices such as 'test[:2000]' allowed).")
flags.DEFINE_string("table", "", "imagenet, cifar or mnist (MNIST-C); '' = by image size.")
flags.DEFINE_list("corruptions", [], "Corruptions of the table (default: all of them).")
flags.DEFINE_list("severities", ["1", "2", "3", "4", "5"], "Severities (ignored for MNIST-C).")
flags.DEFINE_integer("batch_size", 256, "Eval batch size (a multiple of the device count).")
flags.DEFINE_integer("corruption_seed", 0, "Seed of the corruptions' randomness, the same for every run.")
flags.DEFINE_enum(
    "classifier",
    "logits",
    ["logits", "logistic_probe"],
    "The runs' own logits, or a logistic probe fit on clean --probe_split features (self-supervised runs).",
)
flags.DEFINE_string("probe_split", "train", "The labelled split the probe is fit on (with --classifier).")
flags.DEFINE_bool("overwrite", False, "Recompute cached per-run results.")
flags.mark_flags_as_required(["workdirs", "out"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    settings = dict(
        splits=(FLAGS.split,),
        batch_size=FLAGS.batch_size,
        table=FLAGS.table,
        corruptions=tuple(FLAGS.corruptions),
        severities=tuple(int(s) for s in FLAGS.severities),
        corruption_seed=FLAGS.corruption_seed,
        classifier=FLAGS.classifier,
    )
    if FLAGS.classifier == "logistic_probe":
        settings["probe_split"] = FLAGS.probe_split
    groups = runs.group_runs(FLAGS.workdirs)
    results = evaluate_groups(groups, settings, overwrite=FLAGS.overwrite)
    baseline = None
    if FLAGS.baseline:
        (baseline_runs,) = runs.group_runs([FLAGS.baseline]).values()
        baseline = [r for rs in evaluate_groups({"baseline": baseline_runs}, settings).values() for r in rs]
    summary = summarize(results, split=FLAGS.split, baseline=baseline)
    if summary["by_severity"]:
        figure = functools.partial(report.robustness_plot, summary["by_severity"], split=FLAGS.split)
    else:
        figure = functools.partial(report.corruption_bars, summary["rows"], split=FLAGS.split)
    scored = [run for members in groups.values() for run in members]
    checkpoints = {run: runs.checkpoint_fingerprint(run) for run in scored}  # the step each run was scored at
    data = {"settings": settings, "runs": groups, "checkpoints": checkpoints, "baseline": FLAGS.baseline, **summary}
    report.write_outputs(FLAGS.out, "robustness", data=data, markdown=markdown(summary["rows"]), figure=figure)


if __name__ == "__main__":
    errors.run(main)
