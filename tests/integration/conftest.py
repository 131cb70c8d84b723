"""Integration tests: everything that trains, labels, runs a command or starts a process. Every test here is marked
`slow` (the fast set is tests/unit, or -m "not slow"). They share one build of each dataset and one smoke run of
each kind, made once per test process (each pytest-xdist worker) by the fixtures below; a test that changes a run
works on its own copy."""

import pathlib

import pytest
from support import ATTENTION_EXAMPLES, DECOY_EXAMPLES, smoke_config, teacher_config

from sagejax import data
from sagejax.trainer import train_and_evaluate

HERE = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    del config
    for item in items:
        if HERE in pathlib.Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def decoy_dir(tmp_path_factory):
    """Decoy MNIST (swatch decoy, 32×32 RGB), DECOY_EXAMPLES per split, built once for the session."""
    path = tmp_path_factory.mktemp("decoy_tfds")
    data.build_dataset("decoy_mnist", data_dir=str(path), config="swatch_32_rgb", max_examples_per_split=DECOY_EXAMPLES)
    return path


@pytest.fixture(scope="session")
def attention_dir(tmp_path_factory):
    """mnist_attention, ATTENTION_EXAMPLES per split, built once for the session."""
    path = tmp_path_factory.mktemp("attention_tfds")
    data.build_dataset("mnist_attention", data_dir=str(path), max_examples_per_split=ATTENTION_EXAMPLES)
    return path


@pytest.fixture(scope="session")
def sage_run(decoy_dir, tmp_path_factory):
    """A smoke SAGE run (ResNet-18 at width 4, 6 steps, evaluated and checkpointed at 3 and 6, TensorBoard on)."""
    workdir = tmp_path_factory.mktemp("sage_run")
    config = smoke_config(decoy_dir, "sage,smoke")
    config.train.tensorboard = True
    results = train_and_evaluate(config, str(workdir))
    return workdir, results


@pytest.fixture(scope="session")
def xent_run(decoy_dir, tmp_path_factory):
    """A smoke cross-entropy run, as `sagejax.main` leaves it (checkpoints at 3 and 6)."""
    workdir = tmp_path_factory.mktemp("runs") / "xent" / "seed0"
    train_and_evaluate(smoke_config(decoy_dir, "xent,smoke"), str(workdir))
    return workdir


@pytest.fixture(scope="session")
def teacher_run(attention_dir, tmp_path_factory):
    """A smoke saliency teacher (U-Net) trained on the shared mnist_attention."""
    workdir = tmp_path_factory.mktemp("teacher_run")
    results = train_and_evaluate(teacher_config(attention_dir), str(workdir))
    return workdir, results
