"""Data layer: Decoy MNIST and CSV builders (array_record, no TensorFlow) and the grain loader."""

import csv
import dataclasses
import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from sagejax.configs import sage_decoy
from sagejax.data import SaliencyCsvConfig, build_dataset, get_builder, iterators, make_loader, saliency_csv
from sagejax.data import decoy_mnist as dm
from sagejax.data.device import to_model_inputs
from sagejax.errors import DataError, DataWarning


def _examples(builder, split):
    """All examples of a split, in file order."""
    source = builder.as_data_source(split)
    return [source[i] for i in range(len(source))]


def _digest(image) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def _corner_mask(size: int, patch: int) -> np.ndarray:
    """True on the four `patch`-wide corner squares."""
    mask = np.zeros((size, size), bool)
    for corner in range(len(dm.CORNERS)):
        mask[dm.corner_slices(corner, patch, size)] = True
    return mask


@pytest.fixture(scope="module")
def swatch(tmp_path_factory):
    """The full default Decoy MNIST (swatch, 28x28x1), built once."""
    data_dir = str(tmp_path_factory.mktemp("decoy"))
    return build_dataset("decoy_mnist", data_dir=data_dir)


# ----------------------------------------------------------------------------- Decoy MNIST


def test_decoy_splits_are_stratified_3500_500_1000(swatch):
    splits = swatch.info.splits
    sizes = {name: splits[name].num_examples for name in ("train", "validation", "test")}
    assert sizes == {"train": 3500, "validation": 500, "test": 1000}
    assert splits["test_clean"].num_examples == 1000 and splits["validation_clean"].num_examples == 500
    for split, per_class in (("test", 100), ("validation", 50)):
        labels = [ex["label"] for ex in _examples(swatch, split)]
        assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10


def test_decoy_validation_is_held_out_from_train_with_a_random_decoy(swatch):
    """Validation digits are none of train's or test's; their decoy is random as in test, and absent in the clean
    copy of the same digits."""
    corners = _corner_mask(28, dm.SWATCH_SIZE)

    def digits(split):
        return {_digest(np.where(corners, 0, ex["image"][..., 0])) for ex in _examples(swatch, split)}

    validation = digits("validation")
    assert not validation & digits("train") and not validation & digits("test")
    assert validation == digits("validation_clean")
    examples = _examples(swatch, "validation")
    shades, labels = np.array([[ex["swatch_shade"], ex["label"]] for ex in examples]).T
    assert np.mean(shades == 255 - 25 * labels) < 0.3  # about 10 %: the decoy does not give the label away
    assert all(ex["swatch_shade"] == -1 for ex in _examples(swatch, "validation_clean"))


def test_decoy_train_swatch_shade_is_255_minus_25_label(swatch):
    for ex in _examples(swatch, "train"):
        assert ex["swatch_shade"] == 255 - 25 * ex["label"]
        rows, cols = dm.corner_slices(ex["swatch_corner"], dm.SWATCH_SIZE, 28)
        assert (ex["image"][rows, cols] == ex["swatch_shade"]).all()
        assert (ex["saliency"][rows, cols] == 0).all()


def test_decoy_test_swatch_shade_is_not_a_function_of_label(swatch):
    examples = _examples(swatch, "test")
    shades, labels = np.array([[ex["swatch_shade"], ex["label"]] for ex in examples]).T
    for ex in examples:
        rows, cols = dm.corner_slices(ex["swatch_corner"], dm.SWATCH_SIZE, 28)
        assert (ex["image"][rows, cols] == ex["swatch_shade"]).all()
    assert set(shades) <= {255 - 25 * k for k in range(10)}
    assert all(len(set(shades[labels == k])) >= 5 for k in range(10))
    # Best guess of the label from the shade alone is near chance (10%), not 100% as in train.
    hits = sum(np.bincount(labels[shades == s]).max() for s in set(shades))
    assert hits / len(labels) < 0.3


def test_decoy_test_clean_has_same_digits_as_test_and_no_swatch(swatch):
    clean = _examples(swatch, "test_clean")
    assert all(ex["swatch_corner"] == -1 and ex["swatch_shade"] == -1 for ex in clean)
    corners = _corner_mask(28, dm.SWATCH_SIZE)
    assert all((ex["image"][..., 0][corners] < 255).all() for ex in clean)

    def outside_corners(examples):
        return sorted(_digest(np.where(corners, 0, ex["image"][..., 0])) + str(ex["label"]) for ex in examples)

    assert outside_corners(clean) == outside_corners(_examples(swatch, "test"))


