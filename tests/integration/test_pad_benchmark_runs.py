"""The open-set PAD benchmark end to end on a small Digit PAD: one method, one seed, a smoke run per held-out attack
type, its table and its per-type runs (each trained without its type, tested on bona fide + it)."""

import json

from sagejax import data, pad_benchmark
from sagejax.data.digit_pad import ATTACK_TYPES


def test_the_benchmark_runs_the_protocol_per_method_and_seed_and_prints_the_table(tmp_path):
    data_dir = tmp_path / "tfds"
    data.build_dataset("digit_pad", data_dir=str(data_dir), max_examples_per_split=96)
    config_file = tmp_path / "small_digit_pad.py"
    config_file.write_text(
        "from sagejax.configs import digit_pad\n\n\n"
        "def get_config(arg=None):\n"
        "    config = digit_pad.get_config(arg)\n"
        f"    config.data.data_dir = {str(data_dir)!r}\n"
        "    config.mesh.num_devices = 1\n"
        "    config.train.update(steps=2, checkpoint_every_steps=2)\n"
        "    return config\n"
    )
    results = pad_benchmark.run(str(config_file), ["xent"], ["0"], str(tmp_path / "runs"), variant_suffix="smoke")
    assert list(results) == ["xent"] and set(results["xent"]["0"]) == set(ATTACK_TYPES)
    table = pad_benchmark.summarize(results)
    assert table.splitlines()[2].startswith("| xent | ") and "mask APCER @ BPCER 1 %" in table
    info = json.loads((tmp_path / "runs" / "xent" / "seed0" / "cutout" / "config.json").read_text())["config"]
    assert info["data"]["train_exclude_attack_types"] == ["cutout"] and info["seed"] == 0
    assert info["evals"]["validation"]["attack_types"] == ["print", "replay", "mask"]
