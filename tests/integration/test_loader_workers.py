"""The grain loader with decoding worker processes gives the thread loader's batches and resumes from its state."""

import hashlib

import numpy as np
import pytest

from sagejax.data import make_loader


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
