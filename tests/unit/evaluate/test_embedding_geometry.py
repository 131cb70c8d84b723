"""Embedding geometry: effective rank, alignment, uniformity and class alignment against loop references and the
values they must take on known point sets; the evaluator's keys on given features."""

import itertools

import ml_collections
import numpy as np
import pytest

from sagejax.evaluate import geometry_metrics as gm
from sagejax.evaluate.evaluators.embedding_geometry import EmbeddingGeometryEvaluator


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_effective_rank_is_one_on_a_line_and_the_dimension_when_isotropic():
    t = np.random.default_rng(0).normal(size=(200, 1))
    assert gm.effective_rank(t * np.array([[1.0, -2.0, 0.5]]) + 3.0) == pytest.approx(1.0, abs=1e-6)
    axes = np.concatenate([np.eye(4), -np.eye(4)])  # equal spread along 4 orthogonal axes
    assert gm.effective_rank(axes) == pytest.approx(4.0)
    assert gm.effective_rank(np.ones((5, 3))) == 1.0  # all points equal


def test_effective_rank_matches_the_entropy_of_the_singular_values():
    x = np.random.default_rng(1).normal(size=(50, 6)) * np.array([5, 3, 1, 1, 0.1, 0.01])
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = s / s.sum()
    assert gm.effective_rank(x) == pytest.approx(np.exp(-sum(q * np.log(q) for q in p)))


def test_alignment_and_uniformity_match_pair_loops():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
    za, zb = _unit(a), _unit(b)
    assert gm.alignment(a, b) == pytest.approx(np.mean([np.sum((x - y) ** 2) for x, y in zip(za, zb)]))
    assert gm.alignment(a, b, alpha=1) == pytest.approx(np.mean([np.linalg.norm(x - y) for x, y in zip(za, zb)]))
    pairs = list(itertools.combinations(range(12), 2))
    expected = np.log(np.mean([np.exp(-2 * np.sum((za[i] - za[j]) ** 2)) for i, j in pairs]))
    assert gm.uniformity(a) == pytest.approx(expected)
    assert gm.alignment(a, 3 * a) == pytest.approx(0.0, abs=1e-12)  # scale does not matter: normalised first


def test_uniformity_is_zero_when_points_coincide_and_lower_when_they_spread():
    same = np.tile([[1.0, 2.0, 3.0]], (10, 1))
    spread = np.random.default_rng(3).normal(size=(400, 64))
    assert gm.uniformity(same) == pytest.approx(0.0, abs=1e-12)
    assert gm.uniformity(spread) == pytest.approx(-4.0, abs=0.3)  # about −2t on a high-dimensional sphere
    with pytest.raises(ValueError, match="at least 2"):
        gm.uniformity(same[:1])


def test_class_alignment_averages_same_label_pairs_only():
    z = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    labels = np.array([0, 0, 1, 1])  # class 0 coincides (0), class 1 is antipodal (4)
    assert gm.class_alignment(z, labels) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="two examples of one class"):
        gm.class_alignment(z, np.arange(4))


class _GeometryOnFeatures(EmbeddingGeometryEvaluator):
    """The evaluator on given gathered outputs per split, without a model or dataset."""

    def __init__(self, gathered, **settings):
        self.name, self._gathered = "geometry", gathered
        self.settings = ml_collections.ConfigDict({**EmbeddingGeometryEvaluator.DEFAULTS, **settings})

    def gather(self, state, split, corruption=None):
        return self._gathered[split]


def test_evaluator_reports_every_metric_per_split_on_its_first_max_examples():
    rng = np.random.default_rng(4)
    clean, view1, view2 = (rng.normal(size=(30, 8)) for _ in range(3))
    labels = np.arange(30) % 3
    gathered = {"validation": dict(clean=clean, view1=view1, view2=view2, label=labels)}
    metrics, _ = _GeometryOnFeatures(gathered, max_examples=20).run(None)
    assert metrics == pytest.approx(
        {
            "validation/effective_rank": gm.effective_rank(clean[:20]),
            "validation/uniformity": gm.uniformity(clean[:20]),
            "validation/alignment": gm.alignment(view1[:20], view2[:20]),
            "validation/class_alignment": gm.class_alignment(clean[:20], labels[:20]),
        }
    )
