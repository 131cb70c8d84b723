"""Encoded images at full resolution: the saliency_csv `rgb_encoded` build, the loader's host-side crop (shapes,
process-count independence, resume), a variable-size TFDS dataset, and the corrupt-file error before writing."""

import csv
import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from sagejax.configs import sage_csv
from sagejax.data import build_dataset, get_builder, host_ops, iterators, make_loader, make_train_transform
from sagejax.data import tfds_writer as writer
from sagejax.data.device import to_model_inputs
from sagejax.errors import DataError

# (H, W) and format of each image: wide JPEG, tall PNG, square grayscale JPEG (stored re-encoded as RGB PNG), ...
IMAGES = [((40, 90), "jpg"), ((120, 64), "png"), ((33, 33), "gray.jpg"), ((64, 48), "jpg"), ((50, 70), "png")]


def _write_image(path, shape, rng):
    array = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    if path.name.endswith("gray.jpg"):
        Image.fromarray(array[..., 0]).save(path, quality=90)
    else:
        Image.fromarray(array).save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))


@pytest.fixture
def encoded_folder(tmp_path):
    """5 JPEG/PNG images of varying sizes and aspects, PNG maps (one at half resolution, one absent), train.csv and
    test.csv."""
    folder = tmp_path / "user_data"
    (folder / "img").mkdir(parents=True)
    (folder / "maps").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i, ((h, w), suffix) in enumerate(IMAGES):
        _write_image(folder / f"img/{i}.{suffix}", (h, w), rng)
        salient = np.zeros((h, w), np.uint8)
        salient[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
        if i == 1:
            salient = salient[::2, ::2]
        Image.fromarray(salient).save(folder / f"maps/{i}.png")
        rows.append([f"img/{i}.{suffix}", "cat" if i % 2 else "dog", f"maps/{i}.png" if i != 2 else ""])
    for name, part in (("train", rows[:4]), ("test", rows[4:])):
        with open(folder / f"{name}.csv", "w", newline="") as f:
            csv.writer(f).writerows([["image", "label", "saliency"], *part])
    return folder


def _config(folder, tmp_path, **data):
    config = sage_csv.get_config("xent,resnet18_32,encoded")
    config.data.update(manual_dir=str(folder), data_dir=str(tmp_path / "tfds"), **data)
    config.train.batch_size = 4
    config.evals.classification.batch_size = 2
    return config


def test_rgb_encoded_stores_the_files_at_full_resolution(tmp_path, encoded_folder):
    builder = build_dataset(
        "saliency_csv", data_dir=str(tmp_path / "out"), config="rgb_encoded", manual_dir=str(encoded_folder)
    )
    raw = builder.as_data_source("train", decoders={"image": tfds.decode.SkipDecoding()})
    decoded = builder.as_data_source("train")
    by_size = {decoded[i]["image"].shape[:2]: i for i in range(len(decoded))}
    assert sorted(by_size) == sorted(shape for shape, _ in IMAGES[:4])
    assert raw[by_size[(40, 90)]]["image"] == (encoded_folder / "img/0.jpg").read_bytes()  # the JPEG as given
    gray = decoded[by_size[(33, 33)]]
    assert gray["image"].shape == (33, 33, 3) and not gray["has_saliency"] and gray["saliency"].shape == (1, 1, 1)
    half = decoded[by_size[(120, 64)]]  # its map was 60×32: stored at the image's resolution
    assert half["saliency"].shape == (120, 64, 1) and half["saliency"].max() == 255


def test_a_truncated_jpeg_stops_the_build_naming_its_row(tmp_path, encoded_folder):
    jpeg = encoded_folder / "img/3.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    with pytest.raises(DataError, match=r"^train\.csv row 4 \(line 5\): cannot read image .*3\.jpg: .*truncated"):
        build_dataset(
            "saliency_csv", data_dir=str(tmp_path / "out"), config="rgb_encoded", manual_dir=str(encoded_folder)
        )
    assert not get_builder("saliency_csv", data_dir=str(tmp_path / "out"), config="rgb_encoded").is_prepared()


def test_the_loader_batches_host_crops_and_the_device_does_not_crop_again(tmp_path, encoded_folder):
    config = _config(encoded_folder, tmp_path)
    builder = iterators.build(config.data)
    assert iterators.image_shape(builder, config.data) == (32, 32, 3)  # what evaluators size their ops by
    batch = next(iterators.train_iter(config))
    assert batch["image"].shape == (4, 32, 32, 3) and batch["image"].dtype == np.uint8
    assert batch["saliency"].shape == (4, 32, 32) and batch["saliency"].dtype == np.uint8
    assert sorted(batch["has_saliency"].tolist()) == [False, True, True, True]
    assert (batch["saliency"].reshape(4, -1).max(1) > 0).tolist() == batch["has_saliency"].tolist()
    moved = make_train_transform(config.data)(batch, None)  # no rng needed: the cast only
    for key, value in to_model_inputs(batch).items():
        np.testing.assert_array_equal(moved[key], value)
    (evaluation,) = list(iterators.eval_iter(config, "classification", "test"))
    image = np.asarray(Image.open(encoded_folder / "img/4.png"))  # 50×70: the centre 43.75² resized to 32²
    expected = host_ops.crop_resize(
        Image.fromarray(image), host_ops.centre_box(50, 70, fraction=0.875), 32, Image.BILINEAR
    )
    np.testing.assert_array_equal(evaluation["image"][0], expected)
    assert evaluation["valid"].tolist() == [True, False]


def test_crops_are_the_same_for_any_process_count_and_after_a_resume(tmp_path, encoded_folder):
    build_dataset("saliency_csv", data_dir=str(tmp_path / "tfds"), config="rgb_encoded", manual_dir=str(encoded_folder))
    crop = host_ops.HostCrop(size=16, train=True, augment="crop_flip")
    args = dict(name="saliency_csv", config="rgb_encoded", data_dir=str(tmp_path / "tfds"), split="train")
    args.update(batch_size=4, seed=3, shuffle=True, numeric_only=True, crop=crop)
    one = make_loader(**args)
    batches = [next(one)["image"] for _ in range(3)]
    assert not np.array_equal(batches[0], batches[1])  # an epoch later, the same records cut elsewhere
    halves = [make_loader(**args, process_index=p, process_count=2) for p in (0, 1)]
    np.testing.assert_array_equal(np.concatenate([next(h)["image"] for h in halves]), batches[0])
    again = make_loader(**args)
    next(again)
    state = again.get_state()
    resumed = make_loader(**args)
    resumed.set_state(state)
    np.testing.assert_array_equal(next(resumed)["image"], batches[1])


def _variable_size_dataset(folder, sizes) -> str:
    """A TFDS folder (tfds_writer) of JPEGs of `sizes` with labels, as a catalogue dataset such as imagenet2012."""
    features = tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
            "label": tfds.features.ClassLabel(num_classes=2),
            "file_name": tfds.features.Text(),
        }
    )
    rng = np.random.default_rng(5)
    records = []
    for i, shape in enumerate(sizes):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(buffer, format="JPEG")
        example = {"image": buffer.getvalue(), "label": i % 2, "file_name": f"{i}.jpg"}
        records.append(writer.serialize(features, example))
    path = writer.shard_path(output_dir=str(folder), dataset_name="tiny_net", split="train", shard=0, num_shards=1)
    folder.mkdir(parents=True)
    writer.write_shard(path=path, records=records)
    writer.write_metadata(
        output_dir=str(folder),
        dataset_name="tiny_net",
        features=features,
        split="train",
        shard_lengths=[len(records)],
        description="variable-size JPEGs",
    )
    return str(folder)


def test_a_variable_size_tfds_dataset_batches_through_the_same_crop(tmp_path):
    folder = _variable_size_dataset(tmp_path / "tiny_net", [(40, 90), (120, 64), (33, 33), (375, 500)])
    args = dict(name="tfds_dir", data_dir=folder, split="train", batch_size=4, seed=0, numeric_only=True)
    with pytest.raises(DataError, match=r"'image' has images of varying sizes .*set config\.data\.image_size"):
        make_loader(**args, shuffle=True)
    train = next(make_loader(**args, shuffle=True, crop=host_ops.HostCrop(size=24, train=True, augment="crop_flip")))
    assert train["image"].shape == (4, 24, 24, 3) and sorted(train) == ["image", "label"]
    evaluation = next(make_loader(**args, shuffle=False, num_epochs=1, crop=host_ops.HostCrop(size=24)))
    assert evaluation["image"].shape == (4, 24, 24, 3) and evaluation["label"].tolist() == [0, 1, 0, 1]