def test_decoy_saliency_covers_strokes_and_never_the_swatch(swatch):
    for ex in _examples(swatch, "train")[:500]:
        image, salient = ex["image"][..., 0], ex["saliency"] > 0
        rows, cols = dm.corner_slices(ex["swatch_corner"], dm.SWATCH_SIZE, 28)
        swatch_mask = np.zeros_like(salient)
        swatch_mask[rows, cols] = True
        assert set(np.unique(ex["saliency"])) <= {0, 255}
        assert not salient[swatch_mask].any()
        assert salient[(image > dm.STROKE_THRESHOLD) & ~swatch_mask].all()
        assert salient.mean() < 0.6  # the background is not salient


@pytest.mark.parametrize("decoy", ["swatch", "texture"])
def test_decoy_is_never_salient_even_over_strokes(decoy):
    digit = np.full((28, 28), 200, np.uint8)  # strokes everywhere, corners included
    config = dm.DecoyMnistConfig(name="crafted", decoy=decoy)
    ex = dm.make_example(digit, 3, config=config, decoy_class=3, corner=2)
    swatch_mask = np.zeros((28, 28), bool)
    swatch_mask[24:, :4] = True  # corner 2 = bottom_left
    if decoy == "swatch":  # the swatch overwrites the strokes and takes their saliency away
        assert (ex["image"][..., 0] == np.where(swatch_mask, 255 - 25 * 3, 200)).all()
        assert (ex["saliency"] == np.where(swatch_mask, 0, 255)).all()
    else:  # the texture is painted on non-salient pixels only: here none
        assert (ex["image"][..., 0] == 200).all() and (ex["saliency"] == 255).all()


def test_decoy_build_is_deterministic(tmp_path):
    first, second = (build_dataset("decoy_mnist", data_dir=str(tmp_path / d), max_examples_per_split=100) for d in "ab")
    for split in ("train", "validation", "validation_clean", "test", "test_clean"):
        a, b = _examples(first, split), _examples(second, split)
        assert len(a) == len(b) == 100
        for x, y in zip(a, b):
            assert x.keys() == y.keys()
            assert all(np.array_equal(x[k], y[k]) for k in x)


def test_decoy_32_rgb_pads_and_replicates_channels(tmp_path):
    builder = build_dataset("decoy_mnist", data_dir=str(tmp_path), config="swatch_32_rgb", max_examples_per_split=50)
    for ex in _examples(builder, "train"):
        image = ex["image"]
        assert image.shape == (32, 32, 3) and ex["saliency"].shape == (32, 32)
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 0] == image[..., 2]).all()
        rows, cols = dm.corner_slices(ex["swatch_corner"], dm.SWATCH_SIZE, 32)
        assert (image[rows, cols] == 255 - 25 * ex["label"]).all()
        border = np.ones((32, 32), bool)
        border[2:30, 2:30] = False
        assert (image[..., 0][border & ~_corner_mask(32, dm.SWATCH_SIZE)] == 0).all()


def test_decoy_texture_is_class_correlated_and_only_in_non_salient_pixels(tmp_path):
    builder = build_dataset("decoy_mnist", data_dir=str(tmp_path), config="texture", max_examples_per_split=400)
    for ex in _examples(builder, "train"):
        assert ex["texture_id"] == ex["label"] and ex["swatch_shade"] == -1 and ex["swatch_corner"] == -1
        free = ex["saliency"] == 0
        assert free.sum() >= 28 * 28 // 4  # the background is a large part of every image
        assert (ex["image"][..., 0][free] == dm.texture_grating(ex["label"], 28)[free]).all()

    # In test the texture is random; compared with the same digit undecorated, only non-salient
    # pixels changed.
    def salient_part(ex):
        return _digest(np.where(ex["saliency"] > 0, ex["image"][..., 0], 0))

    clean = {salient_part(ex): ex for ex in _examples(builder, "test_clean")}
    test = _examples(builder, "test")
    for ex in test:
        twin = clean[salient_part(ex)]
        changed = (ex["image"] != twin["image"])[..., 0]
        assert changed.any() and not changed[ex["saliency"] > 0].any()
    ids, labels = np.array([[ex["texture_id"], ex["label"]] for ex in test]).T
    assert np.mean(ids == labels) < 0.3


