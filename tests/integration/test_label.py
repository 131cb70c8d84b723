"""The labeling pipeline: deterministic, resumable after a kill, device-count independent, validated, readable."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from support import ATTENTION_EXAMPLES, REPO, smoke_config

from sagejax import data, labeling
from sagejax.methods import teacher
from sagejax.trainer import train_and_evaluate

NUM_SHARDS = 4


@pytest.fixture(scope="module")
def setup(attention_dir, teacher_run):
    """The shared mnist_attention and the smoke teacher trained on it."""
    return {"data_dir": str(attention_dir), "teacher": str(teacher_run[0])}


def _label(setup, output_dir, **kwargs):
    args = dict(
        teacher_workdir=setup["teacher"],
        dataset="mnist_attention",
        split="unlabeled",
        output_dir=str(output_dir),
        data_dir=setup["data_dir"],
        num_shards=NUM_SHARDS,
        batch_size=8,
        progress=False,
    )
    return labeling.label_split(**{**args, **kwargs})


def _files(folder):
    """Every file of a folder and its bytes (settings included)."""
    return {p.name: p.read_bytes() for p in sorted(pathlib.Path(folder).iterdir())}


def test_labeling_twice_gives_byte_identical_datasets(setup, tmp_path):
    stats = _label(setup, tmp_path / "a")
    _label(setup, tmp_path / "b")
    first = _files(tmp_path / "a")
    assert sum(name.startswith("mnist_attention_teacher-unlabeled.array_record") for name in first) == NUM_SHARDS
    assert {"dataset_info.json", "features.json"} <= set(first)
    assert first == _files(tmp_path / "b")
    assert stats["images"] == ATTENTION_EXAMPLES and stats["images_per_s"] > 0


def test_output_keeps_the_source_features_and_adds_valid_maps(setup, tmp_path):
    _label(setup, tmp_path, resolution=(16, 16))
    labeled = data.get_builder("tfds_dir", data_dir=str(tmp_path)).as_data_source(split="unlabeled")
    source = data.get_builder("mnist_attention", data_dir=setup["data_dir"]).as_data_source(split="unlabeled")
    assert len(labeled) == len(source) == ATTENTION_EXAMPLES
    for i in (0, 17, ATTENTION_EXAMPLES - 1):
        ex, original = labeled[i], source[i]
        for key, value in original.items():
            np.testing.assert_array_equal(ex[key], value)
        saliency_map, fixations = ex[labeling.MAP_KEY], ex[labeling.FIXATIONS_KEY]
        assert saliency_map.shape == fixations.shape == (16, 16) and saliency_map.dtype == np.uint8
        assert saliency_map.max() == 255  # divided by its maximum
        assert fixations.any() and np.all(saliency_map[fixations > 0] > 0)  # drawn where the map is positive
    batch = next(
        iter(
            data.make_loader(
                name="tfds_dir",
                data_dir=str(tmp_path),
                split="unlabeled",
                batch_size=8,
                seed=0,
                shuffle=False,
                num_epochs=1,
            )
        )
    )
    assert batch[labeling.MAP_KEY].dtype == np.uint8 and batch[labeling.MAP_KEY].max() == 255
    assert data.to_model_inputs(batch)[labeling.MAP_KEY].max() == 1.0


def test_killed_run_resumes_to_the_uninterrupted_result(setup, tmp_path):
    """SIGKILL right after shard 1 is on disk, with a half-written shard 2 left behind; a rerun labels the rest."""
    killed = tmp_path / "killed"
    script = (
        "import os, signal, sys\n"
        "from sagejax import labeling\n"
        "def die(shard):\n"
        "    if shard == 1:\n"
        "        path = labeling.tfds_writer.shard_path(output_dir=sys.argv[1], dataset_name='mnist_attention_teacher',"
        " split='unlabeled', shard=2, num_shards=4)\n"
        "        open(path + '.incomplete', 'wb').write(b'partial')\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"labeling.label_split(teacher_workdir={setup['teacher']!r}, dataset='mnist_attention', split='unlabeled', "
        f"output_dir=sys.argv[1], data_dir={setup['data_dir']!r}, num_shards=4, batch_size=8, progress=False, "
        "on_shard_written=die)\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", script, str(killed)], cwd=REPO, env=env, capture_output=True)
    assert result.returncode == -9, result.stderr.decode()[-2000:]
    names = sorted(p.name for p in killed.iterdir())
    assert "dataset_info.json" not in names and any(n.endswith(".incomplete") for n in names)
    written = []
    _label(setup, killed, on_shard_written=written.append)
    assert written == [2, 3]  # the finished shards 0 and 1 were skipped
    _label(setup, tmp_path / "whole")
    assert _files(killed) == _files(tmp_path / "whole")


def test_eight_devices_label_like_one(setup, tmp_path, devices):
    _label(setup, tmp_path / "one", devices=devices[:1])
    _label(setup, tmp_path / "eight", devices=devices)
    assert _files(tmp_path / "one") == _files(tmp_path / "eight")


def test_processes_write_disjoint_shards_and_match_a_single_process(setup, tmp_path):
    written = {0: [], 1: []}
    for index in (1, 0):  # process 0 writes the metadata once every shard is on disk
        _label(setup, tmp_path / "two", process_index=index, process_count=2, on_shard_written=written[index].append)
    assert written == {0: [0, 2], 1: [1, 3]}
    _label(setup, tmp_path / "single")
    assert _files(tmp_path / "two") == _files(tmp_path / "single")


def test_a_finished_split_is_not_overwritten_unless_asked(setup, tmp_path):
    _label(setup, tmp_path)
    before = _files(tmp_path)
    with pytest.raises(FileExistsError, match="--overwrite"):
        _label(setup, tmp_path)
    _label(setup, tmp_path, overwrite=True)
    assert _files(tmp_path) == before


def test_resuming_with_other_settings_is_refused(setup, tmp_path):
    def stop_after_first(shard):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _label(setup, tmp_path, on_shard_written=stop_after_first)
    with pytest.raises(ValueError, match="num_fixations"):
        _label(setup, tmp_path, num_fixations=3)


def test_invalid_maps_are_named():
    with pytest.raises(ValueError, match="example 12 is not finite"):
        labeling._validate(np.array([True, False]), np.array([1.0, 1.0]), [11, 12], "train")
    with pytest.raises(ValueError, match="example 11 is empty"):
        labeling._validate(np.array([True, True]), np.array([0.0, 1.0]), [11, 12], "train")


def test_bad_arguments_are_named(setup, tmp_path):
    with pytest.raises(ValueError, match="multiple of the 8 devices"):
        _label(setup, tmp_path, batch_size=4, devices=jax.devices())
    with pytest.raises(ValueError, match="no split 'nope'"):
        _label(setup, tmp_path, split="nope")
    with pytest.raises(ValueError, match="resolution 4096x4096 exceeds the images' 32x32"):
        _label(setup, tmp_path, resolution=(4096, 4096))
    with pytest.raises(FileNotFoundError, match="config.json"):
        _label(setup, tmp_path, teacher_workdir=str(tmp_path / "missing"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # (root ignores permissions: then only the file case below applies)
            with pytest.raises(ValueError, match="--output_dir .*locked.* is not writable"):
                _label(setup, locked / "out")
    finally:
        locked.chmod(0o700)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="--output_dir .*a_file.* is not writable"):
        _label(setup, tmp_path / "a_file" / "out")


def test_fixations_depend_on_the_example_alone():
    saliency_map = np.zeros((8, 8), np.uint8)
    saliency_map[2:4, 5:7] = 255
    a = teacher.derive_fixations(saliency_map, count=5, seed=0, index=3)
    np.testing.assert_array_equal(a, teacher.derive_fixations(saliency_map, count=5, seed=0, index=3))
    assert a.sum() >= 1 and np.all(saliency_map[a > 0] > 0)
    ramp = np.arange(100, dtype=np.uint8).reshape(10, 10)
    top = teacher.derive_fixations(ramp, rule="top_quantile", quantile=0.9, seed=0, index=0)
    np.testing.assert_array_equal(np.flatnonzero(top), np.arange(90, 100))  # the 10 % brightest pixels


def test_top_quantile_rule_labels_the_brightest_pixels(setup, tmp_path):
    _label(setup, tmp_path, fixation_rule="top_quantile", fixation_quantile=0.95)
    example = data.get_builder("tfds_dir", data_dir=str(tmp_path)).as_data_source(split="unlabeled")[5]
    saliency_map, fixations = example[labeling.MAP_KEY], example[labeling.FIXATIONS_KEY] > 0
    assert fixations.any() and saliency_map[fixations].min() >= saliency_map[~fixations].max()
    with pytest.raises(ValueError, match="fixation_rule"):
        _label(setup, tmp_path / "other", fixation_rule="argmax")


def test_sage_trains_on_teacher_maps_in_place_of_the_stored_ones(setup, decoy_dir, tmp_path):
    labels = tmp_path / "labels"
    _label(setup, labels, dataset="decoy_mnist", dataset_config="swatch_32_rgb", split="train", data_dir=str(decoy_dir))
    config = smoke_config(decoy_dir, "sage,smoke,teacher_maps")
    config.data.train_dir = str(labels)
    fields = next(data.train_iter(config))
    source = data.get_builder("tfds_dir", data_dir=str(labels)).as_data_source(split="train")
    stored = {np.asarray(source[i]["image"]).tobytes(): source[i] for i in range(len(source))}
    for image, saliency in zip(fields["image"], fields["saliency"]):  # each map is its own image's teacher map
        np.testing.assert_array_equal(saliency, stored[image.tobytes()][labeling.MAP_KEY])
    assert labeling.MAP_KEY not in fields and "valid" not in fields
    results = train_and_evaluate(config, str(tmp_path / "run"))
    assert 0.0 <= results["eval/classification/test/accuracy"] <= 1.0


def test_command_line_labels_and_then_refuses_to_overwrite(setup, tmp_path):
    command = [
        sys.executable, "-m", "sagejax.tools.label", f"--teacher_workdir={setup['teacher']}",
        "--dataset=mnist_attention",
        "--split=validation", f"--output_dir={tmp_path}", f"--data_dir={setup['data_dir']}", "--resolution=8x8",
        "--batch_size=8",
    ]  # fmt: skip
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    first = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "images/s" in first.stdout
    shape = data.get_builder("tfds_dir", data_dir=str(tmp_path)).info.features[labeling.MAP_KEY].shape
    assert tuple(shape) == (8, 8)
    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert second.returncode != 0 and "--overwrite" in second.stderr


def test_labeling_benchmark_writes_both_rows(setup, tmp_path):
    out = tmp_path / "bench.jsonl"
    command = [
        sys.executable, "-m", "sagejax.tools.label_benchmark", f"--teacher_workdir={setup['teacher']}",
        "--dataset=mnist_attention", "--split=unlabeled", f"--data_dir={setup['data_dir']}", "--batch_size=8",
        "--repeats=2", f"--out={out}",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO, env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["stage"] for row in rows] == ["teacher forward", "labeling"]
    assert rows[0]["fraction_of_forward"] == 1.0 and rows[1]["images"] == ATTENTION_EXAMPLES
    assert all(row["images_per_s"] > 0 for row in rows) and "| labeling |" in result.stdout


def test_a_student_with_the_teacher_in_its_step_sees_the_written_labels(setup, tmp_path):
    from sagejax.configs import student as student_configs
    from sagejax.methods import student_attention as student

    _label(setup, tmp_path, fixation_rule="top_quantile", fixation_quantile=0.9)
    source = data.get_builder("tfds_dir", data_dir=str(tmp_path)).as_data_source(split="unlabeled")
    examples = [source[i] for i in range(8)]
    config = student_configs.get_config("simclr_attn,smoke").method
    config.teacher_workdir = setup["teacher"]
    targets = jax.jit(student.make_teacher_targets(config))
    images = data.to_model_inputs({"image": jax.numpy.asarray(np.stack([ex["image"] for ex in examples]))})["image"]
    made = jax.device_get(targets(images))
    # The same teacher maps: two compiled programs may round a level that sits on .5 either way (seen: 1 pixel of
    # 8192 with jax 0.12.1), so at most one level on at most 0.1% of the pixels, and fixations likewise.
    written = np.stack([ex[labeling.MAP_KEY] for ex in examples]).astype(np.int32)
    differ = np.round(made["target"] * 255).astype(np.int32) - written
    assert np.abs(differ).max() <= 1 and np.mean(differ != 0) <= 1e-3
    fixations = np.stack([ex[labeling.FIXATIONS_KEY] for ex in examples])
    assert np.mean(made["fixations"] != fixations) <= 1e-3
