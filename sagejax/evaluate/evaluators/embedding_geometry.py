"""Embedding-geometry evaluator: the effective rank, alignment and uniformity of a method's embeddings of each split
(`sagejax.evaluate.geometry_metrics`), which say what a training term did to the features a probe reads."""

from __future__ import annotations

import jax
import numpy as np

from sagejax.augment import simclr
from sagejax.errors import ConfigError
from sagejax.evaluate import geometry_metrics
from sagejax.evaluate.evaluators.base import Evaluator


class EmbeddingGeometryEvaluator(Evaluator):
    """Keys `<split>/effective_rank`, `<split>/uniformity`, `<split>/alignment` (two SimCLR views of each image, drawn
    with the method's view settings where it has them, from a fixed key: example i of every batch gets the same
    draw, so every run is measured on the same views) and `<split>/class_alignment` (same-label
    pairs of clean images), on the first `max_examples` examples of the split."""

    DEFAULTS = dict(
        splits=("validation",),
        every_steps=0,
        batch_size=256,
        feature_key="embedding",  # the method's prediction to measure
        max_examples=2000,  # pairwise terms are quadratic in the examples
        uniformity_t=2.0,
        alignment_alpha=2.0,
        view_seed=0,
    )

    def check_dataset(self, builder) -> None:
        if "label" not in builder.info.features:
            raise ConfigError(f"config.evals.{self.name}: {builder.info.full_name} has no 'label' for class_alignment")
        if self.settings.max_examples < 2:
            raise ConfigError(f"config.evals.{self.name}.max_examples must be >= 2, got {self.settings.max_examples}")

    def forward(self, model, batch) -> dict:
        key = self.settings.feature_key
        out = {"label": batch["label"], "valid": batch["valid"]}
        first_key, second_key = jax.random.split(jax.random.key(self.settings.view_seed))
        for name, rng in (("clean", None), ("view1", first_key), ("view2", second_key)):
            images = (
                batch["image"]
                if rng is None
                else simclr.simclr_view(rng, batch["image"], **simclr.view_settings(self.config.method))[0]
            )
            features = self.method_output(model, {**batch, "image": images}, key)
            out[name] = features.reshape(features.shape[0], -1)
        return out

    def run(self, state):
        s = self.settings
        metrics = {}
        for split in s.splits:
            gathered = {name: value[: s.max_examples] for name, value in self.gather(state, split).items()}
            clean = gathered["clean"]
            metrics[f"{split}/effective_rank"] = geometry_metrics.effective_rank(clean)
            metrics[f"{split}/uniformity"] = geometry_metrics.uniformity(clean, t=s.uniformity_t)
            metrics[f"{split}/alignment"] = geometry_metrics.alignment(
                gathered["view1"], gathered["view2"], alpha=s.alignment_alpha
            )
            if np.bincount(gathered["label"]).max() >= 2:
                metrics[f"{split}/class_alignment"] = geometry_metrics.class_alignment(clean, gathered["label"])
        return metrics, {}