def test_texture_gratings_are_distinct_and_vanish_under_blur():
    patches = [dm.texture_grating(k, 28).astype(float) for k in range(10)]
    assert all(not np.array_equal(patches[i], patches[j]) for i in range(10) for j in range(i))
    # A Gaussian blur with sigma 1.5 (circular, on a whole-period 24x24 tile) leaves a flat gray.
    taps = np.exp(-0.5 * (np.arange(-6, 7) / 1.5) ** 2)
    taps /= taps.sum()
    for a, b, period in dm.TEXTURES:
        r, c = np.mgrid[0:24, 0:24]
        tile = dm.TEXTURE_AMPLITUDE * (1 + np.cos(2 * np.pi * (a * r + b * c) / period)) / 2
        for axis in (0, 1):
            tile = sum(w * np.roll(tile, s, axis=axis) for s, w in zip(range(-6, 7), taps))
        assert np.abs(tile - dm.TEXTURE_AMPLITUDE / 2).max() < 0.01 * dm.TEXTURE_AMPLITUDE


# ----------------------------------------------------------------------------- CSV builder


def _write_csv(path, rows, attack=False):
    header = ["image", "label", "saliency"] + (["attack_type"] if attack else [])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def csv_folder(tmp_path):
    """5 PNG images of different sizes, PNG/.npy/missing maps, train.csv and test.csv."""
    folder = tmp_path / "user_data"
    (folder / "img").mkdir(parents=True)
    (folder / "maps").mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 40), (20, 30), (64, 48), (33, 33), (50, 70)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img/{i}.png")
    left = np.zeros((40, 40), np.uint8)
    left[:, :20] = 255
    Image.fromarray(left).save(folder / "maps/left.png")
    np.save(folder / "maps/quarter.npy", np.full((10, 15), 0.25, np.float32))  # img/1 is 20x30
    _write_csv(
        folder / "train.csv",
        [["img/0.png", "cat", "maps/left.png"], ["img/1.png", "dog", "maps/quarter.npy"], ["img/2.png", "cat", ""]],
    )
    _write_csv(
        folder / "test.csv",
        [["img/3.png", "dog", "maps/left.png", "print"], ["img/4.png", "cat", "", ""]],
        attack=True,
    )
    return folder


def _fixture_config(csv_folder, size=16):
    return SaliencyCsvConfig(name="fixture", size=size, channels=1, csv_dir=str(csv_folder))


def _by_label_and_map(examples):
    return sorted(examples, key=lambda ex: (ex["label"], float(ex["saliency"].mean())))


def test_saliency_csv_builds_and_reads_back(tmp_path, csv_folder):
    builder = build_dataset("saliency_csv", data_dir=str(tmp_path / "out"), config="rgb_32", manual_dir=str(csv_folder))
    assert builder.info.features["label"].names == ["cat", "dog"]
    assert builder.info.features["attack_type"].names == ["none", "print"]
    assert set(builder.info.splits) == {"train", "test"}
    cat_nomap, cat_left, dog_quarter = _by_label_and_map(_examples(builder, "train"))
    for ex in (cat_nomap, cat_left, dog_quarter):
        assert ex["image"].shape == (32, 32, 3) and ex["image"].dtype == np.uint8
        assert ex["saliency"].shape == (32, 32) and ex["saliency"].dtype == np.uint8
    assert (cat_nomap["label"], cat_nomap["has_saliency"], cat_nomap["saliency"].max()) == (0, False, 0)
    assert cat_left["has_saliency"] and (cat_left["saliency"][:, :15] == 255).all()
    assert (cat_left["saliency"][:, 17:] == 0).all()
    assert dog_quarter["label"] == 1 and (np.abs(dog_quarter["saliency"].astype(int) - 64) <= 1).all()
    expected = np.asarray(Image.open(csv_folder / "img/0.png").resize((32, 32), Image.BILINEAR))
    assert np.array_equal(cat_left["image"], expected)
    cat, dog = _by_label_and_map(_examples(builder, "test"))
    assert (cat["attack_type"], dog["attack_type"]) == (0, 1)
    loader = make_loader(
        name="saliency_csv",
        config="rgb_32",
        split="train",
        data_dir=str(tmp_path / "out"),
        batch_size=3,
        seed=0,
        shuffle=False,
        num_epochs=1,
    )
    batch = next(loader)
    assert batch["image"].shape == (3, 32, 32, 3) and batch["saliency"].dtype == np.uint8  # cast on the device
    assert batch["has_saliency"].dtype == np.bool_ and batch["has_saliency"].sum() == 2
    assert sorted(batch["label"].tolist()) == [0, 0, 1] and batch["attack_type"].dtype == np.int32


