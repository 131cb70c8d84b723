"""Writes Digit PAD as a CSV folder for `sage_csv` (a PAD task with a known shortcut, run as a user's data would be).

`sagejax digit_pad_csv --output_dir data/digit_pad_csv` writes train/validation/test/test_clean CSVs with PNG images
and maps (about 10 s); then train on it as on any CSV folder (README, "SAGE's views for PAD").
"""

from __future__ import annotations

from absl import flags

from sagejax import errors
from sagejax.data import digit_pad_csv

flags.DEFINE_string("output_dir", "data/digit_pad_csv", "Folder to write the CSVs and the images/ folder into.")
flags.DEFINE_integer("limit", 0, "Keep the first N examples of each split (0 = all).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    written = digit_pad_csv.write_csv_folder(FLAGS.output_dir, limit=FLAGS.limit)
    print(f"{FLAGS.output_dir}: " + ", ".join(f"{split}.csv {rows} rows" for split, rows in written.items()))


if __name__ == "__main__":
    errors.run(main)
