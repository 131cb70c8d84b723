"""Reads a weights file into {name: numpy array} plus its metadata, without PyTorch or TensorFlow: safetensors,
NumPy `.npz` (big_vision) and PyTorch's zip format (`torch.save` since 1.6: `.pth`, `.pt`, `.bin`)."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from collections import OrderedDict

import ml_dtypes
import numpy as np

from sagejax import storage
from sagejax.errors import ConfigError, MissingError

_TORCH_STORAGES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


def read(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: array}, metadata) of the weights file `path` (a file or a gs:// object), by its suffix; one error line
    naming `path` when it cannot be read."""
    source = storage.path(path)
    if not source.is_file():
        raise MissingError(f"no weights file {path}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".safetensors", ".npz", ".pth", ".pt", ".bin"):
        raise ConfigError(f"weights file {path}: unknown suffix {suffix!r}; use .safetensors, .npz, .pth, .pt or .bin")
    try:
        if not storage.is_url(path):
            return _read_local(os.fspath(source), suffix)
        with tempfile.TemporaryDirectory() as folder:  # the readers take a local file: a bucket's is copied first
            local = os.path.join(folder, f"weights{suffix}")
            with open(local, "wb") as f:
                f.write(source.read_bytes())
            return _read_local(local, suffix)
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise ConfigError(f"cannot read weights file {path}: {error}") from error


def _read_local(path: str, suffix: str):
    if suffix == ".safetensors":
        return _read_safetensors(path)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}, {}
    return _read_torch_zip(path), {}


def _read_safetensors(path):
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            return {key: f.get_tensor(key) for key in f.keys()}, dict(f.metadata() or {})
    except SafetensorError as error:
        raise ValueError(str(error)) from error


class _Storage:
    """A storage named in the pickle; its bytes are read from the archive when a tensor is rebuilt."""

    def __init__(self, dtype, key):
        self.dtype, self.key = dtype, key


class _TorchUnpickler(pickle.Unpickler):
    """Rebuilds a state dict's tensors as NumPy arrays; refuses every other global, so a file cannot run code."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive, self._prefix, self._buffers = archive, prefix, {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda tensor, requires_grad, hooks: tensor
        if module == "torch" and name in _TORCH_STORAGES:
            return _TORCH_STORAGES[name]
        raise pickle.UnpicklingError(f"not a plain state dict: it references {module}.{name}")

    def persistent_load(self, pid):
        kind, dtype, key = pid[0], pid[1], pid[2]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        return _Storage(dtype, key)

    def _rebuild_tensor(self, storage, offset, size, stride, *unused):
        del unused
        if storage.key not in self._buffers:
            raw = self._archive.read(f"{self._prefix}data/{storage.key}")
            self._buffers[storage.key] = np.frombuffer(raw, dtype=storage.dtype)
        flat = self._buffers[storage.key]
        last = offset + sum((n - 1) * st for n, st in zip(size, stride)) if all(size) else offset - 1
        if offset < 0 or min(stride, default=0) < 0 or last >= len(flat):
            raise pickle.UnpicklingError(f"a tensor of shape {tuple(size)} reaches past its storage of {len(flat)}")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
        )
        return np.array(view)


def _read_torch_zip(path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise ConfigError(
            f"weights file {path} is not in PyTorch's zip format (torch.save before 1.6, or another format): "
            "load it with torch and save it again, or convert it to .safetensors"
        )
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ConfigError(f"weights file {path} holds {len(pickles)} data.pkl records; expected one")
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in archive.namelist() and archive.read(prefix + "byteorder") != b"little":
            raise ConfigError(f"weights file {path} was saved big-endian; save it again on a little-endian machine")
        with archive.open(pickles[0]) as file:
            loaded = _TorchUnpickler(file, archive, prefix).load()
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(loaded, dict) or not all(isinstance(v, np.ndarray) for v in loaded.values()):
        raise ConfigError(f"weights file {path} is not a state dict of tensors")
    return dict(loaded)