@pytest.mark.parametrize(
    "defect, message",
    [
        ("missing_image", r"test\.csv row 1 \(line 2\).*not found.*nope\.png"),
        ("unreadable_image", r"train\.csv row 2 \(line 3\).*cannot read image.*1\.png"),
        ("nan_map", r"train\.csv row 2 \(line 3\).*quarter\.npy.*non-finite"),
        ("unknown_eval_label", r"test\.csv row 2 \(line 3\).*'bird'.*train\.csv"),
    ],
)
def test_saliency_csv_rejects_bad_input_before_writing(tmp_path, csv_folder, defect, message):
    if defect == "missing_image":
        _write_csv(csv_folder / "test.csv", [["img/nope.png", "dog", ""]])
    elif defect == "unreadable_image":
        (csv_folder / "img/1.png").write_bytes(b"not a png")
    elif defect == "nan_map":
        np.save(csv_folder / "maps/quarter.npy", np.full((10, 15), np.nan, np.float32))
    else:
        _write_csv(csv_folder / "test.csv", [["img/3.png", "dog", ""], ["img/4.png", "bird", ""]])
    config = _fixture_config(csv_folder)
    with pytest.raises(ValueError, match=message):
        build_dataset("saliency_csv", data_dir=str(tmp_path / "out"), config=config)
    assert not get_builder("saliency_csv", data_dir=str(tmp_path / "out"), config=config).is_prepared()


def test_saliency_csv_build_refuses_changed_sources(tmp_path, csv_folder):
    out = str(tmp_path / "out")
    build_dataset("saliency_csv", data_dir=out, config=_fixture_config(csv_folder))
    build_dataset("saliency_csv", data_dir=out, config=_fixture_config(csv_folder))  # unchanged: reused
    train_csv = (csv_folder / "train.csv").read_bytes()
    _write_csv(  # a label fixed, the same files
        csv_folder / "train.csv",
        [["img/0.png", "cat", "maps/left.png"], ["img/1.png", "dog", "maps/quarter.npy"], ["img/2.png", "dog", ""]],
    )
    with pytest.raises(
        DataError,
        match=r"fixture/1\.0\.0 was built from other sources: train\.csv changed\. Remove .*fixture/1\.0\.0 to rebuild",
    ):
        build_dataset("saliency_csv", data_dir=out, config=_fixture_config(csv_folder))
    (csv_folder / "train.csv").write_bytes(train_csv)  # same contents again (newer mtime): accepted
    build_dataset("saliency_csv", data_dir=out, config=_fixture_config(csv_folder))
    os.utime(csv_folder / "maps/left.png", ns=(1, 1))  # an edited map: listed in both CSVs
    with pytest.raises(DataError, match=r"the files test\.csv lists changed; the files train\.csv lists changed"):
        build_dataset("saliency_csv", data_dir=out, config=_fixture_config(csv_folder))
    with pytest.raises(DataError, match=r"builder config changed"):
        build_dataset("saliency_csv", data_dir=out, config=_fixture_config(csv_folder, size=8))


def test_a_file_replaced_with_its_size_and_time_kept_is_caught(tmp_path, csv_folder):
    out = str(tmp_path / "out")
    build_dataset("saliency_csv", data_dir=out, config=_fixture_config(csv_folder))
    image = csv_folder / "img/0.png"
    stat = image.stat()
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0xFF  # other bytes, the same size and time (as `cp -p` or `rsync -a` of an edited copy)
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert image.stat().st_size == stat.st_size and image.stat().st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(DataError, match=r"the contents of the files train\.csv lists changed"):
        build_dataset("saliency_csv", data_dir=out, config=_fixture_config(csv_folder))


