"""SimCLR views on the device: each op against NumPy, the rates of the random ops, maps moving with the image."""

import colorsys
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sagejax.augment import gaussian_blur, simclr

LUMA = np.array([0.299, 0.587, 0.114])
# Every random op off: the view is the image itself (a full crop reproduces the input exactly).
OFF = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=False, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)


@functools.cache
def _jitted(settings: tuple):
    return jax.jit(functools.partial(simclr.simclr_view, **dict(settings)))


def _view(key, images, maps=None, **settings):
    """simclr_view, jitted once per settings (as the step runs it; eager dispatch of its per-example ops is slow)."""
    return _jitted(tuple(sorted(settings.items())))(key, images, maps)


def _images(batch=4, size=16, channels=3, seed=0):
    return jax.random.uniform(jax.random.key(seed), (batch, size, size, channels))


def _hsv_reference(x, change):
    """colorsys per pixel: RGB → HSV, change(h, s, v), → RGB."""
    out = np.empty_like(x)
    for index in np.ndindex(x.shape[:-1]):
        out[index] = colorsys.hsv_to_rgb(*change(*colorsys.rgb_to_hsv(*x[index])))
    return out


def test_colour_ops_match_numpy_and_colorsys():
    x = np.asarray(_images()[0], np.float64)
    xj = jnp.asarray(x, jnp.float32)
    np.testing.assert_allclose(simclr.adjust_brightness(xj, 1.3), 1.3 * x, rtol=1e-6)
    mean = x.mean(axis=(0, 1))  # per channel, as tf.image.adjust_contrast
    np.testing.assert_allclose(simclr.adjust_contrast(xj, 0.4), (x - mean) * 0.4 + mean, atol=1e-6)
    hsv = np.apply_along_axis(lambda pixel: colorsys.rgb_to_hsv(*pixel), -1, x)
    np.testing.assert_allclose(simclr.rgb_to_hsv(xj), hsv, atol=1e-5)
    saturated = _hsv_reference(x, lambda h, s, v: (h, min(1.0, s * 1.7), v))
    np.testing.assert_allclose(simclr.adjust_saturation(xj, 1.7), saturated, atol=1e-5)
    shifted = _hsv_reference(x, lambda h, s, v: ((h + 0.3) % 1.0, s, v))
    np.testing.assert_allclose(simclr.adjust_hue(xj, 0.3), shifted, atol=1e-5)
    gray = _images(channels=1)[0]
    np.testing.assert_array_equal(simclr.adjust_hue(gray, 0.3), gray)
    np.testing.assert_array_equal(simclr.adjust_saturation(gray, 0.3), gray)


def test_jitter_order_is_a_uniform_permutation():
    orders = np.asarray(jax.vmap(simclr.jitter_order)(jax.random.split(jax.random.key(0), 4000)))
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders[:50])
    first = np.bincount(orders[:, 0], minlength=4) / len(orders)
    assert np.all(np.abs(first - 0.25) < 3 * np.sqrt(0.25 * 0.75 / len(orders)))


def test_with_every_op_off_a_view_is_the_image_and_maps_pass_unchanged():
    x = _images()
    maps = {"t": jax.random.uniform(jax.random.key(1), (4, 8, 8))}
    view, moved = _view(jax.random.key(0), x, maps, **OFF)
    np.testing.assert_array_equal(view, x)
    np.testing.assert_array_equal(moved["t"], maps["t"])


