"""Writes a new TFDS dataset as array_record shards, atomically (a shard file exists only once complete, so a
rerun skips finished shards) and deterministically, plus the metadata `tfds.builder_from_directory` reads.

Processes may write disjoint shards of a split in parallel; one then calls `write_metadata` when all are complete.
"""

import contextlib
import os
import re
from collections.abc import Iterable

import tensorflow_datasets as tfds
from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter

# As tfds's ArrayRecordFileAdapter: one record per chunk, so any record is read without decoding its neighbours
# (grain's random access); the other options keep array_record's defaults (zstd:3, max_parallelism:1, no
# transpose or padding), which encode records in order, so the same records always give the same bytes.
WRITER_OPTIONS = "group_size:1"
INCOMPLETE_SUFFIX = ".incomplete"
_DATASET_NAME = re.compile(r"[a-zA-Z]\w*")  # what tfds's file name regex accepts as {DATASET}
_SPLIT_NAME = re.compile(r"[\w-]+")  # ... and as {SPLIT}


def shard_ranges(*, num_examples: int, num_shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) example ranges of `num_shards` balanced shards covering 0..num_examples in
    order; the first num_examples % num_shards shards hold one example more."""
    if num_shards < 1 or num_examples < num_shards:
        raise ValueError(
            f"need 1 <= num_shards <= num_examples; got num_shards={num_shards}, num_examples={num_examples}"
        )
    size, extra = divmod(num_examples, num_shards)
    stops = [(shard + 1) * size + min(shard + 1, extra) for shard in range(num_shards)]
    return list(zip([0, *stops[:-1]], stops))


def _template(*, output_dir: str, dataset_name: str, split: str) -> tfds.core.ShardedFileTemplate:
    """tfds's default file name template '{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}' for this split."""
    if not _DATASET_NAME.fullmatch(dataset_name):
        raise ValueError(f"dataset_name {dataset_name!r} must be a letter then letters, digits or '_'")
    if not _SPLIT_NAME.fullmatch(split):
        raise ValueError(f"split {split!r} must be letters, digits, '_' or '-'")
    return tfds.core.ShardedFileTemplate(
        data_dir=output_dir, dataset_name=dataset_name, split=split, filetype_suffix="array_record"
    )


def shard_path(*, output_dir: str, dataset_name: str, split: str, shard: int, num_shards: int) -> str:
    """Path of one array_record shard as tfds names it, so `tfds.builder_from_directory` finds it:
    `{output_dir}/{dataset_name}-{split}.array_record-{shard:05d}-of-{num_shards:05d}`."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is not in [0, {num_shards})")
    template = _template(output_dir=output_dir, dataset_name=dataset_name, split=split)
    return os.fspath(template.sharded_filepath(shard_index=shard, num_shards=num_shards))


class ShardWriter:
    """One array_record shard written atomically, record by record (a shard is never held in memory whole).

    Records go to `path + ".incomplete"` (any stale one from a crash is replaced); `commit` syncs it and renames
    it to `path`, so the shard becomes visible only once complete; `abort` removes it. A shard must be written
    by one process at a time.
    """

    def __init__(self, path: str):
        self.path, self._temporary, self.count = path, path + INCOMPLETE_SUFFIX, 0
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._temporary)
        self._writer = ArrayRecordWriter(self._temporary, WRITER_OPTIONS)

    def write(self, record: bytes) -> None:
        self._writer.write(record)
        self.count += 1

    def commit(self) -> int:
        """Makes the shard visible at `path`; returns its number of records."""
        self._writer.close()
        with open(self._temporary, "rb") as f:  # on disk before the rename makes it visible as complete
            os.fsync(f.fileno())
        os.replace(self._temporary, self.path)
        return self.count

    def abort(self) -> None:
        """Drops the unfinished shard."""
        self._writer.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._temporary)


def write_shard(*, path: str, records: Iterable[bytes]) -> int:
    """Writes the serialized examples to the array_record file `path` atomically (see ShardWriter); their number."""
    writer = ShardWriter(path)
    try:
        for record in records:
            writer.write(record)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


def is_complete(path: str) -> bool:
    """Whether the shard at `path` has been written completely (the final file exists)."""
    return os.path.exists(path)


def write_metadata(
    *,
    output_dir: str,
    dataset_name: str,
    features: tfds.features.FeaturesDict,
    split: str,
    shard_lengths: list[int],
    description: str,
    version: str = "1.0.0",
    supervised_keys: tuple | None = None,
) -> None:
    """Writes dataset_info.json and features.json for `split`, whose len(shard_lengths) shards must all be
    complete in output_dir, so that `tfds.builder_from_directory(output_dir)` reads it.

    Several splits per folder are supported, one per call: the split infos of other splits already in
    output_dir's dataset_info.json are kept (same dataset_name, version and features required). Every split
    with shard files in output_dir must be described, so write splits into one folder one after the other.
    The files are a function of the arguments and the shard files only (byte-identical when rewritten).
    """
    paths = [
        shard_path(
            output_dir=output_dir, dataset_name=dataset_name, split=split, shard=shard, num_shards=len(shard_lengths)
        )
        for shard in range(len(shard_lengths))
    ]
    missing = [path for path in paths if not is_complete(path)]
    if missing:
        raise FileNotFoundError(f"split {split!r} has {len(missing)} of {len(paths)} shards missing: {missing}")
    found = [ArrayRecordReader(path).num_records() for path in paths]
    if found != list(shard_lengths):
        raise ValueError(f"shard_lengths {list(shard_lengths)} of split {split!r} differ from the files' {found}")
    split_infos = {
        split: tfds.core.SplitInfo(
            name=split,
            shard_lengths=list(shard_lengths),
            num_bytes=sum(os.path.getsize(path) for path in paths),
            filename_template=_template(output_dir=output_dir, dataset_name=dataset_name, split=split),
        )
    }
    if os.path.exists(os.path.join(output_dir, "dataset_info.json")):
        existing = tfds.builder_from_directory(output_dir).info
        if (existing.name, str(existing.version)) != (dataset_name, version):
            raise ValueError(f"{output_dir} holds {existing.name} {existing.version}, not {dataset_name} {version}")
        if existing.features.to_json() != features.to_json():
            raise ValueError(f"features differ from those of the splits already in {output_dir}")
        split_infos = {**existing.splits, **split_infos}
    tfds.folder_dataset.write_metadata(
        data_dir=output_dir,
        features=features,
        split_infos=[split_infos[name] for name in sorted(split_infos)],  # sorted: same file whatever the order
        version=version,
        check_data=False,  # tfds's check reads through tf.data; the data source below needs no TensorFlow
        description=description,
        supervised_keys=supervised_keys,
    )
    if sum(shard_lengths):  # the features decode the records (tfds's check_data, without TensorFlow)
        tfds.builder_from_directory(output_dir).as_data_source(split=split)[0]


def serialize(features: tfds.features.FeaturesDict, example: dict) -> bytes:
    """The record of `example` as `features.serialize_example` encodes it (a tf.train.Example proto; no
    TensorFlow needed), but with the same bytes in every process.

    serialize_example writes the proto's feature map in upb's hash order, which differs between processes;
    deterministic serialization sorts it by feature name.
    """
    proto = tfds.core.ExampleSerializer(features.get_serialized_info()).get_tf_example(features.encode_example(example))
    return proto.SerializeToString(deterministic=True)
