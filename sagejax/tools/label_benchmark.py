r"""Labeling throughput against the bare teacher forward pass on the same devices, so the I/O cost shows.

  sagejax label_benchmark --teacher_workdir W --dataset decoy_mnist --dataset_config texture_32_rgb \
      --split train --batch_size 256 --out label_bench.jsonl

Row "teacher forward": the jitted teacher (density, resize, uint8 scaling) on one device-resident batch, median
of --repeats calls. Row "labeling": `sagejax.labeling.label_split` end to end into a temporary folder (read, host →
device, forward, fixation draws, serialization, array_record writes), compile excluded. Appends JSONL, prints a table.
"""

from __future__ import annotations

import json
import os
import tempfile

import jax
import numpy as np
from absl import flags, logging

from sagejax import data, errors, labeling, storage
from sagejax.report import tables

flags.DEFINE_string("teacher_workdir", None, "Run directory of a trained teacher.")
flags.DEFINE_string("dataset", None, "Registered dataset to label.")
flags.DEFINE_string("dataset_config", "", "Its builder config ('' = default).")
flags.DEFINE_string("data_dir", "~/tensorflow_datasets", "TFDS data_dir.")
flags.DEFINE_string("split", "train", "Split to label.")
flags.DEFINE_integer("batch_size", 256, "Images per teacher call (a multiple of the local devices).")
flags.DEFINE_integer("repeats", 20, "Timed forward calls.")
flags.DEFINE_string("out", "label_benchmark.jsonl", "JSONL output path (appended).")
flags.mark_flags_as_required(["teacher_workdir", "dataset"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    builder = data.build_dataset(
        FLAGS.dataset, data_dir=os.path.expanduser(FLAGS.data_dir), config=FLAGS.dataset_config or None
    )
    source = builder.as_data_source(split=FLAGS.split)
    images = np.stack([source[i % len(source)]["image"] for i in range(FLAGS.batch_size)])
    forward_s = labeling.time_teacher_forward(FLAGS.teacher_workdir, images, FLAGS.repeats)
    with tempfile.TemporaryDirectory() as output_dir:
        stats = labeling.label_split(
            teacher_workdir=FLAGS.teacher_workdir,
            dataset=FLAGS.dataset,
            dataset_config=FLAGS.dataset_config or None,
            data_dir=FLAGS.data_dir,
            split=FLAGS.split,
            output_dir=output_dir,
            batch_size=FLAGS.batch_size,
            progress=False,
        )
    device = jax.local_devices()[0]
    common = {
        "dataset": builder.info.full_name,
        "split": FLAGS.split,
        "image_shape": list(images.shape[1:]),
        "batch_size": FLAGS.batch_size,
        "device": f"{device.platform}:{device.device_kind}",
        "num_devices": jax.local_device_count(),
        "jax": jax.__version__,
    }
    forward_rate = FLAGS.batch_size / forward_s
    rows = [
        {"stage": "teacher forward", "images_per_s": forward_rate, **common},
        {"stage": "labeling", "images_per_s": stats["images_per_s"], "images": stats["images"], **common},
    ]
    for row in rows:
        row["fraction_of_forward"] = row["images_per_s"] / forward_rate
    out = storage.AppendFile(FLAGS.out)
    for row in rows:
        out.write(json.dumps(row) + "\n")
    out.close()
    cells = [[row["stage"], f"{row['images_per_s']:.0f}", f"{row['fraction_of_forward']:.2f}"] for row in rows]
    print(tables.markdown_table(["stage", "images/s", "÷ teacher forward"], cells))
    print(f"{common['dataset']} {FLAGS.split}, batch {FLAGS.batch_size}, {common['device']} ×{common['num_devices']}")


if __name__ == "__main__":
    errors.run(main)
