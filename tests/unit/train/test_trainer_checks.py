"""What the trainer refuses before it builds data or compiles anything: impossible settings, batches the devices
cannot split, unknown config variants, a dataset that was never built; each named in one error."""

import sys

import pytest

from sagejax import data
from sagejax.configs import sage_decoy
from sagejax.errors import ConfigError
from sagejax.trainer import train_and_evaluate


def _config(tmp_path, variant="sage,smoke"):
    config = sage_decoy.get_config(variant)
    config.data.data_dir = str(tmp_path / "tfds")  # never built: every check below comes first
    return config


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.steps", -3, "config.train.steps must be >= 1, got -3"),
        ("train.batch_size", 12, "batch_size=12 cannot be split over the 8 devices"),
        ("method.temperature", 0.0, "method.temperature must be > 0"),
        ("method.blur_sigma", -1.0, "method.blur_sigma must be > 0"),
        ("mesh.num_devices", 9, r"config.mesh.num_devices=9: this run has 8 devices \(0 = all\)"),
        ("optim.accumulate_steps", 3, r"accumulate_steps=3 must be >= 1 and split config.train.batch_size=16"),
        ("optim.accumulate_steps", 0, r"multiple of accumulate_steps × 8"),
    ],
)
def test_impossible_settings_are_named_before_training(tmp_path, key, value, message):
    config = _config(tmp_path)
    block, name = key.split(".")
    config[block][name] = value
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists() and not (tmp_path / "tfds").exists()


def test_batches_are_split_over_the_devices_of_the_mesh_only(tmp_path):
    config = _config(tmp_path)
    config.train.batch_size = 6
    config.mesh.num_devices = 4
    with pytest.raises(ValueError, match="batch_size=6 cannot be split over the 4 devices of the mesh"):
        train_and_evaluate(config, str(tmp_path / "run"))
    config.train.batch_size = 12
    config.mesh.num_devices = 3  # a training batch of 12 is accepted; the eval batch of 64 is refused
    first = next(iter(config.evals))
    with pytest.raises(ValueError, match=f"config.evals.{first}.batch_size=64 cannot be split over the 3 devices"):
        train_and_evaluate(config, str(tmp_path / "run"))


def test_unknown_config_variant_is_named():
    with pytest.raises(ValueError, match="unknown config variants \\['sagee'\\]"):
        sage_decoy.get_config("sagee")


def test_missing_dataset_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not built"):
        data.make_loader(name="decoy_mnist", split="train", data_dir=str(tmp_path), batch_size=8, seed=0, shuffle=False)


def test_a_bucket_workdir_without_its_packages_or_of_another_scheme_is_refused_first(tmp_path, monkeypatch):
    import sagejax

    monkeypatch.chdir(tmp_path)
    for module in ("gcsfs", "google.cloud.storage"):
        monkeypatch.setitem(sys.modules, module, None)  # not installed, whatever this machine has
    message = (
        r"^gs://bucket/run1 is a GCS bucket, which needs gcsfs and google-cloud-storage: pip install 'sagejax\[gcs\]'$"
    )
    with pytest.raises(ConfigError, match=message):
        train_and_evaluate(_config(tmp_path), "gs://bucket/run1")
    with pytest.raises(ConfigError, match=message):
        sagejax.load("gs://bucket/run1")
    with pytest.raises(ConfigError, match=r"^s3://bucket/run1: sagejax writes run folders .* gs:// buckets only"):
        train_and_evaluate(_config(tmp_path), "s3://bucket/run1")
    assert list(tmp_path.iterdir()) == []
