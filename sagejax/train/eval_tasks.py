"""What the trainer evaluates, by `config.eval.task`: class predictions ("classification") or pixel densities
("saliency", a teacher). Each task jits its eval forward over the mesh, reduces a whole split to metrics and
chooses the image panels that TensorBoard shows."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from sagejax import data, models
from sagejax.evaluate import split_metrics
from sagejax.evaluate.saliency_metrics import centre_bias_map, evaluate_saliency, uniform_map
from sagejax.methods.teacher import human_fixations, predict_log_density
from sagejax.methods.views import config_views
from sagejax.train.mesh import batch_sharding, global_batch, replicated
from sagejax.train.state import merge_model

PANEL_COUNT = 8


def eval_batches(config, eval_fn, state, mesh, split: str):
    """Yields eval_fn's host outputs for each batch of a whole split, padding rows (valid=False) removed; an output
    may cover only the first rows of the batch (e.g. panel images)."""
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
    for batch in loader:
        out = jax.device_get(eval_fn(state.params, state.model_state, global_batch(mesh, numeric_fields(batch))))
        yield {key: value[out["valid"][: len(value)]] for key, value in out.items()}


def numeric_fields(batch: dict) -> dict:
    """The batch's numeric and boolean arrays (text ids cannot go to a device)."""
    return {key: value for key, value in batch.items() if np.asarray(value).dtype.kind in "biuf"}


def _jit_eval(forward, graphdef, mesh):
    """jit of forward(model in eval mode, batch) -> dict, outputs replicated to every process."""

    def eval_fn(params, model_state, batch):
        model = merge_model(graphdef, params, model_state)
        model.eval()
        return forward(model, batch)

    return jax.jit(eval_fn, in_shardings=(None, None, batch_sharding(mesh)), out_shardings=replicated(mesh))


