"""Weights of other libraries under sagejax's names (`models.named`), and the strict match of named weights to a model.

ResNet-18/34/50 from timm or torchvision state dicts (the two name a ResNet's tensors alike), ViT from timm state
dicts or big_vision / original-ViT `.npz` files. PyTorch kernels (out, in, kh, kw) become (kh, kw, in, out), linear
weights are transposed, BatchNorm running statistics become `batch_stats`; big_vision's separate query/key/value
projections are fused into the one `qkv` projection sagejax's ViT uses. A position embedding of another grid is
resized bilinearly (as big_vision does), its class-token row kept.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping

import jax
import numpy as np

from sagejax.errors import ConfigError

FORMATS = ("sagejax", "timm", "torchvision", "big_vision")
FAMILIES = ("resnet", "vit")

_BN = {
    "weight": "params/{}/scale",
    "bias": "params/{}/bias",
    "running_mean": "batch_stats/{}/mean",
    "running_var": "batch_stats/{}/var",
}
_LN = {"weight": "scale", "bias": "bias", "scale": "scale"}


def infer_format(names: Iterable[str], metadata: Mapping[str, str]) -> tuple[str, str | None]:
    """(format, family) that a file's tensor names show; family None for sagejax files (any model) and for names
    that fit no known layout (then format is "")."""
    names = set(names)
    if metadata.get("format") == "sagejax" or (
        names
        and all(n.startswith(("params/", "batch_stats/")) for n in names)
        and not any("Transformer/" in n for n in names)
    ):
        return "sagejax", None
    if any(n.startswith(("Transformer/", "params/Transformer/")) for n in names):
        return "big_vision", "vit"
    if "patch_embed.proj.weight" in names:
        return "timm", "vit"
    if "conv_proj.weight" in names or any(n.startswith("encoder.layers.") for n in names):
        return "torchvision", "vit"
    if "conv1.weight" in names and any(n.startswith("layer1.") for n in names):
        return "torchvision", "resnet"  # timm's ResNet names are the same
    return "", None


def to_sagejax(tensors: Mapping[str, np.ndarray], *, fmt: str, family: str, origin: str) -> dict[str, np.ndarray]:
    """The `fmt` weights of a `family` model under sagejax names; raises naming the tensors no rule places."""
    if fmt == "sagejax":
        return dict(tensors)
    if family == "resnet" and fmt in ("timm", "torchvision"):
        converted, unplaced = _renamed_torch(tensors, _resnet_name)
    elif family == "vit" and fmt == "timm":
        converted, unplaced = _renamed_torch(tensors, _timm_vit_name)
    elif family == "vit" and fmt == "big_vision":
        converted, unplaced = _big_vision_vit(tensors)
    else:
        supported = "timm or torchvision" if family == "resnet" else "timm or big_vision"
        raise ConfigError(f"{origin}: {fmt} weights of a {family} cannot be converted; this model reads {supported}")
    if unplaced:
        raise ConfigError(
            f"{origin}: {len(unplaced)} {fmt} tensors fit no {family} parameter, e.g. {sorted(unplaced)[:4]} (a file "
            "of another architecture or format? set config.init.format)"
        )
    return converted


def _torch_to_flax(name: str, value: np.ndarray) -> np.ndarray:
    """Conv kernels OIHW → HWIO, linear weights (out, in) → (in, out); the rest as it is."""
    if name.endswith("/kernel") and value.ndim == 4:
        return np.transpose(value, (2, 3, 1, 0))
    if name.endswith("/kernel") and value.ndim == 2:
        return value.T
    return value


def _renamed_torch(tensors, name_of):
    """PyTorch tensors under the sagejax names `name_of(key)` gives (None: no place, "": a counter to drop), in Flax
    layouts; returns (converted, names without a place)."""
    converted, unplaced = {}, []
    for key, value in tensors.items():
        name = name_of(key)
        if name is None:
            unplaced.append(key)
        elif name:
            converted[name] = _torch_to_flax(name, value)
    return converted, unplaced


def _resnet_name(key: str) -> str | None:
    if key.endswith("num_batches_tracked"):
        return ""  # a counter with no meaning for the model
    if key == "conv1.weight":
        return "params/stem/conv/kernel"
    if m := re.fullmatch(r"bn1\.(weight|bias|running_mean|running_var)", key):
        return _BN[m[1]].format("stem/bn")
    if m := re.fullmatch(r"fc\.(weight|bias)", key):
        return f"params/head/dense/{'kernel' if m[1] == 'weight' else 'bias'}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(.+)", key)
    if not m:
        return None
    block, rest = f"layers/{int(m[1]) - 1}/blocks/{m[2]}", m[3]
    if m := re.fullmatch(r"(conv\d|downsample\.0)\.weight", rest):
        return f"params/{block}/{m[1].replace('downsample.0', 'downsample/conv')}/kernel"
    if m := re.fullmatch(r"(bn\d|downsample\.1)\.(weight|bias|running_mean|running_var)", rest):
        return _BN[m[2]].format(f"{block}/{m[1].replace('downsample.1', 'downsample/bn')}")
    return None


def _timm_vit_name(key: str) -> str | None:
    fixed = {
        "cls_token": "params/cls_token",
        "pos_embed": "params/pos_embed",
        "patch_embed.proj.weight": "params/patch_embed/kernel",
        "patch_embed.proj.bias": "params/patch_embed/bias",
        "norm.weight": "params/norm/scale",
        "norm.bias": "params/norm/bias",
        "head.weight": "params/head/dense/kernel",
        "head.bias": "params/head/dense/bias",
    }
    if key in fixed:
        return fixed[key]
    if m := re.fullmatch(r"blocks\.(\d+)\.(norm[12])\.(weight|bias)", key):
        return f"params/blocks/{m[1]}/{m[2]}/{_LN[m[3]]}"
    if m := re.fullmatch(r"blocks\.(\d+)\.(attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)", key):
        return f"params/blocks/{m[1]}/{m[2].replace('.', '/')}/{'kernel' if m[3] == 'weight' else 'bias'}"
    return None


def _big_vision_vit(tensors):
    tensors = {key.removeprefix("params/"): value for key, value in tensors.items()}
    tensors = _unstack_scanned_blocks(tensors)
    converted, unplaced, attention = {}, [], {}
    for key, value in tensors.items():
        if m := re.fullmatch(
            r"Transformer/encoderblock_(\d+)/MultiHeadDotProductAttention_\d/(query|key|value)/"
            r"(kernel|bias)",
            key,
        ):
            attention.setdefault((m[1], m[3]), {})[m[2]] = value
            continue
        name = _big_vision_name(key)
        if name is None:
            unplaced.append(key)
        elif re.fullmatch(r"params/blocks/\d+/attn/proj/kernel", name):
            converted[name] = value.reshape(-1, value.shape[-1])  # (heads, head_dim, dim) → (dim, dim)
        else:
            converted[name] = value
    for (block, kind), parts in attention.items():
        if set(parts) != {"query", "key", "value"}:
            unplaced.extend(f"encoderblock_{block}/{part}/{kind}" for part in parts)
            continue
        flat = [
            parts[p].reshape(parts[p].shape[0], -1) if kind == "kernel" else parts[p].reshape(-1)
            for p in ("query", "key", "value")
        ]
        converted[f"params/blocks/{block}/attn/qkv/{kind}"] = np.concatenate(flat, axis=-1)
    return converted, unplaced


def _unstack_scanned_blocks(tensors):
    """big_vision's scanned encoder ("Transformer/encoderblock/...", a leading depth axis) as numbered blocks."""
    out = {}
    for key, value in tensors.items():
        if key.startswith("Transformer/encoderblock/"):
            rest = key.removeprefix("Transformer/encoderblock/")
            out.update({f"Transformer/encoderblock_{i}/{rest}": value[i] for i in range(value.shape[0])})
        else:
            out[key] = value
    return out


