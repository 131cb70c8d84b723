"""The training loop: data → jitted step → logs, periodic eval, checkpoints, exact resume.

The loop holds no method or model knowledge: `methods.make_loss` supplies the loss, the
model registry the network, `sagejax.data` the batches.
"""

from __future__ import annotations

import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sagejax import data, methods, models
from sagejax.train import checkpoint
from sagejax.train.eval_tasks import make_task, numeric_fields
from sagejax.train.logger import MetricLogger
from sagejax.train.mesh import global_batch, make_mesh, state_sharding
from sagejax.train.optim import make_optimizer
from sagejax.train.run_info import write_run_info
from sagejax.train.state import create_train_state
from sagejax.train.step import jit_train_step, make_train_step


class NonFiniteLossError(FloatingPointError):
    """Raised when a step produces a NaN or Inf loss; the last good checkpoint is kept."""


class _SigtermFlag:
    """Turns SIGTERM into a flag the loop checks between steps, so it can save and stop cleanly."""

    def __init__(self):
        self.raised = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        self.raised = True

    def restore(self):
        signal.signal(signal.SIGTERM, self._previous)


def build_model(config):
    """The model of `config.model`, initialised from `config.seed`."""
    return models.create_model(
        config.model.name,
        num_classes=config.data.num_classes,
        rngs=nnx.Rngs(config.seed),
        dtype=jnp.dtype(config.model.dtype),
        **config.model.kwargs.to_dict(),
    )


def _all_finite(tree) -> bool:
    return bool(
        jax.device_get(jax.tree.reduce(jnp.logical_and, jax.tree.map(lambda x: jnp.all(jnp.isfinite(x)), tree)))
    )


class _Run:
    """Everything a run needs, built once from its config: mesh, model graph, state, jitted functions."""

    def __init__(self, config, workdir: str):
        self.config, self.workdir = config, workdir
        self.data_dir = os.path.expanduser(config.data.data_dir)
        self.mesh = make_mesh(config.mesh.axes.to_dict())
        builder = data.build_dataset(
            config.data.name,
            config=config.data.builder_config,
            data_dir=self.data_dir,
            manual_dir=config.data.get("manual_dir") or None,
        )
        self.optimizer = make_optimizer(config.optim, config.train.steps)
        self.graphdef, state = create_train_state(build_model(config), self.optimizer)
        self.shardings = state_sharding(self.mesh, state)
        self.state = jax.device_put(state, self.shardings)
        self.task = make_task(config, self.graphdef, self.mesh)
        self.task.check_dataset(builder)
        train_dir = config.data.get("train_dir", "")  # a TFDS folder (e.g. from sagejax.label) to train on instead
        self.train_iter = iter(
            data.make_loader(
                name="tfds_dir" if train_dir else config.data.name,
                config=None if train_dir else config.data.builder_config,
                data_dir=os.path.expanduser(train_dir) if train_dir else self.data_dir,
                split=config.data.train_split,
                batch_size=config.train.batch_size,
                seed=config.seed,
                shuffle=True,
                num_epochs=None,
                exclude_attack_types=tuple(config.data.train_exclude_attack_types),
            )
        )
        self.manager = checkpoint.make_manager(workdir)
        restored = checkpoint.restore_latest(
            self.manager, checkpoint.abstract_like(self.state, self.shardings), self.train_iter
        )
        if restored is not None:
            self.state = restored

    def evaluate(self, logger: MetricLogger, step: int) -> dict[str, float]:
        """Evaluates every `config.eval.splits` split and logs `eval/<split>/<metric>`."""
        results = {}
        for split in self.config.eval.splits:
            metrics, panels = self.task.evaluate(self.state, split)
            results.update({f"eval/{split}/{metric}": value for metric, value in metrics.items()})
            logger.images(step, panels)
        logger.scalars(step, results)
        logger.progress(step, results)
        return results


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
    """Trains `config` in `workdir` (resuming if a checkpoint is there); returns the final eval metrics."""
    sigterm = _SigtermFlag()  # first: a SIGTERM during set-up still ends in a clean save
    try:
        return _train(config, workdir, sigterm)
    finally:
        sigterm.restore()


