r"""Saliency panels of a trained run: for the first examples of a split, the image, its saliency map, SAGE's
saliency-preserving x~ and saliency-degrading x~' views, and the model's attention, as one PNG grid.

  sagejax panels --workdir workdirs/compare/texture/sage/seed0 --split test --out panels.png

The map column is the examples' `saliency` (on saliency datasets such as mnist_attention, their human `density`;
`--map` picks another). The views use the run's own view settings (blur σ, degradation, inversion) when its method
builds them, else the shared defaults (`methods.saliency_views.SALIENCY_VIEW_DEFAULTS`). The last column is the
model's attention head when it has one (a student), else the input-gradient saliency of the predicted class (max
over channels of |∂logit/∂x|): a classifier's last feature map can be 1×1 at 32² and shows nothing.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import flags

from sagejax import data, errors, models, report
from sagejax.errors import ConfigError
from sagejax.evaluate.evaluators import default_config
from sagejax.methods.saliency_views import SALIENCY_VIEW_DEFAULTS, config_views
from sagejax.methods.student_attention import attention_map
from sagejax.train.mesh import make_mesh
from sagejax.train.trained import Trained, restore_trained

FLAGS = flags.FLAGS
COLUMNS = ("image", "saliency", "x~ (keep)", "x~' (degrade)")
MAP_KEYS = ("saliency", "density", "teacher_saliency")  # the map shown and blurred by, the first one present


def _define_flags() -> None:
    flags.DEFINE_string("workdir", None, "A sagejax.main run directory.")
    flags.DEFINE_string("split", "test", "The split whose first examples are shown.")
    flags.DEFINE_integer("count", 6, "How many examples (rows).")
    flags.DEFINE_string("out", "", "The PNG to write ('' = <workdir>/panels-<split>.png).")
    flags.DEFINE_string("map", "", f"The examples' map to show ('' = the first of {', '.join(MAP_KEYS)} present).")
    flags.mark_flags_as_required(["workdir"])


def first_examples(config, split: str, count: int) -> dict[str, np.ndarray]:
    """The first `count` examples of `split` of the run's dataset, as the evaluators read them."""
    config = config.copy_and_resolve_references()
    config.evals = {"panels": default_config("classification", splits=(split,), batch_size=count)}
    batch = next(iter(data.eval_iter(config, "panels", split)))
    return {key: value[batch["valid"]] for key, value in batch.items()}


def panel_columns(run: Trained, batch: dict[str, np.ndarray], map_key: str = "") -> dict[str, np.ndarray]:
    """The COLUMNS of a host batch for the restored `run`, the views built from map `map_key` ('' = the first of
    MAP_KEYS the batch holds), and the model's attention ("attention (head)") or input-gradient map ("input
    gradient")."""
    map_key = map_key or next((key for key in MAP_KEYS if key in batch), "saliency")
    if map_key not in batch:
        features = sorted(batch)
        raise ConfigError(f"{run.config.data.name} examples have no {map_key!r} map to show (features: {features})")
    inputs = data.to_model_inputs({"image": jnp.asarray(batch["image"]), map_key: jnp.asarray(batch[map_key])})
    inputs["saliency"] = inputs.pop(map_key)
    settings = view_settings(run.config.method)
    views = config_views(settings, images=inputs["image"], saliency=inputs["saliency"], rng=jax.random.key(0))
    names = (COLUMNS[0], map_key, *COLUMNS[2:])  # the map column named by the map shown
    images = (np.asarray(inputs["image"]), *(np.asarray(views[k]) for k in ("saliency", "x_keep", "x_degrade")))
    columns = dict(zip(names, images))
    model = run.model()
    outputs = models.forward(model, inputs["image"])
    if "attention" in outputs:
        columns["attention (head)"] = np.asarray(attention_map(outputs, inputs["image"].shape[1:3]))
    else:
        columns["input gradient"] = np.asarray(input_gradient(model, inputs["image"]))
    return columns


def view_settings(method_config) -> ml_collections.ConfigDict:
    """The run's view settings when its method builds SAGE views (it has every SALIENCY_VIEW_DEFAULTS key), else the
    defaults: a student's `blur_sigma` is its SimCLR blur range, not a view setting."""
    builds_views = all(key in method_config for key in SALIENCY_VIEW_DEFAULTS)
    return ml_collections.ConfigDict(
        {key: method_config[key] if builds_views else default for key, default in SALIENCY_VIEW_DEFAULTS.items()}
    )


def input_gradient(model, images: jax.Array) -> jax.Array:
    """(B,H,W): max over channels of |∂ logit of the predicted class / ∂ image|, per example."""
    predicted = jnp.argmax(models.forward(model, images)["logits"], axis=-1)

    def score(x):
        logits = models.forward(model, x)["logits"]
        return jnp.sum(jnp.take_along_axis(logits, predicted[:, None], axis=1))

    return jnp.max(jnp.abs(jax.grad(score)(images)), axis=-1)


def main(argv):
    del argv
    run = restore_trained(FLAGS.workdir, make_mesh({"data": 1}, devices=jax.devices()[:1]))
    batch = first_examples(run.config, FLAGS.split, FLAGS.count)
    columns = panel_columns(run, batch, FLAGS.map)
    names = batch.get("label", np.zeros(len(batch["image"]), int))
    out = FLAGS.out or os.path.join(run.workdir, f"panels-{FLAGS.split}.png")
    title = f"{run.config.method.name} · {os.path.basename(os.path.dirname(run.workdir))} · step {run.step}"
    report.saliency_panels(columns, out, row_labels=[f"label {n}" for n in names], title=title)
    print(out)


if __name__ == "__main__":
    _define_flags()
    errors.run(main)
