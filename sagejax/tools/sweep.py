r"""Hyperparameter sweeps: every point of a grid × seeds, a point chosen on a validation metric, its test reported.

  sagejax sweep --config sage_decoy:sage,texture \
      --grid 'method.temperature=1,2,4;method.blur_sigma=1,2,3' --seeds 0,1,2 \
      --select eval/validation/validation/accuracy --workdir workdirs/sweep_t_sigma

A grid is `key=v1,v2,...` axes joined by `;` (values are Python literals, else strings; an axis with one value
fixes that key for every point). `--mode=axes` runs an ablation instead of the product: the centre (each axis at
its first value) and each other value of one axis at a time, with one table and plot per axis.

Each point × seed is one training run in `WORKDIR/runs/<point>/seed<s>`, where `<point>` names only the keys that
differ from the config (`base` when none do): finished runs are reused, also across sweeps that share a WORKDIR,
after checking that their stored config is the one asked for. The point with the best mean `--select` over seeds
is chosen; `--select` must read a `val*` split, and only the chosen point's other (test) metrics are reported,
mean ± std over seeds. Writes `<name>.json`, `<name>.md` and `<name>_<axis>.png` (`--name`, default `sweep`;
the selection metric along each axis, the other axes at the chosen point, or at the centre of an ablation).

On a cluster, start the same command with `--process_index p --process_count P` in P processes or hosts: each
trains the runs `i ≡ p (mod P)` of the (point, seed) list; the one that finds every run finished writes the tables
(or rerun with `--process_count 1` afterwards: everything is reused).
"""

from __future__ import annotations

from absl import flags, logging

from sagejax import configs, errors
from sagejax.sweeps import MODES, parse_grid, sweep

configs.define_flag("config", help_text="Experiment config (the sweep's base)")
flags.DEFINE_string("grid", None, "Axes 'key=v1,v2;key2=w1,w2' (dotted config keys).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every point.")
flags.DEFINE_string("select", "eval/validation/validation/accuracy", "Metric that chooses the point.")
flags.DEFINE_bool("minimize", False, "Choose the point with the lowest --select (a loss) instead of the highest.")
flags.DEFINE_string("workdir", None, "Parent directory of the runs and the sweep's tables.")
flags.DEFINE_enum(
    "mode", "grid", list(MODES), "grid: every combination; axes: one axis at a time around the first values."
)
flags.DEFINE_string("name", "sweep", "Name of the tables in WORKDIR (<name>.md), so sweeps can share its runs.")
flags.DEFINE_integer("process_index", 0, "This process's index p: it trains the runs i ≡ p (mod P).")
flags.DEFINE_integer("process_count", 1, "Number of processes P sharing the sweep.")
flags.mark_flags_as_required(["config", "grid", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    sweep(
        FLAGS.config,
        grid=parse_grid(FLAGS.grid),
        seeds=[int(s) for s in FLAGS.seeds],
        select=FLAGS.select,
        workdir=FLAGS.workdir,
        minimize=FLAGS.minimize,
        mode=FLAGS.mode,
        name=FLAGS.name,
        process_index=FLAGS.process_index,
        process_count=FLAGS.process_count,
    )


if __name__ == "__main__":
    errors.run(main)
