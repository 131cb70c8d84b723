"""Pretrained weights for a new run (`config.init`): a sagejax run folder, an exported safetensors file, timm or
torchvision ResNet weights, timm or big_vision ViT weights; read on the host, converted to sagejax names and matched
strictly to the model (every parameter loaded or skipped by `init.skip`, nothing in the file left over)."""

from __future__ import annotations

import json
import logging
import os

import jax
import numpy as np
from flax import nnx

from sagejax import models, storage
from sagejax.errors import ConfigError
from sagejax.models import convert, weight_files
from sagejax.models.named import named_arrays
from sagejax.models.resnet import ResNet
from sagejax.models.student import Student
from sagejax.models.vit import ViT
from sagejax.train.mesh import make_mesh
from sagejax.train.trained import restore_trained


def read_pretrained(config) -> dict[str, np.ndarray] | None:
    """{name: host array} of `config.init` for the model of `config` (None without `init.path`); raises one error
    line naming the file and what does not fit, before anything is built or written."""
    init = config.get("init")
    if not init or not init.path:
        return None
    path, fmt = os.fspath(storage.path(init.path)), init.format
    if fmt and fmt not in convert.FORMATS:
        raise ConfigError(f"config.init.format={fmt!r}: choose from {list(convert.FORMATS)} or '' to infer it")
    model = nnx.eval_shape(lambda: models.build_model(config))
    backbone = model.backbone if isinstance(model, Student) else model
    family = "resnet" if isinstance(backbone, ResNet) else "vit" if isinstance(backbone, ViT) else None
    if storage.path(path).is_dir():
        (source, trained_config), shown, shown_family = _run_arrays(path), "sagejax", None
    else:
        source, metadata = weight_files.read(path)
        shown, shown_family = convert.infer_format(source, metadata)
        trained_config = json.loads(metadata["config"]) if "config" in metadata else None
    fmt = _checked_format(fmt, shown, shown_family, family, path, config.model.name)
    if fmt == "sagejax" and trained_config is not None:
        _check_same_normalisation(trained_config, config, path)
    if fmt == "big_vision" and family == "vit" and not backbone.gelu_approximate:
        logging.warning(
            "%s: big_vision ViTs were trained with tanh-approximate GELU; set "
            "--config.model.kwargs.gelu_approximate=True to compute what they computed",
            path,
        )
    converted = convert.to_sagejax(source, fmt=fmt, family=family, origin=path)
    if fmt != "sagejax":
        if isinstance(model, Student):
            converted = {name.replace("/", "/backbone/", 1): value for name, value in converted.items()}
        if config.data.get("normalize", "none") == "none":
            logging.warning(
                "config.init reads %s weights from %s but config.data.normalize is 'none': models pretrained on "
                "ImageNet expect normalised inputs ('imagenet' for timm/torchvision ResNets, 'inception' for "
                "big_vision and timm augreg ViTs)",
                fmt,
                path,
            )
    targets = {name: value.shape for name, value in named_arrays(model).items()}
    return convert.match(converted, targets, skip=init.skip, origin=path)


def _checked_format(fmt, shown, shown_family, family, path, model_name) -> str:
    """The format to read `path` as: the configured one, else the one its names show; refuses a mismatch."""
    if shown_family and family and shown_family != family:
        raise ConfigError(f"{path} holds {shown} {shown_family} weights; model {model_name!r} is a {family}")
    same_names = {fmt, shown} <= {"timm", "torchvision"} and family == "resnet"  # one naming for both
    if fmt and shown and fmt != shown and not same_names:
        raise ConfigError(f"{path} holds {shown} weights, not {fmt} (config.init.format)")
    fmt = fmt or shown
    if not fmt:
        raise ConfigError(
            f"cannot tell the format of {path} from its tensor names; set config.init.format to one of "
            f"{list(convert.FORMATS)}"
        )
    if fmt != "sagejax" and family is None:
        raise ConfigError(f"model {model_name!r} can start only from sagejax weights (a run folder or an export)")
    return fmt


def _check_same_normalisation(trained_config: dict, config, path: str) -> None:
    """Refuses sagejax weights trained on inputs normalised otherwise than `config` will feed them: the normalisation
    is part of the model, not of its weights."""
    trained = (trained_config.get("data") or {}).get("normalize", "none")
    wanted = config.data.get("normalize", "none")
    if trained != wanted:
        raise ConfigError(
            f"{path} was trained with config.data.normalize={trained!r}, this config has {wanted!r}: set "
            f"--config.data.normalize={trained}"
        )


def _run_arrays(workdir: str) -> tuple[dict[str, np.ndarray], dict]:
    """({name: array}, config) of the newest checkpoint of a sagejax run (its moving average when it kept one)."""
    mesh = make_mesh({"data": 1}, devices=jax.local_devices()[:1])
    trained = restore_trained(workdir, mesh)
    arrays = {name: np.asarray(value) for name, value in named_arrays(trained.model()).items()}
    return arrays, trained.config.to_dict()
