"""Tests for sagejax.augment: Gaussian blur, degradation ops, saliency preparation and views."""

import functools
import math
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from sagejax import augment

VIEW_STATICS = ("sigma", "kernel_size", "degrade", "invert", "noise_std")
views_jit = jax.jit(augment.saliency_views, static_argnames=VIEW_STATICS)
blur_jit = jax.jit(augment.gaussian_blur, static_argnames=("sigma", "kernel_size", "padding"))
prepare_jit = jax.jit(augment.prepare_saliency, static_argnames=("size", "dilate", "blur_sigma", "empty"))
degrade_jit = jax.jit(augment.degrade, static_argnames=("op", "sigma", "kernel_size", "noise_std"))

# Our padding name -> the scipy.ndimage mode that extends the image the same way.
SCIPY_MODES = {"REFLECT": "mirror", "SYMMETRIC": "reflect", "EDGE": "nearest", "ZERO": "constant"}


def _images(seed=0, shape=(4, 16, 12, 3), dtype=np.float32):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(dtype))


def _saliency(seed=1, shape=(4, 16, 12)):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=shape).astype(np.float32))


def _views(images, saliency, degrade="blur", **kw):
    rng = jax.random.key(3) if degrade == "noise" else None
    return views_jit(images=images, saliency=saliency, sigma=1.5, degrade=degrade, rng=rng, **kw)


# ---------------------------------------------------------------- saliency views


@pytest.mark.parametrize("degrade", sorted(augment.DEGRADATIONS))
def test_views_are_exact_at_binary_saliency(degrade):
    x = _images()
    s = jnp.asarray(np.random.default_rng(2).integers(0, 2, size=x.shape[:3]), jnp.float32)
    v = _views(x, s, degrade)
    mask = np.asarray(s, bool)[..., None]
    assert mask.any() and (~mask).any()
    np.testing.assert_array_equal(v["x"], x)
    np.testing.assert_array_equal(v["x_keep"], np.where(mask, v["x"], v["x_blur"]))
    np.testing.assert_array_equal(v["x_degrade"], np.where(mask, v["x_blur"], v["x"]))
    assert not np.allclose(v["x_blur"], x)  # D actually changes the image


def test_views_sum_to_original_plus_degraded():
    x, s = _images(), _saliency()
    v = _views(x, s)
    chex.assert_trees_all_close(v["x_keep"] + v["x_degrade"], v["x"] + v["x_blur"], atol=1e-5)
    # And x_keep is the pixelwise interpolation with weight s.
    expect = s[..., None] * x + (1 - s[..., None]) * v["x_blur"]
    chex.assert_trees_all_close(v["x_keep"], expect, atol=1e-6)


@pytest.mark.parametrize("degrade", ["blur", "mean"])
def test_invert_swaps_keep_and_degrade_exactly(degrade):
    x, s = _images(), _saliency()
    v = _views(x, s, degrade)
    vi = _views(x, s, degrade, invert=True)
    np.testing.assert_array_equal(vi["x_keep"], v["x_degrade"])
    np.testing.assert_array_equal(vi["x_degrade"], v["x_keep"])
    np.testing.assert_array_equal(vi["x_blur"], v["x_blur"])
    assert not np.allclose(v["x_keep"], v["x_degrade"])


def test_views_shapes_dtypes_and_bad_saliency_shape():
    x = _images(dtype=np.float32).astype(jnp.bfloat16)
    v = _views(x, _saliency())
    assert set(v) == {"x", "x_blur", "x_keep", "x_degrade"}
    for value in v.values():
        chex.assert_shape(value, x.shape)
        chex.assert_type(value, jnp.bfloat16)
    with pytest.raises(ValueError, match="saliency must be"):
        _views(x, _saliency(shape=(4, 16, 12))[..., None])


def test_views_noise_without_rng_raises():
    with pytest.raises(ValueError, match="needs an rng"):
        views_jit(images=_images(), saliency=_saliency(), sigma=1.0, degrade="noise")


