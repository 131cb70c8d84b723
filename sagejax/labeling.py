"""Offline labeling of a dataset split with a trained saliency teacher's maps, written as a new TFDS dataset
(array_record): `label_split`, whose command line is `sagejax label` (`sagejax.tools.label`, where the output's
features, sharding and resume rules are described)."""

from __future__ import annotations

import glob
import json
import os
import time

import jax
import numpy as np
import tensorflow_datasets as tfds
import tqdm
from jax.experimental import multihost_utils

from sagejax import data, storage
from sagejax.data import tfds_writer
from sagejax.errors import ConfigError, ExistsError
from sagejax.methods.teacher import FIXATION_RULES, derive_fixations, load_teacher, make_map_fn
from sagejax.train import watchdog
from sagejax.train.mesh import batch_sharding, make_mesh

MAP_KEY, FIXATIONS_KEY = "teacher_saliency", "teacher_fixations"
EXAMPLES_PER_SHARD = 1024  # for num_shards=0 (automatic)
_END = object()


def labeled_features(source_features, map_shape: tuple[int, int]) -> tfds.features.FeaturesDict:
    """The source features plus the teacher's map and its derived fixations."""
    return tfds.features.FeaturesDict(
        {
            **dict(source_features.items()),
            MAP_KEY: tfds.features.Tensor(
                shape=map_shape, dtype=np.uint8, doc="teacher's pixel density divided by its maximum, 0..255"
            ),
            FIXATIONS_KEY: tfds.features.Tensor(
                shape=map_shape, dtype=np.uint8, doc="1 at points drawn from teacher_saliency, else 0"
            ),
        }
    )


def _validate(finite: np.ndarray, peak: np.ndarray, indices, split: str) -> None:
    """Raises naming the first example whose teacher map is not finite or is all zero."""
    for ok, top, index in zip(finite, peak, indices):
        if not ok:
            raise ConfigError(f"the teacher's map of {split} example {index} is not finite; nothing written for it")
        if top <= 0:
            raise ConfigError(f"the teacher's map of {split} example {index} is empty (all zero); nothing written")


def _check_writable(output_dir: str) -> None:
    """Raises naming `output_dir` when it cannot be created or written (found before any work is done)."""
    try:
        storage.probe_writable(output_dir)
    except OSError as error:
        raise ConfigError(f"--output_dir {output_dir} is not writable ({error.strerror})") from error


def _settings_path(output_dir: str, split: str) -> str:
    return os.path.join(output_dir, data.iterators.LABELING_RECORD.format(split=split))


def _check_settings(output_dir: str, split: str, settings: dict) -> None:
    """Records the labeling settings; a rerun into the same folder must use the same ones (else mixed shards)."""
    path = _settings_path(output_dir, split)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        changed = sorted(k for k in settings.keys() | previous.keys() if settings.get(k) != previous.get(k))
        if changed:
            raise ConfigError(
                f"{output_dir} holds a partial labeling of {split!r} with other settings ({changed}); "
                "use another --output_dir or --overwrite"
            )
    elif jax.process_index() == 0:
        storage.write_text(path, json.dumps(settings, indent=2, sort_keys=True))


def _remove_split(output_dir: str, dataset_name: str, split: str) -> None:
    """Deletes this split's shards and settings (for --overwrite); other splits and files stay."""
    for path in glob.glob(os.path.join(output_dir, f"{dataset_name}-{split}.array_record-*")):
        os.remove(path)
    if os.path.exists(_settings_path(output_dir, split)):
        os.remove(_settings_path(output_dir, split))


def _finished(output_dir: str, split: str) -> bool:
    if not os.path.exists(os.path.join(output_dir, "dataset_info.json")):
        return False
    return split in tfds.builder_from_directory(output_dir).info.splits


