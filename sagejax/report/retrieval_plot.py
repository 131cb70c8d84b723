"""Retrieval figure: interpolated precision–recall curves of several runs on one plot."""

from __future__ import annotations

import numpy as np

from sagejax.report._figure import pyplot, save


def pr_plot(curves: dict[str, tuple[list[float], list[list[float]]]], path: str, *, title: str = "") -> str:
    """`curves` = {label: (recall levels, [precision at each level, one list per run])}: a line per label (mean over
    runs, ± std shaded); writes `path` and returns it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    for label, (recall, precisions) in curves.items():
        values = np.array(precisions, dtype=float)
        mean, std = values.mean(0), values.std(0)
        (line,) = ax.plot(recall, mean, label=label)
        ax.fill_between(recall, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("recall")
    ax.set_ylabel("interpolated precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return save(fig, path)
