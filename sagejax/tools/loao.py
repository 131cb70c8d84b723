"""Leave-one-attack-type-out: for each attack type, train without it and test on bona fide + it.

`sagejax loao --config sage_csv:sage,resnet50,pad=attack --workdir workdirs/loao \
    --config.data.manual_dir=/path/to/folder` trains one run per attack type found in the dataset
(each in `workdir/<type>`, resumable), then writes `loao.json` and prints a markdown table of the
held-out types' metrics with a mean ± std row. This is the open-set protocol of DESIGN §1.1.
"""

from __future__ import annotations

import os

from absl import flags, logging

from sagejax import configs, errors
from sagejax.evaluate import summarize_results, to_json
from sagejax.loao_protocol import run_protocol

configs.define_flag("config", lock=False, help_text="Experiment config (a PAD task)")
flags.DEFINE_string("workdir", None, "Parent directory of the per-type runs.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    results = run_protocol(FLAGS.config, FLAGS.workdir)
    to_json(results, os.path.join(FLAGS.workdir, "loao.json"))
    print(summarize_results(results, row_header="held-out attack type"))


if __name__ == "__main__":
    errors.run(main)
