"""Labels a dataset split with a trained saliency teacher's maps, written as a new TFDS dataset (array_record).

  sagejax label --teacher_workdir W --dataset NAME [--dataset_config C] --split S --output_dir D

Every example keeps its original features and gains `teacher_saliency` (the teacher's pixel density at
--resolution, divided by its maximum, uint8 0..255) and `teacher_fixations` (0/1, derived from that map by
--fixation_rule: `points` = --num_fixations points drawn from it with the seed (--seed, example index), or
`top_quantile` = its pixels at or above the --fixation_quantile quantile). The split is cut into contiguous shards;
process p of P writes shards p, p + P, ...; each shard file appears atomically once complete, so a rerun after a
crash labels only the missing shards and the result is byte-identical to an uninterrupted run. The teacher runs
jitted with the batch split over this process's devices. A finished split is not relabeled without --overwrite.
Read the result with `sagejax.data.make_loader(name="tfds_dir", data_dir=D, split=S, ...)`, or train on it with
`--config.data.train_dir=D`.
"""

from __future__ import annotations

import jax
import tensorflow_datasets as tfds
from absl import app, flags, logging

from sagejax import errors
from sagejax.errors import ConfigError
from sagejax.labeling import EXAMPLES_PER_SHARD, label_split
from sagejax.methods.teacher import FIXATION_RULES
from sagejax.train import distributed

flags.DEFINE_string("teacher_workdir", None, "Run directory of a trained teacher (sagejax/configs/teacher_unet.py).")
flags.DEFINE_string("dataset", None, "Dataset to label: a registered builder name (sagejax.data.BUILDERS).")
flags.DEFINE_string("dataset_config", "", "Builder config of --dataset ('' = its default).")
flags.DEFINE_string("data_dir", "~/tensorflow_datasets", "TFDS data_dir holding --dataset.")
flags.DEFINE_string("split", None, "Split to label.")
flags.DEFINE_string("output_dir", None, "Folder of the labeled dataset (several splits may share it).")
flags.DEFINE_string("resolution", "", "Map size HxW, e.g. 64x64; '' = the image size.")
flags.DEFINE_integer("num_shards", 0, f"Shards of the split; 0 = one per {EXAMPLES_PER_SHARD} examples.")
flags.DEFINE_integer("batch_size", 64, "Images per teacher call on this process (multiple of its devices).")
flags.DEFINE_enum("fixation_rule", "points", list(FIXATION_RULES), "How teacher_fixations is derived.")
flags.DEFINE_integer("num_fixations", 16, "points: fixation points drawn from each teacher map.")
flags.DEFINE_float("fixation_quantile", 0.9, "top_quantile: pixels at or above this quantile are fixated.")
flags.DEFINE_integer("seed", 0, "Seed of the fixation draws (with each example's index).")
flags.DEFINE_bool("overwrite", False, "Relabel a split that is already finished in --output_dir.")
flags.mark_flags_as_required(["teacher_workdir", "dataset", "split", "output_dir"])
FLAGS = flags.FLAGS


def _parse_resolution(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--resolution must look like 64x64 (height x width), got {text!r}") from None
    if h <= 0 or w <= 0:
        raise ConfigError(f"--resolution must be positive, got {text!r}")
    return h, w


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    tfds.disable_progress_bar()
    distributed.initialize_from_env()
    stats = label_split(
        teacher_workdir=FLAGS.teacher_workdir,
        dataset=FLAGS.dataset,
        split=FLAGS.split,
        output_dir=FLAGS.output_dir,
        data_dir=FLAGS.data_dir,
        dataset_config=FLAGS.dataset_config or None,
        resolution=_parse_resolution(FLAGS.resolution),
        num_shards=FLAGS.num_shards,
        batch_size=FLAGS.batch_size,
        fixation_rule=FLAGS.fixation_rule,
        num_fixations=FLAGS.num_fixations,
        fixation_quantile=FLAGS.fixation_quantile,
        seed=FLAGS.seed,
        overwrite=FLAGS.overwrite,
    )
    print(
        f"process {jax.process_index()}: labeled {stats['images']} images in {stats['seconds']:.1f} s "
        f"({stats['images_per_s']:.1f} images/s) into {FLAGS.output_dir}",
        flush=True,
    )


if __name__ == "__main__":
    errors.run(main)
