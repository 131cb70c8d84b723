"""Models by name: `create_model("resnet50", num_classes=1000, rngs=nnx.Rngs(0))`, or `build_model(config)`.

A name may also be an import path "package.module:Class" for a model that lives outside sagejax: an NNX module
taking `num_classes`, `rngs`, `dtype`, `param_dtype` and its own keyword options, returning {"logits", "embedding"}.
"""

import importlib
import inspect

import jax.numpy as jnp
from flax import nnx

from sagejax.errors import ConfigError
from sagejax.models import normalize
from sagejax.models.resnet import ResNet
from sagejax.models.student import Student
from sagejax.models.unet import UNet
from sagejax.models.vit import ViT

# name -> (class, architecture-defining arguments fixed by the name, overridable defaults)
_REGISTRY = {
    "resnet18": (ResNet, dict(block="basic", stage_sizes=(2, 2, 2, 2)), {}),
    "resnet34": (ResNet, dict(block="basic", stage_sizes=(3, 4, 6, 3)), {}),
    "resnet50": (ResNet, dict(block="bottleneck", stage_sizes=(3, 4, 6, 3)), {}),
    "vit_tiny": (ViT, dict(patch_size=4, dim=32, depth=2, num_heads=2, mlp_dim=64), dict(image_size=32)),
    "vit_ti16": (ViT, dict(patch_size=16, dim=192, depth=12, num_heads=3, mlp_dim=768), {}),
    "vit_s16": (ViT, dict(patch_size=16, dim=384, depth=12, num_heads=6, mlp_dim=1536), {}),
    "vit_b16": (ViT, dict(patch_size=16, dim=768, depth=12, num_heads=12, mlp_dim=3072), {}),
    "unet": (UNet, {}, {}),
}

_COMMON = ("num_classes", "rngs", "dtype", "param_dtype")
STUDENT_OPTIONS = tuple(
    p for p in inspect.signature(Student.__init__).parameters if p not in ("self", "backbone", *_COMMON)
)


def model_names():
    """The registered model names."""
    return sorted(_REGISTRY)


def model_options(name):
    """The keyword options `create_model(name, ...)` accepts beyond the common ones."""
    cls, fixed, _ = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return sorted(p for p, v in params.items() if p not in ("self", *_COMMON, *fixed) and v.kind not in variadic)


def model_defaults(name) -> dict:
    """{option: default} of every option `create_model(name, ...)` accepts beyond the common ones, so a config can
    carry them all and any can be overridden from the command line."""
    cls, _, defaults = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    values = {option: defaults.get(option, params[option].default) for option in model_options(name)}
    required = sorted(option for option, value in values.items() if value is inspect.Parameter.empty)
    if required:
        raise ConfigError(f"model {name!r}: options {required} have no default; give each one in its __init__")
    return values


def _lookup(name):
    if name in _REGISTRY:
        return _REGISTRY[name]
    if isinstance(name, str) and ":" in name:
        return _from_import_path(name), {}, {}
    raise ConfigError(
        f"unknown model {name!r}; known models: {', '.join(model_names())} (or an import path 'module:Class')"
    )


def _from_import_path(path):
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or any error the module raises while loading
        raise ConfigError(f"model {path!r}: cannot import module {module_name!r} ({error})") from error
    if not isinstance(getattr(module, attribute, None), type):
        raise ConfigError(f"model {path!r}: module {module_name!r} has no class {attribute!r}")
    return getattr(module, attribute)


def create_model(name, *, num_classes, rngs, dtype=jnp.float32, param_dtype=jnp.float32, **kwargs):
    """Build a registered model; for "unet", num_classes is the number of output channels."""
    cls, fixed, defaults = _lookup(name)
    unknown = sorted(set(kwargs) - set(model_options(name)))
    if unknown:
        raise TypeError(f"create_model({name!r}) got unknown option(s) {unknown}; accepted: {model_options(name)}")
    return cls(
        **fixed, **{**defaults, **kwargs}, num_classes=num_classes, rngs=rngs, dtype=dtype, param_dtype=param_dtype
    )


def _set_input_stats(model, stats, name):
    """Makes `model` normalise its inputs with `stats` (config.data.normalize); models without `input_stats` refuse."""
    if stats is None:
        return
    if not hasattr(type(model), "input_stats"):
        raise ConfigError(f"model {name!r} does not normalise its inputs; set config.data.normalize='none'")
    model.input_stats = stats


def build_model(config):
    """The model of an experiment config: `config.model` (name, kwargs, dtype), `data.num_classes` outputs,
    parameters drawn from `config.seed`; with `config.model.student` (Student's options), the backbone wrapped
    as a contrastive student (projection MLP, optional attention head); `config.data.normalize` sets the backbone's
    input normalisation."""
    rngs = nnx.Rngs(config.seed)
    dtype = jnp.dtype(config.model.dtype)
    unknown = sorted(set(config.model.kwargs) - set(model_options(config.model.name)))
    if unknown:
        raise ConfigError(
            f"config.model.kwargs has {unknown}, which model {config.model.name!r} does not take (it takes "
            f"{model_options(config.model.name)}): pick another model with the config's model variant, or set "
            "config.model.kwargs for it as well"
        )
    model = create_model(
        config.model.name, num_classes=config.data.num_classes, rngs=rngs, dtype=dtype, **config.model.kwargs.to_dict()
    )
    _set_input_stats(model, normalize.parse(config.data.get("normalize", "none")), config.model.name)
    heads = config.model.get("student")
    if not heads:
        return model
    unknown = sorted(set(heads) - set(STUDENT_OPTIONS))
    if unknown:
        raise ConfigError(f"config.model.student has unknown keys {unknown}; known: {list(STUDENT_OPTIONS)}")
    return Student(model, **heads.to_dict(), dtype=dtype, rngs=rngs)