def label_split(
    *,
    teacher_workdir: str,
    dataset: str,
    split: str,
    output_dir: str,
    data_dir: str = "~/tensorflow_datasets",
    dataset_config: str | None = None,
    resolution: tuple[int, int] | None = None,
    num_shards: int = 0,
    batch_size: int = 64,
    fixation_rule: str = "points",
    num_fixations: int = 16,
    fixation_quantile: float = 0.9,
    seed: int = 0,
    overwrite: bool = False,
    devices=None,
    process_index: int | None = None,
    process_count: int | None = None,
    on_shard_written=None,
    progress: bool = True,
) -> dict:
    """Labels `split` of `dataset` into `output_dir` (see the module docstring); returns counts and images/s.

    `devices` = the devices this process runs the teacher on (default its local ones); `on_shard_written(shard)`
    is called after each shard is on disk.
    """
    if storage.is_url(output_dir):
        raise ConfigError(
            f"--output_dir {output_dir}: labels are an ArrayRecord dataset, which is read from filesystem paths "
            "only; label into a local or mounted folder (the teacher's workdir may be a bucket)"
        )
    output_dir = os.path.abspath(os.path.expanduser(output_dir))
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    mesh = make_mesh({"data": -1}, devices=list(devices or jax.local_devices()))
    if batch_size <= 0 or batch_size % mesh.size:
        raise ConfigError(f"batch_size {batch_size} must be a positive multiple of the {mesh.size} devices")
    if fixation_rule not in FIXATION_RULES:
        raise ConfigError(f"fixation_rule must be one of {FIXATION_RULES}, got {fixation_rule!r}")
    if num_fixations <= 0:
        raise ConfigError(f"num_fixations must be positive, got {num_fixations}")
    if not 0.0 <= fixation_quantile < 1.0:
        raise ConfigError(f"fixation_quantile must be in [0, 1), got {fixation_quantile}")
    _check_writable(output_dir)  # before the dataset is built and the teacher compiled
    builder = data.build_dataset(dataset, data_dir=os.path.expanduser(data_dir), config=dataset_config)
    if split not in builder.info.splits:
        raise ConfigError(f"{builder.info.full_name} has no split {split!r}; splits: {sorted(builder.info.splits)}")
    if "image" not in builder.info.features:
        raise ConfigError(f"{builder.info.full_name} has no 'image' feature to label")
    dataset_name = f"{builder.name}_teacher"
    if _finished(output_dir, split):
        if not overwrite:
            raise ExistsError(f"{output_dir} already holds the finished split {split!r}; pass --overwrite to relabel")
        if process_index == 0:
            _remove_split(output_dir, dataset_name, split)
        if jax.process_count() > 1:  # no process looks for finished shards before they are gone
            multihost_utils.sync_global_devices("sagejax.labeling: old split removed")
    os.makedirs(output_dir, exist_ok=True)

    teacher = load_teacher(teacher_workdir, mesh)
    image_shape = tuple(builder.info.features["image"].shape)
    map_shape = tuple(resolution) if resolution else image_shape[:2]
    if map_shape[0] > image_shape[0] or map_shape[1] > image_shape[1]:
        raise ConfigError(
            f"resolution {map_shape[0]}x{map_shape[1]} exceeds the images' {image_shape[0]}x{image_shape[1]}: a "
            "map finer than its image holds no more of the teacher's evidence, only more bytes"
        )
    probe = jax.ShapeDtypeStruct((batch_size, *image_shape), np.uint8)
    try:  # compiled before the timer starts; a teacher that cannot take these images fails here
        map_fn = make_map_fn(teacher, mesh, map_shape).lower(teacher.params, teacher.model_state, probe).compile()
    except Exception as error:  # shape mismatches surface as several exception types
        raise ConfigError(
            f"the teacher in {teacher.workdir} cannot label images of shape {image_shape}: {error}"
        ) from error

    source = builder.as_data_source(split=split)
    num_shards = num_shards or max(process_count, -(-len(source) // EXAMPLES_PER_SHARD))
    ranges = tfds_writer.shard_ranges(num_examples=len(source), num_shards=num_shards)
    features = labeled_features(builder.info.features, map_shape)
    settings = {
        "teacher_workdir": teacher.workdir,
        "teacher_step": teacher.step,
        "source": builder.info.full_name,
        "split": split,
        "map_shape": list(map_shape),
        "num_shards": num_shards,
        "fixation_rule": fixation_rule,
        "num_fixations": num_fixations,
        "fixation_quantile": fixation_quantile,
        "seed": seed,
    }
    _check_settings(output_dir, split, settings)

    def path(shard):
        return tfds_writer.shard_path(
            output_dir=output_dir, dataset_name=dataset_name, split=split, shard=shard, num_shards=num_shards
        )

    todo = [s for s in range(process_index, num_shards, process_count) if not tfds_writer.is_complete(path(s))]
    total = sum(ranges[s][1] - ranges[s][0] for s in todo)

    def dispatched():
        """(shard, is its last batch, indices, examples, teacher outputs) per batch; the teacher call is
        asynchronous, so taking the next item starts the devices on it."""
        for shard in todo:
            first, stop = ranges[shard]
            for begin in range(first, stop, batch_size):
                indices = list(range(begin, min(begin + batch_size, stop)))
                examples = [source[i] for i in indices]
                padding = [examples[-1]["image"]] * (batch_size - len(indices))
                images = np.stack([ex["image"] for ex in examples] + padding)
                outputs = map_fn(teacher.params, teacher.model_state, images)
                yield shard, indices[-1] == stop - 1, indices, examples, outputs

    start_time = time.perf_counter()
    writer = None  # the shard being written: records are streamed to its file as they are labeled
    try:
        with tqdm.tqdm(total=total, unit="img", desc=f"labeling {split}", disable=not progress) as bar:
            for shard, last, indices, examples, outputs in _one_ahead(dispatched()):  # host overlaps the devices
                maps, finite, peak = jax.device_get(outputs)
                watchdog.beat(f"labeling {split} shard {shard}")
                _validate(finite[: len(indices)], peak[: len(indices)], indices, split)
                writer = writer or tfds_writer.ShardWriter(path(shard))
                for i, example, saliency_map in zip(indices, examples, maps):
                    fixations = derive_fixations(
                        saliency_map,
                        rule=fixation_rule,
                        count=num_fixations,
                        quantile=fixation_quantile,
                        seed=seed,
                        index=i,
                    )
                    example = {**example, MAP_KEY: saliency_map, FIXATIONS_KEY: fixations}
                    writer.write(tfds_writer.serialize(features, example))
                bar.update(len(indices))
                if last:
                    writer.commit()
                    writer = None
                    if on_shard_written is not None:
                        on_shard_written(shard)
    finally:
        if writer is not None:
            writer.abort()
    seconds = time.perf_counter() - start_time

    if fixation_rule == "points":
        fixation_rule_text = f"{num_fixations} points drawn from it, seed (seed={seed}, index)"
    else:
        fixation_rule_text = f"its positive pixels at or above its {fixation_quantile} quantile"
    if process_index == 0:
        _wait_for_shards([path(s) for s in range(num_shards)])
        tfds_writer.write_metadata(
            output_dir=output_dir,
            dataset_name=dataset_name,
            features=features,
            split=split,
            shard_lengths=[stop - begin for begin, stop in ranges],
            description=(
                f"{builder.info.full_name} with saliency-teacher labels: teacher = {teacher.workdir} at step "
                f"{teacher.step}; {MAP_KEY} = its pixel density at {map_shape[0]}x{map_shape[1]} divided by the "
                f"maximum, x255; {FIXATIONS_KEY} = {fixation_rule_text}."
            ),
            supervised_keys=builder.info.supervised_keys,
        )
    return {"images": total, "seconds": seconds, "images_per_s": total / seconds if seconds > 0 else float("nan")}


def _one_ahead(items):
    """Yields each item only after producing the next one (so the next batch is already on the devices)."""
    iterator = iter(items)
    current = next(iterator, _END)
    while current is not _END:
        upcoming = next(iterator, _END)
        yield current
        current = upcoming


def _wait_for_shards(paths: list[str], *, poll_s: float = 5.0) -> None:
    """Blocks until every shard file exists (other processes write theirs), printing what it waits for; a shard
    that arrives counts as progress for the stall watchdog."""
    missing = [p for p in paths if not tfds_writer.is_complete(p)]
    while missing:
        print(f"waiting for {len(missing)} shards from other processes, e.g. {missing[0]}", flush=True)
        time.sleep(poll_s)
        still = [p for p in missing if not tfds_writer.is_complete(p)]
        if len(still) < len(missing):
            watchdog.beat("a shard written by another process")
        missing = still


def time_teacher_forward(teacher_workdir: str, images: np.ndarray, repeats: int) -> float:
    """Median seconds of one jitted teacher call on `images` already on the devices (all local devices)."""
    mesh = make_mesh({"data": -1}, devices=jax.local_devices())
    trained = load_teacher(teacher_workdir, mesh)
    map_fn = make_map_fn(trained, mesh, None)
    batch = jax.device_put(images, batch_sharding(mesh))
    jax.block_until_ready(map_fn(trained.params, trained.model_state, batch))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(map_fn(trained.params, trained.model_state, batch))
        times.append(time.perf_counter() - start)
    return float(np.median(times))
