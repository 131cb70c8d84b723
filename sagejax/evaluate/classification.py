"""Closed-set classification metrics on host arrays: accuracy, AUROC (binary and one-vs-rest), confusion matrix."""

import dataclasses
import warnings

import numpy as np

from sagejax.evaluate import _checks

AVERAGES = ("macro", "weighted")


def _predictions(logits_or_preds, labels: np.ndarray) -> np.ndarray:
    """Integer predictions from (N, K) logits/probabilities (argmax) or from (N,) integer predictions."""
    x = np.asarray(logits_or_preds)
    if x.ndim == 2 and x.shape[0] == labels.shape[0]:
        if x.shape[1] == 0:
            raise ValueError("logits_or_preds has a class axis of size 0")
        if np.isnan(x).any():
            raise ValueError("logits_or_preds contains NaN")
        return np.argmax(x, axis=-1)
    if x.shape != labels.shape:
        raise ValueError(
            f"shape mismatch: logits_or_preds has shape {x.shape}, labels have shape {labels.shape}"
            " (expected (N, K) logits or (N,) integer predictions)"
        )
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"1-D logits_or_preds must be integer class ids, got dtype {x.dtype}")
    return x.astype(np.int64)


def accuracy(*, logits_or_preds, labels) -> float:
    """Fraction of samples whose predicted class (argmax of (N, K) logits, or (N,) integer ids) equals the label."""
    labels = _checks.labels_1d(labels)
    return float(np.mean(_predictions(logits_or_preds, labels) == labels))


def confusion_matrix(*, logits_or_preds, labels, num_classes: int | None = None) -> np.ndarray:
    """(K, K) int64 counts, rows = true class, columns = predicted class (the sklearn layout).

    K defaults to the logits' class axis, or to 1 + the largest id seen in labels and predictions.
    """
    labels = _checks.labels_1d(labels)
    preds = _predictions(logits_or_preds, labels)
    if num_classes is None:
        given = np.asarray(logits_or_preds)
        num_classes = given.shape[1] if given.ndim == 2 else int(max(labels.max(), preds.max())) + 1
    if (preds < 0).any():
        raise ValueError(f"predictions contain negative class ids: {np.unique(preds[preds < 0])[:5]}")
    largest = int(max(labels.max(), preds.max()))
    if largest >= num_classes:
        raise ValueError(f"class ids must lie in [0, {num_classes}), found {largest} in labels or predictions")
    flat = np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _auroc_unchecked(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann–Whitney AUROC = P(s⁺ > s⁻) + ½·P(s⁺ = s⁻), from average ranks kept as exact integers (×2)."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # Twice the average 1-based rank of each tie group: last rank + first rank = 2·cumsum − count + 1.
    ranks_x2 = (2 * np.cumsum(counts) - counts + 1)[inverse.reshape(-1)]
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    u_x2 = int(ranks_x2[positive].sum()) - n_pos * (n_pos + 1)
    return u_x2 / (2 * n_pos * n_neg)


def auroc(*, scores, labels) -> float:
    """Area under the ROC curve for binary labels (1 = positive, higher score = more positive); ties count ½.

    Raises ValueError when only one class is present (AUROC undefined) or scores contain NaN.
    """
    scores = _checks.scores_1d(scores)
    positive = _checks.binary_1d(labels, "labels", scores.size)
    n_pos = int(positive.sum())
    if n_pos in (0, positive.size):
        raise ValueError(
            f"AUROC needs both classes, but only one class is present in labels ({n_pos} positives of {positive.size})"
        )
    return _auroc_unchecked(scores, positive)


@dataclasses.dataclass(frozen=True)
class OneVsRestAUROC:
    """Per-class one-vs-rest AUROC, their average, and the classes skipped (absent from, or all of, labels)."""

    per_class: dict[int, float]
    average: float
    skipped: tuple[int, ...]


def auroc_one_vs_rest(*, probs, labels, average: str = "macro") -> OneVsRestAUROC:
    """AUROC of column k of (N, K) `probs` for "class k vs the rest", per class and averaged over classes.

    average="macro" is the plain mean, "weighted" weights each class by its count in labels (sklearn's).
    Classes with no positives (or no negatives) in labels are skipped, listed in `skipped` and warned about.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    labels = _checks.labels_1d(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"shape mismatch: probs has shape {probs.shape}, expected ({labels.shape[0]}, K)")
    if np.isnan(probs).any():
        raise ValueError("probs contains NaN")
    num_classes = probs.shape[1]
    if labels.max() >= num_classes:
        raise ValueError(f"labels contain class {int(labels.max())}, but probs has only {num_classes} columns")
    counts = np.bincount(labels, minlength=num_classes)
    evaluated = [k for k in range(num_classes) if 0 < counts[k] < labels.size]
    skipped = tuple(k for k in range(num_classes) if k not in evaluated)
    if not evaluated:
        raise ValueError("one-vs-rest AUROC needs at least two classes present in labels, found one")
    if skipped:
        warnings.warn(f"auroc_one_vs_rest: skipped classes {skipped} (absent from labels, or the only class)")
    per_class = {k: _auroc_unchecked(probs[:, k], labels == k) for k in evaluated}
    weights = counts[evaluated] if average == "weighted" else np.ones(len(evaluated))
    value = float(np.average([per_class[k] for k in evaluated], weights=weights))
    return OneVsRestAUROC(per_class=per_class, average=value, skipped=skipped)
