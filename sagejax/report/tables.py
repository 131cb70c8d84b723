"""Markdown tables and "mean ± std" cells, one writer for every command and the trainer's results table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MISSING = "—"


def mean_std(values, *, scale: float = 1.0, digits: int = 1) -> str:
    """ "mean ± std" of `values` × `scale` (population std, over seeds or runs); a single value prints alone and no
    value prints "—", so one seed never reads as "83.3 ± 0.0"."""
    values = np.asarray(values, dtype=np.float64).ravel() * scale
    if values.size == 0:
        return MISSING
    if values.size == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table (no trailing newline); every row must have the header's number of cells."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a table row has {len(row)} cells for {len(header)} columns: {list(row)}")
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
