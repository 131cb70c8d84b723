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

import json
import os

from absl import flags, logging

from sagejax import errors, report, runs
from sagejax.evaluate.retrieval_metrics import RECALL_LEVELS
from sagejax.report import tables

FLAGS = flags.FLAGS


def _define_flags() -> None:
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


def query_sets(metrics: dict[str, float], split: str) -> list[str]:
    """The query-set prefixes of one run's metrics: the clean split first, then each corruption."""
    prefixes = {key.rsplit("/", 1)[0] for key in metrics if key.endswith("/mAP")}
    return [split] + sorted(p for p in prefixes if p != split)


def summarize(results: dict[str, list[dict]], *, split: str) -> tuple[str, dict]:
    """The markdown table (a row per group and query set) and the curves {"<group> · <query set>": (recall,
    precisions per run)}."""
    first = next(iter(results.values()))[0]
    scalars = [
        "mAP",
        *sorted(k.rsplit("/", 1)[1] for k in first if k.startswith(f"{split}/precision@") and "recall" not in k),
        "r_precision",
    ]
    lines = ["| group (runs) | queries | " + " | ".join(scalars) + " |", "|---" * (len(scalars) + 2) + "|"]
    curves = {}
    for group, metrics in results.items():
        for prefix in query_sets(metrics[0], split):
            name = "clean" if prefix == split else prefix[len(split) + 1 :]
            cells = []
            for scalar in scalars:
                cells.append(tables.mean_std([m[f"{prefix}/{scalar}"] for m in metrics], scale=100))
            lines.append(f"| {group} ({len(metrics)}) | {name} | " + " | ".join(cells) + " |")
            precisions = [[m[f"{prefix}/precision@recall={r:.1f}"] for r in RECALL_LEVELS] for m in metrics]
            curves[f"{group} · {name}"] = (list(RECALL_LEVELS), precisions)
    return "\n".join(lines) + "\n", curves


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
    os.makedirs(FLAGS.out, exist_ok=True)
    with open(os.path.join(FLAGS.out, "retrieval.json"), "w", encoding="utf-8") as f:
        json.dump({"settings": settings, "runs": groups, "results": results}, f, indent=1)
    with open(os.path.join(FLAGS.out, "retrieval.md"), "w", encoding="utf-8") as f:
        f.write(table)
    title = f"queries: {FLAGS.split}, database: {FLAGS.database_split}"
    report.pr_plot(curves, os.path.join(FLAGS.out, "retrieval.png"), title=title)
    print(table)


if __name__ == "__main__":
    _define_flags()
    errors.run(main)
