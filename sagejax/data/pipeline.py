"""Builder registry, offline building, and grain loaders (the Dataset API over tfds array_record data sources):
seeded shuffle reseeded every epoch, repeat, global batches of which each JAX process reads its own rows (the
same batches for any process count), optional host-side decode and crop of encoded or variable-size images
(`host_ops`), optional decoding worker processes, a checkpointable position."""

import os

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds
from absl import flags

from sagejax.data import host_ops, sources
from sagejax.data.decoy_mnist import DecoyMnist
from sagejax.data.digit_pad import DigitPad
from sagejax.data.mnist_attention import MnistAttention
from sagejax.data.offline import OfflineBuilder
from sagejax.data.salicon import Salicon
from sagejax.data.saliency_csv import SaliencyCsv
from sagejax.data.saliency_folder import SaliencyFolder
from sagejax.errors import DataError, MissingError

BUILDERS = {
    "decoy_mnist": DecoyMnist,
    "digit_pad": DigitPad,
    "mnist_attention": MnistAttention,
    "salicon": Salicon,
    "saliency_csv": SaliencyCsv,
    "saliency_folder": SaliencyFolder,
}
TFDS_DIR = "tfds_dir"  # pseudo dataset name: data_dir is a written dataset folder, read as it is


def get_builder(
    name: str, *, data_dir: str, config: str | tfds.core.BuilderConfig | None = None
) -> tfds.core.DatasetBuilder:
    """The builder `name` (default config if None), reading and writing array_record: one of sagejax's BUILDERS or
    of the TFDS catalogue (e.g. "cifar10"; encoded images are decoded on the host, in the loader's read threads);
    for name "tfds_dir", the read-only builder of the written dataset folder data_dir (no config)."""
    if name == TFDS_DIR:
        if config is not None:
            raise DataError(f"{TFDS_DIR!r} has no configs; got config={config!r}")
        if not os.path.exists(os.path.join(data_dir, "dataset_info.json")):
            raise MissingError(
                f"{data_dir} has no dataset_info.json; for {TFDS_DIR!r} it should be a folder written by "
                "`sagejax label` (or any TFDS dataset version folder)"
            )
        return tfds.builder_from_directory(data_dir)
    if name in BUILDERS:
        return BUILDERS[name](data_dir=data_dir, config=config, file_format="array_record")
    try:  # a dataset of the TFDS catalogue (cifar10, imagenet2012, ...): stored as array_record, read without TF
        return tfds.builder(name, data_dir=data_dir, config=config or None, file_format="array_record")
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"unknown dataset {name!r}; sagejax's: {sorted(BUILDERS)}, {TFDS_DIR!r}, or a TFDS catalogue name"
        ) from None


def build_dataset(
    name: str,
    *,
    data_dir: str,
    config: str | tfds.core.BuilderConfig | None = None,
    manual_dir: str | None = None,
    max_examples_per_split: int | None = None,
) -> tfds.core.DatasetBuilder:
    """Prepares the dataset under data_dir if needed (sagejax's builders from local files only; a TFDS catalogue
    dataset from its sources, never from GCS); if already built, checks that a build from user files
    (saliency_csv) is not stale: DataError naming what changed since.

    `max_examples_per_split` truncates every split (for tests); don't reuse such a data_dir for runs.
    "tfds_dir" is never prepared: the folder must already hold a written dataset.
    """
    builder = get_builder(name, data_dir=data_dir, config=config)
    if name == TFDS_DIR:
        return builder
    if builder.is_prepared():
        current = builder.current_sources(manual_dir) if isinstance(builder, OfflineBuilder) else None
        if current is not None:
            sources.check_fresh(builder, current)
    else:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                manual_dir=manual_dir,
                try_download_gcs=False,
                max_examples_per_split=max_examples_per_split,
            )
        )
    return builder


def attack_type_indices(source, builder, *, exclude=(), only=None) -> list[int] | None:
    """Indices of the records without the attack types in `exclude`; with `only`, of the bona fide records plus
    those types; None when nothing is selected. Used by leave-one-attack-type-out protocols; needs an
    `attack_type` feature (saliency_csv)."""
    if not exclude and only is None:
        return None
    if "attack_type" not in builder.info.features:
        raise DataError(f"{builder.info.full_name} has no attack_type feature to select attack types by")
    names = builder.info.features["attack_type"].names
    unknown = sorted((set(exclude) | set(only or ())) - set(names))
    if unknown:
        raise DataError(f"unknown attack types {unknown}; {builder.info.full_name} has {names}")
    excluded = {names.index(t) for t in exclude}
    allowed = None if only is None else {0} | {names.index(t) for t in only}  # 0 = NO_ATTACK (bona fide)
    return [
        i
        for i in range(len(source))
        if (t := int(source[i]["attack_type"])) not in excluded and (allowed is None or t in allowed)
    ]


