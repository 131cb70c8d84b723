"""Run-folder files through etils.epath: a URL stays a URL, files are written whole, appends survive a bucket's
whole-object writes, globs and logs work in a bucket (served offline by tests/fake_bucket.py), and a location
sagejax cannot write is named in one line."""

import json
import os

import pytest

from sagejax import storage
from sagejax.errors import ConfigError, MissingError
from sagejax.train import checkpoint, run_info
from sagejax.train.logger import MetricLogger


def test_a_url_stays_a_url_and_a_local_path_becomes_absolute(fake_bucket, tmp_path, monkeypatch):
    del fake_bucket
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert str(storage.path("gs://bkt/run1") / "checkpoints") == "gs://bkt/run1/checkpoints"
    assert str(storage.path("runs/a")) == str(tmp_path / "runs" / "a")
    assert str(storage.path("~/runs")) == str(tmp_path / "home" / "runs")
    assert storage.is_url("gs://bkt") and not storage.is_url("/mnt/bucket/run1")


def test_whole_files_appends_and_globs_in_a_bucket(fake_bucket):
    storage.write_text("gs://bkt/a/results.json", '{"x": 1}')
    assert (fake_bucket / "bkt" / "a" / "results.json").read_text() == '{"x": 1}'
    assert storage.path("gs://bkt/a/results.json").read_text() == '{"x": 1}'
    rows = storage.AppendFile("gs://bkt/a/metrics.jsonl")
    rows.write("1\n")
    rows.flush()
    rows.write("2\n")
    rows.close()
    again = storage.AppendFile("gs://bkt/a/metrics.jsonl")  # a resumed run appends after what is there
    again.write("3\n")
    again.close()
    assert (fake_bucket / "bkt" / "a" / "metrics.jsonl").read_text() == "1\n2\n3\n"
    storage.write_text("gs://bkt/b/seed0/config.json", "{}")
    storage.write_text("gs://bkt/b/seed1/config.json", "{}")
    assert storage.glob("gs://bkt/b/seed*") == ["gs://bkt/b/seed0", "gs://bkt/b/seed1"]
    assert storage.glob("gs://bkt/b/seed0") == ["gs://bkt/b/seed0"] and storage.glob("gs://bkt/none*") == []
    assert sorted(p.name for p in (fake_bucket / "bkt" / "a").iterdir()) == ["metrics.jsonl", "results.json"]


def test_local_whole_files_leave_no_partial_file(tmp_path):
    storage.write_text(tmp_path / "out" / "table.md", "| a |\n")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["table.md"]


def test_logs_config_and_kept_versions_go_to_the_bucket(fake_bucket, devices):
    del devices
    logger = MetricLogger("gs://bkt/run", total_steps=4, tensorboard=True)
    logger.scalars(2, {"train/loss": 0.5})
    logger.scalars(4, {"train/loss": 0.25})
    logger.close()
    run = fake_bucket / "bkt" / "run"
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4]
    (events,) = (run / "tensorboard").iterdir()
    assert b"train/loss" in events.read_bytes()
    resumed = MetricLogger("gs://bkt/run", total_steps=4, tensorboard=False, resume_step=2)  # step 4 is redone
    resumed.close()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [2]

    from sagejax.configs import sage_decoy

    config = sage_decoy.get_config("sage,smoke")
    run_info.write_run_info("gs://bkt/run", config)
    config.train.steps = 12
    run_info.write_run_info("gs://bkt/run", config)
    assert run_info.read_config("gs://bkt/run").train.steps == 12
    assert json.loads((run / "config.1.json").read_text())["config"]["train"]["steps"] != 12


def test_a_bucket_workdir_is_probed_and_a_local_one_that_cannot_be_written_is_named(fake_bucket, tmp_path):
    checkpoint.check_writable("gs://bkt/run")
    assert (fake_bucket / "bkt" / "run" / "checkpoints").is_dir() and not checkpoint.has_checkpoint("gs://bkt/run")
    (tmp_path / "blocked").write_text("a file where the run folder should be")
    with pytest.raises(MissingError, match=r"^the checkpoint folder .*blocked/checkpoints cannot be written"):
        checkpoint.check_writable(str(tmp_path / "blocked"))


def test_a_scheme_without_a_backend_is_one_line_naming_what_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "gcsfs", None)
    with pytest.raises(
        ConfigError, match=r"^gs://b/r is a GCS bucket, which needs gcsfs.*pip install 'sagejax\[gcs\]'$"
    ):
        storage.check_backend("gs://b/r")
    with pytest.raises(ConfigError, match=r"^az://b/r: .*support no az://\); mount the storage"):
        storage.check_backend("az://b/r")
    storage.check_backend(os.getcwd())
