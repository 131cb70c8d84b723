"""The benchmark harness: method × model × batch × dtype × image size × device-count rows of the compiled train step
(compile seconds, median/p90, images/s, FLOPs and MFU, memory, all-reduce bytes), the input pipeline against the
step, and the corruption sweep against the plain eval forward; its command line is `sagejax benchmark`."""

from __future__ import annotations

import ast
import csv
import dataclasses
import itertools
import json
import os
import re
import tempfile
import time

import flax
import jax
import jaxlib
import numpy as np
import optax
from PIL import Image

from sagejax import data, methods, models, storage
from sagejax.errors import ConfigError
from sagejax.evaluate.evaluators import corrupted
from sagejax.report import benchmark_plot
from sagejax.train.mesh import global_batch, make_mesh, replicated_key
from sagejax.train.optim import make_optimizer
from sagejax.train.pretrained import read_pretrained
from sagejax.train.state import init_state, merge_model
from sagejax.train.step import batch_spec, compile_train_step, make_train_step

# Dense bf16 peak TFLOP/s per device, by device_kind (longest match first); MFU is against these.
PEAK_TFLOPS = {
    "NVIDIA H100 PCIe": 756.0,
    "NVIDIA H100": 989.0,
    "NVIDIA H200": 989.0,
    "NVIDIA H20": 148.0,
    "NVIDIA GH200": 989.0,
    "NVIDIA B200": 2250.0,
    "NVIDIA A100": 312.0,
    "NVIDIA L4": 121.0,
    "NVIDIA A10G": 125.0,
    "TPU v4": 275.0,
    "TPU v5 lite": 197.0,
    "TPU v5p": 459.0,
    "TPU v5": 459.0,
    "TPU v6 lite": 918.0,
}


DTYPES = ("float32", "bfloat16", "float16")


MODES = ("step", "input", "corruptions")


_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4}


_BYTES.update({"f64": 8, "s64": 8, "u64": 8})


