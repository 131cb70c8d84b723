"""The training loop's rules on a one-layer model and its cross-entropy (loop_method.py): eval cadences, resume and
its refusals, logs after a resume, non-finite stops, damaged checkpoints, the loader position, SIGTERM within two
steps, and the settings named before step 1. The loop knows methods and models only by name, so what holds here
holds for every method; tests/integration/test_trainer_runs.py trains the real ones."""

import json
import pathlib
import shutil
import signal
import subprocess
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from support import REPO, loop_config, main_command, subprocess_env

from sagejax.configs import common
from sagejax.train import make_mesh
from sagejax.train.trained import restore_trained
from sagejax.trainer import NonFiniteLossError, evaluate_checkpoint, train_and_evaluate


def _checkpoint_steps(workdir):
    path = pathlib.Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in path.iterdir() if p.name.isdigit()) if path.exists() else []


def _rows(workdir):
    return [json.loads(line) for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()]


def _saved_params(workdir, step):
    path = pathlib.Path(workdir).absolute() / "checkpoints" / str(step) / "state"
    return _leaves(ocp.StandardCheckpointer().restore(path)["params"])


def _saved_average(workdir, step):
    """The parameters' moving average in the saved optimizer state."""
    path = pathlib.Path(workdir).absolute() / "checkpoints" / str(step) / "state"
    return _leaves(ocp.StandardCheckpointer().restore(path)["opt_state"][-1]["ema"])


def _leaves(tree):
    """Every array of a tree, in jax's order (dicts and nnx.State by sorted key)."""
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def _damage_every_file(workdir, step):
    for path in (pathlib.Path(workdir) / "checkpoints" / str(step) / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"corrupted")


def test_two_evaluators_run_at_their_own_cadence_and_are_both_logged(decoy_dir, tmp_path):
    config = loop_config(decoy_dir)
    config.evals.classification.update(splits=("test",), every_steps=2)
    config.evals.clean = common.evaluator("classification", splits=("test_clean",), every_steps=0, batch_size=16)
    results = train_and_evaluate(config, str(tmp_path))
    validation = {"eval/validation/validation/accuracy", "eval/validation/validation_clean/accuracy"}
    assert set(results) == {"eval/classification/test/accuracy", "eval/clean/test_clean/accuracy"} | validation
    eval_steps = {key: [row["step"] for row in _rows(tmp_path) if key in row] for key in results}
    assert eval_steps["eval/classification/test/accuracy"] == [2, 4, 6]
    assert eval_steps["eval/validation/validation/accuracy"] == [3, 6]  # the config's own, every 3 steps here
    assert eval_steps["eval/clean/test_clean/accuracy"] == [6]  # every_steps=0: only at the end


