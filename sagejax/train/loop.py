"""The training loop: data → jitted step → logs, periodic eval, checkpoints, exact resume.

The loop holds no method or model knowledge: `methods.make_loss` supplies the loss, the
model registry the network, `sagejax.data` the batches.
"""

from __future__ import annotations

import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sagejax import data, methods, models
from sagejax.evaluate import classification
from sagejax.train import checkpoint
from sagejax.train.logger import MetricLogger
from sagejax.train.mesh import batch_sharding, global_batch, make_mesh, replicated, state_sharding
from sagejax.train.optim import make_optimizer
from sagejax.train.run_info import write_run_info
from sagejax.train.state import create_train_state, merge_model
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


def make_eval_fn(graphdef, mesh):
    """Jitted eval forward: logits of a batch with the model in eval mode (running BN statistics)."""

    def logits_fn(params, model_state, images):
        model = merge_model(graphdef, params, model_state)
        model.eval()
        return models.forward(model, images)["logits"]

    return jax.jit(logits_fn, in_shardings=(None, None, batch_sharding(mesh)), out_shardings=replicated(mesh))


def evaluate_split(config, eval_fn, state, mesh, split: str) -> dict[str, float]:
    """Accuracy of the current state on one whole split (last batch padded, padding masked out)."""
    loader = data.make_loader(
        name=config.data.name,
        config=config.data.builder_config,
        data_dir=os.path.expanduser(config.data.data_dir),
        split=split,
        batch_size=config.eval.batch_size,
        seed=config.seed,
        shuffle=False,
        num_epochs=1,
        pad_remainder=True,
    )
    all_logits, all_labels = [], []
    for batch in loader:
        logits = jax.device_get(eval_fn(state.params, state.model_state, global_batch(mesh, batch["image"])))
        valid = _process_rows(batch["valid"], logits.shape[0])
        all_logits.append(_process_rows(logits, logits.shape[0])[valid])
        all_labels.append(batch["label"][valid])
    logits, labels = np.concatenate(all_logits), np.concatenate(all_labels)
    return {"accuracy": classification.accuracy(logits_or_preds=logits, labels=labels)}


def _process_rows(rows, global_rows: int):
    """This process's slice of a replicated global-batch array (the rows its loader supplied)."""
    per_process = global_rows // jax.process_count()
    if rows.shape[0] == per_process:
        return rows
    start = jax.process_index() * per_process
    return rows[start : start + per_process]


def _all_finite(tree) -> bool:
    return bool(jax.device_get(jax.tree.reduce(jnp.logical_and, jax.tree.map(lambda x: jnp.all(jnp.isfinite(x)), tree))))


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
    """Trains `config` in `workdir` (resuming if a checkpoint is there); returns the final eval metrics."""
    write_run_info(workdir, config)
    data_dir = os.path.expanduser(config.data.data_dir)
    mesh = make_mesh(config.mesh.axes.to_dict())
    data.build_dataset(config.data.name, config=config.data.builder_config, data_dir=data_dir)

    model = build_model(config)
    optimizer = make_optimizer(config.optim, config.train.steps)
    graphdef, state = create_train_state(model, optimizer)
    shardings = state_sharding(mesh, state)
    state = jax.device_put(state, shardings)
    step_fn = jit_train_step(
        make_train_step(graphdef=graphdef, loss_fn=methods.make_loss(config.method), optimizer=optimizer),
        mesh=mesh,
        state=state,
    )
    eval_fn = make_eval_fn(graphdef, mesh)

    train_iter = iter(
        data.make_loader(
            name=config.data.name,
            config=config.data.builder_config,
            data_dir=data_dir,
            split=config.data.train_split,
            batch_size=config.train.batch_size,
            seed=config.seed,
            shuffle=True,
            num_epochs=None,
        )
    )
    manager = checkpoint.make_manager(workdir)
    restored = checkpoint.restore_latest(manager, checkpoint.abstract_like(state, shardings), train_iter)
    if restored is not None:
        state = restored
    first_step = int(jax.device_get(state.step))
    logger = MetricLogger(workdir, total_steps=config.train.steps, tensorboard=config.train.tensorboard)
    rng = jax.random.key(config.seed)
    sigterm = _SigtermFlag()
    last_saved = first_step
    try:
        for step in range(first_step + 1, config.train.steps + 1):
            batch = global_batch(mesh, _train_fields(next(train_iter)))
            state, metrics = step_fn(state, batch, rng)
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
                _log_eval(config, eval_fn, state, mesh, logger, step)
            if sigterm.raised or step % config.train.checkpoint_every_steps == 0 or step == config.train.steps:
                if not _all_finite(state.params):
                    raise NonFiniteLossError(
                        f"parameters are not finite at step {step}; not saving. The last good checkpoint "
                        f"(step {last_saved}) in {workdir} is kept"
                    )
                checkpoint.save(manager, step, state, train_iter)
                last_saved = step
            if sigterm.raised:
                print(f"SIGTERM: saved step {step} to {workdir}; stopping", flush=True)
                return {}
        return _log_eval(config, eval_fn, state, mesh, logger, config.train.steps)
    finally:
        sigterm.restore()
        manager.close()
        logger.close()


def _train_fields(batch):
    return {key: batch[key] for key in ("image", "saliency", "label")}


def _log_eval(config, eval_fn, state, mesh, logger, step) -> dict[str, float]:
    results = {}
    for split in config.eval.splits:
        for metric, value in evaluate_split(config, eval_fn, state, mesh, split).items():
            results[f"eval/{split}/{metric}"] = value
    logger.scalars(step, results)
    logger.progress(step, results)
    return results
