"""Host-side image ops of the loader, for encoded or variable-size images: decode (pillow), then a random-resized
crop + horizontal flip (training) or a resize + centre crop (evaluation) to one square size, applied identically to
the image and its maps, so such datasets batch. They run where the loader reads: its threads or worker processes.

A crop is a box in fractions of the image (as in `sagejax.augment.geometric`), so a map stored at another
resolution than its image (a 1×1 zero map for "no map") is cut at the same place; pillow's box resize crops and
resamples in one antialiased pass, and a JPEG is decoded at a reduced DCT scale when the crop needs fewer pixels.
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
from PIL import Image

from sagejax.data.device import AUGMENTATIONS, SALIENCY_MAPS, UNIT_SCALED
from sagejax.errors import ConfigError, DataError

ATTEMPTS = 10  # random-resized crop draws before falling back to the centre crop (as torchvision)


@dataclasses.dataclass(frozen=True)
class Box:
    """A crop as fractions of the image's height and width, and whether the result is mirrored."""

    top: float
    left: float
    height: float
    width: float
    flip: bool = False


FULL = Box(0.0, 0.0, 1.0, 1.0)


def random_resized_box(rng: np.random.Generator, height: int, width: int, *, scale, ratio) -> Box:
    """torchvision's RandomResizedCrop draw on a (height, width) image: area fraction ~ U(scale), log(w/h) in pixels
    ~ U(log ratio), whole pixels, up to ATTEMPTS tries to fit; else the largest centred box whose aspect is within
    ratio."""
    log_ratio = np.log(ratio)
    for _ in range(ATTEMPTS):
        area = height * width * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
            return Box(top / height, left / width, h / height, w / width)
    aspect = min(max(width / height, ratio[0]), ratio[1])
    w, h = min(width, round(height * aspect)), min(height, round(width / aspect))
    return Box((height - h) / 2 / height, (width - w) / 2 / width, h / height, w / width)


def centre_box(height: int, width: int, *, fraction: float) -> Box:
    """The centred square of side fraction·min(height, width): resizing the shorter side to size / fraction, then
    cropping size × size in the middle (fraction 0.875 = the 224-of-256 evaluation crop)."""
    side = fraction * min(height, width)
    return Box((height - side) / 2 / height, (width - side) / 2 / width, side / height, side / width)


def open_image(value) -> Image.Image:
    """Encoded bytes (read lazily: the size is known before decoding) or a (H, W[, C]) array as a pillow image."""
    if isinstance(value, bytes):
        return Image.open(io.BytesIO(value))
    array = np.asarray(value)
    return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)


def crop_resize(image: Image.Image, box: Box, size: int, resample: int) -> np.ndarray:
    """The box of `image` resampled to size × size (mirrored if box.flip); a not yet decoded JPEG is first decoded
    at the smallest DCT scale that keeps at least `size` pixels across the box."""
    if image.format == "JPEG":  # a no-op once decoded
        image.draft(image.mode, (math.ceil(size / box.width), math.ceil(size / box.height)))
    w, h = image.size
    pixels = (box.left * w, box.top * h, (box.left + box.width) * w, (box.top + box.height) * h)
    out = image.resize((size, size), resample, box=pixels)
    return np.asarray(out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if box.flip else out)


@dataclasses.dataclass(frozen=True)
class HostCrop:
    """Decode and crop to `size`²: training draws by `augment` ("crop_flip" = random-resized crop with
    `scale`/`ratio` + flip, "flip" = centre crop + flip, "" = centre crop), evaluation (`train` False) takes the centre
    crop of `eval_fraction` of the shorter side. The image and the unit-scaled maps (saliency, density, ...) resample
    bilinearly, other maps (binary fixations) by nearest neighbour."""

    size: int
    train: bool = False
    augment: str = ""
    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    eval_fraction: float = 0.875

    def __post_init__(self):
        if self.size <= 0:
            raise ConfigError(f"image_size must be positive, got {self.size!r}")
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(f"unknown data.augment {self.augment!r}; choose from {list(AUGMENTATIONS)}")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ConfigError(f"crop_scale must satisfy 0 < low <= high <= 1, got {tuple(self.scale)}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ConfigError(f"crop_ratio must satisfy 0 < low <= high, got {tuple(self.ratio)}")
        if not 0 < self.eval_fraction <= 1:
            raise ConfigError(f"eval_crop_fraction must be in (0, 1], got {self.eval_fraction!r}")

    def box(self, rng: np.random.Generator | None, height: int, width: int) -> Box:
        """The crop of a (height, width) image; `rng` is needed when training draws one."""
        kind = self.augment if self.train else ""
        if kind == "crop_flip":
            box = random_resized_box(rng, height, width, scale=self.scale, ratio=self.ratio)
        else:
            box = centre_box(height, width, fraction=self.eval_fraction)
        return dataclasses.replace(box, flip=bool(kind and rng.random() < 0.5))

    def __call__(self, record: dict, rng: np.random.Generator | None, *, keys, channels: int) -> dict:
        """`record` with "image" and the other `keys` (encoded bytes or arrays) cut to size²: the image
        (size, size, channels), single-channel maps (size, size). A training crop that misses all of a saliency map
        falls back to the whole image, squeezed to a square (an all-zero map reads as "no map" downstream; the
        on-device crop keeps the unaugmented view likewise)."""
        if "image" not in record:
            raise DataError(f"a record to crop on the host needs an 'image' feature; it has {sorted(record)}")
        images = {key: open_image(record[key]) for key in ("image", *keys)}
        mode = "RGB" if channels == 3 else "L"
        box = self.box(rng, images["image"].height, images["image"].width)
        out = dict(record)
        out.update(self._crop(images, box, mode))
        whole = dataclasses.replace(FULL, flip=box.flip)
        if self.train and box != whole and self._lost(images, out):
            out.update(self._crop(images, whole, mode))
        return out

    def _crop(self, images: dict, box: Box, mode: str) -> dict:
        out = {}
        for key, image in images.items():
            if key == "image":
                converted = image if image.mode == mode else image.convert(mode)
                out[key] = crop_resize(converted, box, self.size, Image.BILINEAR).reshape(self.size, self.size, -1)
            else:
                out[key] = crop_resize(image, box, self.size, Image.BILINEAR if key in UNIT_SCALED else Image.NEAREST)
        return out

    @staticmethod
    def _lost(images: dict, cropped: dict) -> bool:
        """Whether a saliency map with mass lost all of it in the crop."""
        return any(
            key in images and cropped[key].max() == 0 and np.max(images[key].getextrema()) > 0 for key in SALIENCY_MAPS
        )
