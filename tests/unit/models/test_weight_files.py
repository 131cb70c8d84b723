"""Weights files read without PyTorch: safetensors with metadata, big_vision .npz, and PyTorch's zip format (a file
written by torch 2.14's `torch.save`, with a non-contiguous tensor, a storage offset, bfloat16, float16, an int64
counter and an nn.Parameter); a pickle that references anything else is refused."""

import io
import os
import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import save_file

from sagejax.errors import ConfigError, MissingError
from sagejax.models import weight_files

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "torch_state_dict.pth")


def test_a_torch_zip_file_reads_as_numpy_arrays():
    tensors, metadata = weight_files.read(FIXTURE)
    assert metadata == {}
    np.testing.assert_array_equal(tensors["a.weight"], np.arange(12, dtype=np.float32).reshape(3, 4))
    np.testing.assert_array_equal(tensors["b.weight"], np.arange(6, dtype=np.float32).reshape(2, 3).T)
    assert tensors["c.bias"].dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(tensors["c.bias"].astype(np.float32), [0, 0.5, 1, 1.5])
    assert tensors["d.running_var"].dtype == np.float16
    np.testing.assert_array_equal(tensors["d.running_var"], [2, 3, 4, 5])
    assert tensors["e.num_batches_tracked"].dtype == np.int64 and tensors["e.num_batches_tracked"] == 7
    np.testing.assert_array_equal(tensors["f.param"], np.ones((2, 2), np.float32))


def test_safetensors_and_npz_read_with_their_metadata(tmp_path):
    save_file({"x": np.ones(3, np.float32)}, str(tmp_path / "w.safetensors"), metadata={"format": "sagejax"})
    tensors, metadata = weight_files.read(str(tmp_path / "w.safetensors"))
    assert metadata == {"format": "sagejax"} and tensors["x"].shape == (3,)
    np.savez(tmp_path / "w.npz", **{"Transformer/encoder_norm/scale": np.ones(4)})
    assert list(weight_files.read(str(tmp_path / "w.npz"))[0]) == ["Transformer/encoder_norm/scale"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_bad_files_are_named_and_a_pickle_cannot_run_code(tmp_path):
    with pytest.raises(MissingError, match="no weights file"):
        weight_files.read(str(tmp_path / "none.pth"))
    (tmp_path / "w.ckpt").write_bytes(b"x")
    with pytest.raises(ConfigError, match="unknown suffix '.ckpt'"):
        weight_files.read(str(tmp_path / "w.ckpt"))
    (tmp_path / "legacy.pth").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ConfigError, match="not in PyTorch's zip format"):
        weight_files.read(str(tmp_path / "legacy.pth"))
    (tmp_path / "broken.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ConfigError, match="cannot read weights file .*broken.safetensors"):
        weight_files.read(str(tmp_path / "broken.safetensors"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": _Evil()}))
    (tmp_path / "evil.pth").write_bytes(buffer.getvalue())
    with pytest.raises(ConfigError, match="not a plain state dict: it references posix.system"):
        weight_files.read(str(tmp_path / "evil.pth"))
