"""The trainer end to end on a tiny Decoy MNIST: logs, checkpoints, exact resume, guards, errors."""

import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from sagejax import data
from sagejax.configs import sage_csv, sage_decoy
from sagejax.trainer import NonFiniteLossError, evaluate_checkpoint, train_and_evaluate

REPO = pathlib.Path(__file__).parent.parent
CONFIG = "sage_decoy"  # the packaged config, by name


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A Decoy MNIST truncated to 96 examples per split, built once for this module."""
    path = str(tmp_path_factory.mktemp("tfds"))
    data.build_dataset("decoy_mnist", data_dir=path, config="swatch_32_rgb", max_examples_per_split=96)
    return path


def _config(data_dir, variant="sage,smoke", eval_every_steps=3, **train):
    config = sage_decoy.get_config(variant)
    config.data.data_dir = data_dir
    config.train.tensorboard = True
    config.evals.classification.update(batch_size=32, every_steps=eval_every_steps)
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def _overrides(data_dir, eval_every_steps=3, **train):
    args = [
        f"--config.data.data_dir={data_dir}",
        "--config.evals.classification.batch_size=32",
        f"--config.evals.classification.every_steps={eval_every_steps}",
    ]
    return args + [f"--config.train.{key}={value}" for key, value in train.items()]


def _main(workdir, variant, extra, **popen):
    command = [sys.executable, "-m", "sagejax.main", f"--config={CONFIG}:{variant}", f"--workdir={workdir}"]
    return subprocess.Popen(
        command + extra, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def _checkpoint_steps(workdir):
    path = pathlib.Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in path.iterdir() if p.name.isdigit()) if path.exists() else []


def _saved_params(workdir, step):
    restored = ocp.StandardCheckpointer().restore(
        pathlib.Path(workdir).absolute() / "checkpoints" / str(step) / "state"
    )
    return restored["params"]


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}/{key}").items()}
    return {prefix: np.asarray(tree)}


def test_run_writes_config_metrics_tensorboard_and_checkpoints(data_dir, tmp_path):
    results = train_and_evaluate(_config(data_dir), str(tmp_path))
    splits = {"classification": ("test", "test_clean"), "validation": ("validation", "validation_clean")}
    assert set(results) == {f"eval/{name}/{split}/accuracy" for name, pair in splits.items() for split in pair}
    assert all(0.0 <= v <= 1.0 for v in results.values())
    info = json.loads((tmp_path / "config.json").read_text())
    assert info["config"]["method"]["name"] == "sage"
    assert {"git_revision", "versions", "devices"} <= set(info) and len(info["devices"]) == 8
    assert info["compile"]["compile_seconds"] > 0 and info["compile"]["temp_bytes"] > 0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and rows[0]["compile/argument_bytes"] > 0 and "compile/output_bytes" in rows[0]
    train_rows = [r for r in rows if "train/loss" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6]
    assert {"train/ce", "train/js", "train/triplet", "train/grad_norm", "train/param_norm"} <= set(train_rows[0])
    assert "train/finite" not in train_rows[0]
    assert any("eval/classification/test_clean/accuracy" in r and r["step"] == 3 for r in rows)
    assert any(p.name.startswith("events.out") for p in (tmp_path / "tensorboard").iterdir())
    assert _checkpoint_steps(tmp_path) == [3, 6]


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(data_dir, tmp_path):
    train = dict(steps=40, checkpoint_every_steps=5, log_every_steps=40, eval_every_steps=1000)
    uninterrupted = _main(tmp_path / "a", "xent,smoke", _overrides(data_dir, **train))
    killed = _main(tmp_path / "b", "xent,smoke", _overrides(data_dir, **train))
    deadline = time.time() + 600
    while not _checkpoint_steps(tmp_path / "b") and time.time() < deadline and killed.poll() is None:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    steps = _checkpoint_steps(tmp_path / "b")
    assert steps and max(steps) < 40, f"expected a checkpoint before step 40 when killed, found {steps}"
    resumed = _main(tmp_path / "b", "xent,smoke", _overrides(data_dir, **train))
    for process in (uninterrupted, resumed):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
    a, b = _flat(_saved_params(tmp_path / "a", 40)), _flat(_saved_params(tmp_path / "b", 40))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(data_dir, tmp_path):
    train = dict(steps=100000, checkpoint_every_steps=100000, log_every_steps=1, eval_every_steps=100000)
    process = _main(tmp_path, "xent,smoke", _overrides(data_dir, **train))
    deadline = time.time() + 600
    metrics = tmp_path / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text()) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    assert "SIGTERM: saved step" in stdout
    assert len(_checkpoint_steps(tmp_path)) == 1


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    # Warmup from lr 0: step 1 leaves the weights as they are, step 2 makes them ~1e15 (still finite), and the
    # loss of step 3 overflows. A resume cannot change optim.lr, so the divergence happens within one run.
    config = _config(data_dir, "xent,smoke", steps=6, checkpoint_every_steps=1, log_every_steps=1, eval_every_steps=100)
    config.optim.update(lr=1e15, warmup_steps=2)
    with pytest.raises(NonFiniteLossError, match=r"step 3.*last good checkpoint \(step 2\)"):
        train_and_evaluate(config, str(tmp_path))
    assert _checkpoint_steps(tmp_path) == [1, 2]
    params = _flat(_saved_params(tmp_path, 2))
    assert all(np.all(np.isfinite(v)) for v in params.values())


def test_corrupted_checkpoint_is_named_and_left_in_place(data_dir, tmp_path):
    train_and_evaluate(
        _config(data_dir, "xent,smoke", steps=3, checkpoint_every_steps=3, eval_every_steps=100), str(tmp_path)
    )
    state_dir = tmp_path / "checkpoints" / "3" / "state"
    for path in state_dir.rglob("*"):
        if path.is_file():
            path.write_bytes(b"corrupted")
    with pytest.raises(RuntimeError, match="checkpoint at step 3 .* could not be restored"):
        train_and_evaluate(_config(data_dir, "xent,smoke", steps=6), str(tmp_path))
    assert _checkpoint_steps(tmp_path) == [3]


@pytest.mark.slow
def test_resume_refuses_another_config_and_accepts_a_longer_run(data_dir, tmp_path):
    train_and_evaluate(_config(data_dir, "sage,smoke", steps=2, checkpoint_every_steps=2), str(tmp_path))
    for variant, change in (("xent,smoke", "method.name: 'sage' -> 'xent'"), ("sage,smoke", "model.kwargs.width")):
        config = _config(data_dir, variant, steps=4)
        if variant == "sage,smoke":
            config.model.kwargs.width = 8
        with pytest.raises(ValueError, match=f"checkpointed at step 2 under another config: .*{change}"):
            train_and_evaluate(config, str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text())["config"]["method"]["name"] == "sage"
    train_and_evaluate(_config(data_dir, "sage,smoke", steps=4, checkpoint_every_steps=2), str(tmp_path))
    assert _checkpoint_steps(tmp_path) == [2, 4]
    assert json.loads((tmp_path / "config.json").read_text())["config"]["train"]["steps"] == 4
    assert json.loads((tmp_path / "config.1.json").read_text())["config"]["train"]["steps"] == 2  # kept


@pytest.mark.slow
def test_a_resume_logs_each_step_once(data_dir, tmp_path):
    config = _config(data_dir, "xent,smoke", steps=4, checkpoint_every_steps=2, log_every_steps=1)
    train_and_evaluate(config, str(tmp_path))
    shutil.rmtree(tmp_path / "checkpoints" / "4")  # as if killed after logging step 4, before its checkpoint
    train_and_evaluate(config, str(tmp_path))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "train/loss" in row] == [1, 2, 3, 4]


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(data_dir, tmp_path, capfd):
    train_and_evaluate(_config(data_dir, "xent,smoke", steps=4, checkpoint_every_steps=2), str(tmp_path))
    for path in (tmp_path / "checkpoints" / "4" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"corrupted")
    train_and_evaluate(_config(data_dir, "xent,smoke", steps=6, checkpoint_every_steps=2), str(tmp_path))
    err = capfd.readouterr().err
    assert "checkpoint at step 4" in err and "moved it to damaged-4, resuming from step 2" in err
    assert (tmp_path / "checkpoints" / "damaged-4").is_dir()  # kept for inspection, never deleted
    assert _checkpoint_steps(tmp_path) == [4, 6]


@pytest.mark.slow
def test_damage_that_stays_finite_is_caught_by_the_checksums_and_falls_back(data_dir, tmp_path, capfd):
    train_and_evaluate(_config(data_dir, "xent,smoke", steps=4, checkpoint_every_steps=2), str(tmp_path))
    files = [p for p in (tmp_path / "checkpoints" / "4" / "state").rglob("*") if p.is_file()]
    largest = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    start = len(data) // 10
    data[start : start + 64] = bytes(255 - b for b in data[start : start + 64])  # 64 inverted bytes, as on a bad disk
    largest.write_bytes(bytes(data))
    train_and_evaluate(_config(data_dir, "xent,smoke", steps=6, checkpoint_every_steps=2), str(tmp_path))
    err = capfd.readouterr().err
    assert "does not match the checksums saved with it" in err and "resuming from step 2" in err, err[-2000:]
    assert _checkpoint_steps(tmp_path) == [4, 6]


@pytest.mark.slow
def test_a_data_position_of_the_earlier_loader_is_named(data_dir, tmp_path):
    train_and_evaluate(_config(data_dir, "xent,smoke", steps=2, checkpoint_every_steps=2), str(tmp_path))
    for path in (tmp_path / "checkpoints" / "2" / "data").glob("process_*.json"):
        path.write_text(json.dumps({"version": 2, "last_seen_indices": {"0": 31}, "last_worker_index": -1}))
    with pytest.raises(RuntimeError, match="data position of the earlier sagejax loader"):
        train_and_evaluate(_config(data_dir, "xent,smoke", steps=4), str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, parent, field",
    [
        ("--config.method.temprature=2", "config.method", "temprature"),
        ("--config.mesh.axes.model=2", "config.mesh.axes", "model"),
    ],
)
def test_unknown_config_key_is_one_error_line(data_dir, tmp_path, override, parent, field):
    process = _main(tmp_path, "sage,smoke", _overrides(data_dir) + [override])
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(f"error: {override}: {parent} has no field {field!r}")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.steps", -3, "config.train.steps must be >= 1, got -3"),
        ("train.batch_size", 12, "batch_size=12 cannot be split over the 8 devices"),
        ("method.temperature", 0.0, "method.temperature must be > 0"),
        ("method.blur_sigma", -1.0, "method.blur_sigma must be > 0"),
    ],
)
def test_impossible_settings_are_named_before_training(data_dir, tmp_path, key, value, message):
    config = _config(data_dir, "sage,smoke")
    block, name = key.split(".")
    config[block][name] = value
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(config, str(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoints").exists()


def test_an_unwritable_checkpoint_folder_is_named_before_training(data_dir, tmp_path):
    (tmp_path / "checkpoints").write_text("a file where the folder should be")
    with pytest.raises(FileNotFoundError, match=r"the checkpoint folder .*checkpoints cannot be written"):
        train_and_evaluate(_config(data_dir, "xent,smoke"), str(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_an_eval_batch_the_devices_cannot_split_is_named_before_training(data_dir, tmp_path):
    config = _config(data_dir, "xent,smoke")
    config.evals.classification.batch_size = 12
    with pytest.raises(
        ValueError, match="config.evals.classification.batch_size=12 cannot be split over the 8 devices"
    ):
        train_and_evaluate(config, str(tmp_path))


@pytest.mark.slow
def test_an_input_error_is_one_line_and_exit_2_with_the_traceback_behind_verbose(data_dir, tmp_path):
    process = _main(tmp_path, "sage,smoke", _overrides(data_dir, steps=-3))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "error: config.train.steps must be >= 1, got -3"
    process = _main(tmp_path, "sage,smoke", _overrides(data_dir, steps=-3) + ["--verbose"])
    _, stderr = process.communicate(timeout=300)
    assert process.returncode != 0 and "Traceback" in stderr and "ConfigError" in stderr


def test_unknown_config_variant_is_named():
    with pytest.raises(ValueError, match="unknown config variants \\['sagee'\\]"):
        sage_decoy.get_config("sagee")


def test_missing_dataset_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not built"):
        data.make_loader(name="decoy_mnist", split="train", data_dir=str(tmp_path), batch_size=8, seed=0, shuffle=False)


def _pad_csv_folder(root):
    """A tiny presentation-attack dataset in the CSV layout: label 1 = attack of type print/contact."""
    from PIL import Image

    folder = root / "pad_data"
    (folder / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    saliency = np.zeros((32, 32), np.uint8)
    saliency[8:24, 8:24] = 255
    Image.fromarray(saliency).save(folder / "map.png")
    for split, count in (("train", 16), ("test", 16)):
        lines = ["image,label,saliency,attack_type"]
        for i in range(count):
            label = i % 2
            name = f"img/{split}{i}.png"
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / name)
            attack = ("print", "contact")[(i // 2) % 2] if label else ""
            lines.append(f"{name},{label},{'map.png' if i % 4 else ''},{attack}")
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return folder


def _csv_config(tmp_path, variant):
    config = sage_csv.get_config(variant)
    config.data.manual_dir = str(_pad_csv_folder(tmp_path))
    config.data.data_dir = str(tmp_path / "tfds")
    config.model.kwargs.width = 4
    config.model.dtype = "float32"
    config.train.update(steps=2, batch_size=8, log_every_steps=1, checkpoint_every_steps=2)
    config.evals.classification.update(batch_size=8, every_steps=100)
    return config


def test_user_csv_dataset_trains_and_reports_pad_rates(tmp_path):
    config = _csv_config(tmp_path, "sage,resnet18_32,pad=1")
    assert config.data.augment == "crop_flip"  # real-data configs train with the joint crop and flip
    results = train_and_evaluate(config, str(tmp_path / "run"))
    prefix = "eval/classification/test/"
    assert {f"{prefix}{m}" for m in ("accuracy", "auroc", "apcer_at_bpcer1", "eer")} <= set(results)
    assert all(0.0 <= v <= 1.0 for v in results.values())
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["step"] == 2 and saved[f"{prefix}auroc"] == results[f"{prefix}auroc"]
    assert "| classification/test |" in (tmp_path / "run" / "results.md").read_text()


def test_user_csv_validation_split_is_carved_from_train_and_scored(tmp_path):
    config = _csv_config(tmp_path, "xent,resnet18_32,validation=0.5")
    config.evals.validation.update(batch_size=8, every_steps=100)
    results = train_and_evaluate(config, str(tmp_path / "run"))
    assert "eval/validation/validation/accuracy" in results
    splits = data.build(config.data).info.splits
    assert (splits["train"].num_examples, splits["validation"].num_examples) == (8, 8)
    with pytest.raises(ValueError, match=r"validation='2': expected 'csv' or a fraction in \(0, 1\)"):
        sage_csv.get_config("xent,validation=2")


def test_num_classes_mismatch_is_named(tmp_path):
    config = _csv_config(tmp_path, "xent,resnet18_32")
    config.data.num_classes = 3
    with pytest.raises(ValueError, match=r"num_classes=3 but .* has 2 labels \['0', '1'\]"):
        train_and_evaluate(config, str(tmp_path / "run"))


def test_a_one_class_dataset_is_refused(tmp_path):
    config = _csv_config(tmp_path, "xent,resnet18_32")
    folder = pathlib.Path(config.data.manual_dir)
    for split in ("train", "test"):
        path = folder / f"{split}.csv"
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0]] + [line.replace(",1,", ",0,") for line in lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"has 1 label\(s\) \['0'\]: a classifier needs at least two classes"):
        train_and_evaluate(config, str(tmp_path / "run"))


def test_eval_mode_restores_the_newest_checkpoint(data_dir, tmp_path):
    config = _config(data_dir, "xent,smoke", steps=2, checkpoint_every_steps=2, eval_every_steps=100)
    trained = train_and_evaluate(config, str(tmp_path))
    (tmp_path / "results.json").unlink()
    assert evaluate_checkpoint(config, str(tmp_path)) == trained
    assert json.loads((tmp_path / "results.json").read_text())["step"] == 2
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        evaluate_checkpoint(config, str(tmp_path / "empty"))
    assert not (tmp_path / "empty").exists()  # nothing built or written for an empty workdir


@pytest.mark.slow
def test_leave_one_attack_type_out_holds_each_type_out_of_training(tmp_path):
    from sagejax import loao_protocol as loao

    config = _csv_config(tmp_path, "xent,resnet18_32,pad=1")
    config.evals.classification.splits = ("test",)
    assert loao.attack_types(config) == ["contact", "print"]
    results = loao.run_protocol(config, str(tmp_path / "loao"))
    assert set(results) == {"contact", "print"}
    assert all({"accuracy", "apcer_at_bpcer1", "eer"} <= set(metrics) for metrics in results.values())
    info = json.loads((tmp_path / "loao" / "print" / "config.json").read_text())["config"]
    assert info["data"]["train_exclude_attack_types"] == ["print"]
    assert info["evals"]["classification"]["attack_types"] == ["print"]


def test_attack_type_selection_keeps_bona_fide_and_the_chosen_type(tmp_path):
    config = _csv_config(tmp_path, "xent,resnet18_32,pad=1")
    data.build_dataset(
        "saliency_csv", data_dir=config.data.data_dir, config="rgb_32", manual_dir=config.data.manual_dir
    )
    loader = data.make_loader(
        name="saliency_csv",
        config="rgb_32",
        data_dir=config.data.data_dir,
        split="test",
        batch_size=4,
        seed=0,
        shuffle=False,
        num_epochs=1,
        only_attack_types=("print",),
    )
    types = np.concatenate([batch["attack_type"] for batch in loader])
    builder = data.get_builder("saliency_csv", data_dir=config.data.data_dir, config="rgb_32")
    names = [builder.info.features["attack_type"].names[t] for t in types]
    assert set(names) == {"none", "print"} and names.count("none") == 8
    with pytest.raises(ValueError, match="unknown attack types \\['mask'\\]"):
        data.make_loader(
            name="saliency_csv",
            config="rgb_32",
            data_dir=config.data.data_dir,
            split="test",
            batch_size=4,
            seed=0,
            shuffle=False,
            exclude_attack_types=("mask",),
        )
