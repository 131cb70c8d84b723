"""Host-side decode and crop (sagejax.data.host_ops): box draws, the exact evaluation crop, the same cut of an image
and its maps, determinism, the lost-saliency fallback and the JPEG reduced-scale decode."""

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from sagejax.data import host_ops
from sagejax.errors import ConfigError

SIZES = [(40, 90), (120, 64), (33, 33), (375, 500)]  # (H, W): wide, tall, square, ImageNet-like


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(array, quality=90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _coordinates(h, w) -> np.ndarray:
    """uint8 (H, W, 3): a column ramp, a row ramp and a function of both, so any misplaced pixel shows."""
    rows, cols = np.mgrid[0:h, 0:w]
    return np.stack([cols * 255 // max(w - 1, 1), rows * 255 // max(h - 1, 1), (rows * 7 + cols * 13) % 256], -1)


@pytest.mark.parametrize("h, w", SIZES)
def test_random_resized_boxes_lie_inside_the_image_with_the_drawn_area_and_aspect(h, w):
    rng = np.random.default_rng(0)
    scale, ratio = (0.35, 1.0), (3 / 4, 4 / 3)
    for _ in range(200):
        box = host_ops.random_resized_box(rng, h, w, scale=scale, ratio=ratio)
        assert 0 <= box.top and box.top + box.height <= 1 + 1e-9 and 0 <= box.left and box.left + box.width <= 1 + 1e-9
        ph, pw = round(box.height * h), round(box.width * w)
        assert abs(box.height * h - ph) < 1e-9 and abs(box.width * w - pw) < 1e-9 and ph >= 1 and pw >= 1  # whole
        if (ph, pw) != (h, w):  # not the fallback: area and aspect within the drawn ranges, up to the rounding
            assert scale[0] * h * w - (ph + pw + 1) <= ph * pw <= scale[1] * h * w + (ph + pw + 1)
            assert ratio[0] * (1 - 1 / ph) - 1 / ph <= pw / ph <= ratio[1] * (1 + 1 / ph) + 1 / ph


def test_a_box_that_cannot_be_drawn_falls_back_to_the_centred_box_of_the_nearest_aspect():
    box = host_ops.random_resized_box(np.random.default_rng(0), 10, 100, scale=(0.9, 1.0), ratio=(1.0, 1.0))
    assert box == host_ops.Box(0.0, 0.45, 1.0, 0.1)  # 10×10 in the middle of a 10×100 strip


@pytest.mark.parametrize("h, w, top, left", [(256, 320, 16, 48), (320, 256, 48, 16)])
def test_the_evaluation_crop_is_the_exact_centre_224_of_256(h, w, top, left):
    """Shorter side 256 → the 224×224 centre, pixel for pixel (fraction 0.875)."""
    image = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    crop = host_ops.HostCrop(size=224)
    out = crop({"image": _png(image)}, None, keys=(), channels=3)["image"]
    np.testing.assert_array_equal(out, image[top : top + 224, left : left + 224])


@pytest.mark.parametrize("h, w", SIZES)
def test_the_image_and_its_maps_are_cut_identically(h, w):
    """A map that is one of the image's channels comes out as that channel of the cropped image, for random crops
    and flips; a map at half resolution lands on the same place (to its resampling), a 1×1 zero map stays zero."""
    image = _coordinates(h, w).astype(np.uint8)
    crop = host_ops.HostCrop(size=24, train=True, augment="crop_flip")
    half = np.asarray(Image.fromarray(image[..., 0]).resize((max(w // 2, 1), max(h // 2, 1)), Image.BILINEAR))
    record = {"image": _png(image), "saliency": _png(image[..., 0]), "density": half, "empty": np.zeros((1, 1))}
    flips = set()
    for position in range(8):
        out = crop(record, np.random.default_rng([0, position]), keys=("saliency", "density", "empty"), channels=3)
        assert out["image"].shape == (24, 24, 3) and out["saliency"].shape == (24, 24)
        np.testing.assert_array_equal(out["saliency"], out["image"][..., 0])
        interior = (slice(4, -4), slice(4, -4))
        assert np.abs(out["density"][interior].astype(int) - out["saliency"][interior]).max() <= 12
        assert not out["empty"].any()
        box = crop.box(np.random.default_rng([0, position]), h, w)
        flips.add(box.flip)
        column = np.mean(out["image"][:, :, 0].astype(float), axis=0)  # the column ramp: increasing unless flipped
        assert (column[-1] - column[0] > 0) != box.flip or box.width * w < 3
    assert flips == {True, False}


def test_the_crop_lands_where_the_box_says():
    """On a column-index ramp, the first output column reads the box's left edge (its right edge when flipped)."""
    w = 256
    image = np.tile(np.arange(w, dtype=np.uint8), (64, 1))
    for box in (host_ops.Box(0.0, 0.25, 1.0, 0.5), host_ops.Box(0.0, 0.25, 1.0, 0.5, flip=True)):
        out = host_ops.crop_resize(host_ops.open_image(_png(image)), box, 32, Image.BILINEAR)
        first, last = (191, 64) if box.flip else (64, 191)
        assert abs(int(out[0, 0]) - first) <= 3 and abs(int(out[0, -1]) - last) <= 3


def test_crops_are_a_function_of_the_generator_seed():
    image = np.random.default_rng(2).integers(0, 256, (120, 64, 3), dtype=np.uint8)
    crop = host_ops.HostCrop(size=16, train=True, augment="crop_flip")

    def cut(seed, position):
        return crop({"image": _jpeg(image)}, np.random.default_rng([seed, position]), keys=(), channels=3)["image"]

    np.testing.assert_array_equal(cut(0, 3), cut(0, 3))
    assert not np.array_equal(cut(0, 3), cut(0, 4)) and not np.array_equal(cut(0, 3), cut(1, 3))


def test_a_training_crop_that_misses_the_whole_salient_region_takes_the_whole_image_instead():
    image = np.random.default_rng(3).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    salient = np.zeros((100, 100), np.uint8)
    salient[:5, :5] = 255  # the top-left corner only
    crop = host_ops.HostCrop(size=20, train=True, augment="crop_flip", scale=(0.1, 0.1))
    record = {"image": _png(image), "saliency": _png(salient)}
    missed = 0
    for position in range(40):
        box = crop.box(np.random.default_rng([0, position]), 100, 100)
        out = crop(record, np.random.default_rng([0, position]), keys=("saliency",), channels=3)
        assert out["saliency"].max() > 0
        if box.top > 0.05 or box.left > 0.05:  # this box misses the corner: the whole image was taken
            missed += 1
            whole = dataclasses.replace(host_ops.FULL, flip=box.flip)
            expected = host_ops.crop_resize(host_ops.open_image(image), whole, 20, Image.BILINEAR)
            np.testing.assert_array_equal(out["image"], expected)
    assert missed > 10
    evaluation = host_ops.HostCrop(size=20, eval_fraction=0.5)({**record}, None, keys=("saliency",), channels=3)
    assert evaluation["saliency"].max() == 0  # evaluation keeps its protocol's crop


def test_gray_and_colour_images_are_converted_to_the_wanted_channels():
    gray = np.random.default_rng(4).integers(0, 256, (30, 40), dtype=np.uint8)
    crop = host_ops.HostCrop(size=8)
    assert crop({"image": _jpeg(gray)}, None, keys=(), channels=3)["image"].shape == (8, 8, 3)
    assert crop({"image": gray[..., None]}, None, keys=(), channels=1)["image"].shape == (8, 8, 1)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_when_the_crop_needs_fewer_pixels():
    image = _coordinates(600, 800).astype(np.uint8)
    opened = host_ops.open_image(_jpeg(image, quality=95))
    out = host_ops.crop_resize(opened, host_ops.FULL, 64, Image.BILINEAR)
    assert opened.size == (100, 75)  # 1/8 scale: still >= 64 pixels across
    full = host_ops.crop_resize(host_ops.open_image(image), host_ops.FULL, 64, Image.BILINEAR)
    assert np.abs(out.astype(int) - full).mean() < 3


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(size=0), "image_size must be positive"),
        (dict(augment="rotate"), "unknown data.augment 'rotate'"),
        (dict(scale=(0.5, 1.5)), "crop_scale must satisfy"),
        (dict(ratio=(0.0, 1.0)), "crop_ratio must satisfy"),
        (dict(eval_fraction=1.2), "eval_crop_fraction must be in"),
    ],
)
def test_impossible_settings_are_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        host_ops.HostCrop(**{"size": 8, **settings})