def _train(config, workdir: str, sigterm: _SigtermFlag) -> dict[str, float]:
    """The loop proper; a raised `sigterm` flag makes it save the current step and return {}."""
    write_run_info(workdir, config)
    run = _Run(config, workdir)
    step_fn = jit_train_step(
        make_train_step(graphdef=run.graphdef, loss_fn=methods.make_loss(config.method), optimizer=run.optimizer),
        mesh=run.mesh,
        state=run.state,
    )
    first_step = int(jax.device_get(run.state.step))
    logger = MetricLogger(workdir, total_steps=config.train.steps, tensorboard=config.train.tensorboard)
    rng = jax.random.key(config.seed)
    last_saved = first_step
    try:
        for step in range(first_step + 1, config.train.steps + 1):
            local_batch = train_fields(config, next(run.train_iter))
            if step == first_step + 1:
                logger.images(step, run.task.train_panels(local_batch))
            run.state, metrics = step_fn(run.state, global_batch(run.mesh, local_batch), rng)
            if step % config.train.log_every_steps == 0 or step == config.train.steps:
                metrics = {f"train/{k}": float(v) for k, v in jax.device_get(metrics).items()}
                if not np.isfinite(metrics["train/loss"]):
                    raise NonFiniteLossError(
                        f"loss became {metrics['train/loss']} at step {step}; stopping. The last good "
                        f"checkpoint (step {last_saved}) in {workdir} is kept"
                    )
                logger.scalars(step, metrics)
                logger.progress(step, metrics)
            if step % config.train.eval_every_steps == 0 and step != config.train.steps:
                run.evaluate(logger, step)
            if sigterm.raised or step % config.train.checkpoint_every_steps == 0 or step == config.train.steps:
                if not _all_finite(run.state.params):
                    raise NonFiniteLossError(
                        f"parameters are not finite at step {step}; not saving. The last good checkpoint "
                        f"(step {last_saved}) in {workdir} is kept"
                    )
                checkpoint.save(run.manager, step, run.state, run.train_iter)
                last_saved = step
            if sigterm.raised:
                print(f"SIGTERM: saved step {step} to {workdir}; stopping", flush=True)
                return {}
        results = run.evaluate(logger, config.train.steps)
        write_results(workdir, results, step=config.train.steps)
        return results
    finally:
        run.manager.close()
        logger.close()


def evaluate_checkpoint(config, workdir: str) -> dict[str, float]:
    """Eval-only: restores the newest checkpoint in `workdir` and evaluates every eval split."""
    run = _Run(config, workdir)
    step = run.manager.latest_step()
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(workdir, 'checkpoints')} to evaluate")
    logger = MetricLogger(workdir, total_steps=config.train.steps, tensorboard=False)
    try:
        results = run.evaluate(logger, step)
        write_results(workdir, results, step=step)
        return results
    finally:
        run.manager.close()
        logger.close()


def write_results(workdir: str, results: dict[str, float], *, step: int) -> None:
    """`results.json` and `results.md` (a split × metric table, also printed) in `workdir`, process 0 only."""
    if jax.process_index() != 0:
        return
    with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"step": step, **results}, f, indent=2, sort_keys=True)
    rows = {}
    for key, value in results.items():
        split, metric = key.split("/", 1)[1].rsplit("/", 1)  # eval/<split>[/<baseline>]/<metric>
        rows.setdefault(split, {})[metric] = value
    metrics = sorted({metric for row in rows.values() for metric in row})
    lines = ["| split | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for split, row in rows.items():
        lines.append(f"| {split} | " + " | ".join(f"{row[m]:.4f}" if m in row else "—" for m in metrics) + " |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(workdir, "results.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(f"results at step {step} ({workdir}/results.md):\n{table}", flush=True)


def train_fields(config, batch: dict) -> dict:
    """The training batch's numeric fields (no padding flag); with `config.data.saliency_feature` set, that
    feature (e.g. a teacher's map) becomes the batch's "saliency" in place of the stored one."""
    fields = {key: value for key, value in numeric_fields(batch).items() if key != "valid"}
    source = config.data.get("saliency_feature", "saliency")
    if source != "saliency":
        if source not in fields:
            raise ValueError(f"config.data.saliency_feature={source!r} is not in the training data: {sorted(fields)}")
        fields["saliency"] = fields.pop(source)
    return fields
