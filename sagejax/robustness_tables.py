"""Robustness of trained runs grouped by method: the evaluator run on each (cached in the run), means over severities
and corruptions, corruption errors against a baseline group, and the markdown table; its command line is
`sagejax robustness`."""

from __future__ import annotations

import numpy as np

from sagejax import runs
from sagejax.augment import corruptions
from sagejax.evaluate.corruption_error import corruption_errors, errors_by_corruption
from sagejax.report import tables

_ORDER = [*corruptions.CORRUPTIONS, *(name for name in corruptions.MNIST_C if name not in corruptions.CORRUPTIONS)]


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
