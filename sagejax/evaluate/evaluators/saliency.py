"""Saliency evaluator: every saliency-benchmark metric of the method's predicted map on whole splits, next to a
centre-bias Gaussian and a uniform map scored on the same images and fixations."""

from __future__ import annotations

import numpy as np

from sagejax import augment
from sagejax.errors import ConfigError
from sagejax.evaluate.evaluators.base import Evaluator
from sagejax.evaluate.saliency_metrics import centre_bias_map, evaluate_saliency, uniform_map

PANEL_COUNT = 8


class SaliencyEvaluator(Evaluator):
    """Scores `predict(...)[prediction_key]` (B, H, W) against the human map `map_key` and the fixations
    `fixations_key` (or, with none stored, the map's pixels ≥ `fixation_threshold` × its maximum). Keys
    `<split>/<metric>`, `<split>/centre_bias/<metric>`, `<split>/uniform/<metric>`. Metrics are computed per eval
    batch (sAUC negatives = the other images of that batch) and averaged over images."""

    DEFAULTS = dict(
        splits=("validation",),
        every_steps=0,
        batch_size=100,  # sAUC negatives are the other images of an eval batch
        prediction_key="density",  # the method's predicted map
        map_key="density",  # the human map
        fixations_key="fixations",  # "" = derive fixations from the human map
        fixation_threshold=0.5,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.settings.batch_size < 2:
            raise ConfigError(
                f"config.evals.{self.name}.batch_size must be >= 2 for saliency evaluation (sAUC uses the other images)"
            )
        self._baselines = {}  # split -> baseline rows; they do not change during training

    def check_dataset(self, builder) -> None:
        """The dataset must hold the human map (and fixations) the evaluator reads."""
        for key in (self.settings.map_key, self.settings.fixations_key):
            if key and key not in builder.info.features:
                raise ConfigError(
                    f"config.evals.{self.name}: {builder.info.full_name} has no feature {key!r}; "
                    f"features: {list(builder.info.features)}"
                )

    def forward(self, model, batch) -> dict:
        return {
            "prediction": self.method_output(model, batch, self.settings.prediction_key),
            "density": batch[self.settings.map_key],
            "fixations": augment.fixations_of(
                batch,
                map_key=self.settings.map_key,
                fixations_key=self.settings.fixations_key,
                threshold=self.settings.fixation_threshold,
            ),
            "panel_image": batch["image"][:PANEL_COUNT],  # the rest of the images stay on the devices
            "valid": batch["valid"],
        }

    def run(self, state):
        metrics, panels = {}, {}
        for split in self.settings.splits:
            split_metrics, split_panels = self._run_split(state, split)
            metrics.update({f"{split}/{name}": value for name, value in split_metrics.items()})
            panels.update({f"eval_panels/{self.name}/{split}/{name}": images for name, images in split_panels.items()})
        return metrics, panels

    def _run_split(self, state, split: str):
        rows = {"": [], "centre_bias/": [], "uniform/": []}
        weights, panels = [], {}
        for out in self.batches(state, split):
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
                    "image": out["panel_image"],
                    "human": out["density"][:PANEL_COUNT],
                    "prediction": _max_normalised(out["prediction"][:PANEL_COUNT]),
                }
        if split not in self._baselines:
            self._baselines[split] = {prefix: _weighted_means(rows[prefix], weights) for prefix in rows if prefix}
        metrics = _weighted_means(rows[""], weights)
        for prefix, baseline in self._baselines[split].items():
            metrics.update({f"{prefix}{name}": value for name, value in baseline.items()})
        return metrics, panels


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


class AttentionAlignmentEvaluator(SaliencyEvaluator):
    """The saliency metrics of a model's attention (its attention head's map, or for a model without one the
    activation map of its last features: the method's `attention` prediction) against human maps."""

    DEFAULTS = {**SaliencyEvaluator.DEFAULTS, "prediction_key": "attention"}
