"""The benchmark harness timing real steps: rows on 1 and 2 devices written as JSONL, a table and a plot; the input
mode against the step."""

import json

import jax
import pytest

from sagejax import benchmarking as benchmark
from sagejax.configs import sage_decoy


def _config():
    return sage_decoy.get_config("smoke")


def _rows(**kwargs):
    args = dict(methods_=["xent"], models_=[], batch_sizes=[], dtypes=[], image_sizes=["32"], device_counts=[])
    return benchmark.make_rows(_config(), **{**args, **kwargs})


def test_harness_times_rows_and_writes_jsonl_table_and_plot(tmp_path):
    rows = _rows(methods_=["xent", "sage"], batch_sizes=["16"], device_counts=["1", "2"])
    results = benchmark.benchmark_rows(_config(), rows, channels=3, steps=2, warmup=1, peak=0.5)
    out = tmp_path / "bench.jsonl"
    benchmark.write(str(out), results, benchmark.step_table(results), plot=True)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 4 and (tmp_path / "bench.png").stat().st_size > 1000
    by = {(r["label"], r["num_devices"]): r for r in written}
    for r in written:
        assert r["compile_seconds"] > 0 and r["p90_ms_per_step"] >= r["ms_per_step"] > 0
        assert r["flops_per_device"] > 0 and r["mfu"] == pytest.approx(r["tflops_per_device"] / 0.5)
        assert r["temp_bytes"] > 0 and r["device_kind"] and r["jax"] == jax.__version__
        assert (r["all_reduce_bytes"] > 0) == (r["num_devices"] > 1)
    sage, xent = by[("sage", 1)], by[("xent", 1)]
    assert sage["vs_4_plain"] == pytest.approx(sage["ms_per_step"] / (4 * xent["ms_per_step"]))
    assert "vs_4_plain" not in xent and sage["flops_per_device"] > 3 * xent["flops_per_device"]
    table = (tmp_path / "bench.md").read_text()
    assert "| sage | resnet18 (float32) | 16×32² | 2 |" in table


def test_input_mode_compares_the_loader_with_the_step(decoy_dir):
    config = _config()
    assert config.data.builder_config == "swatch_32_rgb"  # the shared build
    config.data.data_dir = str(decoy_dir)
    result = benchmark.benchmark_input(config, batches=3, channels=3, steps=2, warmup=1)
    assert result["loader_images_per_s"] > 0 and result["step_images_per_s"] > 0 and result["image_size"] == 32
    assert result["loader_images_per_s_per_core"] * result["host_cores"] == pytest.approx(result["loader_images_per_s"])
    assert result["input_bound"] == (result["loader_images_per_s"] < result["step_images_per_s"])
    assert "| decoy_mnist/" in benchmark.input_table(result)
