"""The trainer end to end with real models: what a run writes, the SIGKILL bit-identical resume, checksums catching
damage that stays finite, one-line errors of `sagejax.main`, user CSV datasets with PAD rates, leave-one-attack-type-
out, eval mode, and a method defined outside the package. The loop's own rules: test_loop_rules.py."""

import json
import pathlib
import signal
import subprocess
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest
from support import REPO, copy_run, main_command, smoke_config, subprocess_env

from sagejax import data, methods
from sagejax.configs import common, sage_csv
from sagejax.trainer import evaluate_checkpoint, train_and_evaluate


def _overrides(data_dir, eval_every_steps=3, **train):
    args = [
        f"--config.data.data_dir={data_dir}",
        "--config.mesh.num_devices=1",
        "--config.evals.classification.batch_size=32",
        f"--config.evals.classification.every_steps={eval_every_steps}",
    ]
    return args + [f"--config.train.{key}={value}" for key, value in train.items()]


def _main(workdir, variant, extra):
    command = main_command(workdir, f"sage_decoy:{variant}", *extra)
    return subprocess.Popen(
        command, cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _checkpoint_steps(workdir):
    path = pathlib.Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in path.iterdir() if p.name.isdigit()) if path.exists() else []


def _saved_params(workdir, step):
    restored = ocp.StandardCheckpointer().restore(
        pathlib.Path(workdir).absolute() / "checkpoints" / str(step) / "state"
    )
    return restored["params"]


def _rows(workdir):
    return [json.loads(line) for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()]


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}/{key}").items()}
    return {prefix: np.asarray(tree)}


def test_run_writes_config_metrics_tensorboard_and_checkpoints(sage_run):
    workdir, results = sage_run
    splits = {"classification": ("test", "test_clean"), "validation": ("validation", "validation_clean")}
    assert set(results) == {f"eval/{name}/{split}/accuracy" for name, pair in splits.items() for split in pair}
    assert all(0.0 <= v <= 1.0 for v in results.values())
    info = json.loads((workdir / "config.json").read_text())
    assert info["config"]["method"]["name"] == "sage"
    assert {"git_revision", "versions", "devices"} <= set(info) and len(info["devices"]) == 1  # mesh.num_devices
    assert info["compile"]["compile_seconds"] > 0 and info["compile"]["temp_bytes"] > 0
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and rows[0]["compile/argument_bytes"] > 0 and "compile/output_bytes" in rows[0]
    train_rows = [r for r in rows if "train/loss" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6]
    assert {"train/ce", "train/js", "train/triplet", "train/grad_norm", "train/param_norm"} <= set(train_rows[0])
    assert "train/finite" not in train_rows[0]
    assert any("eval/classification/test_clean/accuracy" in r and r["step"] == 3 for r in rows)
    assert any(p.name.startswith("events.out") for p in (workdir / "tensorboard").iterdir())
    assert _checkpoint_steps(workdir) == [3, 6]


