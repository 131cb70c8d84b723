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
    `probe/logistic_l2` (full-data probes)."""

    DEFAULTS = dict(
        splits=("validation",),
        train_split="train",  # the labelled split the probes are fit on
        every_steps=0,
        batch_size=256,
        feature_key="embedding",  # the method's prediction the probes read
        holdout_fraction=0.2,  # of train_split, per class, to choose the regularisation on
        ridge_lambdas=tuple(2.0**k for k in range(-6, 15, 2)),
        logistic_l2s=(1e-4, 1e-3, 1e-2, 1e-1),
        logistic_steps=100,  # full-batch L-BFGS steps
        shots=(1, 5, 10, 25),  # few-shot probes: examples per class drawn from the fit part; () = none
        shot_seeds=3,
    )

    def check_splits(self) -> None:
        super().check_splits()
        if self.settings.train_split.split("[")[0] not in self.builder.info.splits:
            raise ConfigError(
                f"config.evals.{self.name}.train_split {self.settings.train_split!r} is not a split of "
                f"{self.builder.info.full_name} ({sorted(self.builder.info.splits)})"
            )
        if not 0 < self.settings.holdout_fraction < 1:
            raise ConfigError(f"config.evals.{self.name}.holdout_fraction must be in (0, 1)")

    def check_dataset(self, builder) -> None:
        if "label" not in builder.info.features:
            raise ConfigError(
                f"config.evals.{self.name}: {builder.info.full_name} has no 'label' feature for the probe to fit"
            )

    def forward(self, model, batch) -> dict:
        features = self.method_output(model, batch, self.settings.feature_key)
        return {"features": features.reshape(features.shape[0], -1), "label": batch["label"], "valid": batch["valid"]}

    def _features(self, state, split: str) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self.batches(state, split))
        features = np.concatenate([p["features"] for p in parts]).astype(np.float64)
        labels = np.concatenate([p["label"] for p in parts]).astype(np.int64)
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
        probes_by_name = {"": self._probes(train_x, train_y, fit, held, np.arange(len(train_y)), num_classes)}
        for shots in s.shots:
            draws = [
                probes.few_shot_indices(train_y[fit], shots=shots, seed=self.config.seed + i)
                for i in range(s.shot_seeds)
            ]
            probes_by_name[f"_{shots}shot"] = [
                self._probes(train_x, train_y, fit[d], held, fit[d], num_classes) for d in draws
            ]
        metrics = {
            "probe/ridge_lambda": probes_by_name[""]["ridge"][0],
            "probe/logistic_l2": probes_by_name[""]["logistic"][0],
        }
        for split in s.splits:
            x, y = self._features(state, split)
            x = standardize(x)
            for suffix, fitted in probes_by_name.items():
                for kind, predict in (("ridge", probes.ridge_predict), ("logistic", probes.logistic_predict)):
                    draws = fitted if isinstance(fitted, list) else [fitted]
                    accuracy = np.mean([np.mean(predict(d[kind][1], x) == y) for d in draws])
                    metrics[f"{split}/{kind}{suffix}_accuracy"] = float(accuracy)
        return metrics, {}

    def _probes(self, x, y, select_fit, select_held, final, num_classes) -> dict:
        """{"ridge": (λ, weights), "logistic": (l2, params)}: each regulariser chosen by held-out accuracy of a probe
        fit on `select_fit`, then refit on `final`."""
        s = self.settings

        def held_accuracy(predictions):
            return np.mean(predictions == y[select_held])

        ridge = probes.ridge_weights(x[select_fit], y[select_fit], num_classes=num_classes, lambdas=s.ridge_lambdas)
        scores = [held_accuracy(probes.ridge_predict(w, x[select_held])) for w in ridge]
        lam = s.ridge_lambdas[int(np.argmax(scores))]
        ridge_final = probes.ridge_weights(x[final], y[final], num_classes=num_classes, lambdas=[lam])[0]
        fit_args = dict(num_classes=num_classes, steps=s.logistic_steps)
        scores = [
            held_accuracy(
                probes.logistic_predict(
                    probes.logistic_fit(x[select_fit], y[select_fit], l2=l2, **fit_args), x[select_held]
                )
            )
            for l2 in s.logistic_l2s
        ]
        l2 = s.logistic_l2s[int(np.argmax(scores))]
        logistic_final = probes.logistic_fit(x[final], y[final], l2=l2, **fit_args)
        return {"ridge": (float(lam), ridge_final), "logistic": (float(l2), logistic_final)}
