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
import numpy as np
from absl import flags

from sagejax import errors, report
from sagejax.panel_columns import MAP_KEYS, first_examples, panel_columns
from sagejax.train.mesh import make_mesh
from sagejax.train.trained import restore_trained

flags.DEFINE_string("workdir", None, "A sagejax.main run directory.")
flags.DEFINE_string("split", "test", "The split whose first examples are shown.")
flags.DEFINE_integer("count", 6, "How many examples (rows).")
flags.DEFINE_string("out", "", "The PNG to write ('' = <workdir>/panels-<split>.png).")
flags.DEFINE_string("map", "", f"The examples' map to show ('' = the first of {', '.join(MAP_KEYS)} present).")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS


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
    errors.run(main)
