"""Benchmark harness: the trainer's compiled step swept over method × model × batch × dtype × image size × device
count (`--mode=step`), the input pipeline against the step (`--mode=input`; `--input_jpegs=N` times the encoded
pipeline on generated JPEGs, `--steps=0` the loader alone), or the robustness evaluator's corruption sweep against
the plain eval forward (`--mode=corruptions`).

    sagejax benchmark --config sage_decoy --methods xent,sage --batch_sizes 32,64 --out b.jsonl

Each row is the trainer's own step (state set-up, device transform, ahead-of-time compilation) on a synthetic batch
of the configured shapes (uint8 images and maps, as the loaders deliver them), so I/O is excluded: compile seconds,
median and p90 step time, source images/s, XLA's FLOPs per device and the MFU against the device's peak (PEAK_TFLOPS,
or `--peak_tflops`), XLA's memory analysis, the all-reduce bytes of the compiled HLO, the devices and versions.
A method may carry settings: `sage/view_fraction=0.5/stop_gradient_targets=True`, `sage/ce_views=x_keep`. Rows of
SAGE-family methods also give `vs_4_plain` = their step ÷ (4 × the xent step of the same shape): the cost of the views
and losses over four plain passes, and `flops_vs_4_plain`, the same for XLA's FLOPs. Output: JSONL rows appended to
`--out`, a markdown table (`<out>.md`) and a plot (`<out>.png`).
"""

from __future__ import annotations

import tensorflow_datasets as tfds
from absl import flags, logging

from sagejax import configs, errors
from sagejax.benchmarking import (
    DTYPES,
    MODES,
    benchmark_corruptions,
    benchmark_input,
    benchmark_rows,
    corruption_table,
    input_table,
    make_rows,
    step_table,
    write,
)

_CONFIG = configs.define_flag("config", lock=False)
_MODE = flags.DEFINE_enum(
    "mode", "step", MODES, "step: train steps; input: the loader against the step; corruptions: the corruption sweep."
)
_METHODS = flags.DEFINE_list("methods", ["xent", "sage"], "Methods, each NAME or NAME/key=value/... .")
_MODELS = flags.DEFINE_list("models", [], "Registered model names (default: the config's).")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", [], "Global source batch sizes (default: the config's).")
_DTYPES = flags.DEFINE_list("dtypes", [], f"Compute dtypes from {DTYPES} (default: the config's).")
_IMAGE_SIZES = flags.DEFINE_list("image_sizes", ["32"], "Square input sizes of the synthetic batch.")
_DEVICE_COUNTS = flags.DEFINE_list("device_counts", [], "Mesh sizes over the first N devices (default: all).")
_CHANNELS = flags.DEFINE_integer("channels", 3, "Channels of the synthetic batch.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per row (after the warm-up steps).")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps per row before timing.")
_INPUT_BATCHES = flags.DEFINE_integer("input_batches", 50, "--mode=input: loader batches to time.")
_INPUT_JPEGS = flags.DEFINE_integer(
    "input_jpegs",
    0,
    "--mode=input: time the encoded pipeline (decode + crop to data.image_size, 224 if unset) on this many generated "
    "500×375 JPEGs with maps, built as saliency_csv/rgb_encoded in a temporary folder, instead of the config's data.",
)
_PEAK = flags.DEFINE_float("peak_tflops", None, "Peak TFLOP/s per device for the MFU (default: PEAK_TFLOPS).")
_TABLE = flags.DEFINE_string("table", "", "--mode=corruptions: imagenet, cifar or mnist; '' = by image size.")
_CORRUPTIONS = flags.DEFINE_list("corruptions", [], "--mode=corruptions: only these (default: all of the table).")
_OUT = flags.DEFINE_string("out", "benchmark.jsonl", "JSONL output (appended); <out>.md and <out>.png beside it.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    tfds.disable_progress_bar()
    config = _CONFIG.value
    if _MODE.value == "input":
        result = benchmark_input(
            config,
            batches=_INPUT_BATCHES.value,
            channels=_CHANNELS.value,
            steps=_STEPS.value,
            warmup=_WARMUP.value,
            jpegs=_INPUT_JPEGS.value,
        )
        write(_OUT.value, [result], input_table(result), plot=False)
        return
    if _MODE.value == "corruptions":
        batch = int((_BATCH_SIZES.value or [config.train.batch_size])[0])
        size = int(_IMAGE_SIZES.value[0])
        results = benchmark_corruptions(
            config,
            batch_size=batch,
            size=size,
            table=_TABLE.value,
            steps=_STEPS.value,
            warmup=_WARMUP.value,
            names=tuple(_CORRUPTIONS.value),
        )
        write(_OUT.value, results, corruption_table(results), plot=False)
        return
    rows = make_rows(
        config,
        methods_=_METHODS.value,
        models_=_MODELS.value,
        batch_sizes=_BATCH_SIZES.value,
        dtypes=_DTYPES.value,
        image_sizes=_IMAGE_SIZES.value,
        device_counts=_DEVICE_COUNTS.value,
    )
    results = benchmark_rows(
        config, rows, channels=_CHANNELS.value, steps=_STEPS.value, warmup=_WARMUP.value, peak=_PEAK.value
    )
    write(_OUT.value, results, step_table(results), plot=True)


if __name__ == "__main__":
    errors.run(main)
