"""Classification evaluator: accuracy, AUROC and presentation-attack rates of the method's logits on whole
splits (`sagejax.evaluate.split_metrics`)."""

from __future__ import annotations

from sagejax.errors import ConfigError
from sagejax.evaluate.evaluators.base import Evaluator
from sagejax.evaluate.split_metrics import split_metrics


class ClassificationEvaluator(Evaluator):
    """Scores `predict(...)["logits"]` against `label`; with `attack_label` (a label name of the dataset, e.g.
    "attack" or "1"), also APCER/BPCER and EER with that class as the attack class."""

    DEFAULTS = dict(
        splits=("test",),
        every_steps=0,
        batch_size=256,
        attack_types=(),  # evaluate on bona fide + only these attack types; () = everything
        attack_label="",  # the label name of the attack class for PAD rates; "" = not a PAD task
    )

    def check_dataset(self, builder) -> None:
        """The model's class count must match the dataset's labels; `attack_label` must be one of them."""
        if "label" not in builder.info.features:
            raise ConfigError(f"{builder.info.full_name} has no 'label' feature to classify")
        label = builder.info.features["label"]
        if label.num_classes < 2:
            raise ConfigError(
                f"{builder.info.full_name} has {label.num_classes} label(s) {label.names}: a classifier needs at least "
                "two classes (check the label column)"
            )
        if label.num_classes != self.config.data.num_classes:
            raise ConfigError(
                f"config.data.num_classes={self.config.data.num_classes} but {builder.info.full_name} has "
                f"{label.num_classes} labels {label.names}; set --config.data.num_classes={label.num_classes}"
            )
        self.attack_class = None
        if self.settings.attack_label:
            if self.settings.attack_label not in label.names:
                raise ConfigError(
                    f"config.evals.{self.name}.attack_label={self.settings.attack_label!r} is not a label of "
                    f"{builder.info.full_name}; its labels are {label.names}"
                )
            self.attack_class = label.names.index(self.settings.attack_label)

    def forward(self, model, batch) -> dict:
        fields = {key: batch[key] for key in ("label", "attack_type", "valid") if key in batch}
        return {"logits": self.method_output(model, batch, "logits"), **fields}

    def run(self, state):
        metrics = {}
        for split in self.settings.splits:
            gathered = self.gather(state, split)
            scores = split_metrics(
                logits=gathered["logits"],
                labels=gathered["label"],
                attack_class=self.attack_class,
                attack_types=gathered.get("attack_type"),
            )
            metrics.update({f"{split}/{name}": value for name, value in scores.items()})
        return metrics, {}
