"""Linear-probe evaluator: frozen features of a labelled training split → a closed-form ridge probe and a softmax
logistic probe, each with its regularisation chosen on a held-out part of that split (never on the evaluated
splits), refit on all of it, and scored on every evaluated split; the same for k examples per class (few-shot)."""

from __future__ import annotations

import numpy as np

from sagejax.errors import ConfigError, DataError
from sagejax.evaluate import probes
from sagejax.evaluate.evaluators.base import Evaluator


class LinearProbeEvaluator(Evaluator):
    """Keys `<split>/ridge_accuracy`, `<split>/logistic_accuracy`, `<split>/ridge_<k>shot_accuracy` and
    `<split>/logistic_<k>shot_accuracy` (mean over `shot_seeds` draws), and the chosen `probe/ridge_lambda`,
    `probe/logistic_l2` of the full-data probes. Few-shot probes use fixed regularisation (`fewshot_ridge_lambda`,
    `fewshot_logistic_l2`, as big_vision's few-shot evaluator), so a k-shot number uses k labels per class only.
    Features are z-scored with the whole training split's statistics (no labels involved)."""

    DEFAULTS = dict(
        splits=("validation",),
        train_split="train",  # the labelled split the probes are fit on
        every_steps=0,
        batch_size=256,
        feature_key="embedding",  # the method's prediction the probes read
        holdout_fraction=0.2,  # of train_split, per class, to choose the full probes' regularisation on
        ridge_lambdas=tuple(2.0**k for k in range(-6, 15, 2)),
        logistic_l2s=(1e-4, 1e-3, 1e-2, 1e-1),
        logistic_steps=100,  # full-batch L-BFGS steps
        shots=(1, 5, 10, 25),  # few-shot probes: examples per class; () = none
        shot_seeds=3,
        fewshot_ridge_lambda=2.0**10,
        fewshot_logistic_l2=1e-2,
    )

    def check_splits(self) -> None:
        super().check_splits()
        s = self.settings
        if self.unknown_splits([s.train_split]):
            raise ConfigError(
                f"config.evals.{self.name}.train_split {s.train_split!r} is not a split of "
                f"{self.builder.info.full_name} ({sorted(self.builder.info.splits)})"
            )
        if not 0 < s.holdout_fraction < 1:
            raise ConfigError(f"config.evals.{self.name}.holdout_fraction must be in (0, 1), got {s.holdout_fraction}")
        if any(k < 1 for k in s.shots) or (s.shots and s.shot_seeds < 1):
            raise ConfigError(f"config.evals.{self.name}: shots must be >= 1 and shot_seeds >= 1")

    def check_dataset(self, builder) -> None:
        if "label" not in builder.info.features:
            raise ConfigError(
                f"config.evals.{self.name}: {builder.info.full_name} has no 'label' feature for the probe to fit"
            )

    def forward(self, model, batch) -> dict:
        features = self.method_output(model, batch, self.settings.feature_key)
        return {"features": features.reshape(features.shape[0], -1), "label": batch["label"], "valid": batch["valid"]}

    def _features(self, state, split: str) -> tuple[np.ndarray, np.ndarray]:
        gathered = self.gather(state, split)
        features, labels = gathered["features"].astype(np.float64), gathered["label"].astype(np.int64)
        if np.unique(labels).size < 2:
            raise DataError(f"split {split!r} has {np.unique(labels).size} label value(s); a probe needs at least 2")
        return features, labels

    def run(self, state):
        s = self.settings
        num_classes = self.config.data.num_classes
        train_x, train_y = self._features(state, s.train_split)
        standardize = probes.Standardizer(train_x)
        train_x = standardize(train_x)
        fit, held = probes.holdout_split(train_y, fraction=s.holdout_fraction, seed=self.config.seed)
        lam, l2 = self._choose(train_x[fit], train_y[fit], train_x[held], train_y[held], num_classes)
        fitted = {"": [self._fit(train_x, train_y, lam, l2, num_classes)]}
        for shots in s.shots:
            fitted[f"_{shots}shot"] = []
            for draw in range(s.shot_seeds):
                try:
                    chosen = probes.few_shot_indices(train_y, shots=shots, seed=(self.config.seed, shots, draw))
                except ValueError as error:
                    raise ConfigError(f"config.evals.{self.name}.shots: {error}") from error
                fit_args = (s.fewshot_ridge_lambda, s.fewshot_logistic_l2, num_classes)
                fitted[f"_{shots}shot"].append(self._fit(train_x[chosen], train_y[chosen], *fit_args))
        metrics = {"probe/ridge_lambda": float(lam), "probe/logistic_l2": float(l2)}
        for split in s.splits:
            x, y = self._features(state, split)
            x = standardize(x)
            for suffix, draws in fitted.items():
                for kind, predict in (("ridge", probes.ridge_predict), ("logistic", probes.logistic_predict)):
                    accuracy = np.mean([np.mean(predict(d[kind], x) == y) for d in draws])
                    metrics[f"{split}/{kind}{suffix}_accuracy"] = float(accuracy)
        return metrics, {}

    def _choose(self, x, y, held_x, held_y, num_classes) -> tuple[float, float]:
        """The ridge λ and logistic l2 with the best held-out accuracy (ties: the stronger regularisation)."""
        s = self.settings
        lambdas = sorted(s.ridge_lambdas, reverse=True)
        ridge = probes.ridge_weights(x, y, num_classes=num_classes, lambdas=lambdas)
        lam = lambdas[int(np.argmax([np.mean(probes.ridge_predict(w, held_x) == held_y) for w in ridge]))]
        l2 = probes.choose_logistic_l2(
            x, y, held_x, held_y, num_classes=num_classes, l2s=s.logistic_l2s, steps=s.logistic_steps
        )
        return lam, l2

    def _logistic(self, x, y, l2, num_classes):
        return probes.logistic_fit(x, y, num_classes=num_classes, l2=l2, steps=self.settings.logistic_steps)

    def _fit(self, x, y, lam, l2, num_classes) -> dict:
        """{"ridge": weights, "logistic": params} fit on (x, y) with the given regularisation."""
        (ridge,) = probes.ridge_weights(x, y, num_classes=num_classes, lambdas=[lam])
        return {"ridge": ridge, "logistic": self._logistic(x, y, l2, num_classes)}
