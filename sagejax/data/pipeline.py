"""Builder registry, offline building, and grain loaders: tfds array_record data sources, sharded per
JAX process, seeded shuffle, repeat, batching, and a checkpointable iterator position."""

import os

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds

from sagejax.data.decoy_mnist import DecoyMnist
from sagejax.data.mnist_attention import MnistAttention
from sagejax.data.salicon import Salicon
from sagejax.data.saliency_csv import SaliencyCsv
from sagejax.data.saliency_folder import SaliencyFolder

BUILDERS = {
    "decoy_mnist": DecoyMnist,
    "mnist_attention": MnistAttention,
    "salicon": Salicon,
    "saliency_csv": SaliencyCsv,
    "saliency_folder": SaliencyFolder,
}
TFDS_DIR = "tfds_dir"  # pseudo dataset name: data_dir is a written dataset folder, read as it is
# Stored as uint8 0..255, delivered as float32 in [0, 1].
_UNIT_SCALED = ("image", "saliency", "density", "teacher_saliency")


def get_builder(
    name: str, *, data_dir: str, config: str | tfds.core.BuilderConfig | None = None
) -> tfds.core.DatasetBuilder:
    """The registered builder `name` (default config if None), reading and writing array_record; or, for
    name "tfds_dir", the read-only builder of the written dataset folder data_dir (no config)."""
    if name == TFDS_DIR:
        if config is not None:
            raise ValueError(f"{TFDS_DIR!r} has no configs; got config={config!r}")
        if not os.path.exists(os.path.join(data_dir, "dataset_info.json")):
            raise FileNotFoundError(
                f"{data_dir} has no dataset_info.json; for {TFDS_DIR!r} it should be a folder written by "
                "`python -m sagejax.label` (or any TFDS dataset version folder)"
            )
        return tfds.builder_from_directory(data_dir)
    if name not in BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; registered: {sorted(BUILDERS)}, or {TFDS_DIR!r}")
    return BUILDERS[name](data_dir=data_dir, config=config, file_format="array_record")


def build_dataset(
    name: str,
    *,
    data_dir: str,
    config: str | tfds.core.BuilderConfig | None = None,
    manual_dir: str | None = None,
    max_examples_per_split: int | None = None,
) -> tfds.core.DatasetBuilder:
    """Prepares the dataset under data_dir from local data only (never GCS); a no-op if already built.

    `max_examples_per_split` truncates every split (for tests); don't reuse such a data_dir for runs.
    "tfds_dir" is never prepared: the folder must already hold a written dataset.
    """
    builder = get_builder(name, data_dir=data_dir, config=config)
    if name != TFDS_DIR and not builder.is_prepared():
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                manual_dir=manual_dir,
                try_download_gcs=False,
                max_examples_per_split=max_examples_per_split,
            )
        )
    return builder


class _MaskedSource:
    """Data source of `length` records: the split's examples with valid=True, then padding copies of
    example 0 with valid=False, so an evaluation can see every example in full batches."""

    def __init__(self, source, length: int):
        self._source = source
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict:
        valid = index < len(self._source)
        return {**self._source[index if valid else 0], "valid": valid}

    def __repr__(self) -> str:  # grain logs and checkpoints the source's repr.
        return f"_MaskedSource({self._source!r}, length={self._length})"


class _SubsetSource:
    """The records of `source` at `indices`, in that order (e.g. one attack-type protocol's split)."""

    def __init__(self, source, indices):
        self._source = source
        self._indices = list(indices)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> dict:
        return self._source[self._indices[index]]

    def __repr__(self) -> str:
        return f"_SubsetSource({self._source!r}, {len(self._indices)} records)"


def select_attack_types(source, builder, *, exclude=(), only=None):
    """Records without the attack types in `exclude`; with `only`, bona fide records plus those types.

    Used by leave-one-attack-type-out protocols; needs an `attack_type` feature (saliency_csv).
    """
    if not exclude and only is None:
        return source
    if "attack_type" not in builder.info.features:
        raise ValueError(f"{builder.info.full_name} has no attack_type feature to select attack types by")
    names = builder.info.features["attack_type"].names
    unknown = sorted((set(exclude) | set(only or ())) - set(names))
    if unknown:
        raise ValueError(f"unknown attack types {unknown}; {builder.info.full_name} has {names}")
    excluded = {names.index(t) for t in exclude}
    allowed = None if only is None else {0} | {names.index(t) for t in only}  # 0 = NO_ATTACK (bona fide)
    keep = [
        i
        for i in range(len(source))
        if (t := int(source[i]["attack_type"])) not in excluded and (allowed is None or t in allowed)
    ]
    return _SubsetSource(source, keep)


