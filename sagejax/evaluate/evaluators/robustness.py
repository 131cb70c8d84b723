"""Robustness evaluator: accuracy on clean images and on every corruption × severity of `sagejax.augment.corruptions`,
corrupted on the devices before the clean eval forward. The classifier is the method's own logits, or for
self-supervised models a logistic probe fit on clean features of a training split (the linear evaluation protocol
of ImageNet-C results for SSL models). The corruption seed is fixed and example i's randomness depends on i alone,
so every run is scored on the same corrupted images."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from sagejax import data
from sagejax.augment import corruptions
from sagejax.errors import ConfigError
from sagejax.evaluate import probes
from sagejax.evaluate.evaluators import corrupted
from sagejax.evaluate.evaluators.base import Evaluator


class RobustnessEvaluator(Evaluator):
    """Keys `<split>/clean/accuracy`, `<split>/<corruption>/<severity>/accuracy`, `<split>/<corruption>/accuracy`
    (mean over severities), `<split>/main/accuracy` (mean over the 15 main ImageNet-C corruptions configured, or
    over every MNIST-C one) and `<split>/validation/accuracy` (speckle noise, Gaussian blur, spatter, saturate:
    ImageNet-C's held-out four, reported apart as the paper does); with `classifier="logistic_probe"` also
    `probe/logistic_l2`, the probe's penalty chosen on a held-out part of `probe_split`."""

    DEFAULTS = dict(
        splits=("test",),
        every_steps=0,
        batch_size=256,
        table="",  # "imagenet", "cifar", "mnist" (MNIST-C); "" = by image size (cifar up to 64 px)
        corruptions=(),  # names of the table's corruptions; () = all of them
        severities=(1, 2, 3, 4, 5),  # ignored for MNIST-C
        corruption_seed=0,  # the same for every run, so runs are compared on the same images
        classifier="logits",  # "logits": the method's; "logistic_probe": fit on clean `probe_split` features
        probe_split="train",  # labelled, clean; never one of `splits`
        feature_key="embedding",  # the method's prediction the probe reads
        holdout_fraction=0.2,  # of probe_split, per class, to choose the probe's l2 on
        logistic_l2s=(1e-4, 1e-3, 1e-2, 1e-1),
        logistic_steps=100,  # full-batch L-BFGS steps
    )
    CLASSIFIERS = ("logits", "logistic_probe")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        where = f"config.evals.{self.name}"
        s = self.settings
        shape = data.image_shape(self.builder, data.dataset_config(self.config, self.name))
        table = corrupted.resolve_table(s.table, shape, where=where)
        self.corruptions = corrupted.sweep(table, s.corruptions, s.severities, seed=s.corruption_seed, where=where)

    def check_splits(self) -> None:
        super().check_splits()
        s, where = self.settings, f"config.evals.{self.name}"
        if s.classifier not in self.CLASSIFIERS:
            raise ConfigError(f"{where}.classifier={s.classifier!r} is not one of {self.CLASSIFIERS}")
        if s.classifier == "logistic_probe":
            if self.unknown_splits([s.probe_split]):
                raise ConfigError(
                    f"{where}.probe_split {s.probe_split!r} is not a split of {self.builder.info.full_name} "
                    f"({sorted(self.builder.info.splits)})"
                )
            if s.probe_split in s.splits:
                raise ConfigError(f"{where}.probe_split {s.probe_split!r} is also evaluated; fit the probe elsewhere")
            if not 0 < s.holdout_fraction < 1:
                raise ConfigError(f"{where}.holdout_fraction must be in (0, 1), got {s.holdout_fraction}")

    def check_dataset(self, builder) -> None:
        for feature in ("image", "label"):
            if feature not in builder.info.features:
                raise ConfigError(f"config.evals.{self.name}: {builder.info.full_name} has no {feature!r} feature")

    def forward(self, model, batch) -> dict:
        out = {"label": batch["label"], "valid": batch["valid"]}
        if self.settings.classifier == "logits":
            out["predicted"] = jnp.argmax(self.method_output(model, batch, "logits"), axis=-1)
        else:
            features = self.method_output(model, batch, self.settings.feature_key)
            out["features"] = features.reshape(features.shape[0], -1)
        return out

    def _fit_probe(self, state):
        """(predict: features -> class, l2): a logistic probe on z-scored clean `probe_split` features, its l2 chosen
        on a held-out part of that split and then refit on all of it."""
        s = self.settings
        train = self.gather(state, s.probe_split)
        x, y = train["features"].astype(np.float64), train["label"].astype(np.int64)
        standardize = probes.Standardizer(x)
        x = standardize(x)
        fit, held = probes.holdout_split(y, fraction=s.holdout_fraction, seed=self.config.seed)
        kwargs = dict(num_classes=self.config.data.num_classes, steps=s.logistic_steps)
        l2 = probes.choose_logistic_l2(x[fit], y[fit], x[held], y[held], l2s=s.logistic_l2s, **kwargs)
        params = probes.logistic_fit(x, y, l2=l2, **kwargs)
        return lambda features: probes.logistic_predict(params, standardize(features.astype(np.float64))), l2

    def _accuracy(self, state, split: str, corruption=None, probe=None) -> float:
        out = self.gather(state, split, corruption)
        predicted = out["predicted"] if probe is None else probe(out["features"])
        return float(np.mean(predicted == out["label"]))

    def run(self, state):
        metrics, probe = {}, None
        if self.settings.classifier == "logistic_probe":
            probe, metrics["probe/logistic_l2"] = self._fit_probe(state)
        for split in self.settings.splits:
            metrics[f"{split}/clean/accuracy"] = self._accuracy(state, split, probe=probe)
            by_name: dict[str, list[float]] = {}
            for setting in self.corruptions:
                accuracy = self._accuracy(state, split, setting, probe)
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