@pytest.mark.parametrize("degrade", sorted(augment.DEGRADATIONS))
def test_view_gradients_are_finite(degrade):
    x = _images()
    s = _saliency().at[:, :2].set(0.0).at[:, -2:].set(1.0)  # include both saturated ends
    weights = {k: float(i + 1) for i, k in enumerate(("x", "x_blur", "x_keep", "x_degrade"))}

    def objective(images):
        v = _views(images, s, degrade)
        return sum(w * jnp.sum(v[k] ** 2) for k, w in weights.items())

    grad = jax.jit(jax.grad(objective))(x)
    chex.assert_tree_all_finite(grad)
    assert float(jnp.abs(grad).max()) > 0


def test_views_vmap_and_jit_match_eager():
    x = _images(shape=(3, 2, 10, 10, 2))
    s = _saliency(shape=(3, 2, 10, 10))
    fn = functools.partial(augment.saliency_views, sigma=1.2)
    eager = [fn(images=x[i], saliency=s[i]) for i in range(3)]
    mapped = jax.jit(jax.vmap(lambda a, b: fn(images=a, saliency=b)))(x, s)
    for i in range(3):
        chex.assert_trees_all_close({k: v[i] for k, v in mapped.items()}, eager[i], atol=1e-6)


def test_views_on_sharded_batch_match_single_device(devices):
    mesh = jax.make_mesh((len(devices),), ("data",))
    x, s = _images(shape=(8, 12, 12, 3)), _saliency(shape=(8, 12, 12))
    sharding = jax.NamedSharding(mesh, jax.P("data"))
    sharded = _views(jax.device_put(x, sharding), jax.device_put(s, sharding), "mean")
    single = _views(x, s, "mean")
    chex.assert_trees_all_close(sharded, single, atol=1e-6)


# ---------------------------------------------------------------- gaussian blur


@pytest.mark.parametrize("padding", sorted(SCIPY_MODES))
@pytest.mark.parametrize("sigma", [0.7, 1.5, 3.0])
def test_blur_matches_scipy_everywhere(padding, sigma):
    x = _images(shape=(2, 11, 9, 3))  # sigma=3: radius 9 > image size, padding wraps again
    radius = math.ceil(3 * sigma)
    ref = scipy.ndimage.gaussian_filter(
        np.asarray(x, np.float64),
        sigma=(0, sigma, sigma, 0),
        radius=(0, radius, radius, 0),
        mode=SCIPY_MODES[padding],
    )
    out = blur_jit(x, sigma=sigma, padding=padding)
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_blur_explicit_kernel_size_matches_scipy_radius():
    x = _images(shape=(1, 12, 12, 2))
    ref = scipy.ndimage.gaussian_filter(
        np.asarray(x, np.float64), sigma=(0, 2.0, 2.0, 0), radius=(0, 2, 2, 0), mode="mirror"
    )
    np.testing.assert_allclose(blur_jit(x, sigma=2.0, kernel_size=5), ref, atol=1e-5)


