"""The benchmark harness: rows checked before compiling, all-reduce bytes from HLO, MFU peaks, tables and plots."""

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from sagejax import benchmarking as benchmark
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


def test_input_mode_times_the_encoded_pipeline_on_generated_jpegs_alone():
    """`jpegs`: generated 500×375 JPEGs built as saliency_csv/rgb_encoded and cut to 224² on the host; steps=0 times
    the loader only (no compile), and the table says so."""
    from sagejax.configs import sage_csv

    config = sage_csv.get_config("xent,resnet50")
    config.train.batch_size = 4
    result = benchmark.benchmark_input(config, batches=2, channels=3, steps=0, warmup=0, jpegs=8)
    assert result["dataset"] == "saliency_csv/rgb_encoded (8 JPEGs 500×375)" and result["image_size"] == 224
    assert result["step_images_per_s"] is None and result["input_bound"] is None
    assert result["loader_images_per_s"] > 0 and result["loader_images_per_cpu_s"] > 0
    assert "| 4×224² | 0 | " in benchmark.input_table(result) and "| — | — |" in benchmark.input_table(result)
