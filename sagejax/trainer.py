"""The training loop: data → compiled step → logs, named evaluators, checkpoints, exact resume.

The loop holds no method, model or evaluator knowledge: `methods.get` supplies the loss and the predictions,
`models.build_model` the network (through `train.state.init_state`), `sagejax.data` the batches and their device
transform, `sagejax.evaluate.evaluators` the evaluations of `config.evals`.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import signal
import tempfile

import jax
import numpy as np

from sagejax import data, methods, storage
from sagejax.errors import ConfigError, MissingError, SagejaxError, StorageError, caused_by
from sagejax.evaluate.evaluators import make_evaluators
from sagejax.report import tables
from sagejax.train import checkpoint, watchdog
from sagejax.train.logger import MetricLogger
from sagejax.train.mesh import global_batch, make_mesh, mesh_devices, replicated_key
from sagejax.train.optim import ema_params, make_optimizer
from sagejax.train.pretrained import read_pretrained
from sagejax.train.run_config import check_resume
from sagejax.train.run_info import write_run_info
from sagejax.train.state import init_state
from sagejax.train.step import STOP_KEY, batch_spec, compile_train_step, make_train_step


class NonFiniteLossError(SagejaxError, FloatingPointError):
    """Raised when a step produces a NaN or Inf loss, gradient or parameter; the last good checkpoint is kept."""


class _SigtermFlag:
    """Turns SIGTERM into a flag the loop checks between steps, so it can save and stop cleanly."""

    def __init__(self):
        self.raised = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        self.raised = True

    def column(self, local_batch: dict) -> dict:
        """`local_batch` with this process's flag as a column (multi-process runs): the step reduces it over every
        process's rows into its `STOP_KEY` metric, so all processes learn of a SIGTERM to any one of them from the
        same step and save the same step (a process deciding alone would enter the collective save without its
        peers)."""
        if jax.process_count() == 1:
            return local_batch
        rows = len(next(iter(local_batch.values())))
        return {**local_batch, STOP_KEY: np.full((rows,), self.raised, np.uint8)}

    def restore(self):
        signal.signal(signal.SIGTERM, self._previous)


class _Run:
    """Everything a run needs, built once from its config: mesh, method, state (restored, or initialised on the
    mesh), evaluators, and for training the data iterator."""

    def __init__(self, config, workdir: str, *, train: bool = True):
        self.config, self.workdir = config, workdir
        storage.check_backend(workdir)
        if config.train.steps < 1:
            raise ConfigError(f"config.train.steps must be >= 1, got {config.train.steps}")
        self.mesh = make_mesh(config.mesh.axes.to_dict(), devices=mesh_devices(config.mesh.get("num_devices", 0)))
        if train and config.train.batch_size % self.mesh.size:
            raise ConfigError(
                f"config.train.batch_size={config.train.batch_size} cannot be split over the {self.mesh.size} devices "
                f"of the mesh; use a multiple of {self.mesh.size}"
            )
        self.accumulate_steps = config.optim.get("accumulate_steps", 1)
        if train and (self.accumulate_steps < 1 or config.train.batch_size % (self.accumulate_steps * self.mesh.size)):
            raise ConfigError(
                f"config.optim.accumulate_steps={self.accumulate_steps} must be >= 1 and split "
                f"config.train.batch_size={config.train.batch_size} into micro-batches the {self.mesh.size} devices "
                f"can split: batch_size must be a multiple of accumulate_steps × {self.mesh.size}"
            )
        self.method = methods.get(config.method.name)
        self.loss_fn = self.method.make_loss(config.method)  # checks the method's settings before anything is built
        self.optimizer = make_optimizer(config.optim, config.train.steps, config.train.batch_size)
        self.setup = init_state(config, self.optimizer, self.mesh)
        pretrained = None
        if train and not checkpoint.has_checkpoint(workdir):
            pretrained = read_pretrained(config)  # config.init: read and matched before anything is written
        self.evaluators = make_evaluators(
            config, graphdef=self.setup.graphdef, mesh=self.mesh, predict=self.method.predict
        )
        for evaluator in self.evaluators.values():
            evaluator.check_outputs(self.setup.abstract)
        if train:
            checkpoint.check_writable(workdir)  # after the config checks, before the data build and compile
        self.manager = checkpoint.make_manager(workdir)
        self.train_iter = None
        if train:
            if not config.data.get("train_dir"):
                data.build(config.data)
            self.train_iter = data.train_iter(config)
        newest = self.manager.latest_step()
        if newest is not None:
            saved = checkpoint.saved_config(self.manager, newest)
            if saved is not None:
                check_resume(saved, config.to_dict(), step=newest, workdir=workdir, evaluating=not train)
        self.restored_step, self.state = checkpoint.restore_newest_good(
            self.manager, self.setup.abstract, data_iterator=self.train_iter
        )
        if self.state is None and train:
            self.state = self.setup.init(pretrained)

    def evaluate(self, logger: MetricLogger, step: int, *, only_due: bool = False) -> dict[str, float]:
        """Runs the evaluators (with `only_due`, those whose cadence hits `step`) on the parameters, or on their moving
        average when `optim.ema_decay` keeps one; logs `eval/<name>/<key>`."""
        results = {}
        average = ema_params(self.state.opt_state)
        scored = self.state if average is None else self.state.replace(params=average)
        for name, evaluator in self.evaluators.items():
            if only_due and not evaluator.due(step):
                continue
            metrics, panels = evaluator.run(scored)
            results.update({f"eval/{name}/{key}": value for key, value in metrics.items()})
            logger.images(step, panels)
        if results:
            logger.scalars(step, results)
            logger.progress(step, results)
        return results


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
    """Trains `config` in `workdir` (resuming if a checkpoint is there); returns the final eval metrics."""
    sigterm = _SigtermFlag()  # first: a SIGTERM during set-up still ends in a clean save
    try:
        return _train(config, workdir, sigterm)
    except Exception as error:
        code = _storage_errno(error, workdir)
        if code == errno.ENOSPC:
            raise StorageError(_disk_full_message(workdir)) from error
        if code is not None:
            raise StorageError(
                f"the run folder {storage.path(workdir)} can no longer be written ({os.strerror(code)}): make it "
                "writable and rerun the command, which resumes from the newest checkpoint"
            ) from error
        raise
    finally:
        sigterm.restore()


_STORAGE_ERRNOS = (errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS)


def _storage_errno(error: BaseException | None, workdir: str) -> int | None:
    """ENOSPC, or EACCES, EPERM or EROFS on a path in `workdir` (or on no named path), when `error` or an exception
    it was raised from is a full disk or a run folder that cannot be written (orbax and tfds wrap the OSError)."""
    inside = os.fspath(storage.path(workdir)) + "/"

    def code_of(exception) -> int | None:
        code, filename = getattr(exception, "errno", None), getattr(exception, "filename", None)
        if code == errno.ENOSPC:
            return code
        if code in _STORAGE_ERRNOS and (filename is None or _inside(filename, inside)):
            return code
        return errno.ENOSPC if "No space left on device" in str(exception) else None

    found = caused_by(error, lambda exception: code_of(exception) is not None)
    return None if found is None else code_of(found)


def _inside(filename, folder: str) -> bool:
    """Whether an OSError's `filename` (a path, bytes or a descriptor number) lies in `folder` (with its slash)."""
    if isinstance(filename, int):
        return False
    name = os.fsdecode(filename) if isinstance(filename, (bytes, os.PathLike)) else str(filename)
    return os.fspath(storage.path(name)).startswith(folder)