_ALL_REDUCE = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.-]+\s*=\s*(.*?)\s+all-reduce(?:-start)?\(")


_SHAPE = re.compile(r"\b([a-z]+[0-9]*)\[([0-9,]*)\]")


@dataclasses.dataclass(frozen=True)
class Row:
    """One benchmark point: a method (with settings) on a model, batch, dtype, image size and device count."""

    method: str
    settings: tuple[tuple[str, object], ...]
    model: str
    batch_size: int
    dtype: str
    image_size: int
    num_devices: int

    @property
    def label(self) -> str:
        return "/".join([self.method, *(f"{key}={value}" for key, value in self.settings)])


def parse_method(spec: str) -> tuple[str, tuple[tuple[str, object], ...]]:
    """ "sage/view_fraction=0.5" -> ("sage", (("view_fraction", 0.5),)), the settings checked against the method (a
    tuple setting may be one bare name: "sage/ce_views=x_keep")."""
    name, *pairs = spec.split("/")
    defaults = methods.get(name).defaults
    settings = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise ConfigError(f"method setting {pair!r} in {spec!r} must look like key=value")
        if key not in defaults:
            raise ConfigError(f"method {name!r} has no setting {key!r}; it has {sorted(defaults)}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        settings.append((key, _as_tuple(value) if isinstance(defaults[key], tuple) else value))
    return name, tuple(settings)


def _as_tuple(value) -> tuple:
    """A tuple setting from its command-line text: "x_keep" -> ("x_keep",), [a, b] -> (a, b)."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _ints(values, name: str) -> list[int]:
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise ConfigError(f"--{name} must be integers, got {values}") from None
    if any(n <= 0 for n in numbers):
        raise ConfigError(f"--{name} must be positive, got {numbers}")
    return numbers


def make_rows(config, *, methods_, models_, batch_sizes, dtypes, image_sizes, device_counts) -> list[Row]:
    """Every combination, checked before anything is compiled: names, dtypes, device counts, divisibility."""
    parsed = [parse_method(spec) for spec in methods_]
    models_ = models_ or [config.model.name]
    for name in models_:
        models.model_options(name)  # names the known models when unknown
    dtypes = dtypes or [config.model.dtype]
    unknown = sorted(set(dtypes) - set(DTYPES))
    if unknown:
        raise ConfigError(f"unknown dtypes {unknown}; choose from {list(DTYPES)}")
    batch_sizes = _ints(batch_sizes, "batch_sizes") if batch_sizes else [config.train.batch_size]
    image_sizes = _ints(image_sizes, "image_sizes")
    device_counts = _ints(device_counts, "device_counts") if device_counts else [jax.device_count()]
    for count in device_counts:
        if count > jax.device_count():
            raise ConfigError(f"--device_counts {count}: only {jax.device_count()} devices are visible")
        for batch in batch_sizes:
            if batch % count:
                raise ConfigError(f"batch size {batch} cannot be split over {count} devices; use a multiple of {count}")
    return [
        Row(method, settings, model, batch, dtype, size, count)
        for (method, settings), model, batch, dtype, size, count in itertools.product(
            parsed, models_, batch_sizes, dtypes, image_sizes, device_counts
        )
    ]


def row_config(config, row: Row):
    """`config` with the row's method (the config's settings where the method has them, then the row's), model
    (the config's options it accepts; ViTs get the row's image size), dtype and batch size."""
    config = config.copy_and_resolve_references()
    shared = {key: value for key, value in config.method.items() if key in methods.get(row.method).defaults}
    config.method = methods.default_config(row.method, **{**shared, **dict(row.settings)})
    options = models.model_options(row.model)
    kwargs = {key: value for key, value in config.model.kwargs.items() if key in options}
    if "image_size" in options:
        kwargs["image_size"] = row.image_size
    config.model.name, config.model.dtype = row.model, row.dtype
    config.model.kwargs = kwargs
    config.train.batch_size = row.batch_size
    return config


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


def all_reduce_bytes(hlo_text: str) -> int:
    """Bytes produced by the all-reduce ops of a compiled HLO module (per device, per step): the shapes of each
    `name = TYPE all-reduce(...)` line, TYPE one array or a tuple of them (combined all-reduces)."""
    total = 0
    for line in hlo_text.splitlines():
        match = _ALL_REDUCE.search(line)
        if not match:
            continue
        for dtype, dims in _SHAPE.findall(match.group(1)):
            if dtype not in _BYTES:
                raise ValueError(f"unknown HLO element type {dtype!r} in {line.strip()!r}")
            total += _BYTES[dtype] * int(np.prod([int(d) for d in dims.split(",") if d]))
    return total


def peak_tflops(device_kind: str, override: float | None = None) -> float | None:
    """The dense bf16 peak of `device_kind` from PEAK_TFLOPS (longest matching prefix), or `override`."""
    if override is not None:
        return override
    matches = [kind for kind in PEAK_TFLOPS if device_kind.startswith(kind)]
    return PEAK_TFLOPS[max(matches, key=len)] if matches else None


def time_step(config, batch: dict, *, num_devices: int, steps: int, warmup: int) -> dict:
    """Compiles the trainer's step of `config` on a mesh of the first `num_devices` devices and times it on
    `batch` (a global numpy batch): seconds per step (median, p90), the compile report, FLOPs, all-reduce bytes."""
    mesh = make_mesh({"data": num_devices}, devices=jax.devices()[:num_devices])
    optimizer = make_optimizer(config.optim, steps + warmup, config.train.batch_size)
    setup = init_state(config, optimizer, mesh)
    step_fn = make_train_step(
        graphdef=setup.graphdef,
        loss_fn=methods.make_loss(config.method),
        optimizer=optimizer,
        transform=data.make_train_transform(config.data),
        accumulate_steps=config.optim.get("accumulate_steps", 1),
    )
    step, report = compile_train_step(step_fn, mesh=mesh, abstract_state=setup.abstract, batch=batch_spec(mesh, batch))
    cost = step.cost_analysis()
    cost = (cost[0] if isinstance(cost, (list, tuple)) else cost) or {}
    state, device_batch, rng = setup.init(read_pretrained(config)), global_batch(mesh, batch), replicated_key(mesh, 0)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        state, metrics = step(state, device_batch, rng)
        jax.block_until_ready(metrics)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return {
        "seconds": float(np.median(times)),
        "p90_seconds": float(np.percentile(times, 90)),
        "flops_per_device": float(cost.get("flops", float("nan"))),
        "all_reduce_bytes": all_reduce_bytes(step.as_text()),
        **report,
    }


def _environment() -> dict:
    device = jax.devices()[0]
    return {
        "device": f"{device.platform}:{device.device_kind}",
        "device_kind": device.device_kind,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
    }


def benchmark_rows(config, rows: list[Row], *, channels: int, steps: int, warmup: int, peak=None) -> list[dict]:
    """Times every row; adds MFU, the ratio to the first row and, for SAGE-family rows, `vs_4_plain` and
    `flops_vs_4_plain` (step time and FLOPs ÷ 4 × those of the plain xent row of the same shape)."""
    environment = _environment()
    peak = peak_tflops(environment["device_kind"], peak)
    results = []
    for row in rows:
        batch = synthetic_batch(row.batch_size, row.image_size, channels, config.data.num_classes)
        timing = time_step(row_config(config, row), batch, num_devices=row.num_devices, steps=steps, warmup=warmup)
        seconds = timing.pop("seconds")
        achieved = timing["flops_per_device"] / seconds / 1e12
        results.append(
            {
                **dataclasses.asdict(row),
                "settings": dict(row.settings),
                "label": row.label,
                "ms_per_step": 1e3 * seconds,
                "p90_ms_per_step": 1e3 * timing.pop("p90_seconds"),
                "source_images_per_s": row.batch_size / seconds,
                "ms_per_example_per_device": 1e3 * seconds * row.num_devices / row.batch_size,
                "tflops_per_device": achieved,
                "peak_tflops": peak,
                "mfu": achieved / peak if peak else None,
                **timing,
                **environment,
            }
        )
    for result in results:
        result["step_time_ratio"] = result["ms_per_step"] / results[0]["ms_per_step"]
        if result["method"].startswith("sage"):
            plain = [
                other
                for other in results
                if other["method"] == "xent" and not other["settings"] and _same_shape(other, result)
            ]
            if plain:
                result["vs_4_plain"] = result["ms_per_step"] / (4 * plain[0]["ms_per_step"])
                result["flops_vs_4_plain"] = result["flops_per_device"] / (4 * plain[0]["flops_per_device"])
    return results


def _same_shape(a: dict, b: dict) -> bool:
    return all(a[key] == b[key] for key in ("model", "batch_size", "dtype", "image_size", "num_devices"))


SYNTHETIC_JPEG_SHAPE = (375, 500)  # (H, W): ImageNet's typical photo


def synthetic_jpegs(folder: str, *, count: int, shape=SYNTHETIC_JPEG_SHAPE, seed: int = 0) -> None:
    """Writes `count` JPEGs of `shape` (smooth colour fields plus noise: about ImageNet's 110 kB a photo) with
    PNG saliency maps (a centred ellipse) and a train.csv listing them, into `folder`: the data of the encoded input
    benchmark."""
    rng = np.random.default_rng(seed)
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w]
    ellipse = ((rows - h / 2) / (h / 3)) ** 2 + ((cols - w / 2) / (w / 3)) ** 2 < 1
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(ellipse.astype(np.uint8) * 255).save(os.path.join(folder, "map.png"))
    with open(os.path.join(folder, "train.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "label", "saliency"])
        for i in range(count):
            fields = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            smooth = np.asarray(Image.fromarray(fields).resize((w, h), Image.BICUBIC), np.float32)
            pixels = np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f"{i}.jpg"), quality=90)
            writer.writerow([f"{i}.jpg", i % 2, "map.png"])


def benchmark_input(config, *, batches: int, channels: int, steps: int, warmup: int, jpegs: int = 0) -> dict:
    """Images/s of the training loader alone (this process, `config.data.workers` workers) against the step of the
    config's method on a batch of the loader's shapes: the step is input-bound when the loader is slower. `jpegs` > 0
    reads that many generated JPEGs (`synthetic_jpegs`) as saliency_csv/rgb_encoded, built in a temporary folder and
    cropped on the host to `data.image_size` (224 if unset), instead of the config's dataset; `steps` 0 times no
    step."""
    if jpegs:
        with tempfile.TemporaryDirectory() as folder:
            synthetic_jpegs(folder, count=jpegs)
            config = config.copy_and_resolve_references()
            size = config.data.get("image_size", 0) or 224
            config.data.update(name="saliency_csv", builder_config="rgb_encoded", image_size=size, manual_dir=folder)
            config.data.update(data_dir=os.path.join(folder, "tfds"), validation_fraction=0.0)
            result = benchmark_input(config, batches=batches, channels=channels, steps=steps, warmup=warmup)
        h, w = SYNTHETIC_JPEG_SHAPE
        return {**result, "dataset": f"{result['dataset']} ({jpegs} JPEGs {w}×{h})"}
    data.build(config.data)
    loader = data.train_iter(config)
    first = next(loader)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(loader)
    loader_seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    workers = config.data.get("workers", 0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    size = first["image"].shape[1]
    devices = jax.device_count()
    loader_rate = batches * config.train.batch_size / loader_seconds
    step_rate = None
    if steps:
        row = Row(config.method.name, (), config.model.name, config.train.batch_size, config.model.dtype, size, devices)
        timing = time_step(row_config(config, row), first, num_devices=devices, steps=steps, warmup=warmup)
        step_rate = config.train.batch_size / timing["seconds"]
    return {
        "mode": "input",
        "dataset": f"{config.data.name}/{config.data.builder_config}",
        "method": config.method.name,
        "model": config.model.name,
        "batch_size": config.train.batch_size,
        "image_size": size,
        "workers": workers,
        "host_cores": cores,
        "loader_images_per_s": loader_rate,
        "loader_images_per_s_per_core": loader_rate / cores,
        # images per CPU-second of this process's read threads: a per-core rate that other load on the host does not
        # dilute (None with worker processes, whose CPU time this process does not see)
        "loader_images_per_cpu_s": None if workers else batches * config.train.batch_size / cpu_seconds,
        "step_images_per_s": step_rate,
        "num_devices": jax.device_count(),
        "input_bound": None if step_rate is None else loader_rate < step_rate,
        **_environment(),
    }


def benchmark_corruptions(
    config, *, batch_size: int, size: int, table: str, steps: int, warmup: int, names=()
) -> list[dict]:
    """The method's eval forward on a synthetic uint8 batch over all devices, plain and after each corruption ×
    severity of `table` (`names`: only those) as the robustness evaluator runs them (corrupted on the devices, then
    the same forward): a row per setting with its compile seconds, median seconds and images/s, plus "clean" and
    "sweep" rows (all settings' images over their summed time, and that time ÷ as many plain forwards)."""
    mesh = make_mesh({"data": jax.device_count()})
    config.model.kwargs = {k: v for k, v in config.model.kwargs.items() if k in models.model_options(config.model.name)}
    setup = init_state(config, make_optimizer(config.optim, 1, batch_size), mesh)
    state, method = setup.init(), methods.get(config.method.name)

    @jax.jit
    def forward(params, model_state, images):
        model = merge_model(setup.graphdef, params, model_state)
        model.eval()
        return method.predict(model, data.to_model_inputs({"image": images}), config.method)["logits"]

    images = global_batch(mesh, synthetic_batch(batch_size, size, 3, config.data.num_classes))["image"]
    table = corrupted.resolve_table(table, images.shape[1:3], where="--table")
    settings = corrupted.sweep(table, names, (1, 2, 3, 4, 5), seed=0, where="--corruptions")

    def timed(fn):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        compile_seconds = time.perf_counter() - start
        times = []
        for i in range(warmup + steps):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            if i >= warmup:
                times.append(time.perf_counter() - start)
        return compile_seconds, float(np.median(times))

    def row(label, compile_seconds, seconds, count=1):
        return {
            "mode": "corruptions",
            "corruption": label,
            "table": table,
            "model": config.model.name,
            "batch_size": batch_size,
            "image_size": size,
            "compile_seconds": compile_seconds,
            "seconds": seconds,
            "images_per_s": count * batch_size / seconds,
            **_environment(),
        }

    clean = row("clean", *timed(lambda: forward(state.params, state.model_state, images)))
    rows = [clean]
    for setting in settings:
        rows.append(
            row(setting.label, *timed(lambda: forward(state.params, state.model_state, setting.apply(images, 0))))
        )
    total = sum(r["seconds"] for r in rows[1:])
    sweep = row("sweep", sum(r["compile_seconds"] for r in rows[1:]), total, count=len(settings))
    sweep["vs_plain"] = total / (len(settings) * clean["seconds"])
    return [*rows, sweep]


def corruption_table(results: list[dict]) -> str:
    """Clean and sweep rows, then the corruptions sorted by time (mean over severities)."""
    clean, sweep = results[0], results[-1]
    by_name: dict[str, list[dict]] = {}
    for r in results[1:-1]:
        by_name.setdefault(r["corruption"].split("/")[0], []).append(r)
    lines = [
        f"{sweep['model']}, batch {clean['batch_size']}×{clean['image_size']}², table {clean['table']}: the sweep's "
        f"{len(results) - 2} settings run at {sweep['images_per_s']:.0f} img/s against {clean['images_per_s']:.0f} "
        f"for the plain forward (× {sweep['vs_plain']:.2f} the time of as many plain forwards; compile "
        f"{sweep['compile_seconds']:.0f} s in all)\n",
        "| corruption | img/s (mean over severities) | × plain forward time | compile s (sum) |",
        "|---|---|---|---|",
    ]
    for name, rows in sorted(by_name.items(), key=lambda item: -np.mean([r["seconds"] for r in item[1]])):
        seconds = float(np.mean([r["seconds"] for r in rows]))
        lines.append(
            f"| {name} | {clean['batch_size'] / seconds:.0f} | {seconds / clean['seconds']:.2f} "
            f"| {sum(r['compile_seconds'] for r in rows):.1f} |"
        )
    return "\n".join(lines) + f"\n\ndevice: {clean['device']}, jax {clean['jax']}\n"


def step_table(results: list[dict]) -> str:
    """The markdown table of step rows."""
    lines = [
        "| method | model | batch | devices | ms/step (p90) | source img/s | ÷ first | vs 4 plain | compile s "
        "| GFLOP/device | FLOPs vs 4 plain | MFU | temp MiB | all-reduce MiB |",
        "|---" * 14 + "|",
    ]
    for r in results:
        mfu = f"{100 * r['mfu']:.1f} %" if r["mfu"] is not None else "—"
        vs_plain = f"{r['vs_4_plain']:.2f}" if "vs_4_plain" in r else "—"
        flops_vs_plain = f"{r['flops_vs_4_plain']:.2f}" if "flops_vs_4_plain" in r else "—"
        lines.append(
            f"| {r['label']} | {r['model']} ({r['dtype']}) | {r['batch_size']}×{r['image_size']}² | {r['num_devices']} "
            f"| {r['ms_per_step']:.1f} ({r['p90_ms_per_step']:.1f}) | {r['source_images_per_s']:.0f} "
            f"| {r['step_time_ratio']:.2f} | {vs_plain} | {r['compile_seconds']:.1f} "
            f"| {r['flops_per_device'] / 1e9:.2f} | {flops_vs_plain} | {mfu} "
            f"| {r.get('temp_bytes', float('nan')) / 2**20:.1f} | {r['all_reduce_bytes'] / 2**20:.2f} |"
        )
    return (
        "\n".join(lines) + f"\n\ndevice: {results[0]['device']}, jax {results[0]['jax']}, flax {results[0]['flax']}\n"
    )


def input_table(result: dict) -> str:
    """The markdown table of an input row ("—" for what was not measured)."""
    step, bound, per_cpu_s = "—", "—", "—"
    if result.get("loader_images_per_cpu_s") is not None:
        per_cpu_s = f"{result['loader_images_per_cpu_s']:.0f}"
    if result["step_images_per_s"] is not None:
        step = f"{result['step_images_per_s']:.0f} ({result['method']}, {result['model']})"
        bound = "yes" if result["input_bound"] else "no"
    return (
        "| dataset | batch | workers | host cores | loader img/s | per core | per CPU-second | step img/s "
        "| input-bound |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"| {result['dataset']} | {result['batch_size']}×{result['image_size']}² | {result['workers']} "
        f"| {result['host_cores']} | {result['loader_images_per_s']:.0f} "
        f"| {result['loader_images_per_s_per_core']:.0f} | {per_cpu_s} | {step} | {bound} "
        f"|\n\ndevice: {result['device']}, jax {result['jax']}\n"
    )


def write(out: str, results: list[dict], table: str, *, plot: bool) -> None:
    """Appends the rows to `out`, writes the table to `<out>.md` (also printed) and the plot to `<out>.png`."""
    rows = storage.AppendFile(out)
    for result in results:
        rows.write(json.dumps(result) + "\n")
    rows.close()
    stem = os.path.splitext(out)[0]
    storage.write_text(f"{stem}.md", table)
    if plot:
        benchmark_plot(results, f"{stem}.png")
    print(table, flush=True)
