"""The benchmark harness: rows checked before compiling, all-reduce bytes from HLO, MFU peaks, tables and plots."""

import json

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from sagejax import benchmarking as benchmark
from sagejax import data
from sagejax.configs import sage_decoy
from sagejax.errors import ConfigError


def _config():
    return sage_decoy.get_config("smoke")


def _rows(**kwargs):
    args = dict(methods_=["xent"], models_=[], batch_sizes=[], dtypes=[], image_sizes=["32"], device_counts=[])
    return benchmark.make_rows(_config(), **{**args, **kwargs})


def test_rows_are_the_product_of_the_axes_and_bad_ones_are_refused_by_name():
    rows = _rows(methods_=["xent", "sage/view_fraction=0.5"], batch_sizes=["16", "32"], device_counts=["1", "8"])
    assert (
        len(rows) == 8 and rows[-1].label == "sage/view_fraction=0.5" and rows[-1].settings == (("view_fraction", 0.5),)
    )
    assert {row.model for row in rows} == {"resnet18"} and {row.dtype for row in rows} == {"float32"}
    with pytest.raises(ConfigError, match="unknown method 'sgae'"):
        _rows(methods_=["sgae"])
    with pytest.raises(ConfigError, match="method 'sage' has no setting 'tempreature'"):
        _rows(methods_=["sage/tempreature=2"])
    with pytest.raises(ConfigError, match="unknown model 'resnet51'"):
        _rows(models_=["resnet51"])
    with pytest.raises(ConfigError, match=r"unknown dtypes \['fp8'\]"):
        _rows(dtypes=["fp8"])
    with pytest.raises(ConfigError, match="batch size 12 cannot be split over 8 devices"):
        _rows(batch_sizes=["12"], device_counts=["8"])
    with pytest.raises(ConfigError, match="only 8 devices are visible"):
        _rows(device_counts=["16"])
    with pytest.raises(ConfigError, match="--batch_sizes must be integers"):
        _rows(batch_sizes=["big"])


def test_all_reduce_bytes_of_a_data_parallel_gradient(devices):
    mesh = jax.make_mesh((8,), ("data",), devices=devices)
    grad = jax.jit(
        jax.grad(lambda w, x: jnp.sum((x @ w) ** 2)),
        in_shardings=(NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))),
        out_shardings=NamedSharding(mesh, P()),
    )
    compiled = grad.lower(jax.ShapeDtypeStruct((64, 32), jnp.float32), jax.ShapeDtypeStruct((128, 64), jnp.float32))
    assert benchmark.all_reduce_bytes(compiled.compile().as_text()) == 64 * 32 * 4
    text = (  # a combined all-reduce (XLA marks every fifth tuple element), an async one, and mere uses of them
        "%ar = (f32[10]{0}, bf16[2,3]{1,0}, /*index=2*/s8[4]{0}) all-reduce(%a, %b, %c), to_apply=%sum\n"
        "  %s = f32[7]{0} all-reduce-start(%c)\nROOT %d = f32[7]{0} all-reduce-done(%s)\n%x = f32[3]{0} add(%ar, %y)"
    )
    assert benchmark.all_reduce_bytes(text) == 40 + 12 + 4 + 28


def test_peaks_match_the_longest_device_kind_and_can_be_overridden():
    assert benchmark.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert benchmark.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert benchmark.peak_tflops("TPU v5 lite") == 197.0
    assert benchmark.peak_tflops("cpu") is None and benchmark.peak_tflops("cpu", 1.5) == 1.5


@pytest.mark.slow
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


@pytest.mark.slow
def test_input_mode_compares_the_loader_with_the_step(tmp_path):
    config = _config()
    config.data.data_dir = str(tmp_path)
    data.build_dataset(
        "decoy_mnist", data_dir=str(tmp_path), config=config.data.builder_config, max_examples_per_split=64
    )
    result = benchmark.benchmark_input(config, batches=3, channels=3, steps=2, warmup=1)
    assert result["loader_images_per_s"] > 0 and result["step_images_per_s"] > 0 and result["image_size"] == 32
    assert result["loader_images_per_s_per_core"] * result["host_cores"] == pytest.approx(result["loader_images_per_s"])
    assert result["input_bound"] == (result["loader_images_per_s"] < result["step_images_per_s"])
    assert "| decoy_mnist/" in benchmark.input_table(result)


def test_corruption_mode_times_each_setting_against_the_plain_forward():
    results = benchmark.benchmark_corruptions(
        _config(), batch_size=8, size=32, table="cifar", steps=1, warmup=0, names=("brightness",)
    )
    assert [r["corruption"] for r in results] == [
        "clean",
        *(f"brightness/{s}" for s in range(1, 6)),
        "sweep",
    ]
    clean, sweep = results[0], results[-1]
    assert all(r["seconds"] > 0 and r["images_per_s"] == pytest.approx(8 / r["seconds"]) for r in results[:-1])
    assert sweep["images_per_s"] == pytest.approx(5 * 8 / sum(r["seconds"] for r in results[1:-1]))
    assert sweep["vs_plain"] == pytest.approx(sum(r["seconds"] for r in results[1:-1]) / (5 * clean["seconds"]))
    table = benchmark.corruption_table(results)
    assert "the sweep's 5 settings run at" in table and "| brightness |" in table
    with pytest.raises(ConfigError, match="unknown cifar corruption 'rain'"):
        benchmark.benchmark_corruptions(_config(), batch_size=8, size=32, table="", steps=1, warmup=0, names=("rain",))
