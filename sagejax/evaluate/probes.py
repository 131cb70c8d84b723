"""Linear probes on frozen features: closed-form ridge regression onto ±1 targets (big_vision's few-shot probe) and
softmax logistic regression trained with optax's L-BFGS; the regularisation of each chosen on a held-out part of the
training split, then refit on all of it. Few-shot subsets draw k examples per class with a seed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

BIAS_FEATURE = 100.0  # a constant column: the bias is (almost) not shrunk by the ridge penalty (big_vision)


class Standardizer:
    """z-scores features with the training mean and std (+1e-5)."""

    def __init__(self, features: np.ndarray):
        self.mean = features.mean(axis=0)
        self.std = features.std(axis=0) + 1e-5

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std


def ridge_weights(features: np.ndarray, labels: np.ndarray, *, num_classes: int, lambdas) -> list[np.ndarray]:
    """Ridge solutions W = (XᵀX + λI)⁻¹ XᵀY for each λ, X = [features, 100], Y one-hot in {−1, +1}; one
    eigendecomposition of XᵀX (or XXᵀ when there are fewer examples than features) serves every λ."""
    x = np.concatenate([features, np.full((len(features), 1), BIAS_FEATURE)], axis=1).astype(np.float64)
    y = 2.0 * np.eye(num_classes)[labels] - 1.0
    if len(x) >= x.shape[1]:
        eig, vectors = np.linalg.eigh(x.T @ x)
        rhs = vectors.T @ (x.T @ y)
        return [vectors @ (rhs / (eig + lam)[:, None]) for lam in lambdas]
    eig, vectors = np.linalg.eigh(x @ x.T)  # W = Xᵀ (XXᵀ + λI)⁻¹ Y
    rhs = vectors.T @ y
    return [x.T @ (vectors @ (rhs / (eig + lam)[:, None])) for lam in lambdas]


def ridge_predict(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    x = np.concatenate([features, np.full((len(features), 1), BIAS_FEATURE)], axis=1)
    return np.argmax(x @ weights, axis=1)


def _logistic_loss(params, features, labels, l2):
    logits = features @ params["w"] + params["b"]
    ce = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return ce + 0.5 * l2 * jnp.sum(jnp.square(params["w"]))


_SOLVER = optax.lbfgs()


@jax.jit
def _lbfgs_step(params, state, features, labels, l2):
    def loss(p):
        return _logistic_loss(p, features, labels, l2)

    value, grad = optax.value_and_grad_from_state(loss)(params, state=state)
    updates, state = _SOLVER.update(grad, state, params, value=value, grad=grad, value_fn=loss)
    return optax.apply_updates(params, updates), state


def logistic_fit(features: np.ndarray, labels: np.ndarray, *, num_classes: int, l2: float, steps: int) -> dict:
    """Softmax regression with an L2 penalty ½·l2·‖W‖² on the weights: `steps` full-batch L-BFGS steps from zero."""
    features, labels = jnp.asarray(features, jnp.float32), jnp.asarray(labels, jnp.int32)
    params = {"w": jnp.zeros((features.shape[1], num_classes)), "b": jnp.zeros(num_classes)}
    state = _SOLVER.init(params)
    for _ in range(steps):
        params, state = _lbfgs_step(params, state, features, labels, jnp.float32(l2))
    return jax.device_get(params)


def logistic_predict(params: dict, features: np.ndarray) -> np.ndarray:
    return np.argmax(features @ params["w"] + params["b"], axis=1)


def choose_logistic_l2(x, y, held_x, held_y, *, num_classes: int, l2s, steps: int) -> float:
    """The l2 of `l2s` whose probe fit on (x, y) is most accurate on (held_x, held_y); ties go to the stronger."""
    l2s = sorted(l2s, reverse=True)
    scores = [
        np.mean(logistic_predict(logistic_fit(x, y, num_classes=num_classes, l2=l2, steps=steps), held_x) == held_y)
        for l2 in l2s
    ]
    return l2s[int(np.argmax(scores))]


def holdout_split(labels: np.ndarray, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, held-out) indices: a seeded, per-class `fraction` held out (at least one example of every class with
    two or more)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))  # (seed, 0): apart from few-shot draws' seeds
    fit, held = [], []
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        held.append(members[:count])
        fit.append(members[count:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(held))


def few_shot_indices(labels: np.ndarray, *, shots: int, seed) -> np.ndarray:
    """`shots` examples of every class, drawn with `seed` (an int or a tuple of ints, e.g. (run seed, shots, draw),
    so draws of different runs are independent); ValueError naming a class with fewer."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    chosen = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        if len(members) < shots:
            raise ValueError(f"class {k} has {len(members)} training examples, fewer than {shots} shots")
        chosen.append(rng.choice(members, shots, replace=False))
    return np.sort(np.concatenate(chosen))