def _disk_full_message(workdir: str) -> str:
    if storage.is_url(workdir):  # the bucket cannot fill up: this host's disk did (temporary files)
        folder = tempfile.gettempdir()
        free = shutil.disk_usage(folder).free
        return (
            f"no space left on this host's disk ({free / 2**20:.0f} MiB free in {folder}) while writing the run in "
            f"{workdir}: free space on the host; the checkpoints already saved are kept"
        )
    folder = os.fspath(storage.path(workdir))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    free = shutil.disk_usage(folder).free
    return (
        f"no space left on the disk under {storage.path(workdir)} ({free / 2**20:.0f} MiB free): free space or use "
        "a workdir on another disk; the checkpoints already saved are kept"
    )


def _train(config, workdir: str, sigterm: _SigtermFlag) -> dict[str, float]:
    """The loop proper; a raised `sigterm` flag makes it save the current step and return {}."""
    run = _Run(config, workdir)
    step_fn = make_train_step(
        graphdef=run.setup.graphdef,
        loss_fn=run.loss_fn,
        optimizer=run.optimizer,
        transform=data.make_train_transform(config.data),
        accumulate_steps=run.accumulate_steps,
    )
    local_batch = next(run.train_iter)
    run.method.check_batch(config.method, local_batch)
    spec = batch_spec(run.mesh, sigterm.column(local_batch))
    compiled, compile_report = compile_train_step(step_fn, mesh=run.mesh, abstract_state=run.setup.abstract, batch=spec)
    write_run_info(workdir, config, devices=run.mesh.devices.flat, compile=compile_report)
    first_step = int(jax.device_get(run.state.step))
    logger = MetricLogger(
        workdir, total_steps=config.train.steps, tensorboard=config.train.tensorboard, resume_step=first_step
    )
    logger.scalars(first_step, {f"compile/{key}": value for key, value in compile_report.items()})
    logger.images(first_step + 1, run.method.train_panels(config.method, data.to_model_inputs(local_batch)))
    rng = replicated_key(run.mesh, config.seed)
    last_saved = run.restored_step
    # A checkpoint of this run was saved from a state checked finite; a restored one is good only if its checksums
    # were there to verify it (checkpoints from before checksums restore unverified).
    unverified = (
        run.restored_step
        if run.restored_step and not checkpoint.has_checksums(run.manager, run.restored_step)
        else None
    )
    finish = functools.partial(_finish_step, config=config, logger=logger, workdir=workdir)
    pending = None  # (step, device metrics) of the newest step not yet checked on the host
    shared = jax.process_count() > 1
    agreed = False  # multi-process: a finished step's metrics said some process saw SIGTERM
    try:
        for step in range(first_step + 1, config.train.steps + 1):
            if step > first_step + 1:
                local_batch = next(run.train_iter)
            batch = global_batch(run.mesh, sigterm.column(local_batch))
            with jax.profiler.StepTraceAnnotation("train", step_num=step), jax.transfer_guard("disallow"):
                run.state, metrics = compiled(run.state, batch, rng)
            # Bounded dispatch: wait for the previous step before going on, so at most two steps are in flight
            # and a SIGTERM is honoured within two steps instead of after everything queued ahead of the devices.
            if pending is not None:
                agreed |= finish(*pending, last_saved=last_saved, unverified=unverified)
            pending = (step, metrics)
            stop = agreed if shared else sigterm.raised  # every process decides on the same values
            save = stop or step % config.train.checkpoint_every_steps == 0 or step == config.train.steps
            evaluate = step != config.train.steps and any(e.due(step) for e in run.evaluators.values())
            if save or evaluate:
                agreed |= finish(*pending, last_saved=last_saved, unverified=unverified)
                pending = None
            if save:
                checkpoint.save(run.manager, step, run.state, run.train_iter, config=config.to_dict())
                last_saved = step
                watchdog.beat(f"the checkpoint of step {step}")
            if evaluate:
                run.evaluate(logger, step, only_due=True)
            if stop:
                checkpoint.wait(run.manager)
                print(f"SIGTERM: saved step {step} to {workdir}; stopping", flush=True)
                return {}
        checkpoint.wait(run.manager)
        results = run.evaluate(logger, config.train.steps)
        write_results(workdir, results, step=config.train.steps)
        return results
    finally:
        checkpoint.wait(run.manager)
        run.manager.close()
        logger.close()


