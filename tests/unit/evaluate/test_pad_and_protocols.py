"""Evaluation metrics: AUROC, accuracy, ISO/IEC 30107-3 PAD rates, leave-one-attack-out protocols."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from sagejax import evaluate


def _pairwise_auroc(scores, labels):
    """Brute-force reference: share of (positive, negative) pairs ordered correctly, ties counting ½."""
    pos = scores[labels == 1][:, None]
    neg = scores[labels == 0][None, :]
    return (np.sum(pos > neg) + 0.5 * np.sum(pos == neg)) / (pos.size * neg.size)


def _pad_case():
    """Two attack types; bona fide 0.5 and attack 0.5 sit exactly on the threshold 0.5."""
    scores = np.array([0.1, 0.2, 0.3, 0.5, 0.4, 0.5, 0.9, 0.2, 0.3, 0.6, 0.8])
    is_attack = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    types = np.array(["bona_fide"] * 4 + ["print"] * 3 + ["replay"] * 4)
    return scores, is_attack, types


# ---------------------------------------------------------------- AUROC


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_pairwise_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 60
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 6, n) + 0.7 * labels  # few distinct values: many ties, within and across classes
    assert len(np.unique(scores)) < n // 4
    ours = evaluate.auroc(scores=scores, labels=labels)
    np.testing.assert_allclose(ours, _pairwise_auroc(scores, labels), atol=1e-12)


def test_auroc_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 500).astype(bool)
    scores = np.round(rng.normal(size=500) + labels, 1)  # rounding creates ties
    np.testing.assert_allclose(
        evaluate.auroc(scores=scores, labels=labels), metrics.roc_auc_score(labels, scores), atol=1e-12
    )


def test_auroc_extremes():
    labels = np.array([0, 0, 0, 1, 1])
    assert evaluate.auroc(scores=np.array([0.1, 0.2, 0.3, 0.8, 0.9]), labels=labels) == 1.0
    assert evaluate.auroc(scores=np.array([0.9, 0.8, 0.7, 0.2, 0.1]), labels=labels) == 0.0
    assert evaluate.auroc(scores=np.full(5, 0.4), labels=labels) == 0.5
    # Rank-based: any strictly increasing transform of the scores leaves AUROC unchanged.
    s = np.array([0.3, -1.0, 2.0, 0.5, 0.1])
    assert evaluate.auroc(scores=s, labels=labels) == evaluate.auroc(scores=np.exp(3 * s), labels=labels)


def test_auroc_rejects_bad_inputs():
    with pytest.raises(ValueError, match="only one class"):
        evaluate.auroc(scores=np.array([0.1, 0.2, 0.3]), labels=np.array([1, 1, 1]))
    with pytest.raises(ValueError, match="NaN"):
        evaluate.auroc(scores=np.array([0.1, np.nan, 0.3]), labels=np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="binary"):
        evaluate.auroc(scores=np.array([0.1, 0.2, 0.3]), labels=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="shape mismatch"):
        evaluate.auroc(scores=np.array([0.1, 0.2, 0.3]), labels=np.array([0, 1]))


def test_one_vs_rest_hand_checked():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [  # column 3 is a class absent from labels
            [0.8, 0.1, 0.1, 0.0],
            [0.6, 0.2, 0.2, 0.0],
            [0.1, 0.5, 0.4, 0.0],
            [0.7, 0.3, 0.0, 0.0],
            [0.2, 0.5, 0.9, 0.0],
            [0.3, 0.1, 0.0, 0.0],
        ]
    )
    # Class 0: 0.8 beats all 4 negatives, 0.6 beats 3 (not 0.7)       → 7/8.
    # Class 1: 0.5 beats 3 and ties 1 (3.5), 0.3 beats 0.1, 0.2, 0.1   → 6.5/8.
    # Class 2: 0.9 beats 4, 0.0 ties the one 0.0 negative (0.5)        → 4.5/8.
    with pytest.warns(UserWarning, match=r"skipped classes \(3,\)"):
        result = evaluate.auroc_one_vs_rest(probs=probs, labels=labels)
    assert result.per_class == {0: 0.875, 1: 0.8125, 2: 0.5625}
    assert result.skipped == (3,)
    assert result.average == pytest.approx(0.75)


def test_one_vs_rest_matches_sklearn_macro_and_weighted():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    labels = rng.choice(3, size=300, p=[0.6, 0.3, 0.1])
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    for average in ("macro", "weighted"):
        ours = evaluate.auroc_one_vs_rest(probs=probs, labels=labels, average=average).average
        ref = metrics.roc_auc_score(labels, probs, multi_class="ovr", average=average)
        np.testing.assert_allclose(ours, ref, atol=1e-12)
    with pytest.raises(ValueError, match="average must be one of"):
        evaluate.auroc_one_vs_rest(probs=probs, labels=labels, average="micro")
    with pytest.raises(ValueError, match="only 2 columns"):
        evaluate.auroc_one_vs_rest(probs=probs[:, :2], labels=labels)


# ---------------------------------------------------------------- accuracy, confusion matrix


def test_accuracy_and_confusion_matrix():
    labels = np.array([0, 1, 2, 2, 1])
    logits = np.array([[3.0, 0, 0], [0, 2, 1], [0, 5, 1], [0, 0, 1], [4, 0, 0]])  # argmax 0, 1, 1, 2, 0
    assert evaluate.accuracy(logits_or_preds=logits, labels=labels) == 0.6
    assert evaluate.accuracy(logits_or_preds=np.array([0, 1, 1, 2, 0]), labels=labels) == 0.6
    cm = evaluate.confusion_matrix(logits_or_preds=logits, labels=labels)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [1, 1, 0], [0, 1, 1]])  # rows = true, columns = predicted
    assert cm.sum() == 5 and np.trace(cm) / cm.sum() == 0.6
    cm4 = evaluate.confusion_matrix(logits_or_preds=np.array([0, 1]), labels=np.array([1, 1]), num_classes=4)
    assert cm4.shape == (4, 4) and cm4[1, 0] == cm4[1, 1] == 1
    # Device arrays from the eval step work as they are.
    assert evaluate.accuracy(logits_or_preds=jnp.asarray(logits), labels=jnp.asarray(labels)) == 0.6


def test_accuracy_rejects_bad_inputs():
    with pytest.raises(ValueError, match="must be integer class ids"):
        evaluate.accuracy(logits_or_preds=np.array([0.2, 0.9]), labels=np.array([0, 1]))
    with pytest.raises(ValueError, match="shape mismatch"):
        evaluate.accuracy(logits_or_preds=np.zeros((3, 2)), labels=np.array([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        evaluate.accuracy(logits_or_preds=np.array([[np.nan, 1.0]]), labels=np.array([0]))
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 2\)"):
        evaluate.confusion_matrix(logits_or_preds=np.array([0, 3]), labels=np.array([0, 1]), num_classes=2)


# ---------------------------------------------------------------- PAD (ISO/IEC 30107-3)


def test_apcer_bpcer_hand_built_two_attack_types():
    scores, is_attack, types = _pad_case()
    r = evaluate.apcer_bpcer(scores=scores, is_attack=is_attack, threshold=0.5, attack_types=types)
    assert r.bpcer == 0.25  # the bona fide 0.5 == threshold is classified as an attack
    assert r.apcer_per_type == {"print": pytest.approx(1 / 3), "replay": 0.5}  # print 0.5 == threshold is caught
    assert r.apcer == 0.5  # max over types, not the pooled 3/7
    assert r.apcer_pooled == pytest.approx(3 / 7)
    assert r.threshold == 0.5
    # Just above the threshold both ties flip: the bona fide 0.5 is accepted, the print attack 0.5 is missed.
    r_up = evaluate.apcer_bpcer(scores=scores, is_attack=is_attack, threshold=np.nextafter(0.5, 1), attack_types=types)
    assert r_up.bpcer == 0.0
    assert r_up.apcer_per_type["print"] == pytest.approx(2 / 3)
    # Without types every attack is one type, so the reported APCER is the pooled one.
    r_one = evaluate.apcer_bpcer(scores=scores, is_attack=is_attack, threshold=0.5)
    assert r_one.apcer == r_one.apcer_pooled == pytest.approx(3 / 7)


def _brute_force_apcer_at_bpcer(scores, is_attack, target):
    """Tries every threshold: each observed score, a point between each neighbouring pair, below all, above all."""
    u = np.unique(scores)
    thresholds = np.concatenate([u, (u[:-1] + u[1:]) / 2, [u[0] - 1, u[-1] + 1]])
    best_apcer = np.inf
    for t in thresholds:
        flagged = scores >= t
        if np.mean(flagged[is_attack == 0]) <= target:
            best_apcer = min(best_apcer, np.mean(~flagged[is_attack == 1]))
    return best_apcer


@pytest.mark.parametrize("seed", range(4))
def test_apcer_at_bpcer_is_least_strict_admissible_threshold(seed):
    rng = np.random.default_rng(seed)
    n_bona, n_att = 300, 200
    scores = np.round(np.concatenate([rng.normal(0, 1, n_bona), rng.normal(2.5, 1, n_att)]), 1)  # ties
    is_attack = np.array([0] * n_bona + [1] * n_att)
    r = evaluate.apcer_at_bpcer(scores=scores, is_attack=is_attack, bpcer_target=0.01)
    flagged_bona = scores[is_attack == 0] >= r.threshold
    assert r.bpcer <= 0.01 and r.bpcer == np.mean(flagged_bona)
    # The next lower observed score as threshold would break the target: nothing less strict is admissible.
    lower = np.max(scores[scores < r.threshold])
    assert np.mean(scores[is_attack == 0] >= lower) > 0.01
    assert r.apcer == pytest.approx(_brute_force_apcer_at_bpcer(scores, is_attack, 0.01))


def test_apcer_at_bpcer_ties_and_discreteness():
    # Three bona fide share the top score 0.9; a 1% target on 100 bona fide allows one error, so the whole
    # tie group must be accepted and the threshold moves above 0.9 (to the attack score 0.95).
    bona = np.concatenate([np.linspace(0.0, 0.5, 97), [0.9, 0.9, 0.9]])
    attacks = np.array([0.3, 0.8, 0.95, 1.0])
    scores = np.concatenate([bona, attacks])
    is_attack = np.array([0] * 100 + [1] * 4)
    r = evaluate.apcer_at_bpcer(scores=scores, is_attack=is_attack, bpcer_target=0.01)
    assert r.threshold == 0.95 and r.bpcer == 0.0 and r.apcer == 0.5
    # A target that is exactly k / n_bona is reachable (no floor(target · n) rounding loss): 29 / 100.
    ramp = np.arange(100) / 100
    r = evaluate.apcer_at_bpcer(scores=np.append(ramp, 2.0), is_attack=np.array([0] * 100 + [1]), bpcer_target=0.29)
    assert r.bpcer == 0.29 and r.threshold == 0.71
    # When every bona fide score is the maximum, only +inf (flag nothing) keeps BPCER at 0.
    r = evaluate.apcer_at_bpcer(scores=np.array([0.1, 0.5, 0.5]), is_attack=np.array([1, 0, 0]), bpcer_target=0.0)
    assert r.threshold == np.inf and r.apcer == 1.0


def test_apcer_at_bpcer_reports_max_over_types():
    scores, is_attack, types = _pad_case()
    r = evaluate.apcer_at_bpcer(scores=scores, is_attack=is_attack, bpcer_target=0.0, attack_types=types)
    assert r.threshold == 0.6  # least strict threshold above the highest bona fide score 0.5
    assert r.apcer_per_type == {"print": pytest.approx(2 / 3), "replay": 0.5}
    assert r.apcer == pytest.approx(2 / 3)


def test_equal_error_rate():
    # Symmetric under s → 7 − s with the classes swapped: the curves cross exactly at t = 4, at 1/5.
    eer = evaluate.equal_error_rate(
        scores=np.array([0, 1, 2, 3, 4, 3, 4, 5, 6, 7.0]), is_attack=np.array([0] * 5 + [1] * 5)
    )
    assert eer.eer == pytest.approx(0.2) and eer.threshold == 4.0
    # No exact crossing: (APCER, BPCER) goes (0, 1/3) → (1/2, 1/3); the interpolated crossing is at 1/3.
    eer = evaluate.equal_error_rate(scores=np.array([0, 1, 2, 1.5, 3]), is_attack=np.array([0, 0, 0, 1, 1]))
    assert eer.eer == pytest.approx(1 / 3)


def test_equal_error_rate_matches_sklearn_roc_interpolation():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(11)
    is_attack = rng.integers(0, 2, 400)
    scores = np.round(rng.normal(size=400) + 1.2 * is_attack, 1)
    fpr, tpr, _ = metrics.roc_curve(is_attack, scores)
    gap = (1 - tpr) - fpr  # APCER − BPCER along the ROC, from +1 down to −1
    k = int(np.argmax(gap <= 0))
    alpha = gap[k - 1] / (gap[k - 1] - gap[k])
    reference = fpr[k - 1] + alpha * (fpr[k] - fpr[k - 1])
    assert evaluate.equal_error_rate(scores=scores, is_attack=is_attack).eer == pytest.approx(reference, abs=1e-12)


def test_pad_rejects_bad_inputs():
    scores, is_attack, types = _pad_case()
    with pytest.raises(ValueError, match="shape mismatch: is_attack"):
        evaluate.apcer_bpcer(scores=scores, is_attack=is_attack[:-1], threshold=0.5)
    with pytest.raises(ValueError, match="shape mismatch: attack_types"):
        evaluate.apcer_bpcer(scores=scores, is_attack=is_attack, threshold=0.5, attack_types=types[:-1])
    with pytest.raises(ValueError, match="contains NaN"):
        evaluate.apcer_at_bpcer(scores=np.where(scores > 0.8, np.nan, scores), is_attack=is_attack)
    with pytest.raises(ValueError, match="inf"):
        evaluate.equal_error_rate(scores=np.where(scores > 0.8, np.inf, scores), is_attack=is_attack)
    with pytest.raises(ValueError, match="no bona fide samples"):
        evaluate.apcer_bpcer(scores=scores, is_attack=np.ones_like(is_attack), threshold=0.5)
    with pytest.raises(ValueError, match="no attack samples"):
        evaluate.equal_error_rate(scores=scores, is_attack=np.zeros_like(is_attack))
    with pytest.raises(ValueError, match="binary"):
        evaluate.apcer_bpcer(scores=scores, is_attack=is_attack * 2, threshold=0.5)
    with pytest.raises(ValueError, match="threshold is NaN"):
        evaluate.apcer_bpcer(scores=scores, is_attack=is_attack, threshold=np.nan)
    with pytest.raises(ValueError, match=r"bpcer_target must lie in \[0, 1\]"):
        evaluate.apcer_at_bpcer(scores=scores, is_attack=is_attack, bpcer_target=1.5)


# ---------------------------------------------------------------- protocols


def test_leave_one_attack_out_separate_partitions():
    train = np.array(["bona_fide", "print", "replay", "mask", "bona_fide", "print", "mask"])
    test = np.array(["replay", "bona_fide", "print", "mask", "bona_fide", "cutout", "print"])
    splits = evaluate.leave_one_attack_out_splits(train, test_attack_types=test)
    assert [s[0] for s in splits] == ["cutout", "mask", "print", "replay"]  # every attack type of the test set
    for held, train_mask, test_mask in splits:
        assert train_mask.shape == train.shape and test_mask.shape == test.shape
        assert held not in train[train_mask]
        assert set(train[train_mask]) == set(train) - {held}  # every other type stays in training
        assert held in test[test_mask]
        assert set(test[test_mask]) == {"bona_fide", held}
        assert np.all(test_mask[test == "bona_fide"]) and np.all(train_mask[train == "bona_fide"])


def test_leave_one_attack_out_single_array_and_errors():
    types = np.array([0, 1, 2, 1, 0, 3, 0])  # integer types, 0 = bona fide
    splits = evaluate.leave_one_attack_out_splits(types, bona_fide_label=0)
    assert [s[0] for s in splits] == [1, 2, 3]
    for held, train_mask, test_mask in splits:
        assert not np.any(train_mask & (types == held)) and np.all(test_mask[types == held])
        assert np.array_equal(train_mask & test_mask, types == 0)  # only bona fide is shared
    with pytest.raises(ValueError, match="no bona fide samples"):
        evaluate.leave_one_attack_out_splits(types)  # default label "bona_fide" is not in an int array
    with pytest.raises(ValueError, match="no attack samples in the test partition"):
        evaluate.leave_one_attack_out_splits(types, test_attack_types=np.array([0, 0]), bona_fide_label=0)


def test_summarize_results_markdown_and_json(tmp_path):
    results = {
        "print": {"apcer@bpcer=1%": 0.10, "auroc": 0.90},
        "replay": {"apcer@bpcer=1%": 0.30, "auroc": 0.70},
        "mask": {"auroc": 0.80},
    }
    table = evaluate.summarize_results(results, row_header="held-out type", digits=3)
    lines = table.strip().splitlines()
    assert lines[0] == "| held-out type | apcer@bpcer=1% | auroc |"
    assert len(lines) == 2 + 3 + 1  # header, separator, one row per type, mean row
    for name in results:
        assert sum(line.startswith(f"| {name} |") for line in lines) == 1
    assert "| mask | — | 0.800 |" in lines
    # APCER mean over the two rows that have it (0.2 ± 0.1); AUROC over three (0.8 ± population std 0.0816).
    assert lines[-1] == "| mean ± std | 0.200 ± 0.100 | 0.800 ± 0.082 |"
    path = evaluate.to_json({**results, "nan": {"auroc": float("nan")}}, tmp_path / "sub" / "r.json")
    data = json.loads(path.read_text())
    assert data["rows"]["print"] == {"apcer@bpcer=1%": 0.1, "auroc": 0.9}
    assert data["rows"]["nan"]["auroc"] is None and data["mean"]["auroc"] is None
    assert data["mean"]["apcer@bpcer=1%"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="results is empty"):
        evaluate.summarize_results({})
