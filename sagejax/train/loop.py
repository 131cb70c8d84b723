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
from sagejax.evaluate import split_metrics
from sagejax.methods.views import config_views
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
    """Jitted eval forward in eval mode (running BN statistics): the batch's logits and, replicated
    to every process, its labels and other per-example fields (so metrics see the global split)."""

    def eval_fn(params, model_state, batch):
        model = merge_model(graphdef, params, model_state)
        model.eval()
        fields = {key: value for key, value in batch.items() if key not in ("image", "saliency")}
        return {"logits": models.forward(model, batch["image"])["logits"], **fields}

    return jax.jit(eval_fn, in_shardings=(None, None, batch_sharding(mesh)), out_shardings=replicated(mesh))


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
        only_attack_types=tuple(config.eval.attack_types) or None,
    )
    outputs = []
    for batch in loader:
        out = jax.device_get(eval_fn(state.params, state.model_state, global_batch(mesh, batch)))
        outputs.append({key: value[out["valid"]] for key, value in out.items()})
    gathered = {key: np.concatenate([out[key] for out in outputs]) for key in outputs[0]}
    attack_class = config.eval.attack_class
    return split_metrics(
        logits=gathered["logits"],
        labels=gathered["label"],
        attack_class=None if attack_class < 0 else attack_class,
        attack_types=gathered.get("attack_type"),
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
        dataset_classes = builder.info.features["label"].num_classes
        if dataset_classes != config.data.num_classes:
            raise ValueError(
                f"config.data.num_classes={config.data.num_classes} but {builder.info.full_name} has "
                f"{dataset_classes} labels; set --config.data.num_classes={dataset_classes}"
            )
        self.optimizer = make_optimizer(config.optim, config.train.steps)
        self.graphdef, state = create_train_state(build_model(config), self.optimizer)
        self.shardings = state_sharding(self.mesh, state)
        self.state = jax.device_put(state, self.shardings)
        self.eval_fn = make_eval_fn(self.graphdef, self.mesh)
        self.train_iter = iter(
            data.make_loader(
                name=config.data.name,
                config=config.data.builder_config,
                data_dir=self.data_dir,
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
            for metric, value in evaluate_split(self.config, self.eval_fn, self.state, self.mesh, split).items():
                results[f"eval/{split}/{metric}"] = value
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
            local_batch = _train_fields(next(run.train_iter))
            if step == first_step + 1:
                logger.images(step, saliency_panels(config.method, local_batch))
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
    """`results.json` and `results.md` (a split × metric table) in `workdir`, process 0 only."""
    if jax.process_index() != 0:
        return
    with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"step": step, **results}, f, indent=2, sort_keys=True)
    rows = {}
    for key, value in results.items():
        _, split, metric = key.split("/", 2)
        rows.setdefault(split, {})[metric] = value
    metrics = sorted({metric for row in rows.values() for metric in row})
    lines = ["| split | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for split, row in rows.items():
        lines.append(f"| {split} | " + " | ".join(f"{row[m]:.4f}" if m in row else "—" for m in metrics) + " |")
    with open(os.path.join(workdir, "results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def saliency_panels(method_config, batch, count: int = 8) -> dict[str, np.ndarray]:
    """x, s, x~ and x~' of the first `count` examples, for the TensorBoard image panel."""
    views = config_views(
        method_config,
        images=jnp.asarray(batch["image"][:count]),
        saliency=jnp.asarray(batch["saliency"][:count]),
        rng=jax.random.key(0),
    )
    return {f"panels/{name}": np.asarray(views[name]) for name in ("x", "saliency", "x_keep", "x_degrade")}


def _train_fields(batch):
    return {key: batch[key] for key in ("image", "saliency", "label")}
