"""Step-time benchmark: the jitted train step of each method on the same model and source batch.

`python -m sagejax.benchmark --config configs/sage_decoy.py --methods xent,sage --out bench.jsonl`
writes one JSONL row per method (source images/s, ms/step, ratio to the first method, compile seconds and XLA's
memory analysis of the compiled step) and prints a markdown table. Batches are synthetic (shapes from the config,
uint8 images and maps as the loaders deliver them), so I/O is excluded. The step is the trainer's: the same state
set-up, device transform and ahead-of-time compilation.
"""

from __future__ import annotations

import json
import time

import jax
import numpy as np
from absl import flags
from ml_collections import config_flags

from sagejax import data, errors, methods
from sagejax.train.mesh import global_batch, make_mesh, replicated_key
from sagejax.train.optim import make_optimizer
from sagejax.train.state import init_state
from sagejax.train.step import batch_spec, compile_train_step, make_train_step

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=False)
_METHODS = flags.DEFINE_list("methods", ["xent", "sage"], "Methods to time; ratios are to the first.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 32, "Square input size of the synthetic batch.")
_CHANNELS = flags.DEFINE_integer("channels", 3, "Channels of the synthetic batch.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per method (after 3 warmup steps).")
_OUT = flags.DEFINE_string("out", "benchmark.jsonl", "JSONL output path (appended).")


def synthetic_batch(batch_size: int, size: int, channels: int, num_classes: int, seed: int = 0) -> dict:
    """Random uint8 images, blob-shaped uint8 saliency maps (also as the students' teacher and human maps, with
    their fixations) and labels of the configured shapes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    centres = rng.uniform(0.3, 0.7, size=(batch_size, 2, 1, 1))
    saliency = np.round(255 * np.exp(-((yy - centres[:, 0]) ** 2 + (xx - centres[:, 1]) ** 2) / 0.02)).astype(np.uint8)
    fixations = (saliency > 200).astype(np.uint8)
    return {
        "image": rng.integers(0, 256, size=(batch_size, size, size, channels), dtype=np.uint8),
        "saliency": saliency,
        "teacher_saliency": saliency,
        "teacher_fixations": fixations,
        "density": saliency,
        "fixations": fixations,
        "label": rng.integers(0, num_classes, size=(batch_size,)).astype(np.int32),
    }


def time_method(config, method: str, batch: dict, steps: int) -> dict:
    """Seconds per compiled step of `method` (median of `steps` timed steps after warmup) and the compile report."""
    config = config.copy_and_resolve_references()
    shared = {key: value for key, value in config.method.items() if key in methods.get(method).defaults}
    config.method = methods.default_config(method, **shared)  # the config's settings where the method has them
    mesh = make_mesh(config.mesh.axes.to_dict())
    optimizer = make_optimizer(config.optim, max(steps, 1) + 3, config.train.batch_size)
    setup = init_state(config, optimizer, mesh)
    step_fn = make_train_step(
        graphdef=setup.graphdef,
        loss_fn=methods.make_loss(config.method),
        optimizer=optimizer,
        transform=data.make_train_transform(config.data),
    )
    step, report = compile_train_step(step_fn, mesh=mesh, abstract_state=setup.abstract, batch=batch_spec(mesh, batch))
    state = setup.init()
    device_batch = global_batch(mesh, batch)
    rng = replicated_key(mesh, 0)
    for _ in range(3):
        state, metrics = step(state, device_batch, rng)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = step(state, device_batch, rng)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    return {"seconds": float(np.median(times)), **report}


def main(argv):
    del argv
    config = _CONFIG.value
    batch = synthetic_batch(config.train.batch_size, _IMAGE_SIZE.value, _CHANNELS.value, config.data.num_classes)
    device = jax.devices()[0]
    rows = []
    for method in _METHODS.value:
        timing = time_method(config, method, batch, _STEPS.value)
        seconds = timing.pop("seconds")
        rows.append(
            {
                "method": method,
                "model": config.model.name,
                "dtype": config.model.dtype,
                "batch_size": config.train.batch_size,
                "image_size": _IMAGE_SIZE.value,
                "ms_per_step": 1e3 * seconds,
                "source_images_per_s": config.train.batch_size / seconds,
                "device": f"{device.platform}:{device.device_kind}",
                "num_devices": jax.device_count(),
                "jax": jax.__version__,
                **timing,
            }
        )
    for row in rows:
        row["step_time_ratio"] = row["ms_per_step"] / rows[0]["ms_per_step"]
    with open(_OUT.value, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print("| method | model | batch | ms/step | source img/s | step time ÷ first | compile s | temp MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['method']} | {row['model']} ({row['dtype']}) | {row['batch_size']}×{row['image_size']}² "
            f"| {row['ms_per_step']:.1f} | {row['source_images_per_s']:.0f} | {row['step_time_ratio']:.2f} "
            f"| {row['compile_seconds']:.1f} | {row.get('temp_bytes', float('nan')) / 2**20:.1f} |"
        )
    print(f"device: {rows[0]['device']} ×{rows[0]['num_devices']}, jax {rows[0]['jax']}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    errors.run(main)
