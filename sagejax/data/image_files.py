"""Image files read faithfully: 8-bit images as stored, 16- and 32-bit grayscale rescaled by their bit depth
(Pillow's own conversion to RGB or L clips them to white), then bilinearly resized to the stored size."""

import numpy as np
from PIL import Image

WIDE_GRAY_MAX = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I": 2**32 - 1}


def _to_8bit(im: Image.Image) -> Image.Image:
    """An 8-bit image of `im`: wide grayscale divided by its full scale, everything else left to Pillow."""
    if im.mode in WIDE_GRAY_MAX:
        values = np.asarray(im, dtype=np.float64) / WIDE_GRAY_MAX[im.mode]
        return Image.fromarray(np.clip(np.round(values * 255), 0, 255).astype(np.uint8), mode="L")
    return im


def read_image(path, *, shape: tuple[int, int], channels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The image file as uint8 (H, W, channels) resized to `shape` = (H, W), and its source (H0, W0).

    Raises what Pillow raises for unreadable files; callers name the file.
    """
    with Image.open(path) as im:
        source = (im.height, im.width)
        converted = _to_8bit(im).convert("RGB" if channels == 3 else "L")
        image = np.asarray(converted.resize(shape[::-1], Image.BILINEAR), dtype=np.uint8)
    return image.reshape(*shape, channels), source
