"""Robustness figures: accuracy against corruption severity, and per-corruption accuracy (MNIST-C)."""

from __future__ import annotations

import numpy as np

from sagejax.report._figure import pyplot, save


def robustness_plot(by_severity: dict[str, dict[int, list[float]]], path: str, *, split: str) -> str:
    """A line per group: accuracy (mean ± std over its runs) on clean images (severity 0) and averaged over the main
    corruptions at each severity; writes `path` and returns it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    for group, levels in by_severity.items():
        severities = sorted(levels)
        values = np.array([levels[s] for s in severities], dtype=float)
        mean, std = 100 * values.mean(1), 100 * values.std(1)
        (line,) = ax.plot(severities, mean, marker="o", label=group)
        ax.fill_between(severities, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xticks(range(6), ["clean", "1", "2", "3", "4", "5"])
    ax.set_xlabel("severity")
    ax.set_ylabel(f"{split} accuracy (%), main corruptions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def corruption_bars(rows: dict[str, dict[str, list[float]]], path: str, *, split: str) -> str:
    """Grouped bars: accuracy (mean ± std over runs) per corruption and clean, a colour per group."""
    plt = pyplot()
    names = [n for n in next(iter(rows.values())) if n not in ("main mean", "validation mean", "mCE", "relative mCE")]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) * len(rows)), 3.8), dpi=120)
    width = 0.8 / len(rows)
    for i, (group, table) in enumerate(rows.items()):
        values = np.array([table[n] for n in names], dtype=float)
        x = np.arange(len(names)) + (i - (len(rows) - 1) / 2) * width
        ax.bar(x, 100 * values.mean(1), width, yerr=100 * values.std(1), label=group, capsize=2)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"{split} accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