def test_grayscale_and_blur_rates_and_the_blur_itself():
    n = 2000
    x = jnp.broadcast_to(_images(batch=1, size=8)[0], (n, 8, 8, 3))
    settings = {**OFF, "grayscale_p": 0.2}
    view, _ = _view(jax.random.key(0), x, **settings)
    is_gray = np.all(np.abs(np.asarray(view) - np.asarray(view)[..., :1]) < 1e-6, axis=(1, 2, 3))
    assert abs(is_gray.mean() - 0.2) < 3 * np.sqrt(0.2 * 0.8 / n)
    np.testing.assert_allclose(np.asarray(view)[is_gray][0, ..., 0], np.asarray(x[0]) @ LUMA, atol=1e-6)
    settings = {**OFF, "blur_p": 0.5, "blur_sigma": (1.0, 1.0)}
    view, _ = _view(jax.random.key(1), x, **settings)
    blurred = np.asarray(gaussian_blur(x[:1], sigma=1.0, kernel_size=simclr.blur_kernel_size(1.0, 8)))[0]
    is_blurred = np.all(np.abs(np.asarray(view) - blurred) < 1e-5, axis=(1, 2, 3))
    untouched = np.all(np.asarray(view) == np.asarray(x[0]), axis=(1, 2, 3))
    assert np.all(is_blurred | untouched) and abs(is_blurred.mean() - 0.5) < 3 * np.sqrt(0.25 / n)


def test_jitter_factors_follow_the_simclr_ranges():
    """Brightness alone (contrast/saturation/hue of a gray constant image do nothing): factor ~ U[1 − .8s, 1 + .8s]."""
    n, strength = 4000, 0.5
    x = jnp.full((n, 4, 4, 3), 0.25)
    view, _ = _view(jax.random.key(2), x, **{**OFF, "jitter_p": 1.0, "jitter_strength": strength})
    factor = np.asarray(view)[:, 0, 0, 0] / 0.25
    low, high = 1 - 0.8 * strength, 1 + 0.8 * strength
    assert factor.min() >= low - 1e-5 and factor.max() <= high + 1e-5
    assert abs(factor.mean() - 1.0) < 0.02 and abs(factor.std() - (high - low) / np.sqrt(12)) < 0.01


def test_maps_move_with_their_image_at_any_resolution():
    size = 16
    ramp = np.arange(size * size, dtype=np.float32).reshape(size, size) / size**2
    x = jnp.asarray(np.broadcast_to(ramp[None, ..., None], (64, size, size, 1)))
    quarter = np.zeros((64, 4, 4), np.uint8)
    quarter[:, 0, 3] = 1  # the top-right cell
    settings = {**OFF, "crop_scale": (0.3, 1.0), "crop_ratio": (3 / 4, 4 / 3), "flip": True}
    view, maps = _view(jax.random.key(3), x, {"same": x[..., 0], "cell": jnp.asarray(quarter)}, **settings)
    np.testing.assert_allclose(maps["same"], view[..., 0], atol=1e-6)
    flipped = np.asarray(view[:, 0, 0, 0] > view[:, 0, -1, 0])  # the ramp now falls from left to right
    has_cell = np.asarray(maps["cell"]).reshape(64, -1).max(axis=1) > 0
    cell_column = np.argmax(np.asarray(maps["cell"]).max(axis=1), axis=1)
    assert flipped.any() and (~flipped).any() and set(np.unique(maps["cell"])) <= {0, 1}
    assert np.all(cell_column[flipped & has_cell] == 0) and np.all(cell_column[~flipped & has_cell] == 3)


def test_views_are_keyed_per_example():
    x = _images(batch=6)
    first, _ = _view(jax.random.key(0), x)
    again, _ = _view(jax.random.key(0), x)
    other, _ = _view(jax.random.key(1), x)
    np.testing.assert_array_equal(first, again)
    assert np.all(np.abs(np.asarray(first) - np.asarray(other)).mean(axis=(1, 2, 3)) > 1e-3)
    changed = x.at[1:].set(0.5)  # example 0 sees the same view whatever its batch holds
    np.testing.assert_array_equal(_view(jax.random.key(0), changed)[0][0], first[0])


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown SimCLR view settings \\['blur'\\]"):
        simclr.simclr_view(jax.random.key(0), _images(), blur=1.0)
    with pytest.raises(ValueError, match="must be \\(B, H, W, 1 or 3\\)"):
        simclr.simclr_view(jax.random.key(0), _images()[..., :2])
    with pytest.raises(ValueError, match="map 't' must be"):
        simclr.simclr_view(jax.random.key(0), _images(), {"t": jnp.zeros((3, 4, 4))})
