"""Digit PAD written as a user's CSV folder (README "Your own data"), so `sage_csv` can be checked on a PAD task
whose shortcut and evidence are known: `train`, `validation` and `test` as the `digit_pad` builder makes them, plus
`test_clean` (the test digits with a clean background: the bona fide look of `train`, so no shortcut-free split)."""

from __future__ import annotations

import csv
import itertools
import pathlib

from PIL import Image

from sagejax import storage
from sagejax.data import digit_pad
from sagejax.errors import DataError

SPLITS = {"train": "train", "validation": "validation", "test": "test", "test_clean": "test"}  # CSV → source split


def write_csv_folder(output_dir: str, *, limit: int = 0) -> dict[str, int]:
    """Writes `<split>.csv` (image,label,saliency,attack_type) and PNG images and maps under `output_dir/images`;
    `limit` > 0 keeps the first `limit` examples of each split. Returns the rows written per split."""
    if storage.is_url(output_dir):
        raise DataError(f"--output_dir {output_dir} is a URL; write the CSV folder to a filesystem path")
    root = pathlib.Path(output_dir).expanduser().absolute()
    (root / "images").mkdir(parents=True, exist_ok=True)
    config = digit_pad.DigitPadConfig(name="csv")
    written = {}
    for name, source in SPLITS.items():
        with open(root / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "label", "saliency", "attack_type"])
            examples = digit_pad.split_examples(config, source, clean_backgrounds=name == "test_clean")
            written[name] = 0
            for index, example in itertools.islice(examples, limit or None):
                stem = f"images/{name}_{index}"
                Image.fromarray(example["image"]).save(root / f"{stem}.png")
                Image.fromarray(example["saliency"]).save(root / f"{stem}_map.png")
                label = digit_pad.LABELS[example["label"]]
                writer.writerow([f"{stem}.png", label, f"{stem}_map.png", example["attack_type"]])
                written[name] += 1
    return written