def _big_vision_name(key: str) -> str | None:
    fixed = {
        "cls": "params/cls_token",
        "pos_embedding": "params/pos_embed",
        "Transformer/posembed_input/pos_embedding": "params/pos_embed",
        "embedding/kernel": "params/patch_embed/kernel",
        "embedding/bias": "params/patch_embed/bias",
        "Transformer/encoder_norm/scale": "params/norm/scale",
        "Transformer/encoder_norm/bias": "params/norm/bias",
        "head/kernel": "params/head/dense/kernel",
        "head/bias": "params/head/dense/bias",
    }
    if key in fixed:
        return fixed[key]
    m = re.fullmatch(r"Transformer/encoderblock_(\d+)/(.+)", key)
    if not m:
        return None
    block, rest = f"params/blocks/{m[1]}", m[2]
    if m := re.fullmatch(r"LayerNorm_(\d)/(scale|bias)", rest):
        return f"{block}/{'norm1' if m[1] == '0' else 'norm2'}/{m[2]}"
    if m := re.fullmatch(r"MultiHeadDotProductAttention_\d/out/(kernel|bias)", rest):
        return f"{block}/attn/proj/{m[1]}"
    if m := re.fullmatch(r"MlpBlock_\d/Dense_([01])/(kernel|bias)", rest):
        return f"{block}/mlp/fc{int(m[1]) + 1}/{m[2]}"
    return None