def test_saliency_csv_carves_a_stratified_seeded_validation_split(tmp_path, csv_folder):
    rows = [[f"img/{i % 5}.png", label, ""] for label in ("cat", "dog") for i in range(10)]
    _write_csv(csv_folder / "train.csv", rows)
    config = saliency_csv.with_validation("gray_32", 0.2)
    assert (config.name, config.validation_fraction, config.shape) == ("gray_32_val0p2", 0.2, (32, 32))
    config = dataclasses.replace(config, csv_dir=str(csv_folder))
    with pytest.warns(DataWarning):  # the fixture's images repeat within train
        builder = build_dataset("saliency_csv", data_dir=str(tmp_path / "out"), config=config)
    sizes = {name: info.num_examples for name, info in builder.info.splits.items()}
    assert sizes == {"train": 16, "validation": 4, "test": 2}
    assert sorted(ex["label"] for ex in _examples(builder, "validation")) == [0, 0, 1, 1]  # 2 of each label's 10
    csvs = saliency_csv.read_csv(csv_folder / "train.csv")
    first = saliency_csv.carve_validation(csvs, fraction=0.2, seed=0)
    assert first == saliency_csv.carve_validation(csvs, fraction=0.2, seed=0)
    assert first != saliency_csv.carve_validation(csvs, fraction=0.2, seed=1)
    assert sorted(r.line for part in first for r in part) == [r.line for r in csvs]  # a partition of train.csv
    _write_csv(csv_folder / "validation.csv", rows[:2])
    with pytest.raises(DataError, match="validation.csv and the config also carves validation_fraction=0.2"):
        build_dataset("saliency_csv", data_dir=str(tmp_path / "other"), config=config)