def _finish_step(
    step: int, metrics, *, last_saved: int | None, config, logger: MetricLogger, workdir: str, unverified=None
) -> bool:
    """Host side of a dispatched step: waits for its metrics, stops on non-finite values, logs at the cadence; returns
    whether any process had seen SIGTERM by then (multi-process runs). The error names the newest checkpoint as good
    only when it was verified (`unverified`: a restored step that was not)."""
    metrics = jax.device_get(metrics)
    stop = bool(metrics.pop(STOP_KEY, 0.0))
    watchdog.beat(f"step {step}")
    if not metrics.pop("finite"):
        if not last_saved:
            kept = "no checkpoint yet"
        elif last_saved == unverified:
            kept = (
                f"the newest checkpoint (step {last_saved}) in {workdir} is kept, but it was written before checksums "
                "were kept and could not be verified: if it was damaged, start a new workdir"
            )
        else:
            kept = f"the last good checkpoint (step {last_saved}) in {workdir} is kept"
        raise NonFiniteLossError(
            f"training diverged at step {step}: loss {metrics['loss']}, grad norm {metrics['grad_norm']}, "
            f"param norm {metrics['param_norm']} (not all finite); stopping; {kept}"
        )
    if step % config.train.log_every_steps == 0 or step == config.train.steps:
        row = {f"train/{key}": float(value) for key, value in metrics.items()}
        logger.scalars(step, row)
        logger.progress(step, row)
    return stop


def evaluate_checkpoint(config, workdir: str, *, write: bool = True) -> dict[str, float]:
    """Eval-only: restores the newest checkpoint in `workdir` and runs every evaluator on it; with `write`, the
    results replace the run's results.json / results.md (tools that add their own evaluations pass False)."""
    if not checkpoint.has_checkpoint(workdir):
        raise MissingError(f"no checkpoint in {storage.path(workdir) / 'checkpoints'} to evaluate")
    run = _Run(config, workdir, train=False)
    logger = MetricLogger(workdir, total_steps=config.train.steps, tensorboard=False)
    try:
        results = run.evaluate(logger, run.restored_step)
        if write:
            write_results(workdir, results, step=run.restored_step)
        return results
    finally:
        run.manager.close()
        logger.close()


def write_results(workdir: str, results: dict[str, float], *, step: int) -> None:
    """`results.json` and `results.md` (a row per evaluator/split[/baseline], a column per metric, also printed)
    in `workdir`, process 0 only."""
    if jax.process_index() != 0:
        return
    storage.write_text(
        storage.path(workdir) / "results.json", json.dumps({"step": step, **results}, indent=2, sort_keys=True)
    )
    rows = {}
    for key, value in results.items():
        row, metric = key.split("/", 1)[1].rsplit("/", 1)  # eval/<name>/<split>[/<baseline>]/<metric>
        rows.setdefault(row, {})[metric] = value
    metrics = sorted({metric for row in rows.values() for metric in row})
    cells = [[name] + [f"{row[m]:.4f}" if m in row else tables.MISSING for m in metrics] for name, row in rows.items()]
    table = tables.markdown_table(["evaluator/split", *metrics], cells) + "\n"
    storage.write_text(storage.path(workdir) / "results.md", table)
    print(f"results at step {step} ({workdir}/results.md):\n{table}", flush=True)
