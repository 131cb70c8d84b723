"""Tests for sagejax.augment.geometric: joint random-resized crop + flip of images and their maps."""

import functools

import jax
import numpy as np
import pytest
import scipy.ndimage

from sagejax.augment.geometric import augment_batch, crop_and_resize, sample_crops

B, H, W, C = 16, 32, 32, 3
FULL = {"scale": (1.0, 1.0), "ratio": (1.0, 1.0)}


def _jit_augment(**kw):
    return jax.jit(functools.partial(augment_batch, **kw))


def _float(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def _fixations(shape, seed=0, dtype=np.uint8):
    return (np.random.default_rng(seed).uniform(size=shape) < 0.05).astype(dtype)


def _crops(batch=B, *, top=0.0, left=0.0, height=1.0, width=1.0, flip=False):
    full = functools.partial(np.full, batch, dtype=np.float32)
    return {
        "top": full(top),
        "left": full(left),
        "height": full(height),
        "width": full(width),
        "flip": np.full(batch, flip, dtype=bool),
    }


def _reference(x, crops, order=1):
    """NumPy/scipy reference: sample each (H, W) plane at the output pixel centres, then mirror."""
    x = np.asarray(x, np.float64)
    n_h, n_w = x.shape[1:3]
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        top, left = float(crops["top"][b]), float(crops["left"][b])
        height, width = float(crops["height"][b]), float(crops["width"][b])
        ys = top * n_h + height * (np.arange(n_h) + 0.5) - 0.5
        xs = left * n_w + width * (np.arange(n_w) + 0.5) - 0.5
        grid = np.meshgrid(ys, xs, indexing="ij")
        planes = x[b].reshape(n_h, n_w, -1)
        sampled = np.stack(
            [
                scipy.ndimage.map_coordinates(planes[..., c], grid, order=order, mode="nearest")
                for c in range(planes.shape[-1])
            ],
            axis=-1,
        ).reshape(x.shape[1:])
        out[b] = sampled[:, ::-1] if crops["flip"][b] else sampled
    return out


# ---------------------------------------------------------------- sample_crops


def test_sampled_boxes_respect_ranges():
    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
    crops = jax.jit(functools.partial(sample_crops, batch_size=4096, scale=scale, ratio=ratio))(jax.random.key(0))
    crops = {k: np.asarray(v) for k, v in crops.items()}
    for key in ("top", "left", "height", "width"):
        assert crops[key].shape == (4096,) and crops[key].dtype == np.float32
    assert crops["flip"].shape == (4096,) and crops["flip"].dtype == bool
    top, left, height, width = crops["top"], crops["left"], crops["height"], crops["width"]
    eps = 1e-6
    assert np.all(top >= 0) and np.all(left >= 0) and np.all(height > 0) and np.all(width > 0)
    assert np.all(height <= 1) and np.all(width <= 1)
    assert np.all(top + height <= 1 + eps) and np.all(left + width <= 1 + eps)
    area, aspect = height * width, width / height
    assert np.all(area <= scale[1] + eps)
    unclipped = (height < 1) & (width < 1)
    assert unclipped.mean() > 0.5  # most draws are not clipped with these ranges
    assert np.all(area[unclipped] >= scale[0] - eps)
    assert np.all((aspect[unclipped] >= ratio[0] - eps) & (aspect[unclipped] <= ratio[1] + eps))
    # Clipped boxes are squarer than drawn: their aspect ratio never leaves the range either.
    assert np.all((aspect >= ratio[0] - eps) & (aspect <= ratio[1] + eps))
    # The draws cover the ranges, and the position is spread over the free space.
    assert area.min() < 0.15 and area.max() > 0.9
    assert aspect[unclipped].min() < 0.8 and aspect[unclipped].max() > 1.25
    free = 1 - width > 0.2
    rel = left[free] / (1 - width[free])
    assert 0.45 < rel.mean() < 0.55 and rel.min() < 0.05 and rel.max() > 0.95
    assert 0.45 < crops["flip"].mean() < 0.55


def test_sample_crops_full_image_and_no_flip():
    crops = sample_crops(jax.random.key(1), 64, **FULL, flip=False)
    np.testing.assert_array_equal(crops["top"], 0.0)
    np.testing.assert_array_equal(crops["left"], 0.0)
    np.testing.assert_array_equal(crops["height"], 1.0)
    np.testing.assert_array_equal(crops["width"], 1.0)
    assert not np.asarray(crops["flip"]).any()


def test_sample_crops_differ_per_example():
    crops = sample_crops(jax.random.key(2), B)
    boxes = np.stack([np.asarray(crops[k]) for k in ("top", "left", "height", "width")], axis=1)
    assert len(np.unique(boxes, axis=0)) == B


@pytest.mark.parametrize("bad", [{"scale": (0.5, 0.2)}, {"scale": (0.1, 1.5)}, {"ratio": (0.0, 1.0)}])
def test_sample_crops_rejects_bad_ranges(bad):
    with pytest.raises(ValueError, match="scale|ratio"):
        sample_crops(jax.random.key(0), 4, **bad)


# ---------------------------------------------------------------- crop_and_resize


def test_known_left_half_crop():
    image = np.broadcast_to(np.arange(W, dtype=np.float32), (2, H, W)).copy()
    crops = _crops(2, width=0.5)
    out = np.asarray(jax.jit(crop_and_resize)(image, crops))
    # Output column j samples input column 0.5·(j + 0.5) − 0.5, clamped to the pixel centres.
    expected_row = np.interp(np.clip(0.5 * (np.arange(W) + 0.5) - 0.5, 0, W - 1), np.arange(W), np.arange(W))
    np.testing.assert_allclose(out, np.broadcast_to(expected_row, out.shape), atol=1e-5)
    np.testing.assert_allclose(out, _reference(image, crops), atol=1e-5)
    row = out[0, 0]
    assert np.all(np.diff(row) >= 0) and np.diff(row).max() > 0
    assert row[0] == pytest.approx(0.0, abs=1e-6)
    assert row[-1] == pytest.approx(W / 2 - 1, abs=0.5)


def test_random_crops_match_scipy_reference():
    image = _float((8, H, W, C), seed=3)
    crops = {k: np.asarray(v) for k, v in sample_crops(jax.random.key(4), 8).items()}
    out = jax.jit(crop_and_resize)(image, crops)
    assert out.shape == image.shape and out.dtype == image.dtype
    np.testing.assert_allclose(np.asarray(out), _reference(image, crops), atol=1e-5)


def test_nearest_matches_reference_on_box_interiors():
    # scipy rounds exact .5 ties differently; a box of 0.4 of the image never samples a tie.
    image = _float((2, H, W), seed=5)
    crops = _crops(2, top=0.3, left=0.1, height=0.4, width=0.4, flip=True)
    out = crop_and_resize(image, crops, nearest=True)
    np.testing.assert_array_equal(np.asarray(out), _reference(image, crops, order=0).astype(np.float32))
    assert set(np.unique(np.asarray(out))) <= set(np.unique(image))


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int32, bool])
def test_identity_reproduces_input(dtype):
    x = _float((4, H, W, 2)) if dtype == np.float32 else _fixations((4, H, W, 2), dtype=dtype)
    crops = sample_crops(jax.random.key(0), 4, **FULL, flip=False)
    nearest = dtype != np.float32
    out = jax.jit(functools.partial(crop_and_resize, nearest=nearest))(x, crops)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(out), x)  # exact, also for bilinear


