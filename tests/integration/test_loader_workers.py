"""The grain loader with decoding worker processes gives the thread loader's batches and resumes from its state, also
when it decodes and crops encoded images."""

import hashlib

import numpy as np
import pytest

from sagejax.benchmarking import synthetic_jpegs
from sagejax.data import build_dataset, make_loader
from sagejax.data.host_ops import HostCrop


def _loader(data_dir, **kwargs):
    args = dict(
        name="decoy_mnist", config="swatch_32_rgb", data_dir=str(data_dir), split="train", batch_size=32, seed=0
    )
    return make_loader(**{**args, "shuffle": True, **kwargs})


def _batch_digests(batch):
    return [hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() for image in batch["image"]]


def test_loader_worker_processes_give_the_same_batches_and_resume(decoy_dir):
    kwargs = dict(split="test", batch_size=32, seed=5)
    threads = _loader(decoy_dir, **kwargs)
    expected = [_batch_digests(next(threads)) for _ in range(6)]
    workers = _loader(decoy_dir, workers=2, **kwargs)
    assert [_batch_digests(next(workers)) for _ in range(3)] == expected[:3]
    state = workers.get_state()
    resumed = _loader(decoy_dir, workers=2, **kwargs)
    resumed.set_state(state)
    assert [_batch_digests(next(resumed)) for _ in range(3)] == expected[3:]
    with pytest.raises(ValueError, match="workers must be >= 0"):
        _loader(decoy_dir, workers=-1)


def test_encoded_images_are_cut_alike_in_worker_processes(tmp_path):
    """Host-side decode and crop of encoded JPEGs (saliency_csv/rgb_encoded) runs in the workers, with the threads'
    crops (seeded by the position in the stream, not by the worker)."""
    synthetic_jpegs(str(tmp_path / "csv"), count=8, shape=(75, 100))
    build_dataset(
        "saliency_csv", data_dir=str(tmp_path / "tfds"), config="rgb_encoded", manual_dir=str(tmp_path / "csv")
    )
    kwargs = dict(name="saliency_csv", config="rgb_encoded", data_dir=str(tmp_path / "tfds"), split="train")
    kwargs.update(batch_size=4, seed=1, shuffle=True, crop=HostCrop(size=32, train=True, augment="crop_flip"))
    threads = make_loader(**kwargs)
    expected = [_batch_digests(next(threads)) for _ in range(4)]
    workers = make_loader(workers=2, **kwargs)
    assert [_batch_digests(next(workers)) for _ in range(4)] == expected