def test_resume_after_sigkill_is_bit_identical(decoy_dir, tmp_path):
    train = dict(steps=40, checkpoint_every_steps=5, log_every_steps=40, eval_every_steps=1000)
    uninterrupted = _main(tmp_path / "a", "xent,smoke", _overrides(decoy_dir, **train))
    killed = _main(tmp_path / "b", "xent,smoke", _overrides(decoy_dir, **train))
    deadline = time.time() + 600
    while not _checkpoint_steps(tmp_path / "b") and time.time() < deadline and killed.poll() is None:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    steps = _checkpoint_steps(tmp_path / "b")
    assert steps and max(steps) < 40, f"expected a checkpoint before step 40 when killed, found {steps}"
    resumed = _main(tmp_path / "b", "xent,smoke", _overrides(decoy_dir, **train))
    for process in (uninterrupted, resumed):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
    a, b = _flat(_saved_params(tmp_path / "a", 40)), _flat(_saved_params(tmp_path / "b", 40))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_damage_that_stays_finite_is_caught_by_the_checksums_and_falls_back(xent_run, tmp_path, capfd):
    workdir = copy_run(xent_run, tmp_path / "run")  # checkpoints at steps 3 and 6
    files = [p for p in (workdir / "checkpoints" / "6" / "state").rglob("*") if p.is_file()]
    largest = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    start = len(data) // 10
    data[start : start + 64] = bytes(255 - b for b in data[start : start + 64])  # 64 inverted bytes, as on a bad disk
    largest.write_bytes(bytes(data))
    config = json.loads((workdir / "config.json").read_text())["config"]
    rerun = smoke_config(config["data"]["data_dir"], "xent,smoke")
    rerun.train.steps = 9
    train_and_evaluate(rerun, str(workdir))
    err = capfd.readouterr().err
    assert "does not match the checksums saved with it" in err and "resuming from step 3" in err, err[-2000:]
    assert _checkpoint_steps(workdir) == [6, 9]


@pytest.mark.parametrize(
    "override, parent, field",
    [
        ("--config.method.temprature=2", "config.method", "temprature"),
        ("--config.mesh.axes.model=2", "config.mesh.axes", "model"),
    ],
)
def test_unknown_config_key_is_one_error_line(decoy_dir, tmp_path, override, parent, field):
    process = _main(tmp_path, "sage,smoke", _overrides(decoy_dir) + [override])
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(f"error: {override}: {parent} has no field {field!r}")


def test_an_input_error_is_one_line_and_exit_2_with_the_traceback_behind_verbose(decoy_dir, tmp_path):
    process = _main(tmp_path, "sage,smoke", _overrides(decoy_dir, steps=-3))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "error: config.train.steps must be >= 1, got -3"
    process = _main(tmp_path, "sage,smoke", _overrides(decoy_dir, steps=-3) + ["--verbose"])
    _, stderr = process.communicate(timeout=300)
    assert process.returncode != 0 and "Traceback" in stderr and "ConfigError" in stderr


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
    config.mesh.num_devices = 1
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


def test_eval_mode_restores_the_newest_checkpoint(xent_run, tmp_path):
    workdir = copy_run(xent_run, tmp_path / "run")
    trained = json.loads((workdir / "results.json").read_text())
    (workdir / "results.json").unlink()
    config = json.loads((workdir / "config.json").read_text())["config"]
    config = smoke_config(config["data"]["data_dir"], "xent,smoke")
    assert evaluate_checkpoint(config, str(workdir)) == {k: v for k, v in trained.items() if k != "step"}
    assert json.loads((workdir / "results.json").read_text())["step"] == 6
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        evaluate_checkpoint(config, str(tmp_path / "empty"))
    assert not (tmp_path / "empty").exists()  # nothing built or written for an empty workdir


def test_a_method_defined_outside_the_package_trains_and_is_logged(decoy_dir, tmp_path):
    from examples import sage_kl

    methods.register("sage_kl_test", sage_kl.make_loss, defaults=sage_kl.DEFAULTS)
    config = smoke_config(decoy_dir, "sage,smoke")
    config.method = common.method("sage_kl_test", w_kl=0.5)
    config.train.update(steps=2, log_every_steps=1)
    train_and_evaluate(config, str(tmp_path / "registered"))
    rows = [r for r in _rows(tmp_path / "registered") if "train/kl" in r]
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["train/kl"]) for r in rows)

    config.method = common.method("examples.sage_kl:make_loss")  # an import path: no registration
    assert config.method.w_kl == 1.0 and config.method.temperature == 2.0
    train_and_evaluate(config, str(tmp_path / "by_path"))
    assert any("train/kl" in r for r in _rows(tmp_path / "by_path"))
    with pytest.raises(ValueError, match="no 'make_los'"):
        common.method("examples.sage_kl:make_los")


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