def test_identity_through_augment_batch():
    batch = {"image": _float((4, H, W, C)), "saliency": _float((4, H, W), 1), "fixations": _fixations((4, H, W))}
    out = _jit_augment(**FULL, flip=False)(batch, jax.random.key(9))
    for key, value in batch.items():
        assert out[key].dtype == value.dtype
        np.testing.assert_array_equal(np.asarray(out[key]), value)


def test_flip_only_mirrors_flipped_examples():
    x = _float((B, H, W, C), seed=6)
    rng = jax.random.key(7)
    crops = sample_crops(rng, B, **FULL, flip=True)
    flips = np.asarray(crops["flip"])
    assert 0 < flips.sum() < B
    out = np.asarray(crop_and_resize(x, crops))
    for b in range(B):
        np.testing.assert_array_equal(out[b], np.flip(x[b], axis=1) if flips[b] else x[b])
    batch_out = _jit_augment(**FULL, flip=True)({"image": x}, rng)
    np.testing.assert_array_equal(
        np.asarray(batch_out["image"]), np.where(flips[:, None, None, None], np.flip(x, 2), x)
    )


def test_bilinear_rejects_integer_dtype():
    with pytest.raises(ValueError, match="uint8"):
        crop_and_resize(np.zeros((2, H, W), np.uint8), _crops(2))
    with pytest.raises(ValueError, match="bool"):
        crop_and_resize(np.zeros((2, H, W), bool), _crops(2))


def test_crop_and_resize_checks_shapes():
    with pytest.raises(ValueError, match="shape"):
        crop_and_resize(np.zeros((2, H), np.float32), _crops(2))
    with pytest.raises(ValueError, match="top"):
        crop_and_resize(np.zeros((3, H, W), np.float32), _crops(2))


def test_vmap_over_crop_and_resize():
    x = _float((2, 4, H, W), seed=8)
    crops = [_crops(4, width=0.5), _crops(4, height=0.5, flip=True)]
    stacked = {k: np.stack([c[k] for c in crops]) for k in crops[0]}
    out = jax.vmap(crop_and_resize)(x, stacked)
    for i in range(2):
        np.testing.assert_allclose(np.asarray(out[i]), np.asarray(crop_and_resize(x[i], crops[i])), atol=1e-6)


# ---------------------------------------------------------------- augment_batch


