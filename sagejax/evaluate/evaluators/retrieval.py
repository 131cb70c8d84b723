"""Retrieval evaluator: the method's embeddings of each evaluated split (clean, and corrupted per
`query_corruptions`) rank the embeddings of a database split by cosine similarity; same class = relevant
(`sagejax.evaluate.retrieval_metrics`)."""

from __future__ import annotations

import numpy as np

from sagejax import data
from sagejax.errors import ConfigError
from sagejax.evaluate import retrieval_metrics
from sagejax.evaluate.evaluators import corrupted
from sagejax.evaluate.evaluators.base import Evaluator


class RetrievalEvaluator(Evaluator):
    """Keys `<split>/<metric>` for clean queries and `<split>/<corruption>/<severity>/<metric>` for corrupted
    ones; metrics mAP, precision@k, r_precision, precision@recall=<r> (11-point interpolated curve), queries."""

    DEFAULTS = dict(
        splits=("test",),  # the queries
        database_split="train",  # ranked for every query; never corrupted
        every_steps=0,
        batch_size=256,
        feature_key="embedding",  # the method's prediction to rank by
        ks=(1, 10, 100),
        query_corruptions=(),  # e.g. ("gaussian_noise/3", "fog/5"); MNIST-C names without a severity
        table="",  # of query_corruptions; "" = by image size
        corruption_seed=0,
        chunk_size=256,  # queries ranked at once: memory is chunk_size × database size
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        s, where = self.settings, f"config.evals.{self.name}"
        if s.chunk_size < 1 or any(k < 1 for k in s.ks):
            raise ConfigError(f"{where}: chunk_size and every k of ks must be >= 1")
        self.corruptions = []
        if s.query_corruptions:
            shape = data.image_shape(self.builder, data.dataset_config(self.config, self.name))
            table = corrupted.resolve_table(s.table, shape, where=where)
            self.corruptions = corrupted.parse(s.query_corruptions, table, seed=s.corruption_seed, where=where)

    def check_splits(self) -> None:
        super().check_splits()
        if self.unknown_splits([self.settings.database_split]):
            raise ConfigError(
                f"config.evals.{self.name}.database_split {self.settings.database_split!r} is not a split of "
                f"{self.builder.info.full_name} ({sorted(self.builder.info.splits)})"
            )

    def check_dataset(self, builder) -> None:
        if "label" not in builder.info.features:
            raise ConfigError(f"config.evals.{self.name}: {builder.info.full_name} has no 'label' to judge relevance")

    def forward(self, model, batch) -> dict:
        features = self.method_output(model, batch, self.settings.feature_key)
        return {"features": features.reshape(features.shape[0], -1), "label": batch["label"], "valid": batch["valid"]}

    def _embeddings(self, state, split: str, corruption=None) -> tuple[np.ndarray, np.ndarray]:
        gathered = self.gather(state, split, corruption)
        return gathered["features"], gathered["label"]

    def run(self, state):
        s = self.settings
        database, database_labels = self._embeddings(state, s.database_split)
        metrics = {}
        for split in s.splits:
            for setting in [None, *self.corruptions]:
                queries, labels = self._embeddings(state, split, setting)
                scores = retrieval_metrics.retrieval_metrics(
                    queries, labels, database, database_labels, ks=tuple(s.ks), chunk_size=s.chunk_size
                )
                prefix = split if setting is None else f"{split}/{setting.label}"
                metrics.update({f"{prefix}/{name}": value for name, value in scores.items()})
        return metrics, {}