def test_an_unknown_eval_split_or_type_is_named_before_training(decoy_dir, tmp_path):
    config = loop_config(decoy_dir)
    config.evals.classification.splits = ("tset",)
    with pytest.raises(ValueError, match=r"evals.classification.splits has \['tset'\]"):
        train_and_evaluate(config, str(tmp_path))
    with pytest.raises(ValueError, match="unknown evaluator type 'retreival'"):
        common.evaluator("retreival")
    config = loop_config(decoy_dir)  # a saliency evaluation of a classifier: nothing predicts a density
    config.evals.maps = common.evaluator(
        "saliency", splits=("test",), map_key="saliency", fixations_key="", batch_size=32
    )
    with pytest.raises(ValueError, match="evaluator 'maps' needs 'density' from the method's predict"):
        train_and_evaluate(config, str(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_accumulated_micro_batches_train_through_the_loop(decoy_dir, tmp_path):
    config = loop_config(decoy_dir, steps=2, log_every_steps=1)
    config.optim.accumulate_steps = 4  # 16 = 4 micro-batches of 4 on the one device
    train_and_evaluate(config, str(tmp_path))
    rows = [row for row in _rows(tmp_path) if "train/loss" in row]
    assert [row["step"] for row in rows] == [1, 2] and all(np.isfinite(row["train/ce"]) for row in rows)
    assert all(row["train/rows"] == 4 for row in rows)  # the loss saw micro-batches, not the batch of 16


def test_a_moving_average_of_the_parameters_is_what_runs_score_and_load(decoy_dir, tmp_path):
    config = loop_config(decoy_dir, steps=3, checkpoint_every_steps=3)
    config.optim.update(ema_decay=0.5, lr=0.5, warmup_steps=0)
    results = train_and_evaluate(config, str(tmp_path))
    raw, average = _saved_params(tmp_path, 3), _saved_average(tmp_path, 3)
    assert not all(np.allclose(a, b) for a, b in zip(raw, average))
    loaded = restore_trained(str(tmp_path), make_mesh({"data": 1}, devices=jax.devices()[:1]))
    for got, want in zip(_leaves(jax.device_get(loaded.params)), average, strict=True):
        np.testing.assert_allclose(got, want)  # the API, exports and tools read the average
    assert evaluate_checkpoint(config, str(tmp_path)) == results  # eval mode scores what training scored


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(decoy_dir, tmp_path):
    # Warmup from lr 0: step 1 leaves the weights as they are, step 2 makes them ~1e14 (still finite), and the
    # loss of step 3 is NaN. A resume cannot change optim.lr, so the divergence happens within one run.
    config = loop_config(decoy_dir, steps=6, checkpoint_every_steps=1, log_every_steps=1)
    config.evals.classification.every_steps = 100
    config.method.nan_above_norm = 1e6
    config.optim.update(lr=1e15, warmup_steps=2)
    with pytest.raises(NonFiniteLossError, match=r"step 3.*last good checkpoint \(step 2\)"):
        train_and_evaluate(config, str(tmp_path))
    assert _checkpoint_steps(tmp_path) == [1, 2]
    params = _saved_params(tmp_path, 2)
    assert all(np.all(np.isfinite(v)) for v in params) and max(np.abs(v).max() for v in params) > 1e10


def test_corrupted_checkpoint_is_named_and_left_in_place(decoy_dir, tmp_path):
    train_and_evaluate(loop_config(decoy_dir, steps=3, checkpoint_every_steps=3), str(tmp_path))
    _damage_every_file(tmp_path, 3)
    with pytest.raises(RuntimeError, match="checkpoint at step 3 .* could not be restored"):
        train_and_evaluate(loop_config(decoy_dir, steps=6), str(tmp_path))
    assert _checkpoint_steps(tmp_path) == [3]


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(decoy_dir, tmp_path, capfd):
    train_and_evaluate(loop_config(decoy_dir, steps=4, checkpoint_every_steps=2), str(tmp_path))
    _damage_every_file(tmp_path, 4)
    train_and_evaluate(loop_config(decoy_dir, steps=6, checkpoint_every_steps=2), str(tmp_path))
    err = capfd.readouterr().err
    assert "checkpoint at step 4" in err and "moved it to damaged-4, resuming from step 2" in err
    assert (tmp_path / "checkpoints" / "damaged-4").is_dir()  # kept for inspection, never deleted
    assert _checkpoint_steps(tmp_path) == [4, 6]
    for _ in range(2):  # the same step damaged twice: both copies are kept
        _damage_every_file(tmp_path, 6)
        train_and_evaluate(loop_config(decoy_dir, steps=6, checkpoint_every_steps=2), str(tmp_path))
    assert "moved it to damaged-6-1, resuming from step 4" in capfd.readouterr().err
    assert {"damaged-4", "damaged-6", "damaged-6-1"} <= {p.name for p in (tmp_path / "checkpoints").iterdir()}


def test_resume_refuses_another_config_and_accepts_a_longer_run(decoy_dir, tmp_path):
    train_and_evaluate(loop_config(decoy_dir, steps=2, checkpoint_every_steps=2), str(tmp_path))
    other_method = loop_config(decoy_dir, steps=4)
    other_method.method = common.method("xent")
    other_model = loop_config(decoy_dir, steps=4)
    other_model.model.dtype = "bfloat16"
    for config, change in (
        (other_method, "method.name: 'loop_method:make_loss' -> 'xent'"),
        (other_model, "model.dtype: 'float32' -> 'bfloat16'"),
    ):
        with pytest.raises(ValueError, match=f"checkpointed at step 2 under another config: .*{change}"):
            train_and_evaluate(config, str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text())["config"]["train"]["steps"] == 2
    train_and_evaluate(loop_config(decoy_dir, steps=4, checkpoint_every_steps=2), str(tmp_path))
    assert _checkpoint_steps(tmp_path) == [2, 4]
    assert json.loads((tmp_path / "config.json").read_text())["config"]["train"]["steps"] == 4
    assert json.loads((tmp_path / "config.1.json").read_text())["config"]["train"]["steps"] == 2  # kept


def test_a_checkpoint_written_on_8_devices_continues_on_4_as_a_run_on_4_does(decoy_dir, tmp_path):
    def config(num_devices, steps):
        config = loop_config(decoy_dir, steps=steps, checkpoint_every_steps=3, log_every_steps=1)
        config.mesh.num_devices = num_devices
        return config

    train_and_evaluate(config(8, 3), str(tmp_path / "moved"))
    train_and_evaluate(config(4, 6), str(tmp_path / "moved"))  # restores step 3 onto a 4-device mesh
    train_and_evaluate(config(4, 6), str(tmp_path / "straight"))
    moved, straight = (
        {row["step"]: row["train/loss"] for row in _rows(tmp_path / name) if "train/loss" in row}
        for name in ("moved", "straight")
    )
    assert sorted(moved) == [1, 2, 3, 4, 5, 6]
    # To float tolerance (the gradient sums over 8 and 4 devices differ in order; Adam scales tiny differences up), far
    # below the step-to-step change that another batch order would show.
    np.testing.assert_allclose([moved[s] for s in (4, 5, 6)], [straight[s] for s in (4, 5, 6)], rtol=1e-3)
    assert abs(straight[5] - straight[4]) > 1e-2
    devices = json.loads((tmp_path / "moved" / "config.json").read_text())["devices"]
    assert len(devices) == 4


def test_a_resume_logs_each_step_once(decoy_dir, tmp_path):
    config = loop_config(decoy_dir, steps=4, checkpoint_every_steps=2, log_every_steps=1)
    train_and_evaluate(config, str(tmp_path))
    shutil.rmtree(tmp_path / "checkpoints" / "4")  # as if killed after logging step 4, before its checkpoint
    train_and_evaluate(config, str(tmp_path))
    assert [row["step"] for row in _rows(tmp_path) if "train/loss" in row] == [1, 2, 3, 4]


def test_a_data_position_of_the_earlier_loader_is_named(decoy_dir, tmp_path):
    train_and_evaluate(loop_config(decoy_dir, steps=2, checkpoint_every_steps=2), str(tmp_path))
    for path in (tmp_path / "checkpoints" / "2" / "data").glob("process_*.json"):
        path.write_text(json.dumps({"version": 2, "last_seen_indices": {"0": 31}, "last_worker_index": -1}))
    with pytest.raises(RuntimeError, match="data position of the earlier sagejax loader"):
        train_and_evaluate(loop_config(decoy_dir, steps=4), str(tmp_path))


def test_an_unwritable_checkpoint_folder_is_named_before_training(decoy_dir, tmp_path):
    (tmp_path / "checkpoints").write_text("a file where the folder should be")
    with pytest.raises(FileNotFoundError, match=r"the checkpoint folder .*checkpoints cannot be written"):
        train_and_evaluate(loop_config(decoy_dir), str(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_sigterm_saves_within_two_steps_of_a_slow_step_and_exits_cleanly(decoy_dir, tmp_path):
    (tmp_path / "slow_config.py").write_text(
        "from support import loop_config\n\n\n"
        "def get_config(arg=None):\n"
        f"    config = loop_config({str(decoy_dir)!r}, steps=10**5, log_every_steps=1, checkpoint_every_steps=10**5)\n"
        "    config.method.sleep_seconds = 0.4\n"
        "    for settings in config.evals.values():\n"
        "        settings.every_steps = 0\n"
        "    return config\n"
    )
    executed = tmp_path / "executed.log"
    command = main_command(tmp_path / "run", str(tmp_path / "slow_config.py"))
    env = subprocess_env(SAGEJAX_TEST_STEP_LOG=str(executed))
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if executed.exists() and len(executed.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    done_at_signal = len(executed.read_text().splitlines()) if executed.exists() else 0
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    saved = _checkpoint_steps(tmp_path / "run")
    assert len(saved) == 1 and f"SIGTERM: saved step {saved[0]}" in stdout
    assert done_at_signal >= 4 and done_at_signal <= saved[0] <= done_at_signal + 2, (done_at_signal, saved)
