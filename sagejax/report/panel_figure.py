"""Saliency panels: a grid with a row per example and a column per image or map (image, human map, SAGE's views,
the model's attention)."""

from __future__ import annotations

import numpy as np

from sagejax.report._figure import pyplot, save


def saliency_panels(columns: dict[str, np.ndarray], path: str, *, row_labels=(), title: str = "") -> str:
    """`columns` = {title: (N,H,W,C) images in [0,1] or (N,H,W) maps (shown min-max scaled, in a colour map)}, all
    with N rows; writes `path` and returns it."""
    plt = pyplot()
    arrays = [np.asarray(a, np.float32) for a in columns.values()]
    rows = len(arrays[0])
    if any(len(a) != rows for a in arrays):
        raise ValueError(f"every column needs {rows} rows, got {[len(a) for a in arrays]}")
    fig, axes = plt.subplots(rows, len(arrays), figsize=(1.6 * len(arrays), 1.6 * rows + 0.4), dpi=110, squeeze=False)
    for j, (name, values) in enumerate(zip(columns, arrays)):
        for i in range(rows):
            ax = axes[i, j]
            if values.ndim == 4:
                ax.imshow(
                    np.clip(values[i], 0, 1).squeeze(-1) if values.shape[-1] == 1 else np.clip(values[i], 0, 1),
                    cmap="gray" if values.shape[-1] == 1 else None,
                    vmin=0,
                    vmax=1,
                )
            else:
                low, high = values[i].min(), values[i].max()
                ax.imshow(
                    (values[i] - low) / (high - low) if high > low else np.zeros_like(values[i]),
                    cmap="inferno",
                    vmin=0,
                    vmax=1,
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0 and i < len(row_labels):
                ax.set_ylabel(row_labels[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    return save(fig, path)
