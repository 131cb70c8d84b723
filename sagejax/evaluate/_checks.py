"""Input checks shared by the metrics: each failure raises a ValueError that names the problem."""

import numpy as np


def scores_1d(scores, name: str = "scores", *, allow_inf: bool = True) -> np.ndarray:
    """`scores` as a non-empty 1-D float64 array without NaN (and without ±inf unless `allow_inf`)."""
    x = np.asarray(scores)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if np.isnan(x).any():
        raise ValueError(f"{name} contains NaN at {int(np.isnan(x).sum())} position(s)")
    if not allow_inf and np.isinf(x).any():
        raise ValueError(f"{name} contains ±inf at {int(np.isinf(x).sum())} position(s); finite scores are required")
    return x


def binary_1d(values, name: str, length: int) -> np.ndarray:
    """`values` as a 1-D bool array of `length`; accepts bool or 0/1 numbers and rejects anything else."""
    x = np.asarray(values)
    if x.shape != (length,):
        raise ValueError(f"shape mismatch: {name} has shape {x.shape}, scores have shape {(length,)}")
    if x.dtype == bool:
        return x
    if not (np.issubdtype(x.dtype, np.number) and np.isin(x, (0, 1)).all()):
        raise ValueError(f"{name} must be binary (bool or 0/1), found values {np.unique(x)[:5]}")
    return x.astype(bool)


def labels_1d(labels, name: str = "labels") -> np.ndarray:
    """Integer class labels as a non-empty 1-D int64 array with no negative entries."""
    x = np.asarray(labels)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name} must be integer class ids, got dtype {x.dtype}")
    if (x < 0).any():
        raise ValueError(f"{name} contains negative class ids: {np.unique(x[x < 0])[:5]}")
    return x.astype(np.int64)
