"""Sweeps over config keys × seeds: grid or one-axis-at-a-time points, each checked before any run, finished runs
reused, the point chosen on a validation split only and its test metrics reported; tables and a plot per axis. The
command line is `sagejax sweep` (`sagejax.tools.sweep`)."""

from __future__ import annotations

import ast
import copy
import itertools
import json
import os
import statistics
from collections.abc import Sequence

from absl import logging

from sagejax import methods, report, storage
from sagejax import runs as runs_lib
from sagejax.errors import ConfigError

SELECTION_SPLIT_PREFIX = "val"  # selection may read validation splits only; test is reported once, at the end


def _split_top_level(text: str, separator: str) -> list[str]:
    """Splits at `separator` outside brackets and quotes, so '(1, 2),3' gives ['(1, 2)', '3']."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def _literal(text: str):
    """A grid value: a Python literal (2, 0.5, True, ('x', 'x_keep')), else the text itself as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_grid(text: str) -> dict[str, list]:
    """'a.b=1,2;c=x' → {"a.b": [1, 2], "c": ["x"]}; refuses an empty grid, an axis without values, a repeated key."""
    grid = {}
    for axis in _split_top_level(text or "", ";"):
        if not axis:
            continue
        key, has_value, values = axis.partition("=")
        key = key.strip()
        if not has_value or not key:
            raise ConfigError(f"--grid axis {axis!r} is not key=v1,v2,...")
        if key in grid:
            raise ConfigError(f"--grid names {key!r} twice")
        parsed = [_literal(value) for value in _split_top_level(values, ",") if value]
        if not parsed:
            raise ConfigError(f"--grid axis {key!r} has no values")
        repeated = _repeated(parsed)
        if repeated:
            raise ConfigError(f"--grid axis {key!r} gives one value twice: {repeated} (one run would count twice)")
        grid[key] = parsed
    if not grid:
        raise ConfigError("--grid is empty; give at least one axis, e.g. 'method.temperature=1,2,4'")
    return grid


def _repeated(values) -> list:
    """The values of `values` equal to an earlier one (1 and 1.0 are the same point), in order."""
    seen, repeated = [], []
    for value in values:
        (repeated if any(_same_value(value, earlier) for earlier in seen) else seen).append(value)
    return repeated