def test_saliency_csv_reads_wide_grayscale_by_bit_depth(tmp_path):
    values = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 257  # 16-bit gray 0, 257, ..., 65535
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    _write_csv(tmp_path / "train.csv", [["g16.png", "a", ""], ["g16.png", "b", ""]])
    config = SaliencyCsvConfig(name="fixture", size=16, channels=3, csv_dir=str(tmp_path))
    with pytest.warns(DataWarning, match="same image"):
        builder = build_dataset("saliency_csv", data_dir=str(tmp_path / "out"), config=config)
    image = _examples(builder, "train")[0]["image"]
    np.testing.assert_array_equal(image, np.repeat((values // 257).astype(np.uint8)[..., None], 3, axis=-1))


def test_saliency_csv_reads_a_byte_order_mark_and_names_a_non_utf8_file(tmp_path, csv_folder):
    config = _fixture_config(csv_folder)
    text = (csv_folder / "train.csv").read_text()
    (csv_folder / "train.csv").write_text(text, encoding="utf-8-sig")
    assert build_dataset("saliency_csv", data_dir=str(tmp_path / "bom"), config=config).info.splits["train"]
    (csv_folder / "train.csv").write_bytes(text.replace("cat", "chat\u00e9").encode("latin-1"))
    with pytest.raises(
        DataError, match=r"train\.csv: not UTF-8 text \(byte 0xe9 at offset \d+\); save the CSV as UTF-8"
    ):
        build_dataset("saliency_csv", data_dir=str(tmp_path / "latin"), config=config)


@pytest.mark.parametrize(
    "defect, message",
    [
        ("colour_map", r"train\.csv row 1 \(line 2\).*left\.png is a colour \(RGB\) image; read as its luminance"),
        ("aspect", r"train\.csv row 2 \(line 3\).*quarter\.npy is 10x20 \(W x H\) but its image is 30x20"),
        ("duplicate", r"train\.csv row 3 \(line 4\): same image as train\.csv row 1 \(line 2\)"),
        ("overlap", r"1 image\(s\) of test\.csv also appear in train\.csv \(first: test\.csv row 1 \(line 2\) = train"),
    ],
)
def test_saliency_csv_warns_of_likely_mistakes(tmp_path, csv_folder, defect, message):
    if defect == "colour_map":
        red = np.zeros((40, 40, 3), np.uint8)
        red[:, :20, 0] = 255
        Image.fromarray(red).save(csv_folder / "maps/left.png")
    elif defect == "aspect":
        np.save(csv_folder / "maps/quarter.npy", np.full((20, 10), 0.25, np.float32))
    elif defect == "duplicate":
        (csv_folder / "img/2.png").write_bytes((csv_folder / "img/0.png").read_bytes())
    else:
        (csv_folder / "img/3.png").write_bytes((csv_folder / "img/1.png").read_bytes())
    with pytest.warns(DataWarning, match=message):
        build_dataset("saliency_csv", data_dir=str(tmp_path / "out"), config=_fixture_config(csv_folder))


def test_a_map_drawn_in_the_alpha_channel_is_read_from_it(tmp_path, csv_folder):
    rgba = np.zeros((40, 40, 4), np.uint8)  # black everywhere; the left half opaque
    rgba[:, :20, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(csv_folder / "maps/left.png")
    with pytest.warns(DataWarning, match=r"left\.png has a uniform colour and varies only in its alpha channel"):
        builder = build_dataset("saliency_csv", data_dir=str(tmp_path / "out"), config=_fixture_config(csv_folder))
    maps = [ex["saliency"] for ex in builder.as_data_source(split="train") if ex["saliency"].any()]
    left = [m for m in maps if m[:, :6].min() == 255 and m[:, 10:].max() == 0]
    assert len(left) == 1  # the alpha channel's left half, not the all-black colour


def test_a_split_whose_maps_are_all_empty_warns(tmp_path, csv_folder):
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(csv_folder / "maps/left.png")
    np.save(csv_folder / "maps/quarter.npy", np.zeros((10, 15), np.float32))
    with pytest.warns(DataWarning, match=r"train\.csv: all 2 saliency maps are empty"):
        build_dataset("saliency_csv", data_dir=str(tmp_path / "out"), config=_fixture_config(csv_folder))


# ----------------------------------------------------------------------------- loader


def _loader(swatch, **kwargs):
    args = dict(name="decoy_mnist", split="train", data_dir=swatch.data_dir_root, batch_size=32, seed=0, shuffle=True)
    return make_loader(**{**args, **kwargs})


def _batch_digests(batch):
    return [_digest(image) for image in batch["image"]]


def test_loader_batch_shapes_and_dtypes(swatch):
    batch = next(_loader(swatch))
    # Images and maps travel to the device as stored (uint8) and are cast there (data.to_model_inputs).
    assert batch["image"].shape == (32, 28, 28, 1) and batch["image"].dtype == np.uint8
    assert batch["saliency"].shape == (32, 28, 28) and batch["saliency"].dtype == np.uint8
    assert batch["label"].shape == (32,) and batch["label"].dtype == np.int32
    assert "valid" not in batch  # only padded (evaluation) batches mark their padding
    assert batch["image"].max() == 255
    assert set(np.unique(batch["saliency"])) == {0, 255}
    shade = batch["image"][np.arange(32), 0, 0, 0]  # a corner pixel: swatch or background
    assert set(shade.tolist()) <= {0} | {255 - 25 * k for k in range(10)}
    model_inputs = to_model_inputs(batch)
    assert model_inputs["image"].dtype == np.float32 and model_inputs["image"].max() == 1.0
    assert set(np.unique(model_inputs["saliency"])) == {0.0, 1.0}


def test_loader_shuffle_is_seeded(swatch):
    def first_batches(**kwargs):
        it = _loader(swatch, **kwargs)
        return [_batch_digests(next(it)) for _ in range(3)]

    assert first_batches(seed=1) == first_batches(seed=1)
    assert first_batches(seed=1) != first_batches(seed=2)
    sequential = first_batches(shuffle=False)
    source = swatch.as_data_source("train")
    assert sequential[0] == [_digest(source[i]["image"]) for i in range(32)]


@pytest.mark.parametrize("batch_size, pad", [(200, False), (96, True)])
def test_loader_process_shards_are_disjoint_and_cover_the_split(swatch, batch_size, pad):
    shards = []
    for index in range(2):
        it = _loader(
            swatch,
            split="test",
            batch_size=batch_size,
            shuffle=True,
            num_epochs=1,
            process_index=index,
            process_count=2,
            pad_remainder=pad,
        )
        batches = list(it)
        assert all(b["image"].shape[0] == batch_size // 2 for b in batches)
        valid = [b["valid"] if pad else np.ones(len(b["image"]), bool) for b in batches]
        shards.append([d for b, ok in zip(batches, valid) for d, v in zip(_batch_digests(b), ok) if v])
    assert len(batches) == (11 if pad else 5)
    source = swatch.as_data_source("test")
    everything = sorted(_digest(source[i]["image"]) for i in range(len(source)))
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == everything


def test_loader_global_batches_do_not_depend_on_the_process_count(swatch):
    # Process p reads rows [p·local, (p+1)·local) of every global batch: 2 or 4 processes see, together, exactly
    # the batches 1 process sees (shuffled, across an epoch boundary of the 1000-example test split).
    kwargs = dict(split="test", batch_size=96, seed=3)
    single = _loader(swatch, **kwargs)
    expected = [_batch_digests(next(single)) for _ in range(12)]
    for count in (2, 4):
        parts = [_loader(swatch, process_index=p, process_count=count, **kwargs) for p in range(count)]
        joined = [sum((_batch_digests(next(part)) for part in parts), []) for _ in range(12)]
        assert joined == expected, count


def test_loader_state_restores_the_exact_next_batches(swatch):
    # The test split has 1000 examples: batches 7..9 of 128 cross an epoch boundary (reshuffle).
    kwargs = dict(split="test", batch_size=128, seed=7)
    it = _loader(swatch, **kwargs)
    for _ in range(7):
        next(it)
    state = it.get_state()
    expected = [_batch_digests(next(it)) for _ in range(3)]
    resumed = _loader(swatch, **kwargs)
    resumed.set_state(state)
    assert [_batch_digests(next(resumed)) for _ in range(3)] == expected


def test_build_dataset_is_a_no_op_when_built(swatch):
    info = os.fspath(swatch.data_path / "dataset_info.json")
    before = os.stat(info).st_mtime_ns
    assert build_dataset("decoy_mnist", data_dir=swatch.data_dir_root).is_prepared()
    assert os.stat(info).st_mtime_ns == before


def test_loader_errors_are_clear(swatch, tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'mnist_decoy'.*decoy_mnist"):
        make_loader(name="mnist_decoy", split="train", data_dir=str(tmp_path), batch_size=8, seed=0, shuffle=False)
    with pytest.raises(FileNotFoundError, match="build_dataset"):
        make_loader(name="decoy_mnist", split="train", data_dir=str(tmp_path), batch_size=8, seed=0, shuffle=False)
    with pytest.raises(ValueError, match="multiple of process_count 4"):
        _loader(swatch, batch_size=30, process_index=0, process_count=4)
    with pytest.raises(ValueError, match="no split 'valid'"):
        _loader(swatch, split="valid")


def test_a_tfds_catalogue_dataset_loads_through_the_same_path(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        build_dataset("cifar10", data_dir=str(tmp_path))
        with monkeypatch.context() as patch:  # once prepared, a rerun finds the build (no source record to check)
            patch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
            build_dataset("cifar10", data_dir=str(tmp_path))
        batch = next(
            make_loader(
                name="cifar10",
                split="train",
                data_dir=str(tmp_path),
                batch_size=4,
                seed=0,
                shuffle=True,
                numeric_only=True,
            )
        )
    assert batch["image"].shape == (4, 32, 32, 3) and batch["image"].dtype == np.uint8  # decoded on the host
    assert batch["label"].dtype == np.int32 and "id" not in batch
    with pytest.raises(FileNotFoundError, match="cifar10/3.0.2 is not built under"):
        make_loader(
            name="cifar10", split="train", data_dir=str(tmp_path / "empty"), batch_size=4, seed=0, shuffle=False
        )
    with pytest.raises(ValueError, match="unknown dataset 'cifar11'.*or a TFDS catalogue name"):
        get_builder("cifar11", data_dir=str(tmp_path))


def test_validation_fraction_is_refused_for_datasets_with_their_own_splits():
    config = sage_decoy.get_config("smoke")
    config.data.validation_fraction = 0.1
    with pytest.raises(ValueError, match="carves validation from train.csv of saliency_csv only; 'decoy_mnist'"):
        iterators.build(config.data)
