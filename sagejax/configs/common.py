"""What every experiment config shares: the variant parser, the optim/train/mesh blocks, method and evaluator
blocks merged from the defaults that live beside their code, and the smoke shrinker for CPU checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ml_collections

from sagejax import methods, models
from sagejax.errors import ConfigError
from sagejax.evaluate import evaluators


def parse_arg(arg: str | None, *, choices: Mapping[str, Sequence[str]] = {}, **options) -> ml_collections.ConfigDict:
    """Parses a `--config=FILE:ARG` variant string such as "sage,texture,smoke" or "method=xent,pad=attack".

    `choices` maps a group to its allowed values (the first is the default): a bare value picks it ("sage" sets
    method=sage). `options` are named settings with defaults: a bare name sets a boolean option True
    ("smoke"), "name=value" sets any option or group (converted to the default's type). Unknown words raise.
    """
    result = {group: values[0] for group, values in choices.items()}
    result.update(options)
    chosen = {}
    for token in (t.strip() for t in (arg or "").split(",")):
        if not token:
            continue
        key, has_value, value = token.partition("=")
        group = next((g for g, values in choices.items() if token in values), None)
        if group is not None and not has_value:
            if group in chosen and chosen[group] != token:
                raise ConfigError(f"config variants {chosen[group]!r} and {token!r} both set {group}")
            chosen[group] = result[group] = token
        elif has_value and key in choices:
            if value not in choices[key]:
                raise ConfigError(f"config variant {token!r}: {key} must be one of {list(choices[key])}")
            chosen[key] = result[key] = value
        elif has_value and key in options:
            result[key] = _convert(value, options[key], token)
        elif not has_value and isinstance(options.get(key), bool):
            result[key] = True
        elif not has_value and key in options:
            raise ConfigError(f"config variant {token!r} needs a value: {key}=VALUE")
        else:
            known = [v for values in choices.values() for v in values] + list(options)
            raise ConfigError(f"unknown config variants [{token!r}]; known: {known}")
    return ml_collections.ConfigDict(result)


def _convert(value: str, default, token: str):
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"config variant {token!r}: expected true or false")
        return value.lower() in ("true", "1")
    try:
        return type(default)(value) if default is not None else value
    except ValueError:
        raise ConfigError(f"config variant {token!r}: expected a {type(default).__name__}") from None


def method(name: str, **overrides) -> ml_collections.ConfigDict:
    """`config.method`: the method's registered defaults (beside its code in sagejax/methods), then overrides."""
    return methods.default_config(name, **overrides)


def evaluator(type_name: str, **overrides) -> ml_collections.ConfigDict:
    """One entry of `config.evals`: the evaluator type's defaults, then overrides."""
    return evaluators.default_config(type_name, **overrides)


def optim(**overrides) -> ml_collections.ConfigDict:
    """`config.optim`: AdamW with linear warmup and cosine decay (sagejax.train.optim)."""
    block = dict(
        name="adamw",  # or "sgd" (Nesterov momentum), "adam", "lars" (biases and norm parameters not adapted)
        lr=1e-3,
        lr_scaling="none",  # or "linear": lr × batch/256, "sqrt": lr × sqrt(batch/256)
        weight_decay=1e-4,
        momentum=0.9,
        schedule="cosine",  # or "constant"
        warmup_steps=50,
        final_lr_fraction=0.0,
        clip_grad_norm=0.0,  # 0 = no clipping
        accumulate_steps=1,  # k > 1: the batch is k micro-batches, one update from their mean gradient (less memory)
        ema_decay=0.0,  # > 0: evaluators, exports and the API use this moving average of the parameters
    )
    return _block(block, overrides, "optim")


def train(**overrides) -> ml_collections.ConfigDict:
    """`config.train`: steps, global batch, cadences of logs and checkpoints (evaluators set their own)."""
    block = dict(steps=400, batch_size=64, log_every_steps=50, checkpoint_every_steps=200, tensorboard=True)
    return _block(block, overrides, "train")


def mesh(num_devices: int = 0, **axes) -> ml_collections.ConfigDict:
    """`config.mesh`: axis name → size, one size may be -1 (all remaining devices; default pure data parallel), and
    how many devices the mesh spans (0 = all; fewer, e.g. 1, for quick single-process checks and tests)."""
    return ml_collections.ConfigDict(
        {"axes": ml_collections.ConfigDict(axes or {"data": -1}), "num_devices": num_devices}
    )


def data(**fields) -> ml_collections.ConfigDict:
    """`config.data` with the keys every dataset shares (augmentation off unless asked for)."""
    block = dict(
        name="decoy_mnist",
        builder_config="",
        data_dir="~/tensorflow_datasets",
        manual_dir="",  # folder of a manually downloaded dataset (saliency_csv, salicon), "" for none
        train_split="train",
        train_exclude_attack_types=(),  # attack types left out of training (leave-one-out protocols)
        unannotated_splits=(),  # parts of a joined train_split ("train+unlabeled") whose maps read as zeros
        num_classes=10,
        validation_fraction=0.0,  # saliency_csv: hold out this stratified part of train.csv as `validation`
        train_dir="",  # a TFDS folder (e.g. written by sagejax.tools.label) to train on; "" = the dataset above
        saliency_feature="saliency",  # the training feature methods read as the batch's "saliency"
        augment="",  # "" | "crop_flip" | "flip": joint geometric augmentation of images and maps, on device
        crop_scale=(0.35, 1.0),  # random-resized crop: area fraction range
        crop_ratio=(3 / 4, 4 / 3),  # random-resized crop: aspect-ratio range
        workers=0,  # training loader: decoding worker processes (encoded images); 0 = threads of this process
        image_size=0,  # > 0: decode and crop images and maps to this square size on the host (encoded datasets)
        eval_crop_fraction=0.875,  # image_size > 0: evaluation crops the centre 224/256 of the shorter side
        normalize="none",  # "imagenet", "inception" or "MEAN/STD": the model's first op, on the device
    )
    return _block(block, fields, "data")


def init(**overrides) -> ml_collections.ConfigDict:
    """`config.init`: start from pretrained weights (sagejax.train.pretrained) instead of a fresh initialisation."""
    block = dict(
        path="",  # a sagejax run folder, an exported .safetensors, a timm/torchvision .safetensors/.pth or a .npz
        format="",  # "" = inferred from the file; else sagejax, timm, torchvision or big_vision
        skip=(),  # fnmatch patterns of parameters left at their fresh initialisation, e.g. ("head/*",)
    )
    return _block(block, overrides, "init")


def model(name: str, dtype: str = "float32", **kwargs) -> ml_collections.ConfigDict:
    """`config.model`: a registered model name, every one of its options (defaults, then `kwargs`) and the compute
    dtype, so `--config.model.kwargs.<option>=...` reaches any option."""
    options = models.model_defaults(name)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ConfigError(f"model {name!r} has no options {unknown}; it has {sorted(options)}")
    return ml_collections.ConfigDict(
        {"name": name, "kwargs": ml_collections.ConfigDict({**options, **kwargs}), "dtype": dtype}
    )


def _block(block: dict, overrides: Mapping, name: str) -> ml_collections.ConfigDict:
    unknown = sorted(set(overrides) - set(block))
    if unknown:
        raise ConfigError(f"config.{name} has no keys {unknown}; known: {sorted(block)}")
    return ml_collections.ConfigDict({**block, **overrides})


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks a config for a CPU check of the whole pipeline in tens of seconds: tiny model, 6 steps."""
    kwargs = config.model.kwargs
    for key, value in (("width", 4), ("base_width", 4), ("depth", 2)):
        if key in kwargs and kwargs[key] > value:
            kwargs[key] = value
    config.train.update(steps=6, batch_size=16, log_every_steps=2, checkpoint_every_steps=3)
    config.optim.warmup_steps = 1
    for settings in config.evals.values():
        settings.every_steps = 3
        settings.batch_size = 64
    return config
