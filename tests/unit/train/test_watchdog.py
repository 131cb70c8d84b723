"""What a run meets when its machine misbehaves: the stall watchdog of multi-process runs (fires once after its
timeout without progress, never while progress is marked; SAGEJAX_STALL_TIMEOUT read with bad values named), an
unwritable checkpoint folder, a full disk and a damaged config.json, each named in one line."""

import os
import threading
import time

import pytest

from sagejax.errors import ConfigError
from sagejax.train import distributed, watchdog


def _watch(timeout_s):
    stalls, fired = [], threading.Event()

    def on_stall(idle, where):
        stalls.append((idle, where))
        fired.set()

    return watchdog.Watchdog(timeout_s, on_stall), stalls, fired


def test_watchdog_fires_once_after_the_timeout_naming_the_last_progress():
    dog, stalls, fired = _watch(0.2)
    dog.beat("step 7")
    assert fired.wait(5.0)
    time.sleep(0.2)
    dog.stop()
    assert len(stalls) == 1
    idle, where = stalls[0]
    assert idle > 0.2 and where == "step 7"


def test_watchdog_stays_quiet_while_progress_is_marked():
    dog, stalls, _ = _watch(0.3)
    for step in range(12):  # 0.6 s in all, twice the timeout, with a beat every 0.05 s
        dog.beat(f"step {step}")
        time.sleep(0.05)
    dog.stop()
    assert stalls == []


def test_beat_without_a_watchdog_does_nothing():
    assert watchdog.start(0, process="process 0 of 1") is None
    watchdog.beat("step 1")


def test_stall_timeout_comes_from_the_environment():
    assert distributed.stall_timeout({}) == watchdog.DEFAULT_TIMEOUT_S
    assert distributed.stall_timeout({"SAGEJAX_STALL_TIMEOUT": "90"}) == 90.0
    assert distributed.stall_timeout({"SAGEJAX_STALL_TIMEOUT": "0"}) == 0.0
    for bad in ("ten", "-1", "nan"):
        with pytest.raises(ConfigError, match=f"SAGEJAX_STALL_TIMEOUT='{bad}' must be a number of seconds >= 0"):
            distributed.stall_timeout({"SAGEJAX_STALL_TIMEOUT": bad})


# ----------------------------------------------------------------- storage problems named in one line


def test_an_unwritable_checkpoint_folder_is_named_before_training(tmp_path):
    from sagejax.errors import MissingError
    from sagejax.train import checkpoint

    (tmp_path / "checkpoints").write_text("a file where the folder should be")
    with pytest.raises(MissingError, match=r"the checkpoint folder .*checkpoints cannot be written"):
        checkpoint.check_writable(str(tmp_path))
    checkpoint.check_writable(str(tmp_path / "fresh"))  # a new workdir is created and writable
    assert (tmp_path / "fresh" / "checkpoints").is_dir() and not list((tmp_path / "fresh" / "checkpoints").iterdir())


def test_a_full_disk_is_one_line_naming_the_folder_and_the_free_space(tmp_path, monkeypatch):
    import errno

    from sagejax import trainer
    from sagejax.errors import StorageError

    def full(config, workdir, sigterm):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as error:
            raise RuntimeError("orbax: save failed") from error  # what a wrapped error looks like

    monkeypatch.setattr(trainer, "_train", full)
    with pytest.raises(StorageError, match=r"no space left on the disk under .*run \(\d+ MiB free\)"):
        trainer.train_and_evaluate(None, str(tmp_path / "run"))

    def read_only(config, workdir, sigterm):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(workdir, "checkpoints", "6"))

    monkeypatch.setattr(trainer, "_train", read_only)
    with pytest.raises(StorageError, match=r"run folder .*run can no longer be written \(Permission denied\)"):
        trainer.train_and_evaluate(None, str(tmp_path / "run"))

    def unreadable_data(config, workdir, sigterm):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "my_images" / "0.png"))

    monkeypatch.setattr(trainer, "_train", unreadable_data)
    with pytest.raises(PermissionError):  # a file outside the run folder: not the run folder's problem
        trainer.train_and_evaluate(None, str(tmp_path / "run"))
    monkeypatch.setattr(trainer, "_train", lambda config, workdir, sigterm: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # anything else is left as it is
        trainer.train_and_evaluate(None, str(tmp_path / "run"))


def test_a_damaged_config_json_is_named(tmp_path):
    from sagejax.errors import DataError
    from sagejax.train import run_info

    (tmp_path / "config.json").write_text('{"config": {"seed": ')
    with pytest.raises(DataError, match=r"config\.json is damaged or not a sagejax run's config \(JSONDecodeError"):
        run_info.read_config(str(tmp_path))


def test_a_divergence_names_a_checkpoint_good_only_when_it_was_verified(tmp_path):
    import ml_collections
    import numpy as np

    from sagejax import trainer

    metrics = {"finite": np.bool_(False), "loss": np.float32("nan"), "grad_norm": 1.0, "param_norm": 1.0}
    config = ml_collections.ConfigDict({"train": {"log_every_steps": 1, "steps": 10}})
    args = dict(config=config, logger=None, workdir=str(tmp_path))
    with pytest.raises(trainer.NonFiniteLossError, match=r"the last good checkpoint \(step 4\)"):
        trainer._finish_step(5, dict(metrics), last_saved=4, **args)
    with pytest.raises(trainer.NonFiniteLossError, match=r"newest checkpoint \(step 4\).*could not be verified"):
        trainer._finish_step(5, dict(metrics), last_saved=4, unverified=4, **args)
    with pytest.raises(trainer.NonFiniteLossError, match=r"the last good checkpoint \(step 6\)"):
        trainer._finish_step(7, dict(metrics), last_saved=6, unverified=4, **args)  # saved since, from a finite state
    with pytest.raises(trainer.NonFiniteLossError, match="no checkpoint yet"):
        trainer._finish_step(1, dict(metrics), last_saved=None, **args)