def resize_pos_embed(value: np.ndarray, shape: tuple[int, ...], *, name: str, origin: str) -> np.ndarray:
    """A (1, [1 +] g², D) position embedding resized bilinearly (no antialiasing, as big_vision) to `shape`'s grid,
    its class-token row kept; an embedding of the patches only (big_vision adds it before the class token) gets a zero
    class-token row, which is what that model computes."""

    def split(tokens):
        for prefix in (0, 1):
            side = math.isqrt(tokens - prefix)
            if side * side == tokens - prefix:
                return prefix, side
        return None, None

    (p_src, g_src), (p_dst, g_dst) = split(value.shape[1]), split(shape[1])
    if (p_src, p_dst) == (0, 1) and g_src is not None and value.shape[2] == shape[2]:
        value, p_src = np.concatenate([np.zeros_like(value[:, :1]), value], axis=1), 1
    if g_src is None or g_dst is None or p_src != p_dst or value.shape[2] != shape[2]:
        hint = " (one has a class token, the other not: set model.kwargs.pool)" if p_src != p_dst else ""
        raise ConfigError(f"{name}: {origin} holds shape {value.shape}, the model needs {shape}{hint}")
    if g_src == g_dst:
        return value
    grid = value[0, p_src:].reshape(g_src, g_src, -1)
    resized = jax.image.resize(grid, (g_dst, g_dst, grid.shape[-1]), "bilinear", antialias=False)
    resized = np.asarray(resized, value.dtype)
    return np.concatenate([value[:, :p_src], resized.reshape(1, g_dst * g_dst, -1)], axis=1)


def match(
    source: Mapping[str, np.ndarray], targets: Mapping[str, tuple[int, ...]], *, skip: Iterable[str] = (), origin: str
) -> dict[str, np.ndarray]:
    """{name: array} for every target not skipped, strictly: each one must be in `source` with its shape (a position
    embedding is resized), no source tensor may be left over, and each `skip` pattern (fnmatch on the name with or
    without its "params/" / "batch_stats/" prefix) must match a target."""
    skip = tuple(skip)

    def skipped(name):
        bare = name.split("/", 1)[1]
        return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(bare, p) for p in skip)

    idle = [
        p
        for p in skip
        if not any(fnmatch.fnmatchcase(n, p) or fnmatch.fnmatchcase(n.split("/", 1)[1], p) for n in targets)
    ]
    if idle:
        raise ConfigError(f"config.init.skip patterns {idle} match no parameter of the model")
    wanted = {name: shape for name, shape in targets.items() if not skipped(name)}
    missing = sorted(set(wanted) - set(source))
    if missing:
        raise ConfigError(
            f"{origin} has no value for {len(missing)} model parameters, e.g. {missing[:4]}: leave them at their fresh "
            "initialisation with config.init.skip patterns"
        )
    unused = sorted(set(source) - set(targets))
    if unused:
        raise ConfigError(f"{origin} holds {len(unused)} tensors the model has no place for, e.g. {unused[:4]}")
    loaded = {}
    for name, shape in wanted.items():
        value = np.asarray(source[name])
        if value.shape != tuple(shape) and name.endswith("pos_embed") and value.ndim == 3:
            value = resize_pos_embed(value, tuple(shape), name=name, origin=origin)
        elif value.shape != tuple(shape):
            raise ConfigError(
                f"{name}: {origin} holds shape {value.shape}, the model needs {tuple(shape)}"
                + (" (another number of classes? add 'head/*' to config.init.skip)" if "head/" in name else "")
            )
        loaded[name] = value
    return loaded
