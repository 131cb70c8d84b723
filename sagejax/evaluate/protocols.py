"""Open-set evaluation protocols: leave-one-attack-type-out splits, and result tables (markdown, JSON).

Leave-one-attack-out convention: the caller passes per-sample types of the training partition (`attack_types`)
and of the test partition (`test_attack_types`), bona fide samples labelled `bona_fide_label`. Bona fide samples
are in both masks, each mask over its own partition, so no sample is shared. Without `test_attack_types` both masks
index the one array and share its bona fide samples: the caller must then keep train and test bona fide apart.
"""

import json
import math

import numpy as np

from sagejax import storage

MEAN_ROW = "mean ± std"


def _types_1d(attack_types, name: str, bona_fide_label) -> np.ndarray:
    """Per-sample attack types as a 1-D object array that contains at least one bona fide sample."""
    types = np.asarray(attack_types, dtype=object)
    if types.ndim != 1 or types.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of per-sample types, got shape {types.shape}")
    if not (types == bona_fide_label).any():
        raise ValueError(f"no bona fide samples (label {bona_fide_label!r}) in {name}")
    return types


def leave_one_attack_out_splits(
    attack_types,
    *,
    test_attack_types=None,
    bona_fide_label="bona_fide",
) -> list[tuple[object, np.ndarray, np.ndarray]]:
    """Per attack type of the test partition: (type, train_mask over `attack_types` = all but that type,
    test_mask over `test_attack_types` = bona fide + that type); see the module docstring for the convention.
    """
    train = _types_1d(attack_types, "attack_types", bona_fide_label)
    test = train if test_attack_types is None else _types_1d(test_attack_types, "test_attack_types", bona_fide_label)
    held_out = sorted(set(test[test != bona_fide_label].tolist()), key=str)
    if not held_out:
        raise ValueError("no attack samples in the test partition: nothing to hold out")
    return [(t, train != t, (test == bona_fide_label) | (test == t)) for t in held_out]


def _column_stats(results: dict[str, dict[str, float]]) -> tuple[list[str], dict[str, float], dict[str, float]]:
    """Metric names (first-seen order), and per metric the mean and population std (ddof=0) over rows."""
    if not results:
        raise ValueError("results is empty: nothing to summarise")
    metrics = list(dict.fromkeys(m for row in results.values() for m in row))
    mean, std = {}, {}
    for m in metrics:
        values = np.array([float(row[m]) for row in results.values() if m in row])
        mean[m], std[m] = float(values.mean()), float(values.std())
    return metrics, mean, std


def summarize_results(results: dict[str, dict[str, float]], *, row_header: str = "held out", digits: int = 4) -> str:
    """Markdown table: a row per key of `results` (held-out type or method), a column per metric, a mean ± std row.

    A metric missing from a row shows "—" and is left out of that column's mean and (population, ddof=0) std.
    """
    metrics, mean, std = _column_stats(results)

    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [line([row_header, *metrics]), "|" + "---|" * (len(metrics) + 1)]
    for name, row in results.items():
        lines.append(line([name] + [f"{float(row[m]):.{digits}f}" if m in row else "—" for m in metrics]))
    lines.append(line([MEAN_ROW] + [f"{mean[m]:.{digits}f} ± {std[m]:.{digits}f}" for m in metrics]))
    return "\n".join(lines) + "\n"


def _finite_or_none(metrics: dict) -> dict[str, float | None]:
    """String keys and float values, with NaN/±inf as None so that the JSON stays strict."""
    return {str(k): (float(v) if math.isfinite(float(v)) else None) for k, v in metrics.items()}


def to_json(results: dict[str, dict[str, float]], path):
    """Writes {"rows": results, "mean": …, "std": …} as strict JSON (non-finite values become null) to `path`."""
    _, mean, std = _column_stats(results)
    payload = {
        "rows": {str(name): _finite_or_none(row) for name, row in results.items()},
        "mean": _finite_or_none(mean),
        "std": _finite_or_none(std),
    }
    return storage.write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
