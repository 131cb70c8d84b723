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

import json
import os

import numpy as np
from absl import flags, logging

from sagejax import errors, report, runs
from sagejax.augment import corruptions
from sagejax.evaluate.corruption_error import corruption_errors, errors_by_corruption
from sagejax.report import tables

FLAGS = flags.FLAGS
_ORDER = [*corruptions.CORRUPTIONS, *(name for name in corruptions.MNIST_C if name not in corruptions.CORRUPTIONS)]


def _define_flags() -> None:
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


def evaluate_groups(groups: dict[str, list[str]], settings: dict, *, overwrite: bool = False) -> dict[str, list[dict]]:
    """{group: [metrics of each run]} of the robustness evaluator with `settings`."""
    probe = "-probe" if settings.get("classifier") == "logistic_probe" else ""
    cache = f"robustness-{settings.get('table') or 'auto'}-{settings['splits'][0]}{probe}".replace("/", "_")
    return {
        group: [runs.evaluate_run(run, "robustness", settings, cache=cache, overwrite=overwrite) for run in members]
        for group, members in groups.items()
    }


def mean_metrics(metrics: list[dict]) -> dict[str, float]:
    """The runs' metrics averaged key by key (what a baseline of several seeds is compared against)."""
    return {key: float(np.mean([m[key] for m in metrics])) for key in metrics[0]}


def summarize(results: dict[str, list[dict]], *, split: str, baseline: list[dict] | None) -> dict:
    """{group: {row: [value per run]}}: clean, each corruption (mean over severities), main, validation, and with a
    baseline mCE / relative mCE; plus {group: {severity: [main-corruption accuracy per run]}} for the plot."""
    rows, by_severity = {}, {}
    for group, metrics in results.items():
        errors_per_run = [errors_by_corruption(m, split) for m in metrics]
        names = sorted(errors_per_run[0], key=_ORDER.index)  # the tables' order: main ones, then validation ones
        main = [n for n in names if n in corruptions.MAIN] or names  # MNIST-C: every corruption is a main one
        table = {"clean": [m[f"{split}/clean/accuracy"] for m in metrics]}
        for name in names:
            table[name] = [float(np.mean(1 - e[name])) for e in errors_per_run]
        for group_name in ("main", "validation"):
            key = f"{split}/{group_name}/accuracy"
            if key in metrics[0]:
                table[f"{group_name} mean"] = [m[key] for m in metrics]
        if baseline is not None:
            reference = mean_metrics(baseline)
            scores = [corruption_errors(m, reference, split=split, names=main) for m in metrics]
            table["mCE"] = [s["mCE"] for s in scores]
            table["relative mCE"] = [s["relative_mCE"] for s in scores]
        rows[group] = table
        levels = len(errors_per_run[0][main[0]])
        if levels > 1:
            by_severity[group] = {0: table["clean"]}
            for s in range(levels):
                by_severity[group][s + 1] = [float(np.mean([1 - e[n][s] for n in main])) for e in errors_per_run]
    return {"rows": rows, "by_severity": by_severity}


def markdown(rows: dict[str, dict[str, list[float]]]) -> str:
    """A row per measurement, a column per group: mean ± std over its runs (accuracy in %, mCE as a ratio; "—" where
    a value is undefined)."""
    groups = list(rows)
    names = list(dict.fromkeys(name for table in rows.values() for name in table))
    lines = ["| | " + " | ".join(f"{g} (n={len(rows[g]['clean'])})" for g in groups) + " |"]
    lines.append("|---" * (len(groups) + 1) + "|")
    for name in names:
        cells = []
        for group in groups:
            values = np.array(rows[group].get(name, [np.nan]))
            scale, digits = (1, 3) if "mCE" in name else (100, 1)
            if np.isnan(values).any():  # e.g. relative mCE when the baseline's error does not rise under corruption
                cells.append(tables.MISSING)
                continue
            cells.append(tables.mean_std(values, scale=scale, digits=digits))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
    os.makedirs(FLAGS.out, exist_ok=True)
    with open(os.path.join(FLAGS.out, "robustness.json"), "w", encoding="utf-8") as f:
        json.dump({"settings": settings, "runs": groups, "baseline": FLAGS.baseline, **summary}, f, indent=1)
    table = markdown(summary["rows"])
    with open(os.path.join(FLAGS.out, "robustness.md"), "w", encoding="utf-8") as f:
        f.write(table)
    if summary["by_severity"]:
        report.robustness_plot(summary["by_severity"], os.path.join(FLAGS.out, "robustness.png"), split=FLAGS.split)
    else:
        report.corruption_bars(summary["rows"], os.path.join(FLAGS.out, "robustness.png"), split=FLAGS.split)
    print(table)


if __name__ == "__main__":
    _define_flags()
    errors.run(main)