def _same_value(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # True is not the number 1 here
        return type(a) is type(b) and a == b
    return a == b


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the axes' values, the first axis varying slowest."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def centre_of(grid: dict[str, list]) -> dict:
    """The ablation centre: every axis at its first value."""
    return {key: values[0] for key, values in grid.items()}


def axis_points(grid: dict[str, list]) -> list[dict]:
    """The centre, then each other value of each axis with the rest at the centre: an ablation, one axis at a
    time."""
    centre = centre_of(grid)
    return [centre] + [{**centre, key: value} for key, values in grid.items() for value in values[1:]]


MODES = {"grid": grid_points, "axes": axis_points}


def _get(config, key: str):
    """The config value at dotted `key`, or a ConfigError naming the first missing field."""
    node = config
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not hasattr(node, "keys") or part not in node:
            parent = ".".join(["config", *parts[:depth]])
            known = sorted(node.keys()) if hasattr(node, "keys") else []
            raise ConfigError(f"--grid key {key!r}: {parent} has no field {part!r}; its fields: {known}")
        node = node[part]
    return node


def _as_config_value(old, value):
    """The grid value in the config field's type (a list for a tuple field, int for a float field)."""
    if isinstance(old, tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(old, tuple) and isinstance(value, str):
        return (value,)
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def point_config(base, point: dict):
    """A copy of `base` with the point's values set; a wrong type names the key, value and expected type."""
    config = copy.deepcopy(base)
    for key, value in point.items():
        old = _get(config, key)
        new = _as_config_value(old, value)
        if old is not None and type(new) is not type(old):
            raise ConfigError(
                f"--grid {key}={value!r}: expected a {type(old).__name__} like the config's {old!r}, "
                f"got a {type(value).__name__}"
            )
        parent_key, _, field = key.rpartition(".")
        parent = _get(config, parent_key) if parent_key else config
        parent[field] = new
    return config


def _format(value) -> str:
    """A value as it appears in a run directory name and a table cell."""
    if isinstance(value, (tuple, list)):
        return "+".join(_format(v) for v in value)
    return str(value)


def point_name(base, point: dict) -> str:
    """The run folder of a point: its keys whose value differs from `base`, as k=v joined by ',' ('base' if none)."""
    typed = {k: _as_config_value(_get(base, k), v) for k, v in point.items()}  # 10 and 10.0 name one run
    return ",".join(f"{k}={_format(v)}" for k, v in typed.items() if v != _get(base, k)) or "base"


def check_selection(base, select: str) -> tuple[str, str, str]:
    """(evaluator, split, metric) of `eval/<evaluator>/<split>/<metric>`, checked against the config's evaluators."""
    parts = select.split("/")
    if len(parts) != 4 or parts[0] != "eval":
        raise ConfigError(f"--select {select!r} is not eval/<evaluator>/<split>/<metric>")
    _, name, split, metric = parts
    if name not in base.evals:
        raise ConfigError(f"--select {select!r}: the config has no evaluator {name!r}; it has {sorted(base.evals)}")
    if split not in base.evals[name].splits:
        raise ConfigError(
            f"--select {select!r}: evaluator {name!r} scores {list(base.evals[name].splits)}, not {split!r}"
        )
    if not split.startswith(SELECTION_SPLIT_PREFIX):
        raise ConfigError(
            f"--select {select!r} reads split {split!r}: choose settings on a validation split "
            f"({SELECTION_SPLIT_PREFIX}*); test is reported once, for the chosen point"
        )
    return name, split, metric


def plan(base, grid: dict[str, list], seeds: Sequence[int], mode: str = "grid") -> list[dict]:
    """One entry per (point, seed): its name, values and config, every config checked before anything trains."""
    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r}: choose from {sorted(MODES)}")
    runs = []
    for point in MODES[mode](grid):
        config = point_config(base, point)
        methods.check_config(config.method)  # an impossible setting (T <= 0, an even kernel) fails here, unbuilt
        name = point_name(base, point)
        for seed in seeds:
            seeded = copy.deepcopy(config)
            seeded.seed = seed
            runs.append({"point": name, "values": point, "seed": seed, "config": seeded})
    return runs


def run_dir(workdir: str, run: dict) -> str:
    return os.path.join(workdir, "runs", run["point"], f"seed{run['seed']}")


def finished_results(run: dict, workdir: str) -> dict | None:
    """The results of a finished sweep run (None if unfinished), by the rule every command shares (sagejax.runs)."""
    return runs_lib.finished_results(run["config"], run_dir(workdir, run))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std (0 for one value), as the comparison tables report them."""
    return statistics.fmean(values), statistics.pstdev(values)


def summarize(runs: list[dict], results: list[dict], *, select: str, minimize: bool) -> dict:
    """Per point the selection metric (mean, std, per seed); the chosen point and its non-validation metrics."""
    for run, result in zip(runs, results):
        if select not in result:
            known = sorted(k for k in result if k.startswith(select.rsplit("/", 1)[0]))
            raise ConfigError(f"--select {select!r}: run {run['point']}/seed{run['seed']} has no such metric; {known}")
    points = {}
    for run, result in zip(runs, results):
        entry = points.setdefault(run["point"], {"values": run["values"], "seeds": [], "results": []})
        entry["seeds"].append(run["seed"])
        entry["results"].append(result)
    for entry in points.values():
        entry["select"] = [r[select] for r in entry["results"]]
        entry["mean"], entry["std"] = _mean_std(entry["select"])
    best = (min if minimize else max)(points, key=lambda name: points[name]["mean"])
    chosen = points[best]["results"]
    reported = sorted(
        k for k in chosen[0] if k.startswith("eval/") and not k.split("/")[2].startswith(SELECTION_SPLIT_PREFIX)
    )
    report = {k: _mean_std([r[k] for r in chosen]) for k in reported if all(k in r for r in chosen)}
    return {"select": select, "minimize": minimize, "points": points, "chosen": best, "report": report}


def _cell(mean: float, std: float, scale: float) -> str:
    return f"{scale * mean:.1f} ± {scale * std:.1f}" if scale != 1 else f"{mean:.4f} ± {std:.4f}"


def _scale(metric: str) -> float:
    """Accuracies and rates are shown in %, everything else as it is."""
    return 100.0 if metric.rsplit("/", 1)[-1] in ("accuracy", "apcer", "bpcer", "eer") else 1.0


def _table(summary: dict, axes: list[str], entries: dict) -> list[str]:
    """Markdown rows of `entries` (point name → entry): the `axes` values, the selection metric, the seed count."""
    select = summary["select"]
    lines = [f"| {' | '.join(axes)} | {select} | seeds |", "|" + "---|" * (len(axes) + 2)]
    for name, entry in entries.items():
        marker = " **(chosen)**" if name == summary["chosen"] else ""
        values = [_format(entry["values"][axis]) for axis in axes]
        cell = _cell(entry["mean"], entry["std"], _scale(select))
        lines.append(f"| {' | '.join(values)} | {cell}{marker} | {len(entry['seeds'])} |")
    return lines


def _line(summary: dict, grid: dict[str, list], axis: str, anchor: dict) -> dict:
    """The points along `axis` with every other axis at `anchor`'s value, in the grid's order of that axis."""
    line = {
        name: entry
        for name, entry in summary["points"].items()
        if all(entry["values"][k] == anchor[k] for k in grid if k != axis)
    }
    return dict(sorted(line.items(), key=lambda item: grid[axis].index(item[1]["values"][axis])))


def markdown(summary: dict, grid: dict[str, list], *, mode: str = "grid") -> str:
    """A row per point (grid), or one table per axis around the centre (axes); then the chosen point's reported
    metrics."""
    select = summary["select"]
    if mode == "grid":
        lines = _table(summary, list(grid), summary["points"])
    else:
        centre = centre_of(grid)
        lines = [f"Centre: {', '.join(f'{k}={_format(v)}' for k, v in centre.items())}"]
        for axis, values in grid.items():
            if len(values) > 1:
                lines += ["", *_table(summary, [axis], _line(summary, grid, axis, centre))]
    lines += ["", f"Chosen on `{select}`: `{summary['chosen']}`; its other metrics (mean ± std over seeds):", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(m, s, _scale(k))} |" for k, (m, s) in summary["report"].items()]
    return "\n".join(lines)


def plot_axes(summary: dict, grid: dict[str, list], workdir: str, name: str = "sweep", *, anchor: dict) -> list[str]:
    """`<name>_<axis>.png` per axis with more than one value: the selection metric (mean ± std over seeds) along
    the axis, every other axis at `anchor`'s value (the chosen point of a grid, the centre of an ablation)."""
    plt = report.pyplot()
    scale, paths = _scale(summary["select"]), []
    for axis, values in grid.items():
        if len(values) < 2:
            continue
        line = list(_line(summary, grid, axis, anchor).values())
        labels = [_format(entry["values"][axis]) for entry in line]
        means = [scale * entry["mean"] for entry in line]
        stds = [scale * entry["std"] for entry in line]
        fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=120)
        ax.errorbar(range(len(line)), means, yerr=stds, marker="o", capsize=3)
        ax.set_xticks(range(len(line)), labels)
        ax.set_xlabel(axis)
        ax.set_ylabel(summary["select"].split("/", 1)[1] + (" (%)" if scale != 1 else ""))
        others = ", ".join(f"{k}={_format(v)}" for k, v in anchor.items() if k != axis)
        ax.set_title(others or "sweep", fontsize=7)
        paths.append(report.save_figure(fig, f"{workdir}/{name}_{axis}.png"))
    return paths


