"""Run logs: console progress, JSONL, TensorBoard scalars and image panels (process 0 only)."""

from __future__ import annotations

import json
import os
import sys
import time

import jax
import numpy as np

from sagejax import storage


class MetricLogger:
    """Writes `train/<term>` and `eval/<name>/<split>/<metric>` scalars to the console, JSONL and TensorBoard."""

    def __init__(self, workdir: str, *, total_steps: int, tensorboard: bool = True, resume_step: int | None = None):
        """With `resume_step`, rows of later steps in an existing metrics.jsonl (logged after the checkpoint the
        run resumes from, so about to be logged again) are dropped first."""
        self.total_steps = total_steps
        self.active = jax.process_index() == 0
        self._start_time = time.time()
        self._start_step = None
        self._jsonl = None
        self._tb = None
        if self.active:
            path = storage.path(workdir) / "metrics.jsonl"
            if resume_step is not None and path.exists():
                _drop_rows_after(path, resume_step)
            self._jsonl = storage.AppendFile(path)
            if tensorboard:
                self._tb = tensorboard_writer(storage.path(workdir) / "tensorboard")

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        """Logs one row of scalars for `step`."""
        if not self.active:
            return
        row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in row.items():
                if key != "step":
                    self._tb.add_scalar(key, value, step)

    def progress(self, step: int, metrics: dict[str, float]) -> None:
        """One console line: step, rate, ETA and the given metrics."""
        if not self.active:
            return
        now = time.time()
        if self._start_step is None:
            self._start_step, self._start_time = step, now
        done = step - self._start_step
        timing = ""
        if done:  # a rate is known only once steps have passed since the first line
            rate = done / max(now - self._start_time, 1e-9)
            timing = f"{rate:6.2f} steps/s eta {(self.total_steps - step) / rate:6.0f}s  "
        shown = " ".join(f"{k.split('/', 1)[-1]}={v:.4g}" for k, v in metrics.items())
        print(f"[{step:>6}/{self.total_steps}] {timing}{shown}", file=sys.stderr, flush=True)

    def images(self, step: int, panels: dict[str, np.ndarray]) -> None:
        """Image panels (NHWC in [0,1], or NHW maps) to TensorBoard."""
        if not self.active or self._tb is None:
            return
        for name, images in panels.items():
            images = np.asarray(images, np.float32)
            if images.ndim == 3:
                images = images[..., None]
            self._tb.add_images(name, np.clip(images, 0.0, 1.0), step, dataformats="NHWC")

    def close(self) -> None:
        """Flushes and closes the files."""
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def _drop_rows_after(path, step: int) -> None:
    """Rewrites the JSONL file at `path` without its rows of steps after `step` (whole)."""
    lines = [line + "\n" for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) == len(lines):
        return
    storage.write_text(path, "".join(kept))


class _BucketEventFile:
    """A TensorBoard event file on a bucket, uploaded whole at each flush (objects cannot be appended to)."""

    def __init__(self, path: str):
        self._path = storage.path(path)  # a new name per writer, so nothing is there yet
        self._bytes = bytearray()
        self._uploaded = -1

    def write(self, data: bytes) -> None:
        self._bytes += data

    def flush(self) -> None:
        if len(self._bytes) != self._uploaded:  # tensorboardX flushes on a timer, changed or not
            storage.write_bytes(self._path, bytes(self._bytes))
            self._uploaded = len(self._bytes)

    def close(self) -> None:
        self.flush()


class _BucketEventFiles:
    """tensorboardX's writer factory for gs:// folders, through epath like every other file of a run."""

    def open(self, path: str) -> _BucketEventFile:
        return _BucketEventFile(path)

    def directory_check(self, path: str) -> None:
        storage.path(path).mkdir(parents=True, exist_ok=True)


def tensorboard_writer(folder):
    """A tensorboardX SummaryWriter writing into `folder` (a filesystem path or a gs:// folder)."""
    from tensorboardX import SummaryWriter, record_writer

    if storage.is_url(folder):
        record_writer.register_writer_factory("gs", _BucketEventFiles())
    return SummaryWriter(os.fspath(folder))
