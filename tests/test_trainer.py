"""The trainer end to end on a tiny Decoy MNIST: logs, checkpoints, exact resume, guards, errors."""

import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from sagejax import data
from sagejax.train.loop import NonFiniteLossError, train_and_evaluate

REPO = pathlib.Path(__file__).parent.parent
CONFIG_PATH = REPO / "configs" / "sage_decoy.py"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A Decoy MNIST truncated to 96 examples per split, built once for this module."""
    path = str(tmp_path_factory.mktemp("tfds"))
    data.build_dataset("decoy_mnist", data_dir=path, config="swatch_32_rgb", max_examples_per_split=96)
    return path


def _config(data_dir, variant="sage,smoke", **train):
    spec = importlib.util.spec_from_file_location("sage_decoy_config", CONFIG_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(variant)
    config.data.data_dir = data_dir
    config.train.tensorboard = True
    config.eval.batch_size = 32
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def _overrides(data_dir, **train):
    args = [f"--config.data.data_dir={data_dir}", "--config.eval.batch_size=32"]
    return args + [f"--config.train.{key}={value}" for key, value in train.items()]


def _main(workdir, variant, extra, **popen):
    command = [sys.executable, "-m", "sagejax.main", f"--config={CONFIG_PATH}:{variant}", f"--workdir={workdir}"]
    return subprocess.Popen(
        command + extra, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def _checkpoint_steps(workdir):
    path = pathlib.Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in path.iterdir() if p.name.isdigit()) if path.exists() else []


def _saved_params(workdir, step):
    restored = ocp.StandardCheckpointer().restore(pathlib.Path(workdir).absolute() / "checkpoints" / str(step) / "state")
    return restored["params"]


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}/{key}").items()}
    return {prefix: np.asarray(tree)}


def test_run_writes_config_metrics_tensorboard_and_checkpoints(data_dir, tmp_path):
    results = train_and_evaluate(_config(data_dir), str(tmp_path))
    assert set(results) == {"eval/test/accuracy", "eval/test_clean/accuracy"}
    assert all(0.0 <= v <= 1.0 for v in results.values())
    info = json.loads((tmp_path / "config.json").read_text())
    assert info["config"]["method"]["name"] == "sage"
    assert {"git_revision", "versions", "devices"} <= set(info) and len(info["devices"]) == 8
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "train/loss" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6]
    assert {"train/ce", "train/js", "train/triplet", "train/grad_norm"} <= set(train_rows[0])
    assert any("eval/test_clean/accuracy" in r and r["step"] == 3 for r in rows)
    assert any(p.name.startswith("events.out") for p in (tmp_path / "tensorboard").iterdir())
    assert _checkpoint_steps(tmp_path) == [3, 6]


def test_resume_after_sigkill_is_bit_identical(data_dir, tmp_path):
    train = dict(steps=40, checkpoint_every_steps=5, log_every_steps=40, eval_every_steps=1000)
    uninterrupted = _main(tmp_path / "a", "xent,smoke", _overrides(data_dir, **train))
    killed = _main(tmp_path / "b", "xent,smoke", _overrides(data_dir, **train))
    deadline = time.time() + 240
    while not _checkpoint_steps(tmp_path / "b") and time.time() < deadline and killed.poll() is None:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert max(_checkpoint_steps(tmp_path / "b")) < 40
    resumed = _main(tmp_path / "b", "xent,smoke", _overrides(data_dir, **train))
    for process in (uninterrupted, resumed):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
    a, b = _flat(_saved_params(tmp_path / "a", 40)), _flat(_saved_params(tmp_path / "b", 40))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(data_dir, tmp_path):
    train = dict(steps=100000, checkpoint_every_steps=100000, log_every_steps=1, eval_every_steps=100000)
    process = _main(tmp_path, "xent,smoke", _overrides(data_dir, **train))
    deadline = time.time() + 240
    while not (tmp_path / "metrics.jsonl").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    assert "SIGTERM: saved step" in stdout
    assert len(_checkpoint_steps(tmp_path)) == 1


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    train_and_evaluate(_config(data_dir, "xent,smoke", steps=2, checkpoint_every_steps=2, eval_every_steps=100), str(tmp_path))
    config = _config(data_dir, "xent,smoke", steps=6, checkpoint_every_steps=1, log_every_steps=1, eval_every_steps=100)
    config.optim.lr = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"step 3.*last good checkpoint \(step 2\)"):
        train_and_evaluate(config, str(tmp_path))
    assert _checkpoint_steps(tmp_path) == [2]
    params = _flat(_saved_params(tmp_path, 2))
    assert all(np.all(np.isfinite(v)) for v in params.values())


def test_corrupted_checkpoint_is_named_and_left_in_place(data_dir, tmp_path):
    train_and_evaluate(_config(data_dir, "xent,smoke", steps=3, checkpoint_every_steps=3, eval_every_steps=100), str(tmp_path))
    state_dir = tmp_path / "checkpoints" / "3" / "state"
    for path in state_dir.rglob("*"):
        if path.is_file():
            path.write_bytes(b"corrupted")
    with pytest.raises(RuntimeError, match="checkpoint at step 3 .* could not be restored"):
        train_and_evaluate(_config(data_dir, "xent,smoke", steps=6), str(tmp_path))
    assert _checkpoint_steps(tmp_path) == [3]


def test_unknown_config_key_is_named(data_dir, tmp_path):
    process = _main(tmp_path, "sage,smoke", _overrides(data_dir) + ["--config.method.temprature=2"])
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "temprature" in stderr


def test_unknown_config_variant_is_named():
    spec = importlib.util.spec_from_file_location("sage_decoy_config", CONFIG_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ValueError, match="unknown config variants \\['sagee'\\]"):
        module.get_config("sagee")


def test_missing_dataset_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not built"):
        data.make_loader(name="decoy_mnist", split="train", data_dir=str(tmp_path), batch_size=8, seed=0, shuffle=False)
