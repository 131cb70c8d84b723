r"""Retrieval by embedding of trained runs: queries from a split (clean and corrupted) rank a database split.

  sagejax retrieval --workdirs workdirs/compare/texture/sage,workdirs/compare/texture/xent \
      --query_corruptions gaussian_noise/3,fog/3 --out workdirs/retrieval

Each --workdirs entry (globs allowed) is a run directory or a directory of runs (its seeds), grouped under its name.
Every run's newest checkpoint is scored by the `retrieval` evaluator (cosine similarity of L2-normalised embeddings,
relevance = same class; cached in the run as retrieval-<split>.json). Writes retrieval.json, retrieval.md (mAP,
precision@k and R-precision, mean ± std over each group's runs) and retrieval.png (11-point interpolated
precision–recall curves of every group, clean and corrupted queries) in --out.
"""

from __future__ import annotations

from absl import flags, logging

from sagejax import errors, report, runs
from sagejax.retrieval_tables import summarize

flags.DEFINE_list("workdirs", None, "Runs or directories of runs (globs allowed), one group each.")
flags.DEFINE_string("out", None, "Where retrieval.json / .md / .png go.")
flags.DEFINE_string("split", "test", "The queries' split (slices such as 'test[:2000]' allowed).")
flags.DEFINE_string("database_split", "train", "The ranked split.")
flags.DEFINE_list("query_corruptions", [], "Corrupted query sets, 'name/severity' ('name' for MNIST-C).")
flags.DEFINE_string("table", "", "Table of --query_corruptions: imagenet, cifar, mnist; '' = by image size.")
flags.DEFINE_list("ks", ["1", "10", "100"], "k of precision@k.")
flags.DEFINE_integer("batch_size", 256, "Eval batch size (a multiple of the device count).")
flags.DEFINE_bool("overwrite", False, "Recompute cached per-run results.")
flags.mark_flags_as_required(["workdirs", "out"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    settings = dict(
        splits=(FLAGS.split,),
        database_split=FLAGS.database_split,
        batch_size=FLAGS.batch_size,
        ks=tuple(int(k) for k in FLAGS.ks),
        query_corruptions=tuple(FLAGS.query_corruptions),
        table=FLAGS.table,
    )
    groups = runs.group_runs(FLAGS.workdirs)
    cache = f"retrieval-{FLAGS.split}".replace("/", "_")
    results = {
        group: [runs.evaluate_run(r, "retrieval", settings, cache=cache, overwrite=FLAGS.overwrite) for r in members]
        for group, members in groups.items()
    }
    table, curves = summarize(results, split=FLAGS.split)
    title = f"queries: {FLAGS.split}, database: {FLAGS.database_split}"
    report.write_outputs(
        FLAGS.out,
        "retrieval",
        data={
            "settings": settings,
            "runs": groups,
            "checkpoints": {run: runs.checkpoint_fingerprint(run) for members in groups.values() for run in members},
            "results": results,
        },
        markdown=table,
        figure=lambda path: report.pr_plot(curves, path, title=title),
    )


if __name__ == "__main__":
    errors.run(main)