def sweep(
    base,
    *,
    grid: dict[str, list],
    seeds: Sequence[int],
    select: str,
    workdir: str,
    minimize: bool = False,
    mode: str = "grid",
    name: str = "sweep",
    process_index: int = 0,
    process_count: int = 1,
) -> dict | None:
    """Trains this process's share of the (point, seed) runs, reusing finished ones; returns the summary (also
    written to WORKDIR/<name>.*) once every run is finished, else None."""
    if not 0 <= process_index < process_count:
        raise ConfigError(f"--process_index {process_index} must be in [0, --process_count={process_count})")
    if not seeds:
        raise ConfigError("--seeds is empty")
    if _repeated(seeds):
        raise ConfigError(f"--seeds repeats {_repeated(seeds)}: a seed given twice would count one run twice")
    check_selection(base, select)
    runs = plan(base, grid, seeds, mode)
    results = [finished_results(run, workdir) for run in runs]
    for i, run in enumerate(runs):
        if i % process_count == process_index and results[i] is None:
            logging.warning("sweep: training %s seed %d (%d of %d)", run["point"], run["seed"], i + 1, len(runs))
            results[i] = runs_lib.train_or_reuse(run["config"], run_dir(workdir, run))
            if results[i] is None:  # SIGTERM: the run saved and stopped, so does the sweep
                print(f"sweep stopped in {run_dir(workdir, run)} (checkpoint saved); rerun the command to continue")
                return None
    # Runs of other processes may have finished while this one trained.
    results = [result or finished_results(run, workdir) for run, result in zip(runs, results)]
    missing = [f"{run['point']}/seed{run['seed']}" for run, result in zip(runs, results) if result is None]
    if missing:
        print(f"{len(runs) - len(missing)} of {len(runs)} runs finished; waiting for {missing[:5]} of other processes")
        return None
    summary = summarize(runs, results, select=select, minimize=minimize)
    folder = storage.path(workdir)
    storage.write_text(
        folder / f"{name}.json",
        json.dumps({"grid": grid, "seeds": list(seeds), "mode": mode, **summary}, indent=2, default=_format),
    )
    table = markdown(summary, grid, mode=mode)
    storage.write_text(folder / f"{name}.md", table + "\n")
    anchor = summary["points"][summary["chosen"]]["values"] if mode == "grid" else centre_of(grid)
    plot_axes(summary, grid, workdir, name, anchor=anchor)
    print(table)
    return summary
