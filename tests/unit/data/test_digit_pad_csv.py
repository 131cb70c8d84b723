"""Digit PAD as a CSV folder: the builder's examples, readable by saliency_csv, and a test_clean without gratings."""

import numpy as np
import pytest
from PIL import Image

from sagejax.data import digit_pad, digit_pad_csv, saliency_csv
from sagejax.errors import DataError


def test_the_folder_holds_the_builders_examples_and_a_clean_copy_of_test(tmp_path):
    written = digit_pad_csv.write_csv_folder(str(tmp_path), limit=6)
    assert written == {"train": 6, "validation": 6, "test": 6, "test_clean": 6}
    config = digit_pad.DigitPadConfig(name="csv")
    rows = {split: saliency_csv.read_csv(tmp_path / f"{split}.csv") for split in written}
    for split in ("train", "test"):
        expected = [example for _, (_, example) in zip(range(6), digit_pad.split_examples(config, split))]
        for row, example in zip(rows[split], expected):
            np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / row.image)), example["image"])
            np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / row.saliency)), example["saliency"])
            assert (row.label, row.attack_type) == (digit_pad.LABELS[example["label"]], example["attack_type"])
    assert any(row.attack_type != digit_pad.NO_ATTACK for row in rows["train"])
    for test_row, clean_row in zip(rows["test"], rows["test_clean"]):  # same digits and classes, no background
        assert (clean_row.label, clean_row.attack_type) == (test_row.label, test_row.attack_type)
        image = np.asarray(Image.open(tmp_path / clean_row.image))
        salient = np.asarray(Image.open(tmp_path / clean_row.saliency)) > 0
        assert image[~salient].max() == 0


def test_a_url_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(DataError, match="is a URL"):
        digit_pad_csv.write_csv_folder("gs://bucket/digit_pad_csv")
