"""Tests for sagejax.losses: NumPy float64 references, jit/vmap, edge-case gradients, properties."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sagejax import losses

LN2 = math.log(2.0)
MIT_EPS = 2.2204e-16


# ----------------------------------------------------------------------------------------------
# Independent NumPy (float64) references. Each returns one value per example.
# ----------------------------------------------------------------------------------------------


def np_log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def ref_softmax_cross_entropy(logits, labels, label_smoothing=0.0):
    logp = np_log_softmax(logits)
    k = logp.shape[-1]
    targets = np.full(logp.shape, label_smoothing / k)
    for idx in np.ndindex(labels.shape):
        targets[idx + (int(labels[idx]),)] += 1.0 - label_smoothing
    return -(targets * logp).sum(axis=-1)


def ref_kl(p_logits, q_logits, temperature=1.0, t2_scale=False):
    logp = np_log_softmax(np.asarray(p_logits, np.float64) / temperature)
    logq = np_log_softmax(np.asarray(q_logits, np.float64) / temperature)
    out = (np.exp(logp) * (logp - logq)).sum(axis=-1)
    return out * temperature**2 if t2_scale else out


def ref_js(logits_a, logits_b, temperature=1.0, t2_scale=False):
    p = np.exp(np_log_softmax(np.asarray(logits_a, np.float64) / temperature))
    q = np.exp(np_log_softmax(np.asarray(logits_b, np.float64) / temperature))
    m = 0.5 * (p + q)

    def kl_to_m(x):  # Σ x log(x / m), with 0·log 0 = 0
        safe = np.where(x > 0, x, 1.0)
        return np.where(x > 0, x * np.log(safe / np.where(x > 0, m, 1.0)), 0.0).sum(-1)

    out = 0.5 * kl_to_m(p) + 0.5 * kl_to_m(q)
    return out * temperature**2 if t2_scale else out


def _np_dist(a, b, distance):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if distance == "l2":
        return np.sqrt(((a - b) ** 2).sum())
    ua = a / np.linalg.norm(a)
    ub = b / np.linalg.norm(b)
    if distance == "squared_normalized_l2":
        return ((ua - ub) ** 2).sum()
    return 1.0 - (ua * ub).sum()


def ref_triplet(anchor, positive, negative, margin=1.0, distance="squared_normalized_l2", batch_hard=False):
    out = []
    for i in range(anchor.shape[0]):
        d_pos = _np_dist(anchor[i], positive[i], distance)
        if batch_hard:
            d_neg = min(_np_dist(anchor[i], negative[j], distance) for j in range(negative.shape[0]))
        else:
            d_neg = _np_dist(anchor[i], negative[i], distance)
        out.append(max(0.0, d_pos - d_neg + margin))
    return np.array(out)


def ref_nt_xent(embeddings, temperature=0.1):
    e = np.asarray(embeddings, np.float64)
    rows = e.shape[0]
    half = rows // 2
    out = []
    for i in range(rows):
        sims = {}
        for j in range(rows):
            if j != i:
                sims[j] = (e[i] @ e[j]) / (np.linalg.norm(e[i]) * np.linalg.norm(e[j])) / temperature
        pos = i + half if i < half else i - half
        denom = sum(math.exp(s) for s in sims.values())
        out.append(-math.log(math.exp(sims[pos]) / denom))
    return np.array(out)


def _np_sum_normalize(x):
    x = np.asarray(x, np.float64)
    total = x.sum()
    return x / total if total != 0 else x  # MIT: an all-zero map stays unnormalised


def ref_kld(prediction, target, eps=MIT_EPS):
    out = []
    for s, g in zip(prediction, target):
        s = _np_sum_normalize(s)
        g = _np_sum_normalize(g)
        out.append((g * np.log(eps + g / (s + eps))).sum())
    return np.array(out)


def ref_nss(prediction, fixations):
    out = []
    for s, f in zip(prediction, fixations):
        s = np.asarray(s, np.float64)
        constant = s.max() == s.min()  # exact test: a float std of a constant map can be rounding noise
        z = np.zeros_like(s) if constant else (s - s.mean()) / s.std()  # population std (ddof=0)
        fixated = z[np.asarray(f) > 0]
        out.append(fixated.mean() if fixated.size else 0.0)
    return np.array(out)


def ref_cc(prediction, target):
    out = []
    for s, g in zip(prediction, target):
        s = np.asarray(s, np.float64).ravel()
        g = np.asarray(g, np.float64).ravel()
        if s.max() == s.min() or g.max() == g.min():
            out.append(0.0)
        else:
            out.append(np.corrcoef(s, g)[0, 1])
    return np.array(out)


def ref_sim(prediction, target):
    return np.array([np.minimum(_np_sum_normalize(s), _np_sum_normalize(g)).sum() for s, g in zip(prediction, target)])


def _np_resize_axis(x, axis, out_n):
    """Antialiased linear (triangle filter widened by the shrink factor), as PIL BILINEAR does."""
    in_n = x.shape[axis]
    scale = out_n / in_n
    width = max(1.0 / scale, 1.0)
    weights = np.zeros((out_n, in_n))
    for i in range(out_n):
        center = (i + 0.5) / scale - 0.5
        for j in range(in_n):
            weights[i, j] = max(0.0, 1.0 - abs(j - center) / width)
        weights[i] /= weights[i].sum()
    return np.moveaxis(np.tensordot(weights, np.moveaxis(x, axis, 0), axes=1), 0, axis)


def _np_minmax(x):
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def ref_cam_mse(feature_map, class_weights, classes, target_map):
    out = []
    for f, c, t in zip(feature_map, classes, target_map):
        f = np.asarray(f, np.float64)
        h, w, channels = f.shape
        cam = np.zeros((h, w))
        for k in range(channels):
            cam += f[:, :, k] * class_weights[k, c]
        cam = _np_minmax(cam)
        t = _np_resize_axis(_np_resize_axis(np.asarray(t, np.float64), 0, h), 1, w)
        if t.min() < 0 or t.max() > 1:
            t = _np_minmax(t)
        out.append(((cam - t) ** 2).mean())
    return np.array(out)


# ----------------------------------------------------------------------------------------------
# Random cases: (loss function, fixed hyperparameters, input builder, numpy reference).
# ----------------------------------------------------------------------------------------------


def _inputs(name, rng, batch=4):
    """Random inputs (numpy float32 / int32) with `batch` examples for the loss called `name`."""

    def f32(*shape):
        return rng.normal(size=shape).astype(np.float32)

    def maps():
        return rng.uniform(0.0, 1.0, size=(batch, 6, 7)).astype(np.float32)

    if name.startswith("softmax_cross_entropy"):
        return dict(logits=3 * f32(batch, 5), labels=rng.integers(0, 5, size=batch).astype(np.int32))
    if name.startswith("kl_divergence"):
        return dict(p_logits=3 * f32(batch, 6), q_logits=3 * f32(batch, 6))
    if name.startswith("js_divergence"):
        return dict(logits_a=3 * f32(batch, 6), logits_b=3 * f32(batch, 6))
    if name.startswith("triplet"):
        return dict(anchor=f32(batch, 8), positive=f32(batch, 8), negative=f32(batch, 8))
    if name.startswith("nt_xent"):
        return dict(embeddings=f32(2 * batch, 8))
    if name in ("kld", "cc", "sim"):
        return dict(prediction=maps(), target=maps())
    if name == "nss":
        return dict(prediction=maps(), fixations=(rng.uniform(size=(batch, 6, 7)) < 0.2).astype(np.int32))
    if name == "cam_mse":
        return dict(
            feature_map=f32(batch, 4, 4, 3),
            class_weights=f32(3, 5),
            classes=rng.integers(0, 5, size=batch).astype(np.int32),
            target_map=rng.uniform(0.0, 255.0, size=(batch, 12, 10)).astype(np.float32),
        )
    raise KeyError(name)


CASES = {
    "softmax_cross_entropy": (losses.softmax_cross_entropy, {}, ref_softmax_cross_entropy),
    "softmax_cross_entropy_smoothed": (
        losses.softmax_cross_entropy,
        dict(label_smoothing=0.2),
        lambda **a: ref_softmax_cross_entropy(**a, label_smoothing=0.2),
    ),
    "kl_divergence": (losses.kl_divergence, {}, ref_kl),
    "kl_divergence_T": (
        losses.kl_divergence,
        dict(temperature=2.5, t2_scale=True),
        lambda **a: ref_kl(**a, temperature=2.5, t2_scale=True),
    ),
    "js_divergence": (losses.js_divergence, {}, ref_js),
    "js_divergence_T": (
        losses.js_divergence,
        dict(temperature=0.5, t2_scale=True),
        lambda **a: ref_js(**a, temperature=0.5, t2_scale=True),
    ),
    "triplet_sqnorm": (losses.triplet_margin, {}, ref_triplet),
    "triplet_l2": (
        losses.triplet_margin,
        dict(distance="l2", margin=2.0),
        lambda **a: ref_triplet(**a, distance="l2", margin=2.0),
    ),
    "triplet_cosine": (
        losses.triplet_margin,
        dict(distance="cosine", margin=0.5),
        lambda **a: ref_triplet(**a, distance="cosine", margin=0.5),
    ),
    "triplet_batch_hard": (losses.triplet_margin, dict(batch_hard=True), lambda **a: ref_triplet(**a, batch_hard=True)),
    "triplet_batch_hard_l2": (
        losses.triplet_margin,
        dict(batch_hard=True, distance="l2", margin=3.0),
        lambda **a: ref_triplet(**a, batch_hard=True, distance="l2", margin=3.0),
    ),
    "nt_xent": (losses.nt_xent, dict(temperature=0.5), lambda **a: ref_nt_xent(**a, temperature=0.5)),
    "kld": (losses.kld, {}, ref_kld),
    "nss": (losses.nss, {}, ref_nss),
    "cc": (losses.cc, {}, ref_cc),
    "sim": (losses.sim, {}, ref_sim),
    "cam_mse": (losses.cam_mse, {}, ref_cam_mse),
}

TOL = dict(rtol=2e-5, atol=2e-5)


def run(fn, **kwargs):
    """fn(**kwargs) under jit (op-by-op dispatch is slow): arrays are traced, other arguments static."""
    arrays = {k: v for k, v in kwargs.items() if isinstance(v, (np.ndarray, jax.Array))}
    static = {k: v for k, v in kwargs.items() if k not in arrays}
    return jax.jit(lambda a: fn(**a, **static))(arrays)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_numpy_reference_under_jit(name):
    fn, hyper, ref = CASES[name]
    args = _inputs(name, np.random.default_rng(0))
    expected = ref(**args)

    @jax.jit
    def all_reductions(a):
        return {r: fn(**a, **hyper, reduction=r) for r in ("none", "mean", "sum")} | {"default": fn(**a, **hyper)}

    got = all_reductions(args)
    assert got["none"].shape == expected.shape  # one value per example (per row of 2N for nt_xent)
    want = {"none": expected, "mean": expected.mean(), "sum": expected.sum(), "default": expected.mean()}
    chex.assert_trees_all_close(got, jax.tree.map(np.float32, want), **TOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_numpy_reference_under_vmap(name):
    fn, hyper, ref = CASES[name]
    rng = np.random.default_rng(1)
    draws = [_inputs(name, rng) for _ in range(3)]
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *draws)
    got_none, got_mean = jax.jit(
        jax.vmap(lambda a: (fn(**a, **hyper, reduction="none"), fn(**a, **hyper, reduction="mean")))
    )(stacked)
    expected = np.stack([ref(**d) for d in draws])
    chex.assert_trees_all_close(got_none, expected.astype(np.float32), **TOL)
    chex.assert_trees_all_close(got_mean, expected.mean(axis=1).astype(np.float32), **TOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_unknown_reduction_rejected(name):
    fn, hyper, _ = CASES[name]
    with pytest.raises(ValueError, match="reduction"):
        run(fn, **_inputs(name, np.random.default_rng(2)), **hyper, reduction="avg")


# ----------------------------------------------------------------------------------------------
# Finite values and gradients at edge cases.
# ----------------------------------------------------------------------------------------------


def _assert_finite_value_and_grads(fn, args, float_keys, **hyper):
    """Per-example values and the gradient of the mean w.r.t. each input in `float_keys` are finite."""

    def mean_loss(floats):
        return fn(**{**args, **floats}, **hyper, reduction="mean")

    floats = {k: jnp.asarray(args[k], jnp.float32) for k in float_keys}
    grads = jax.jit(jax.grad(mean_loss))(floats)
    values = jax.jit(lambda a: fn(**a, **hyper, reduction="none"))(args)
    assert np.isfinite(np.asarray(values)).all(), values
    for k, g in grads.items():
        assert np.isfinite(np.asarray(g)).all(), (k, g)
    return values


EXTREME = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, 1e4]], np.float32)


@pytest.mark.parametrize("temperature", [1.0, 0.05])
def test_divergences_finite_at_extreme_logits(temperature):
    flipped = -EXTREME
    for fn, keys in (
        (losses.kl_divergence, ("p_logits", "q_logits")),
        (losses.js_divergence, ("logits_a", "logits_b")),
    ):
        args = dict(zip(keys, (EXTREME, flipped)))
        _assert_finite_value_and_grads(fn, args, keys, temperature=temperature, t2_scale=True)
        got = jax.jit(lambda a, f=fn: f(**a, temperature=temperature, reduction="none"))(args)
        want = (ref_kl if fn is losses.kl_divergence else ref_js)(EXTREME, flipped, temperature)
        chex.assert_trees_all_close(got, want.astype(np.float32), rtol=1e-5)


def test_cross_entropy_finite_at_extreme_logits():
    labels = np.array([1, 0, 2], np.int32)
    for smoothing in (0.0, 0.1):
        value = _assert_finite_value_and_grads(
            losses.softmax_cross_entropy, dict(logits=EXTREME, labels=labels), ("logits",), label_smoothing=smoothing
        )
        # float32 resolves 1e4 + log 3 only to ~1e-3, so the absolute tolerance is that ulp.
        chex.assert_trees_all_close(
            value, ref_softmax_cross_entropy(EXTREME, labels, smoothing).astype(np.float32), rtol=1e-5, atol=2e-3
        )


@pytest.mark.parametrize("distance", ["squared_normalized_l2", "l2", "cosine"])
@pytest.mark.parametrize("batch_hard", [False, True])
def test_triplet_identical_and_zero_embeddings(distance, batch_hard):
    keys = ("anchor", "positive", "negative")
    same = np.tile(np.array([[0.3, -1.2, 0.5, 2.0]], np.float32), (3, 1))
    zero = np.zeros((3, 4), np.float32)
    for vec in (same, zero):
        value = _assert_finite_value_and_grads(
            losses.triplet_margin, dict.fromkeys(keys, vec), keys, margin=0.7, distance=distance, batch_hard=batch_hard
        )
        # All three identical: d(a, p) = d(a, n), so the loss is exactly the margin.
        chex.assert_trees_all_close(value, np.full(3, 0.7, np.float32), atol=1e-6)


def test_nt_xent_identical_and_zero_embeddings():
    for emb in (np.ones((6, 4), np.float32), np.zeros((6, 4), np.float32)):
        value = _assert_finite_value_and_grads(losses.nt_xent, dict(embeddings=emb), ("embeddings",), temperature=0.05)
        # Every similarity is equal (1/T, or 0 for zero rows): each row is a uniform choice among 2N−1.
        chex.assert_trees_all_close(value, np.full(6, math.log(5), np.float32), rtol=1e-5)


def _edge_maps():
    # 6×7 at 0.3: a naive float32 mean leaves rounding noise in (x − mean), so "constant" is tested.
    zeros = np.zeros((6, 7), np.float32)
    const = np.full((6, 7), 0.3, np.float32)
    rand = np.random.default_rng(3).uniform(size=(6, 7)).astype(np.float32)
    return zeros, const, rand


@pytest.mark.parametrize("name", ["kld", "cc", "sim"])
def test_saliency_pairs_finite_at_zero_and_constant_maps(name):
    fn, _, ref = CASES[name]
    zeros, const, rand = _edge_maps()
    pairs = [(a, b) for a in (zeros, const, rand) for b in (zeros, const, rand)]
    prediction = np.stack([p for p, _ in pairs])
    target = np.stack([t for _, t in pairs])
    args = dict(prediction=prediction, target=target)
    _assert_finite_value_and_grads(fn, args, ("prediction", "target"))
    got = run(fn, **args, reduction="none")
    assert np.isfinite(np.asarray(got)).all()
    chex.assert_trees_all_close(got, ref(prediction, target).astype(np.float32), rtol=1e-5, atol=1e-5)


def test_nss_finite_at_zero_constant_maps_and_no_fixations():
    zeros, const, rand = _edge_maps()
    fix = np.zeros((6, 7), np.int32)
    fix[1, 2] = fix[3, 0] = 1
    prediction = np.stack([zeros, const, rand, rand])
    fixations = np.stack([fix, fix, fix, np.zeros_like(fix)])
    args = dict(prediction=prediction, fixations=fixations)
    _assert_finite_value_and_grads(losses.nss, args, ("prediction",))
    got = run(losses.nss, **args, reduction="none")
    chex.assert_trees_all_close(got, ref_nss(prediction, fixations).astype(np.float32), atol=1e-6)
    # Constant maps and a map without fixations score exactly 0 (documented conventions).
    np.testing.assert_array_equal(np.asarray(got)[[0, 1, 3]], 0.0)


def test_kld_all_zero_conventions():
    _, _, rand = _edge_maps()
    zeros = np.zeros_like(rand)
    # Zero ground truth: nothing to explain, 0. Zero prediction: large finite penalty ≈ −log(eps) − H(G).
    got = np.asarray(
        run(losses.kld, prediction=np.stack([rand, zeros]), target=np.stack([zeros, rand]), reduction="none")
    )
    g = rand / rand.sum()
    assert got[0] == 0.0
    np.testing.assert_allclose(got[1], (g * np.log(g / MIT_EPS)).sum(), rtol=1e-5)
    assert got[1] > 30.0


# ----------------------------------------------------------------------------------------------
# Properties and agreement with optax where definitions coincide.
# ----------------------------------------------------------------------------------------------


def test_cross_entropy_matches_optax():
    args = _inputs("softmax_cross_entropy", np.random.default_rng(4), batch=16)
    ours = run(losses.softmax_cross_entropy, **args, reduction="none")
    theirs = run(optax.losses.softmax_cross_entropy_with_integer_labels, **args)
    np.testing.assert_array_equal(ours, theirs)
    smoothed = run(
        lambda logits, labels: optax.losses.softmax_cross_entropy(
            logits, optax.smooth_labels(jax.nn.one_hot(labels, 5), 0.3)
        ),
        **args,
    )
    chex.assert_trees_all_close(
        run(losses.softmax_cross_entropy, **args, label_smoothing=0.3, reduction="none"), smoothed, rtol=1e-5
    )


def test_label_smoothing_can_be_traced():
    args = _inputs("softmax_cross_entropy", np.random.default_rng(5))
    got = jax.jit(lambda a, ls: run(losses.softmax_cross_entropy, **a, label_smoothing=ls))(args, 0.25)
    want = ref_softmax_cross_entropy(args["logits"], args["labels"], 0.25).mean()
    chex.assert_trees_all_close(got, np.float32(want), rtol=1e-5)


def test_js_symmetric_bounded_and_zero_on_identical():
    rng = np.random.default_rng(6)
    a = np.concatenate([3 * rng.normal(size=(8, 5)), 1e4 * np.sign(rng.normal(size=(8, 5)))])
    b = np.concatenate([3 * rng.normal(size=(8, 5)), 1e4 * np.sign(rng.normal(size=(8, 5)))])
    a, b = a.astype(np.float32), b.astype(np.float32)
    ab = run(losses.js_divergence, logits_a=a, logits_b=b, reduction="none")
    ba = run(losses.js_divergence, logits_a=b, logits_b=a, reduction="none")
    chex.assert_trees_all_close(ab, ba, atol=1e-6)
    assert np.all(np.asarray(ab) <= LN2 + 1e-6) and np.all(np.asarray(ab) >= -1e-6)
    # Disjoint one-hot distributions reach the bound ln 2.
    disjoint = run(
        losses.js_divergence, logits_a=np.array([1e4, -1e4], np.float32), logits_b=np.array([-1e4, 1e4], np.float32)
    )
    chex.assert_trees_all_close(disjoint, np.float32(LN2), rtol=1e-6)
    same = run(losses.js_divergence, logits_a=a, logits_b=a, temperature=0.05, reduction="none")
    chex.assert_trees_all_close(same, np.zeros(16, np.float32), atol=1e-6)


def test_kl_zero_on_identical_and_t2_scale():
    logits = 3 * np.random.default_rng(7).normal(size=(4, 6)).astype(np.float32)
    other = logits[::-1].copy()
    np.testing.assert_allclose(
        run(losses.kl_divergence, p_logits=logits, q_logits=logits, temperature=0.05), 0.0, atol=1e-6
    )
    plain = run(losses.kl_divergence, p_logits=logits, q_logits=other, temperature=4.0)
    scaled = run(losses.kl_divergence, p_logits=logits, q_logits=other, temperature=4.0, t2_scale=True)
    chex.assert_trees_all_close(scaled, 16.0 * plain, rtol=1e-6)


def test_triplet_l2_matches_optax():
    args = _inputs("triplet", np.random.default_rng(8), batch=16)
    ours = run(losses.triplet_margin, **args, distance="l2", margin=1.5, reduction="none")
    theirs = run(
        optax.losses.triplet_margin_loss,
        anchors=args["anchor"],
        positives=args["positive"],
        negatives=args["negative"],
        margin=1.5,
        eps=0.0,
    )
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_triplet_zero_when_negatives_far():
    rng = np.random.default_rng(9)
    # Anchors in the positive orthant, negatives in the negative one: every negative is far from
    # every anchor (needed for batch_hard, which searches all of them).
    anchor = 1.0 + np.abs(rng.normal(size=(6, 4))).astype(np.float32)
    positive = anchor + 0.01 * rng.normal(size=(6, 4)).astype(np.float32)
    for distance, negative in (("l2", -100.0 * anchor), ("squared_normalized_l2", -anchor), ("cosine", -anchor)):
        for batch_hard in (False, True):
            got = run(
                losses.triplet_margin,
                anchor=anchor,
                positive=positive,
                negative=negative,
                margin=0.5,
                distance=distance,
                batch_hard=batch_hard,
                reduction="none",
            )
            np.testing.assert_array_equal(got, 0.0)
    # ...and positive when the negative is the anchor itself.
    assert run(losses.triplet_margin, anchor=anchor, positive=positive, negative=anchor) > 0.9


def test_triplet_squared_normalized_relates_to_cosine_and_is_scale_invariant():
    args = _inputs("triplet", np.random.default_rng(10))
    sq = run(losses.triplet_margin, **args, margin=10.0, reduction="none")
    cos = run(losses.triplet_margin, **args, margin=5.0, distance="cosine", reduction="none")
    chex.assert_trees_all_close(sq, 2.0 * cos, rtol=1e-5)  # ‖u − v‖² = 2 − 2cos for unit u, v
    scaled = {k: v * s for (k, v), s in zip(args.items(), (3.0, 0.2, 7.0))}
    chex.assert_trees_all_close(run(losses.triplet_margin, **scaled, margin=10.0, reduction="none"), sq, rtol=1e-5)


def test_nt_xent_matches_optax():
    emb = np.random.default_rng(11).normal(size=(12, 5)).astype(np.float32)
    labels = np.concatenate([np.arange(6), np.arange(6)])
    for t in (0.07, 0.5):
        chex.assert_trees_all_close(
            run(losses.nt_xent, embeddings=emb, temperature=t),
            run(optax.losses.ntxent, embeddings=emb, labels=labels, temperature=t),
            rtol=1e-5,
        )


def _simplex(n):
    """n unit vectors with pairwise cosine −1/(n−1) (regular simplex centred at the origin)."""
    v = np.eye(n) - 1.0 / n
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_nt_xent_minimum_and_coinciding_views():
    n, t = 4, 0.2
    rng = np.random.default_rng(12)
    # Each term is −s_pos/T + log(e^{s_pos/T} + Σ_neg e^{s_neg/T}); with s_pos = 1 and the negatives as
    # spread as a regular simplex allows (cos = −1/(n−1)) it is log(1 + (2n−2)·e^{(−1/(n−1) − 1)/T}).
    simplex = _simplex(n)
    best = float(run(losses.nt_xent, embeddings=np.concatenate([simplex, simplex]), temperature=t))
    np.testing.assert_allclose(best, math.log(1 + (2 * n - 2) * math.exp((-1 / (n - 1) - 1) / t)), rtol=1e-4)
    # No configuration beats the per-term bound s_pos ≤ 1, s_neg ≥ −1.
    bound = math.log(1 + (2 * n - 2) * math.exp(-2 / t))
    view1 = rng.normal(size=(n, n)).astype(np.float32)
    coincide = float(run(losses.nt_xent, embeddings=np.concatenate([view1, view1]), temperature=t))
    random = float(run(losses.nt_xent, embeddings=rng.normal(size=(2 * n, n)).astype(np.float32), temperature=t))
    assert bound <= best <= coincide < random


def test_nss_hand_computed():
    prediction = np.array([[[0.0, 1.0], [2.0, 3.0]]], np.float32)
    # mean 1.5, population std √1.25; fixated 1 and 3 → z = −0.5/√1.25, 1.5/√1.25 → mean 1/√5.
    fixations = np.array([[[0, 1], [0, 1]]], np.int32)
    np.testing.assert_allclose(run(losses.nss, prediction=prediction, fixations=fixations), 1 / math.sqrt(5), rtol=1e-6)
    # MIT: the fixation map is binary, so a pixel fixated twice counts once.
    twice = np.array([[[0, 1], [0, 2]]], np.int32)
    np.testing.assert_allclose(run(losses.nss, prediction=prediction, fixations=twice), 1 / math.sqrt(5), rtol=1e-6)


def test_kld_self_zero_cc_affine_one_sim_identical_one():
    maps = np.random.default_rng(13).uniform(size=(3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(run(losses.kld, prediction=maps, target=maps, reduction="none"), 0.0, atol=1e-6)
    np.testing.assert_allclose(run(losses.kld, prediction=5.0 * maps, target=maps, reduction="none"), 0.0, atol=1e-6)
    np.testing.assert_allclose(
        run(losses.cc, prediction=maps, target=2.5 * maps + 7.0, reduction="none"), 1.0, rtol=1e-5
    )
    np.testing.assert_allclose(
        run(losses.cc, prediction=maps, target=-0.5 * maps + 1.0, reduction="none"), -1.0, rtol=1e-5
    )
    np.testing.assert_allclose(run(losses.sim, prediction=maps, target=3.0 * maps, reduction="none"), 1.0, rtol=1e-5)
    # No min-max rescaling: adding a constant changes the normalised map, so SIM drops below 1.
    assert np.all(np.asarray(run(losses.sim, prediction=maps + 1.0, target=maps, reduction="none")) < 0.9)


def _cam_case():
    features = np.zeros((2, 2, 2, 2), np.float32)
    features[:, 0, 0, 0] = 1.0
    features[:, 1, 1, 1] = 2.0
    weights = np.array([[0.0, 1.0], [1.0, 0.5]], np.float32)  # (C=2, K=2)
    classes = np.array([1, 0], np.int32)
    target = np.tile(np.array([[1.0, 0.0], [0.0, 0.0]], np.float32), (2, 1, 1))
    return features, weights, classes, target


def test_cam_mse_hand_computed():
    features, weights, classes, target = _cam_case()

    # Class 1: CAM = 1·f0 + 0.5·f1 = [[1,0],[0,1]] → MSE vs [[1,0],[0,0]] = 1/4.
    # Class 0: CAM = 1·f1 = [[0,0],[0,2]] → [[0,0],[0,1]] → MSE = 2/4.
    def cam(t):
        return run(
            losses.cam_mse, feature_map=features, class_weights=weights, classes=classes, target_map=t, reduction="none"
        )

    chex.assert_trees_all_close(cam(target), np.array([0.25, 0.5], np.float32))
    # A target outside [0, 1] is min-max normalised first; one in [0, 1] is used as is.
    chex.assert_trees_all_close(cam(255.0 * target), np.array([0.25, 0.5], np.float32))
    # 0.5·target is in [0, 1]: kept, so each CAM misses by 0.5 at (0,0) and by 1 at (1,1) → 1.25/4.
    chex.assert_trees_all_close(cam(0.5 * target), np.array([0.3125, 0.3125], np.float32))


def test_cam_mse_constant_cam_and_target_finite_gradients():
    _, weights, classes, _ = _cam_case()
    features = np.ones((2, 2, 2, 2), np.float32)
    target = np.full((2, 6, 6), 4.0, np.float32)  # constant and outside [0, 1] → zeros
    value = _assert_finite_value_and_grads(
        losses.cam_mse,
        dict(feature_map=features, class_weights=weights, classes=classes, target_map=target),
        ("feature_map", "class_weights", "target_map"),
    )
    np.testing.assert_array_equal(value, 0.0)  # constant CAM → zeros, constant target → zeros


def test_cam_mse_target_resize_is_antialiased_linear():
    rng = np.random.default_rng(14)
    features = rng.normal(size=(1, 3, 5, 2)).astype(np.float32)
    weights = rng.normal(size=(2, 3)).astype(np.float32)
    classes = np.array([2], np.int32)
    for shape in ((12, 20), (3, 5), (7, 9)):  # integer shrink, same size, non-integer shrink
        target = rng.uniform(size=(1,) + shape).astype(np.float32)
        got = run(
            losses.cam_mse,
            feature_map=features,
            class_weights=weights,
            classes=classes,
            target_map=target,
            reduction="none",
        )
        chex.assert_trees_all_close(got, ref_cam_mse(features, weights, classes, target).astype(np.float32), rtol=1e-5)


def test_nt_xent_rejects_odd_rows():
    with pytest.raises(ValueError):
        run(losses.nt_xent, embeddings=np.ones((5, 3), np.float32))


def test_unknown_distance_rejected():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError):
        run(losses.triplet_margin, anchor=x, positive=x, negative=x, distance="l1")
