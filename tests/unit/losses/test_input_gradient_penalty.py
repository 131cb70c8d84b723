"""losses.input_gradient_penalty (RRR's explanation term) against an independent NumPy float64 reference."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sagejax import losses


def ref_penalty(input_gradients, mask):
    """Σ over pixels and channels of (mask · gradient)², one value per example; a (B,H,W) mask repeats per channel."""
    g = np.asarray(input_gradients, np.float64)
    a = np.asarray(mask, np.float64)
    if a.ndim == g.ndim - 1:
        a = np.repeat(a[..., None], g.shape[-1], axis=-1)
    return np.array([np.sum((a[n] * g[n]) ** 2) for n in range(g.shape[0])])


def _inputs(seed, batch=4, channels=3):
    rng = np.random.default_rng(seed)
    return dict(
        input_gradients=rng.normal(size=(batch, 5, 6, channels)).astype(np.float32),
        mask=rng.uniform(size=(batch, 5, 6)).astype(np.float32),
    )


@pytest.mark.parametrize("per_channel", [False, True])
def test_matches_numpy_reference_under_jit(per_channel):
    args = _inputs(0)
    if per_channel:  # a mask that differs between channels
        args["mask"] = np.random.default_rng(1).uniform(size=args["input_gradients"].shape).astype(np.float32)
    expected = ref_penalty(**args)

    @jax.jit
    def all_reductions(a):
        fn = losses.input_gradient_penalty
        return {r: fn(**a, reduction=r) for r in ("none", "mean", "sum")} | {"default": fn(**a)}

    want = {"none": expected, "mean": expected.mean(), "sum": expected.sum(), "default": expected.mean()}
    chex.assert_trees_all_close(all_reductions(args), jax.tree.map(np.float32, want), rtol=1e-5, atol=1e-6)


def test_matches_numpy_reference_under_vmap():
    draws = [_inputs(seed) for seed in range(3)]
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *draws)
    got = jax.jit(jax.vmap(lambda a: losses.input_gradient_penalty(**a, reduction="none")))(stacked)
    np.testing.assert_allclose(got, np.stack([ref_penalty(**d) for d in draws]), rtol=1e-5)


def test_gradient_is_twice_the_masked_gradient_and_finite_at_the_edges():
    args = _inputs(2)
    g, a = args["input_gradients"], args["mask"]
    grad_fn = jax.jit(jax.grad(lambda g, a: losses.input_gradient_penalty(input_gradients=g, mask=a, reduction="sum")))
    np.testing.assert_allclose(grad_fn(g, a), 2 * a[..., None] ** 2 * g, rtol=1e-5)
    for mask in (np.zeros_like(a), np.ones_like(a)):  # all salient (nothing penalised), nothing salient
        for gradients in (g, np.zeros_like(g)):
            value = losses.input_gradient_penalty(input_gradients=gradients, mask=mask)
            assert np.isfinite(value) and np.all(np.isfinite(grad_fn(gradients, mask)))
    assert float(losses.input_gradient_penalty(input_gradients=g, mask=np.zeros_like(a))) == 0.0


def test_bad_mask_shape_and_reduction_are_named():
    args = _inputs(3)
    with pytest.raises(ValueError, match="mask must be"):
        losses.input_gradient_penalty(input_gradients=args["input_gradients"], mask=args["mask"][:, :4])
    with pytest.raises(ValueError, match="reduction"):
        losses.input_gradient_penalty(**args, reduction="avg")
    assert losses.input_gradient_penalty(input_gradients=jnp.ones((2, 3, 3, 1)), mask=jnp.ones((2, 3, 3))) == 9.0
