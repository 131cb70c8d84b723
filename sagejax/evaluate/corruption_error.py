"""Corruption error against a baseline (Hendrycks & Dietterich, 2019): per corruption, the model's errors summed over
severities divided by the baseline's (CE), and the same for the errors' increase over clean error (relative CE);
mCE and relative mCE average them over the corruptions."""

from __future__ import annotations

import re

import numpy as np

from sagejax.errors import DataError


def errors_by_corruption(metrics: dict[str, float], split: str) -> dict[str, np.ndarray]:
    """{corruption: top-1 errors over its severities, in severity order} from a robustness evaluator's metrics; an
    MNIST-C corruption (no severities) has one."""
    per_severity: dict[str, dict[int, float]] = {}
    for key, value in metrics.items():
        found = re.fullmatch(rf"{re.escape(split)}/(\w+)/(\d)/accuracy", key)
        if found:
            per_severity.setdefault(found[1], {})[int(found[2])] = 1.0 - value
    errors = {name: np.array([by[s] for s in sorted(by)]) for name, by in per_severity.items()}
    for key, value in metrics.items():
        found = re.fullmatch(rf"{re.escape(split)}/(\w+)/accuracy", key)
        if found and found[1] not in errors and found[1] not in ("clean", "main", "validation"):
            errors[found[1]] = np.array([1.0 - value])
    return errors


def corruption_errors(run: dict[str, float], baseline: dict[str, float], *, split: str, names) -> dict[str, float]:
    """{"mCE", "relative_mCE", "CE/<name>", "relative_CE/<name>"} of `run` against `baseline` over `names`, both a
    robustness evaluator's metrics (a baseline may be a mean over its seeds). Raises naming a corruption or severity
    the baseline lacks, or one it gets exactly right (CE would divide by zero)."""
    ours, theirs = errors_by_corruption(run, split), errors_by_corruption(baseline, split)
    clean, clean_base = 1.0 - run[f"{split}/clean/accuracy"], 1.0 - baseline[f"{split}/clean/accuracy"]
    out = {}
    for name in names:
        if name not in theirs or theirs[name].shape != ours[name].shape:
            raise DataError(f"the baseline has no {split} errors for {name!r} at the run's severities")
        if theirs[name].sum() == 0:
            raise DataError(f"the baseline makes no error on {name!r}: its corruption error is undefined")
        out[f"CE/{name}"] = float(ours[name].sum() / theirs[name].sum())
        increase = (theirs[name] - clean_base).sum()
        out[f"relative_CE/{name}"] = float((ours[name] - clean).sum() / increase) if increase > 0 else float("nan")
    out["mCE"] = float(np.mean([out[f"CE/{name}"] for name in names]))
    out["relative_mCE"] = float(np.mean([out[f"relative_CE/{name}"] for name in names]))
    return out