class ClassificationTask:
    """Accuracy, AUROC and PAD rates of the logits on whole splits (`split_metrics`)."""

    def __init__(self, config, graphdef, mesh):
        self.config, self.mesh = config, mesh

        def forward(model, batch):
            fields = {key: value for key, value in batch.items() if key not in ("image", "saliency")}
            return {"logits": models.forward(model, batch["image"])["logits"], **fields}

        self.eval_fn = _jit_eval(forward, graphdef, mesh)

    def check_dataset(self, builder) -> None:
        """The model's class count must match the dataset's labels."""
        classes = builder.info.features["label"].num_classes
        if classes != self.config.data.num_classes:
            raise ValueError(
                f"config.data.num_classes={self.config.data.num_classes} but {builder.info.full_name} has "
                f"{classes} labels; set --config.data.num_classes={classes}"
            )

    def train_panels(self, batch) -> dict[str, np.ndarray]:
        """x, s, x~ and x~' of the first training examples."""
        return saliency_panels(self.config.method, batch)

    def evaluate(self, state, split: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Metrics of one split (keys `<metric>`) and no panels."""
        outputs = list(eval_batches(self.config, self.eval_fn, state, self.mesh, split))
        gathered = {key: np.concatenate([out[key] for out in outputs]) for key in outputs[0]}
        attack_class = self.config.eval.attack_class
        metrics = split_metrics(
            logits=gathered["logits"],
            labels=gathered["label"],
            attack_class=None if attack_class < 0 else attack_class,
            attack_types=gathered.get("attack_type"),
        )
        return metrics, {}


class SaliencyTask:
    """Every saliency metric of the teacher's pixel density on whole splits, next to a centre-bias Gaussian and a
    uniform map scored on the same images (keys `<metric>`, `centre_bias/<metric>`, `uniform/<metric>`).

    Metrics are computed per eval batch (sAUC negatives = the other images of that batch) and averaged over images.
    """

    def __init__(self, config, graphdef, mesh):
        self.config, self.mesh = config, mesh
        method = config.method
        if config.eval.batch_size < 2:
            raise ValueError("eval.batch_size must be >= 2 for saliency evaluation (sAUC uses the other images)")

        def forward(model, batch):
            return {
                "prediction": jnp.exp(predict_log_density(model, batch["image"])),
                "density": batch[method.density_key],
                "fixations": human_fixations(batch, method),
                "panel_image": batch["image"][:PANEL_COUNT],  # the rest of the images stay on the devices
                "valid": batch["valid"],
            }

        self.eval_fn = _jit_eval(forward, graphdef, mesh)
        self._baselines = {}  # split -> baseline rows; they do not change during training

    def check_dataset(self, builder) -> None:
        """The dataset must hold the human map (and fixations) the method reads; the model outputs one channel."""
        method = self.config.method
        for key in (method.density_key, method.fixations_key):
            if key and key not in builder.info.features:
                raise ValueError(
                    f"{builder.info.full_name} has no feature {key!r}; features: {list(builder.info.features)}"
                )
        if self.config.data.num_classes != 1:
            raise ValueError("a saliency teacher outputs one channel; set config.data.num_classes=1")

    def train_panels(self, batch) -> dict[str, np.ndarray]:
        """Images and human maps of the first training examples."""
        return {
            "panels/image": batch["image"][:PANEL_COUNT],
            "panels/human": batch[self.config.method.density_key][:PANEL_COUNT],
        }

    def evaluate(self, state, split: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Teacher and baseline metrics of one split; panels image / human map / prediction of its first images."""
        rows = {"": [], "centre_bias/": [], "uniform/": []}
        weights, panels = [], {}
        for out in eval_batches(self.config, self.eval_fn, state, self.mesh, split):
            count = out["prediction"].shape[0]
            maps = {"": out["prediction"]}
            if split not in self._baselines:
                shape = dict(height=out["prediction"].shape[1], width=out["prediction"].shape[2])
                maps["centre_bias/"] = np.broadcast_to(centre_bias_map(**shape), out["prediction"].shape)
                maps["uniform/"] = np.broadcast_to(uniform_map(**shape), out["prediction"].shape)
            for prefix, prediction in maps.items():
                rows[prefix].append(
                    evaluate_saliency(
                        predictions=prediction,
                        densities=out["density"],
                        fixations=out["fixations"],
                        seed=self.config.seed,
                    )
                )
            weights.append(count)
            if not panels:
                panels = {
                    "eval_panels/image": out["panel_image"],
                    "eval_panels/human": out["density"][:PANEL_COUNT],
                    "eval_panels/prediction": _max_normalised(out["prediction"][:PANEL_COUNT]),
                }
        if split not in self._baselines:
            self._baselines[split] = {prefix: _weighted_means(rows[prefix], weights) for prefix in rows if prefix}
        metrics = _weighted_means(rows[""], weights)
        for prefix, baseline in self._baselines[split].items():
            metrics.update({f"{prefix}{name}": value for name, value in baseline.items()})
        return metrics, {f"{name}/{split}": images for name, images in panels.items()}


def _weighted_means(rows: list[dict[str, float]], weights: list[int]) -> dict[str, float]:
    """Per-metric mean of per-batch means weighted by batch size, NaN batches left out."""
    result = {}
    for name in rows[0]:
        values = np.array([row[name] for row in rows])
        w = np.array(weights, dtype=np.float64)
        kept = ~np.isnan(values)
        result[name] = float(np.sum(values[kept] * w[kept]) / np.sum(w[kept])) if kept.any() else float("nan")
    return result


def _max_normalised(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its maximum, for display."""
    peak = maps.max(axis=(-2, -1), keepdims=True)
    return maps / np.where(peak > 0, peak, 1.0)


def saliency_panels(method_config, batch, count: int = PANEL_COUNT) -> dict[str, np.ndarray]:
    """x, s, x~ and x~' of the first `count` examples, for the TensorBoard image panel."""
    views = config_views(
        method_config,
        images=jnp.asarray(batch["image"][:count]),
        saliency=jnp.asarray(batch["saliency"][:count]),
        rng=jax.random.key(0),
    )
    return {f"panels/{name}": np.asarray(views[name]) for name in ("x", "saliency", "x_keep", "x_degrade")}


TASKS = {"classification": ClassificationTask, "saliency": SaliencyTask}


def make_task(config, graphdef, mesh):
    """The evaluation task named by `config.eval.task` (default "classification")."""
    name = config.eval.get("task", "classification")
    if name not in TASKS:
        raise ValueError(f"unknown eval.task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](config, graphdef, mesh)