def test_map_moves_with_image():
    saliency = _float((B, H, W), seed=10)
    image = np.concatenate([saliency[..., None], _float((B, H, W, C - 1), seed=11)], axis=-1)
    batch = {"image": image, "saliency": saliency}
    out = _jit_augment(scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip=True)(batch, jax.random.key(12))
    np.testing.assert_allclose(np.asarray(out["image"][..., 0]), np.asarray(out["saliency"]), atol=1e-6)
    assert out["image"].shape == image.shape and out["saliency"].shape == saliency.shape
    changed = np.abs(np.asarray(out["image"]) - image).reshape(B, -1).max(axis=1) > 1e-3
    assert changed.sum() >= B // 2  # random crops really moved the content
    # The same crops applied eagerly agree (to float32 rounding of the coordinates, which XLA may
    # fuse differently under jit): augment_batch draws with sample_crops(rng, B).
    crops = sample_crops(jax.random.key(12), B)
    np.testing.assert_allclose(np.asarray(out["saliency"]), np.asarray(crop_and_resize(saliency, crops)), atol=1e-4)


@pytest.mark.parametrize("dtype", [np.uint8, bool])
def test_binary_fixations_stay_binary(dtype):
    fixations = _fixations((B, H, W), seed=13, dtype=dtype)
    fixations_c = _fixations((B, H, W, 1), seed=14, dtype=dtype)
    batch = {"image": _float((B, H, W, C)), "fixations": fixations, "fixations_c": fixations_c}
    out = _jit_augment(scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip=True)(batch, jax.random.key(15))
    for key in ("fixations", "fixations_c"):
        got = np.asarray(out[key])
        assert got.dtype == np.dtype(dtype) and got.shape == batch[key].shape
        assert set(np.unique(got).tolist()) <= {0, 1}
        assert got.any() and not np.array_equal(got, batch[key])


@pytest.mark.parametrize("dtype", [np.uint8, bool])
def test_single_fixation_lands_at_mirrored_column(dtype):
    row, col = 5, 3
    fixations = np.zeros((B, H, W), dtype)
    fixations[:, row, col] = 1
    rng = jax.random.key(16)
    out = np.asarray(_jit_augment(**FULL, flip=True)({"image": _float((B, H, W, C)), "fix": fixations}, rng)["fix"])
    flips = np.asarray(sample_crops(rng, B, **FULL, flip=True)["flip"])
    assert 0 < flips.sum() < B
    assert out.dtype == np.dtype(dtype)
    for b in range(B):
        assert np.argwhere(out[b]).tolist() == [[row, W - 1 - col if flips[b] else col]]


def test_non_maps_pass_through():
    batch = {
        "image": _float((B, H, W, C)),
        "label": np.arange(B, dtype=np.int32),
        "weight": np.ones((B,), np.float32),
        "features": _float((B, 5), seed=18),
    }
    out = augment_batch(batch, jax.random.key(19))
    assert set(out) == set(batch)
    for key in ("label", "weight", "features"):
        assert out[key] is batch[key]
    assert not np.allclose(np.asarray(out["image"]), batch["image"])
    jitted = _jit_augment()(batch, jax.random.key(19))
    for key in ("label", "weight", "features"):
        np.testing.assert_array_equal(np.asarray(jitted[key]), batch[key])


@pytest.mark.parametrize("shape", [(B, 8, 8), (B, H, 8), (B, 8, W, 1)])
def test_a_map_at_another_resolution_gets_the_same_box(shape):
    batch = {"image": _float((B, H, W, C)), "small_map": _float(shape, seed=17)}
    rng = jax.random.key(23)
    out = augment_batch(batch, rng, scale=(0.3, 1.0))
    crops = sample_crops(rng, B, scale=(0.3, 1.0))
    np.testing.assert_allclose(np.asarray(out["small_map"]), np.asarray(crop_and_resize(batch["small_map"], crops)))
    assert not np.allclose(np.asarray(out["small_map"]), batch["small_map"])


def test_a_quarter_resolution_map_flips_with_the_image():
    image = _float((B, H, W, C))
    small = image[..., 0].reshape(B, H // 4, 4, W // 4, 4).mean(axis=(2, 4))
    out = augment_batch({"image": image, "small": small}, jax.random.key(5), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    flipped = np.asarray(out["image"])[..., 0].reshape(B, H // 4, 4, W // 4, 4).mean(axis=(2, 4))
    np.testing.assert_allclose(np.asarray(out["small"]), flipped, atol=1e-6)


def test_batch_size_mismatch_raises_naming_key():
    batch = {"image": _float((B, H, W, C)), "saliency": np.zeros((B - 1, H, W), np.float32)}
    with pytest.raises(ValueError, match="saliency"):
        augment_batch(batch, jax.random.key(0))


def test_missing_image_raises():
    with pytest.raises(ValueError, match="image"):
        augment_batch({"saliency": _float((B, H, W))}, jax.random.key(0))
