"""Robustness evaluator: accuracy of the method's logits on clean images and on every corruption × severity of
`sagejax.augment.corruptions`, corrupted on the devices before the clean eval forward. The corruption seed is
fixed and example i's randomness depends on i alone, so every run is scored on the same corrupted images."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from sagejax.augment import corruptions
from sagejax.errors import ConfigError
from sagejax.evaluate.evaluators import corrupted
from sagejax.evaluate.evaluators.base import Evaluator


class RobustnessEvaluator(Evaluator):
    """Keys `<split>/clean/accuracy`, `<split>/<corruption>/<severity>/accuracy`, `<split>/<corruption>/accuracy`
    (mean over severities), `<split>/main/accuracy` (mean over the 15 main ImageNet-C corruptions configured, or
    over every MNIST-C one) and `<split>/validation/accuracy` (speckle noise, Gaussian blur, spatter, saturate:
    ImageNet-C's held-out four, reported apart as the paper does)."""

    DEFAULTS = dict(
        splits=("test",),
        every_steps=0,
        batch_size=256,
        table="",  # "imagenet", "cifar", "mnist" (MNIST-C); "" = by image size (cifar up to 64 px)
        corruptions=(),  # names of the table's corruptions; () = all of them
        severities=(1, 2, 3, 4, 5),  # ignored for MNIST-C
        corruption_seed=0,  # the same for every run, so runs are compared on the same images
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        where = f"config.evals.{self.name}"
        s = self.settings
        table = corrupted.resolve_table(s.table, self.builder.info.features["image"].shape, where=where)
        self.corruptions = corrupted.sweep(table, s.corruptions, s.severities, seed=s.corruption_seed, where=where)

    def check_dataset(self, builder) -> None:
        for feature in ("image", "label"):
            if feature not in builder.info.features:
                raise ConfigError(f"config.evals.{self.name}: {builder.info.full_name} has no {feature!r} feature")

    def forward(self, model, batch) -> dict:
        predicted = jnp.argmax(self.method_output(model, batch, "logits"), axis=-1)
        return {"correct": predicted == batch["label"], "valid": batch["valid"]}

    def _accuracy(self, state, split: str, corruption=None) -> float:
        return float(np.mean(np.concatenate([out["correct"] for out in self.batches(state, split, corruption)])))

    def run(self, state):
        metrics = {}
        for split in self.settings.splits:
            metrics[f"{split}/clean/accuracy"] = self._accuracy(state, split)
            by_name: dict[str, list[float]] = {}
            for setting in self.corruptions:
                accuracy = self._accuracy(state, split, setting)
                by_name.setdefault(setting.name, []).append(accuracy)
                if setting.severity is not None:
                    metrics[f"{split}/{setting.label}/accuracy"] = accuracy
            for name, accuracies in by_name.items():
                metrics[f"{split}/{name}/accuracy"] = float(np.mean(accuracies))
            metrics.update(summary(by_name, split=split, mnist=self.corruptions[0].table == "mnist"))
        return metrics, {}


def summary(by_name: dict[str, list[float]], *, split: str, mnist: bool) -> dict[str, float]:
    """The means the paper reports: over the main corruptions (every one for MNIST-C) and the validation four."""
    groups = (
        {"main": list(by_name)}
        if mnist
        else {
            "main": [name for name in by_name if name in corruptions.MAIN],
            "validation": [name for name in by_name if name in corruptions.VALIDATION],
        }
    )
    return {
        f"{split}/{group}/accuracy": float(np.mean([np.mean(by_name[name]) for name in names]))
        for group, names in groups.items()
        if names
    }
