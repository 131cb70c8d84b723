"""TFDS array_record writer: shard ranges and names, atomic deterministic shards and metadata, and reading
the written folder back through make_loader("tfds_dir")."""

import os
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds
from writer_examples import FEATURES, NAME, examples, write_split

from sagejax.data import build_dataset, get_builder, make_loader
from sagejax.data import tfds_writer as tw


def test_shard_ranges_cover_in_order_and_balance():
    assert tw.shard_ranges(num_examples=10, num_shards=3) == [(0, 4), (4, 7), (7, 10)]
    assert tw.shard_ranges(num_examples=5, num_shards=5) == [(i, i + 1) for i in range(5)]
    ranges = tw.shard_ranges(num_examples=1000, num_shards=7)
    assert [start for start, _ in ranges[1:]] == [stop for _, stop in ranges[:-1]]
    assert (ranges[0][0], ranges[-1][1]) == (0, 1000)
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) == 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize(("num_examples", "num_shards"), [(10, 0), (2, 3), (0, 1)])
def test_shard_ranges_errors_name_the_numbers(num_examples, num_shards):
    with pytest.raises(ValueError, match=f"num_shards={num_shards}, num_examples={num_examples}"):
        tw.shard_ranges(num_examples=num_examples, num_shards=num_shards)


def test_shard_path_is_tfds_default_name(tmp_path):
    path = tw.shard_path(output_dir=str(tmp_path), dataset_name=NAME, split="train", shard=2, num_shards=10)
    assert path == f"{tmp_path}/{NAME}-train.array_record-00002-of-00010"
    with pytest.raises(ValueError, match="dataset_name"):
        tw.shard_path(output_dir=str(tmp_path), dataset_name="my-data", split="train", shard=0, num_shards=1)


def test_written_dataset_round_trips_through_make_loader(tmp_path):
    written = examples(10)
    write_split(str(tmp_path), written)
    builder = get_builder("tfds_dir", data_dir=str(tmp_path))
    assert builder.info.splits["train"].shard_lengths == [4, 3, 3]
    assert builder.info.supervised_keys == ("image", "label")
    loader = make_loader(
        name="tfds_dir", data_dir=str(tmp_path), split="train", batch_size=5, seed=0, shuffle=False, num_epochs=1
    )
    batches = list(loader)
    assert len(batches) == 2
    got = {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}
    for key in ("image", "saliency"):  # uint8 as stored; the device casts them (data.to_model_inputs)
        assert got[key].dtype == np.uint8
        np.testing.assert_array_equal(got[key], np.stack([ex[key] for ex in written]))
    assert [i.decode() for i in got["image_id"]] == [ex["image_id"] for ex in written]
    assert got["label"].dtype == np.int32 and got["label"].tolist() == [ex["label"] for ex in written]
    np.testing.assert_array_equal(got["score"], np.float32([ex["score"] for ex in written]))
    assert "valid" not in got  # only padded loaders mark their padding


def test_second_split_keeps_the_first(tmp_path):
    write_split(str(tmp_path), examples(10), split="validation", num_shards=2)
    write_split(str(tmp_path), examples(6))
    splits = get_builder("tfds_dir", data_dir=str(tmp_path)).info.splits
    assert {name: splits[name].num_examples for name in splits} == {"train": 6, "validation": 10}
    other = tfds.features.FeaturesDict({"image": tfds.features.Tensor(shape=(8, 8, 3), dtype=np.uint8)})
    with pytest.raises(ValueError, match="features differ"):
        tw.write_metadata(
            output_dir=str(tmp_path),
            dataset_name=NAME,
            features=other,
            split="train",
            shard_lengths=[2, 2, 2],
            description="",
        )


def test_write_shard_is_atomic_and_replaces_stale_incomplete(tmp_path):
    path = tw.shard_path(output_dir=str(tmp_path), dataset_name=NAME, split="train", shard=0, num_shards=2)
    assert not tw.is_complete(path)
    with open(path + tw.INCOMPLETE_SUFFIX, "wb") as f:  # left by a crashed writer
        f.write(b"garbage from a crash")
    assert not tw.is_complete(path)
    records = [tw.serialize(FEATURES, ex) for ex in examples(3)]
    assert tw.write_shard(path=path, records=records) == 3
    assert tw.is_complete(path) and os.listdir(tmp_path) == [os.path.basename(path)]
    with pytest.raises(FileNotFoundError, match="1 of 2 shards missing"):
        tw.write_metadata(
            output_dir=str(tmp_path),
            dataset_name=NAME,
            features=FEATURES,
            split="train",
            shard_lengths=[3, 3],
            description="",
        )


def test_shard_writer_streams_records_to_disk_and_abort_leaves_nothing(tmp_path):
    path = str(tmp_path / "shard.array_record")
    writer = tw.ShardWriter(path)
    record = os.urandom(1 << 20)  # incompressible: 40 of them cannot all sit in the writer's buffer
    for _ in range(40):
        writer.write(record)
    assert os.path.getsize(path + tw.INCOMPLETE_SUFFIX) >= 16 << 20 and not tw.is_complete(path)
    writer.abort()
    assert os.listdir(tmp_path) == []
    writer = tw.ShardWriter(path)
    writer.write(record)
    assert writer.commit() == 1 and os.listdir(tmp_path) == ["shard.array_record"]


def test_tfds_dir_is_never_prepared(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        build_dataset("tfds_dir", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="config"):
        get_builder("tfds_dir", data_dir=str(tmp_path), config="default")
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*tfds_dir"):
        get_builder("nope", data_dir=str(tmp_path))
