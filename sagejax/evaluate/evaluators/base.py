"""What every evaluator shares: its settings, a jitted eval forward over the mesh, and whole-split batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import jax
import numpy as np

from sagejax import data
from sagejax.errors import ConfigError
from sagejax.evaluate.evaluators.corrupted import Corrupted
from sagejax.train import watchdog
from sagejax.train.mesh import batch_sharding, global_batch, replicated
from sagejax.train.state import merge_model


class Evaluator:
    """Base of the evaluator types. Subclasses set DEFAULTS, `forward(model, batch) -> dict of arrays` and
    `run(state) -> (metrics {"<split>/<metric>": value}, panels {name: images})`."""

    DEFAULTS: dict = dict(splits=(), every_steps=0, batch_size=256)

    def __init__(self, name: str, config, *, graphdef, mesh, predict: Callable):
        self.name, self.config, self.mesh = name, config, mesh
        self.settings = config.evals[name]
        self.predict = predict  # (model, batch, method_config) -> dict: the method's eval outputs
        self._graphdef = graphdef
        self._eval_fn = None
        if self.settings.batch_size <= 0 or self.settings.batch_size % mesh.size:
            raise ConfigError(
                f"config.evals.{name}.batch_size={self.settings.batch_size} cannot be split over the {mesh.size} "
                f"devices of the mesh; use a multiple of {mesh.size}"
            )
        self.builder = data.build(data.dataset_config(config, name))
        self.check_splits()
        self.check_dataset(self.builder)

    def check_splits(self) -> None:
        """Every configured split must exist in the evaluator's dataset."""
        if not self.settings.splits:
            raise ConfigError(f"config.evals.{self.name}.splits is empty")
        missing = self.unknown_splits(self.settings.splits)
        if missing:
            raise ConfigError(
                f"config.evals.{self.name}.splits has {missing}, not splits of {self.builder.info.full_name} "
                f"({sorted(self.builder.info.splits)})"
            )

    def unknown_splits(self, splits) -> list[str]:
        """The names of `splits` (slices such as "train[:500]" allowed) that the dataset does not have."""
        return [split for split in splits if split.split("[")[0] not in self.builder.info.splits]

    def check_dataset(self, builder) -> None:
        """Raises naming what the dataset lacks for this evaluator (override per type)."""

    def due(self, step: int) -> bool:
        """Whether this evaluator runs at `step` during training (it always runs at the end)."""
        every = self.settings.every_steps
        return bool(every) and step % every == 0

    def forward(self, model, batch) -> dict:
        raise NotImplementedError

    def method_output(self, model, batch, key: str):
        """The method's prediction `key` on `batch` (e.g. "logits"); names the key when the method lacks it."""
        outputs = self.predict(model, batch, self.config.method)
        if key not in outputs:
            raise ConfigError(f"evaluator {self.name!r} needs {key!r} from the method's predict, got {sorted(outputs)}")
        return outputs[key]

    def _eval_body(self, params, model_state, batch):
        model = merge_model(self._graphdef, params, model_state)
        model.eval()
        return self.forward(model, data.to_model_inputs(batch))

    def _jitted(self):
        if self._eval_fn is None:
            self._eval_fn = jax.jit(
                self._eval_body,
                in_shardings=(None, None, batch_sharding(self.mesh)),
                out_shardings=replicated(self.mesh),
            )
        return self._eval_fn

    def check_outputs(self, abstract_state) -> None:
        """Traces the eval forward on shapes only (one real eval batch, the abstract state), so a method that
        does not predict what this evaluator scores fails before training, not at the first evaluation."""
        batch = next(iter(data.eval_iter(self.config, self.name, self.settings.splits[0])))
        jax.eval_shape(self._eval_body, abstract_state.params, abstract_state.model_state, batch)

    def batches(self, state, split: str, corruption: Corrupted | None = None) -> Iterator[dict[str, np.ndarray]]:
        """`forward`'s host outputs for each batch of a whole split, padding rows (valid=False) removed; an output
        may cover only the first rows of the batch (e.g. panel images). With `corruption`, the images are first
        corrupted on the devices, example i of the split with the randomness of index i (a separate program per
        corruption, shared by every run evaluated in the process; the eval forward is the clean one)."""
        eval_fn = self._jitted()
        for number, batch in enumerate(data.eval_iter(self.config, self.name, split)):
            batch = global_batch(self.mesh, batch)
            if corruption is not None:
                batch["image"] = corruption.apply(batch["image"], number * self.settings.batch_size)
            out = jax.device_get(eval_fn(state.params, state.model_state, batch))
            watchdog.beat(f"{self.name} batch {number} of {split}")
            valid = out.pop("valid")
            yield {key: value[valid[: len(value)]] for key, value in out.items()}

    def gather(self, state, split: str, corruption: Corrupted | None = None) -> dict[str, np.ndarray]:
        """`batches`' outputs over the whole split, each concatenated along the example axis."""
        parts = list(self.batches(state, split, corruption))
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def run(self, state) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        raise NotImplementedError
