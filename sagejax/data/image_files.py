"""Image files read faithfully: 8-bit images as stored, 16- and 32-bit grayscale rescaled by their bit depth
(Pillow's own conversion to RGB or L clips them to white), then bilinearly resized to the stored size, or kept
encoded at full resolution."""

import io
import pathlib

import numpy as np
from PIL import Image

WIDE_GRAY_MAX = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I": 2**32 - 1}
KEPT_FORMATS = ("JPEG", "PNG")  # stored as the file's own bytes when already of the wanted mode


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


def png_bytes(pixels) -> bytes:
    """A uint8 (H, W[, C]) array or a pillow image as PNG bytes (lossless)."""
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.asarray(pixels))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encode_image(path, *, channels: int) -> tuple[bytes, tuple[int, int]]:
    """The image file at full resolution as encoded bytes, and its (H0, W0): the file's own bytes when it is a JPEG
    or PNG of the wanted mode (RGB or L), else its pixels as read above, re-encoded as PNG.

    Decodes the whole file once, so a truncated or corrupt one raises what Pillow raises; callers name the file.
    """
    data = pathlib.Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        mode = "RGB" if channels == 3 else "L"
        if im.format in KEPT_FORMATS and im.mode == mode:
            return data, (im.height, im.width)
        return png_bytes(_to_8bit(im).convert(mode)), (im.height, im.width)
