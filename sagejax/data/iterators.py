"""Data from an experiment config: the one place that turns `config.data` (and an evaluator's `data` overrides)
into built datasets and iterators, so trainers, drivers and evaluators never translate config keys by hand."""

from __future__ import annotations

import json
import os

import ml_collections

from sagejax.data import saliency_csv
from sagejax.data.host_ops import HostCrop
from sagejax.data.pipeline import TFDS_DIR, build_dataset, make_loader
from sagejax.errors import ConfigError

LABELING_RECORD = "labeling-{split}.json"  # what sagejax.labeling writes beside each split it labels


def dataset_config(config, eval_name: str | None = None) -> ml_collections.ConfigDict:
    """`config.data`, with the evaluator's `config.evals[eval_name].data` entries (if any) laid over it."""
    merged = ml_collections.ConfigDict(config.data.to_dict())
    if eval_name is not None:
        overrides = config.evals[eval_name].get("data")
        if overrides:
            unknown = sorted(set(overrides) - set(merged))
            if unknown:
                raise ConfigError(f"config.evals.{eval_name}.data has unknown keys {unknown}; known: {sorted(merged)}")
            merged.update(overrides.to_dict())
    return merged


def _source(name: str, builder_config, data_dir: str) -> dict:
    """The builder arguments of a dataset: a "tfds_dir" folder has no builder config."""
    config = None if name == TFDS_DIR else builder_config
    return dict(name=name, config=config, data_dir=os.path.expanduser(data_dir))


def _dataset_source(data_config) -> dict:
    """The builder arguments of `config.data`; `validation_fraction` > 0 carves `validation` from a CSV's train."""
    builder_config, fraction = data_config.builder_config, data_config.get("validation_fraction", 0.0)
    if fraction:
        if data_config.name != "saliency_csv":
            raise ConfigError(
                f"config.data.validation_fraction={fraction} carves validation from train.csv of saliency_csv only; "
                f"{data_config.name!r} has its own splits"
            )
        builder_config = saliency_csv.with_validation(builder_config, fraction)
    return _source(data_config.name, builder_config, data_config.data_dir)


def host_crop(data_config, *, train: bool) -> HostCrop | None:
    """The host-side decode and crop to `data.image_size`² (None when 0: batches as stored): in training as
    `data.augment` asks (with `crop_scale` / `crop_ratio`), in evaluation the centre `eval_crop_fraction` of the
    shorter side."""
    size = data_config.get("image_size", 0)
    if not size:
        return None
    return HostCrop(
        size=size,
        train=train,
        augment=data_config.get("augment", ""),
        scale=tuple(data_config.crop_scale),
        ratio=tuple(data_config.crop_ratio),
        eval_fraction=data_config.get("eval_crop_fraction", 0.875),
    )


def image_shape(builder, data_config) -> tuple:
    """(H, W, C) of the images the loaders deliver: image_size² when they crop on the host, else as stored."""
    stored = tuple(builder.info.features["image"].shape)
    size = data_config.get("image_size", 0)
    return (size, size, stored[-1]) if size else stored


def build(data_config):
    """Prepares the dataset of `data_config` (name, builder_config, data_dir, manual_dir) if needed; its builder."""
    source = _dataset_source(data_config)
    return build_dataset(source.pop("name"), **source, manual_dir=data_config.get("manual_dir") or None)


def _labeled_config(train_dir: str, split: str) -> tuple[str, str] | None:
    """(dataset, builder config or "") that `split` of the labeled folder `train_dir` was labeled from, if recorded."""
    path = os.path.join(os.path.expanduser(train_dir), LABELING_RECORD.format(split=split.split("[")[0]))
    if not os.path.exists(path):
        return None
    with open(path) as file:
        parts = json.load(file).get("source", "").split("/")  # tfds full name: name[/config]/version
    return parts[0], parts[1] if len(parts) == 3 else ""


def check_train_dir(data) -> None:
    """Refuses a `data.train_dir` labeled from another builder config of `data.name`: its images may be ones that
    config evaluates on (mnist_attention's default `unlabeled` holds the `heldout` config's `test`)."""
    if not data.get("train_dir"):
        return
    for split in data.train_split.split("+"):
        labeled = _labeled_config(data.train_dir, split)
        if labeled and labeled[0] == data.name and data.get("builder_config") and labeled[1] != data.builder_config:
            raise ConfigError(
                f"data.train_dir {data.train_dir}: its {split!r} was labeled from {labeled[0]}/{labeled[1]}, but "
                f"config.data is {data.name}/{data.builder_config}, whose evaluated splits it may contain; label "
                f"that config's split (sagejax label --dataset_config {data.builder_config})"
            )


def train_iter(config, **process):
    """This process's endless, shuffled training iterator: `data.train_split` of the dataset, or of the folder
    `data.train_dir` when set (e.g. a split labeled by sagejax.tools.label); `data.saliency_feature` is delivered as the
    batch's "saliency"; `data.train_exclude_attack_types` are left out; the maps of `data.unannotated_splits`
    (parts of a joined `train_split` such as "train+unlabeled") read as zeros; `data.workers` worker processes
    decode; `data.image_size` > 0 crops on the host (`host_crop`). `process` = process_index/count."""
    data = config.data
    check_train_dir(data)
    source = _source(TFDS_DIR, None, data.train_dir) if data.get("train_dir") else _dataset_source(data)
    feature = data.get("saliency_feature", "saliency")
    return make_loader(
        **source,
        split=data.train_split,
        batch_size=config.train.batch_size,
        seed=config.seed,
        shuffle=True,
        num_epochs=None,
        exclude_attack_types=tuple(data.get("train_exclude_attack_types", ())),
        rename={feature: "saliency"} if feature != "saliency" else None,
        numeric_only=True,
        unannotated_splits=tuple(data.get("unannotated_splits", ())),
        workers=data.get("workers", 0),
        crop=host_crop(data, train=True),
        **process,
    )


def eval_iter(config, name: str, split: str, **process):
    """One pass over `split` for the evaluator `config.evals[name]`: its batch size, its data overrides and its
    `attack_types` (bona fide + only those; () = all), padded to whole batches (`valid` marks real examples); with
    `data.image_size` > 0, each image and map is the centre crop of `host_crop`."""
    evaluator = config.evals[name]
    data = dataset_config(config, name)
    return make_loader(
        **_dataset_source(data),
        split=split,
        batch_size=evaluator.batch_size,
        seed=config.seed,
        shuffle=False,
        num_epochs=1,
        pad_remainder=True,
        only_attack_types=tuple(evaluator.get("attack_types", ())) or None,
        numeric_only=True,
        crop=host_crop(data, train=False),
        **process,
    )