class _ToModelInputs(grain.transforms.Map):
    """Batch of stored features -> model inputs: images and maps float32 in [0, 1], integers int32."""

    def map(self, batch: dict) -> dict:
        out = {}
        for key, value in batch.items():
            if key in _UNIT_SCALED:
                out[key] = value.astype(np.float32) / 255
            elif np.issubdtype(value.dtype, np.integer):
                out[key] = value.astype(np.int32)
            else:
                out[key] = value
        return out


def make_loader(
    *,
    name: str,
    split: str,
    data_dir: str,
    batch_size: int,
    seed: int,
    shuffle: bool,
    num_epochs: int | None = None,
    config: str | tfds.core.BuilderConfig | None = None,
    shard_by_process: bool = True,
    process_index: int | None = None,
    process_count: int | None = None,
    pad_remainder: bool = False,
    exclude_attack_types=(),
    only_attack_types=None,
    worker_count: int = 0,
    read_threads: int = 2,
) -> grain.DataLoaderIterator:
    """This process's iterator over a built split, batches of batch_size // process_count examples as
    numpy dicts (image/saliency float32 in [0,1], integers int32, "valid" bool); get/set_state resume it.
    `exclude_attack_types` / `only_attack_types` select records as in `select_attack_types`."""
    builder = get_builder(name, data_dir=data_dir, config=config)
    # A "tfds_dir" folder is checked by get_builder: is_prepared() also wants a version-named folder.
    if name != TFDS_DIR and not builder.is_prepared():
        raise FileNotFoundError(
            f"dataset {builder.info.full_name} is not built under {data_dir}; run "
            f"sagejax.data.build_dataset({name!r}, data_dir=..., config=...) first"
        )
    if split.split("[")[0] not in builder.info.splits:  # "train[:500]" slices a split (tfds syntax)
        raise ValueError(f"{builder.info.full_name} has no split {split!r}; splits: {sorted(builder.info.splits)}")
    if shard_by_process:
        index = jax.process_index() if process_index is None else process_index
        count = jax.process_count() if process_count is None else process_count
    else:  # this process alone reads the whole split, in global batches
        index, count = 0, 1
    if not 0 <= index < count:
        raise ValueError(f"process_index {index} is not in [0, {count})")
    if batch_size <= 0 or batch_size % count:
        raise ValueError(f"global batch_size {batch_size} must be a positive multiple of process_count {count}")
    local_batch = batch_size // count

    source = select_attack_types(
        builder.as_data_source(split=split), builder, exclude=exclude_attack_types, only=only_attack_types
    )
    length = -(-len(source) // batch_size) * batch_size if pad_remainder else len(source)
    if length < count:
        raise ValueError(f"split {split!r} has {len(source)} examples, fewer than {count} processes")
    # Each process reads a contiguous 1/count of the split (remainder dropped, so all processes yield
    # equally many batches), reshuffled every epoch; num_epochs=None repeats forever. pad_remainder
    # (evaluation) pads the split to whole global batches with valid=False copies of example 0.
    shard = grain.sharding.ShardOptions(shard_index=index, shard_count=count, drop_remainder=True)
    sampler = grain.samplers.IndexSampler(
        num_records=length, shard_options=shard, shuffle=shuffle, num_epochs=num_epochs, seed=seed
    )
    loader = grain.DataLoader(
        data_source=_MaskedSource(source, length),
        sampler=sampler,
        operations=[grain.transforms.Batch(local_batch, drop_remainder=True), _ToModelInputs()],
        shard_options=shard,
        worker_count=worker_count,  # > 0: grain worker processes (needs absl flags parsed)
        read_options=grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=4 * local_batch),
    )
    return iter(loader)