def _is_spatial(feature) -> bool:
    """An image or a map: a `tfds.features.Image`, or an array feature of a fixed shape of 2 or more dimensions."""
    shape = getattr(feature, "shape", None)
    fixed = isinstance(shape, tuple) and len(shape) >= 2 and None not in shape
    return isinstance(feature, tfds.features.Image) or fixed


class _ProcessRows:
    """Position in this process's stream → (position in the global stream, its record): rows [index·local_batch,
    (index+1)·local_batch) of every global batch of count·local_batch."""

    def __init__(self, order, *, index: int, count: int, local_batch: int):
        self._order, self._index, self._count, self._local = order, index, count, local_batch

    def __call__(self, position: int) -> tuple[int, int]:
        batch, row = divmod(position, self._local)
        global_position = (batch * self._count + self._index) * self._local + row
        return global_position, self._order[global_position]


class _HostRecord:
    """Index → one record as host arrays: integers int32 except uint8 (images and maps stay uint8 until the
    device casts them), text dropped with `numeric_only` (it cannot go to a device), optional renames; with
    `padded`, the indices past the selection are valid=False copies of record 0, so an evaluation sees every
    example. With `crop`, the image and the maps `crop_keys` are first decoded and cropped on the host
    (`host_ops.HostCrop`), drawing from a generator seeded by (seed, position in the global stream): the same crops
    for any process or worker count, and again after a resume."""

    def __init__(
        self,
        source,
        indices,
        *,
        padded: bool,
        rename: dict[str, str],
        numeric_only: bool,
        unannotated=(),
        crop: host_ops.HostCrop | None = None,
        crop_keys=(),
        channels: int = 3,
        seed: int = 0,
    ):
        self._source, self._indices, self._padded, self._rename = source, indices, padded, rename
        self._numeric_only, self._unannotated = numeric_only, tuple(unannotated)
        self._crop, self._crop_keys, self._channels, self._seed = crop, tuple(crop_keys), channels, seed
        self._count = len(indices) if indices is not None else len(source)

    def __call__(self, item: tuple[int, int]) -> dict:
        global_position, index = item
        valid = index < self._count
        position = index if valid else 0
        source_index = self._indices[position] if self._indices is not None else position
        record = self._source[source_index]
        if self._crop is not None:
            rng = np.random.default_rng([self._seed, global_position])
            record = self._crop(record, rng, keys=self._crop_keys, channels=self._channels)
        blank = any(start <= source_index < stop for start, stop in self._unannotated)
        out = {}
        for key, value in record.items():
            value = np.asarray(value)
            if value.dtype.kind not in "biuf" and self._numeric_only:
                continue
            if blank and key != "image" and value.ndim >= 2:  # a map of an unannotated split: read as none
                value = np.zeros_like(value)
            out[key] = value.astype(np.int32) if value.dtype.kind in "iu" and value.dtype != np.uint8 else value
        for old, new in self._rename.items():
            if old not in out:
                raise DataError(f"feature {old!r} (to be read as {new!r}) is not in the data: {sorted(out)}")
            out[new] = out.pop(old)
        if self._padded:
            out["valid"] = np.bool_(valid)
        return out

    def __repr__(self) -> str:  # grain logs the transformations
        return f"_HostRecord({self._source!r}, {self._count} records, rename={self._rename})"


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
    rename: dict[str, str] | None = None,
    numeric_only: bool = False,
    unannotated_splits=(),
    read_threads: int = 2,
    workers: int = 0,
    crop: host_ops.HostCrop | None = None,
) -> grain.DatasetIterator:
    """This process's iterator over a built split, batches of batch_size // process_count examples as numpy
    dicts (images and maps uint8 as stored, other integers int32, "valid" bool when padded); its get/set_state
    resume it exactly. `exclude_attack_types` / `only_attack_types` select records as in `attack_type_indices`;
    `rename` maps stored feature names to the names the batch gives them; `numeric_only` drops text features
    (for batches that go to the devices). `split` may join splits ("train+unlabeled"); the maps (every feature of
    2 or more dimensions but the image) of records from `unannotated_splits` read as zeros, i.e. "no map" (for
    co-training on a few annotated examples among many). `workers` > 0 reads and decodes in that many worker
    processes (worth it where decoding is the cost: encoded images) instead of this process's `read_threads`.
    `crop` decodes the image and every map (each `tfds.features.Image` or fixed-shape array feature of 2 or more
    dimensions) on the host and cuts them to one size, so encoded, variable-size images batch; without it such
    images are refused."""
    builder = get_builder(name, data_dir=data_dir, config=config)
    # A "tfds_dir" folder is checked by get_builder: is_prepared() also wants a version-named folder. Catalogue
    # datasets are checked when their data source opens (so tfds.testing.mock_data can stand in for them).
    if name in BUILDERS and not builder.is_prepared():
        raise MissingError(
            f"dataset {builder.info.full_name} is not built under {data_dir}; run "
            f"sagejax.data.build_dataset({name!r}, data_dir=..., config=...) first"
        )
    parts = split.split("+")  # "train+unlabeled" joins splits, "train[:500]" slices one (tfds syntax)
    unknown = [part for part in parts if part.split("[")[0] not in builder.info.splits]
    if unknown and (name in BUILDERS or builder.info.splits):  # a catalogue dataset without splits is not built
        raise DataError(f"{builder.info.full_name} has no split {unknown[0]!r}; splits: {sorted(builder.info.splits)}")
    stray = sorted(set(unannotated_splits) - {part.split("[")[0] for part in parts})
    if stray:
        raise DataError(f"unannotated_splits {stray} are not part of split {split!r}")
    if shard_by_process:
        index = jax.process_index() if process_index is None else process_index
        count = jax.process_count() if process_count is None else process_count
    else:  # this process alone reads the whole split, in global batches
        index, count = 0, 1
    if not 0 <= index < count:
        raise DataError(f"process_index {index} is not in [0, {count})")
    if batch_size <= 0 or batch_size % count:
        raise DataError(f"global batch_size {batch_size} must be a positive multiple of process_count {count}")
    local_batch = batch_size // count
    if workers < 0:
        raise DataError(f"workers must be >= 0 (0 = read in this process's threads), got {workers}")

    features = builder.info.features
    spatial = [key for key, feature in features.items() if _is_spatial(feature)]
    encoded = {key: tfds.decode.SkipDecoding() for key in spatial if isinstance(features[key], tfds.features.Image)}
    try:
        source = builder.as_data_source(split=split, decoders=encoded if crop is not None and encoded else None)
    except (AssertionError, FileNotFoundError, KeyError) as error:  # what tfds raises for an unprepared dataset
        raise MissingError(f"dataset {builder.info.full_name} is not built under {data_dir}: {error}") from error
    variable = [key for key in spatial if None in features[key].shape]
    if variable and crop is None:
        raise DataError(
            f"{builder.info.full_name}: {variable[0]!r} has images of varying sizes {features[variable[0]].shape}; "
            "set config.data.image_size (e.g. 224) to decode and crop them on the host"
        )
    unannotated, start = [], 0  # index ranges of the joined splits whose maps read as zeros
    for part in parts:
        stop = start + (len(builder.as_data_source(split=part)) if len(parts) > 1 else len(source))
        if part.split("[")[0] in unannotated_splits:
            unannotated.append((start, stop))
        start = stop
    indices = attack_type_indices(source, builder, exclude=exclude_attack_types, only=only_attack_types)
    selected = len(indices) if indices is not None else len(source)
    length = -(-selected // batch_size) * batch_size if pad_remainder else selected
    if length < count:
        raise DataError(f"split {split!r} has {selected} examples, fewer than {count} processes")
    # The global stream is the split reshuffled every epoch (grain reseeds shuffle per repeat; num_epochs=None
    # repeats forever), cut into global batches; process p reads rows [p·local, (p+1)·local) of each, and only
    # those records. The global batches are thus the same for any process count. pad_remainder (evaluation) pads
    # the split to whole global batches with valid=False copies of record 0.
    order = grain.MapDataset.range(length)
    if shuffle:
        order = order.shuffle(seed=seed)
    order = order.repeat(num_epochs)
    dataset = (
        grain.MapDataset.range(len(order) // batch_size * local_batch)
        .map(_ProcessRows(order, index=index, count=count, local_batch=local_batch))
        .map(
            _HostRecord(
                source,
                indices,
                padded=pad_remainder,
                rename=dict(rename or {}),
                numeric_only=numeric_only,
                unannotated=unannotated,
                crop=crop,
                crop_keys=[key for key in spatial if key != "image"],
                channels=features["image"].shape[-1] if "image" in spatial else 3,
                seed=seed,
            )
        )
        .batch(local_batch, drop_remainder=True)
        .to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=4))
    )
    if workers:  # decoding in worker processes (encoded images); the order and the checkpointed position are kept
        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags: a notebook or pytest gets their defaults
            flags.FLAGS.mark_as_parsed()
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return iter(dataset)
