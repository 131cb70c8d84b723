"""The metrics the trainer reports for one evaluation split, from logits and labels."""

from __future__ import annotations

import numpy as np

from sagejax.evaluate.classification import accuracy, auroc
from sagejax.evaluate.pad import apcer_at_bpcer, equal_error_rate


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def split_metrics(*, logits, labels, attack_class: int | None = None, attack_types=None) -> dict[str, float]:
    """Accuracy; for two-class tasks AUROC of class 1; with `attack_class`, the PAD rates (ISO/IEC 30107-3).

    PAD score = softmax probability of `attack_class`; APCER is the maximum over `attack_types`
    (names per example, bona fide examples ignored) when given.
    """
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    metrics = {"accuracy": accuracy(logits_or_preds=logits, labels=labels)}
    probs = _softmax(logits)
    two_classes_present = np.unique(labels).size == 2
    if logits.shape[-1] == 2 and two_classes_present:
        metrics["auroc"] = auroc(scores=probs[:, 1], labels=labels == 1)
    if attack_class is not None and two_classes_present:
        scores, is_attack = probs[:, attack_class], labels == attack_class
        rates = apcer_at_bpcer(scores=scores, is_attack=is_attack, bpcer_target=0.01, attack_types=attack_types)
        metrics["apcer_at_bpcer1"] = rates.apcer
        metrics["bpcer_at_bpcer1"] = rates.bpcer
        metrics["eer"] = equal_error_rate(scores=scores, is_attack=is_attack).eer
    return metrics
