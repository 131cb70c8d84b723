"""What a contrastive objective does to an embedding, in numbers a probe result can be read against: its effective
rank (Roy & Vetterli 2007, as RankMe reads SSL embeddings), and the alignment and uniformity of its L2-normalised
points (Wang & Isola 2020), plus the same alignment measured between examples of one class."""

from __future__ import annotations

import numpy as np


def effective_rank(features: np.ndarray) -> float:
    """exp of the entropy of the normalised singular values of the centred (N, D) features (centred, so a shared
    offset of every point, such as ReLU features' positive mean, is not counted as a direction): 1 when they lie on
    a line, at most min(N − 1, D)."""
    x = np.asarray(features, np.float64)
    singular = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    if singular.sum() <= 0:
        return 1.0  # every point equal: one (degenerate) direction
    p = singular / singular.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def normalize(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero)."""
    x = np.asarray(features, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def alignment(first: np.ndarray, second: np.ndarray, *, alpha: float = 2.0) -> float:
    """Mean ‖f(x) − f(x⁺)‖^α over the rows of two (N, D) arrays of paired positives (normalised here); 0 when every
    pair coincides, lower is better."""
    a, b = normalize(first), normalize(second)
    return float(np.mean(np.linalg.norm(a - b, axis=1) ** alpha))


def _squared_distances(z: np.ndarray) -> np.ndarray:
    norms = np.sum(z * z, axis=1)
    return np.maximum(norms[:, None] + norms[None, :] - 2 * z @ z.T, 0.0)


def uniformity(features: np.ndarray, *, t: float = 2.0) -> float:
    """log of the mean over distinct pairs of exp(−t‖f(x) − f(y)‖²) (normalised here): 0 when the points coincide,
    about −2t when they spread evenly over a high-dimensional sphere; lower is more uniform."""
    z = normalize(features)
    if len(z) < 2:
        raise ValueError("uniformity needs at least 2 examples")
    upper = np.triu_indices(len(z), k=1)
    values = -t * _squared_distances(z)[upper]
    top = values.max()
    return float(top + np.log(np.mean(np.exp(values - top))))


def class_alignment(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean ‖f(x) − f(y)‖² over distinct pairs of the same class (normalised here): how tightly the classes a probe
    must separate are gathered; lower is tighter."""
    z, labels = normalize(features), np.asarray(labels)
    same = labels[:, None] == labels[None, :]
    upper = np.triu(same, k=1)
    if not upper.any():
        raise ValueError("class_alignment needs two examples of one class")
    return float(_squared_distances(z)[upper].mean())