def test_blur_keeps_intensity():
    const = jnp.full((2, 9, 9, 3), 0.37, jnp.float32)
    out = blur_jit(const, sigma=1.7)
    np.testing.assert_allclose(out, const, rtol=1e-6)
    np.testing.assert_allclose(out.sum(), const.sum(), rtol=1e-6)
    # A swatch away from the borders keeps its total: blur cannot hide a low-frequency shortcut.
    swatch = jnp.zeros((1, 32, 32, 1)).at[:, 12:16, 12:16].set(0.8)
    blurred = blur_jit(swatch, sigma=1.5)
    np.testing.assert_allclose(blurred.sum(), swatch.sum(), rtol=1e-5)
    assert float(blurred.max()) < 0.8


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.2, 2.5])
def test_kernel_is_normalised_symmetric_and_default_sized(sigma):
    size = augment.default_kernel_size(sigma)
    assert size == 2 * math.ceil(3 * sigma) + 1 and size % 2 == 1
    k = augment.gaussian_kernel_1d(sigma=sigma, kernel_size=size)
    assert k.shape == (size,)
    np.testing.assert_allclose(k.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(k, k[::-1])
    assert k.argmax() == size // 2


@pytest.mark.parametrize("kernel_size", [0, 4, -3, 2.0])
def test_bad_kernel_size_raises(kernel_size):
    with pytest.raises(ValueError, match="kernel_size"):
        augment.gaussian_kernel_1d(sigma=1.0, kernel_size=kernel_size)
    with pytest.raises(ValueError, match="kernel_size"):
        augment.gaussian_blur(_images(), sigma=1.0, kernel_size=kernel_size)


def test_blur_rejects_bad_inputs():
    with pytest.raises(ValueError, match="sigma"):
        augment.gaussian_blur(_images(), sigma=0.0, kernel_size=3)
    with pytest.raises(ValueError, match=r"\(B,H,W,C\)"):
        augment.gaussian_blur(_images()[0], sigma=1.0)
    with pytest.raises(ValueError, match="floating"):
        augment.gaussian_blur(jnp.ones((1, 4, 4, 1), jnp.int32), sigma=1.0)
    with pytest.raises(ValueError, match="REFLECT"):
        augment.gaussian_blur(_images(), sigma=1.0, padding="WRAP")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_blur_keeps_dtype(dtype):
    x = _images().astype(dtype)
    out = blur_jit(x, sigma=1.0)
    chex.assert_type(out, dtype)
    chex.assert_shape(out, x.shape)
    ref = blur_jit(x.astype(jnp.float32), sigma=1.0)
    np.testing.assert_allclose(out.astype(jnp.float32), ref, atol=0.05)


# ---------------------------------------------------------------- degradation ops


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("op", sorted(augment.DEGRADATIONS))
def test_degrade_shape_and_dtype(op, dtype):
    x = _images().astype(dtype)
    out = degrade_jit(x, op=op, sigma=1.0, rng=jax.random.key(0))
    chex.assert_shape(out, x.shape)
    chex.assert_type(out, dtype)
    chex.assert_tree_all_finite(out)


def test_degrade_mean_fills_per_image_per_channel_mean():
    x = _images() + jnp.arange(3.0)  # channel means differ
    out = degrade_jit(x, op="mean")
    expect = np.broadcast_to(np.asarray(x).mean(axis=(1, 2), keepdims=True), x.shape)
    np.testing.assert_allclose(out, expect, atol=1e-6)
    assert np.ptp(np.asarray(out)[:, 0, 0, :], axis=-1).min() > 0.5  # channels not mixed


def test_degrade_zero_removes_even_the_mean_of_the_region():
    x = _images() + 0.5
    views = augment.saliency_views(
        images=x, saliency=jnp.zeros(x.shape[:3]).at[:, 8:24, 8:24].set(1.0), sigma=2.0, kernel_size=13, degrade="zero"
    )
    np.testing.assert_array_equal(np.asarray(views["x_keep"])[:, :8], 0.0)  # non-salient rows: black, whatever x
    np.testing.assert_array_equal(np.asarray(views["x_keep"])[:, 8:24, 8:24], np.asarray(x)[:, 8:24, 8:24])
    np.testing.assert_array_equal(np.asarray(views["x_degrade"])[:, 8:24, 8:24], 0.0)


def test_degrade_noise_statistics_and_determinism():
    x = jnp.zeros((4, 32, 32, 3))
    a = degrade_jit(x, op="noise", rng=jax.random.key(7), noise_std=0.25)
    b = degrade_jit(x, op="noise", rng=jax.random.key(7), noise_std=0.25)
    c = degrade_jit(x, op="noise", rng=jax.random.key(8), noise_std=0.25)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert abs(float(a.std()) - 0.25) < 0.01 and abs(float(a.mean())) < 0.01


def test_degrade_blur_is_gaussian_blur():
    x = _images()
    np.testing.assert_array_equal(
        degrade_jit(x, op="blur", sigma=1.3, kernel_size=5), blur_jit(x, sigma=1.3, kernel_size=5)
    )


def test_degrade_errors():
    with pytest.raises(ValueError, match="needs an rng"):
        augment.degrade(_images(), op="noise")
    with pytest.raises(ValueError, match="needs sigma"):
        augment.degrade(_images(), op="blur")
    with pytest.raises(ValueError, match=r"unknown degrade op 'jpeg'.*'blur', 'mean', 'noise', 'zero'"):
        augment.degrade(_images(), op="jpeg")


# ---------------------------------------------------------------- prepare / validate saliency


@pytest.mark.parametrize("kw", [{}, {"blur_sigma": 1.5}, {"dilate": 2, "size": (8, 8)}])
def test_prepare_empty_and_constant_maps(kw):
    maps = jnp.zeros((3, 16, 16)).at[1].set(0.7).at[2, 4, 5].set(2.0)
    ones = prepare_jit(maps, **kw)
    zeros = prepare_jit(maps, empty="zeros", **kw)
    chex.assert_tree_all_finite((ones, zeros))
    np.testing.assert_array_equal(ones[0], 1.0)  # all-zero map, default empty="ones"
    np.testing.assert_array_equal(zeros[0], 0.0)  # all-zero map, empty="zeros"
    np.testing.assert_array_equal(ones[1], 1.0)  # constant non-zero map (after resize/blur too)
    np.testing.assert_array_equal(zeros[1], 1.0)
    assert float(ones[2].min()) == 0.0 and float(ones[2].max()) == 1.0


def test_prepare_range_and_min_max():
    maps = jnp.asarray(np.random.default_rng(0).gamma(2.0, 3.0, size=(4, 20, 20, 1)), jnp.float32)
    out = prepare_jit(maps, blur_sigma=1.0)
    chex.assert_shape(out, (4, 20, 20))
    chex.assert_type(out, jnp.float32)
    np.testing.assert_allclose(out.min(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.max(axis=(1, 2)), 1.0, atol=1e-6)
    m = np.asarray(maps[..., 0], np.float64)
    lo, hi = m.min(axis=(1, 2), keepdims=True), m.max(axis=(1, 2), keepdims=True)
    raw = prepare_jit(maps)
    np.testing.assert_allclose(raw, (m - lo) / (hi - lo), atol=1e-6)
    assert not np.allclose(out, raw)  # the blur did something


def test_prepare_dilation_grows_pixel_to_square():
    maps = jnp.zeros((2, 12, 12)).at[0, 5, 7].set(3.0).at[1, 0, 11].set(1.0)
    out = np.asarray(prepare_jit(maps, dilate=2))
    expect = np.zeros((2, 12, 12))
    expect[0, 3:8, 5:10] = 1.0
    expect[1, 0:3, 9:12] = 1.0  # clipped at the corner
    np.testing.assert_array_equal(out, expect)


def test_prepare_resize_and_errors():
    maps = _saliency(shape=(2, 32, 32))
    out = prepare_jit(maps[..., None], size=(8, 12))
    chex.assert_shape(out, (2, 8, 12))
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    with pytest.raises(ValueError, match=r"\(B,H,W\) or \(B,H,W,1\)"):
        augment.prepare_saliency(jnp.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="empty"):
        augment.prepare_saliency(maps, empty="nan")
    with pytest.raises(ValueError, match="dilate"):
        augment.prepare_saliency(maps, dilate=-1)


def test_validate_saliency_names_bad_indices():
    good = np.random.default_rng(0).uniform(size=(5, 6, 6)).astype(np.float32)
    assert augment.validate_saliency(good) is None
    augment.validate_saliency(good[..., None])
    cases = {
        "NaN at batch indices [2]": (2, np.nan),
        "Inf at batch indices [4]": (4, -np.inf),
        "negative values at batch indices [1]": (1, -0.1),
    }
    for message, (index, value) in cases.items():
        bad = good.copy()
        bad[index, 3, 3] = value
        with pytest.raises(ValueError, match=re.escape(message)):
            augment.validate_saliency(bad)
    bad = good.copy()
    bad[0, 0, 0] = np.nan
    bad[3, 1, 1] = np.inf
    with pytest.raises(ValueError, match=r"NaN at batch indices \[0\]; Inf at batch indices \[3\]"):
        augment.validate_saliency(bad)
    for shape in [(5, 6), (5, 6, 6, 3), (5, 1, 6, 6, 1)]:
        with pytest.raises(ValueError, match=re.escape(str(shape))):
            augment.validate_saliency(np.zeros(shape))


def test_validate_saliency_truncates_long_index_lists():
    bad = np.zeros((40, 4, 4))
    bad[::2, 0, 0] = np.nan  # 20 bad maps
    with pytest.raises(ValueError, match=re.escape(f"{list(range(0, 32, 2))} ... (20 maps)")):
        augment.validate_saliency(bad)
