"""Student comparison (Yao et al.'s tables on our data): the five student variants × seeds on `mnist_attention`,
then a linear-probe table and an attention-alignment table, mean ± std over seeds.

`sagejax student_compare --workdir workdirs/student_compare` trains the saliency teacher and labels the
`unlabeled` split with it when the labels are missing (`--teacher_workdir`, `--labels` reuse earlier ones), then
runs sagejax/configs/student.py for every method and seed. Finished runs are reused, so an interrupted comparison
continues where it stopped. Probes are fit on `train` (regularisation chosen on a held-out part of it) and scored
on `validation`, which no choice here looks at. Writes `student_compare.json` and `student_compare.md`.
"""

from __future__ import annotations

import json
import os
import re

from absl import flags, logging

from sagejax import errors, labeling
from sagejax.report import tables
from sagejax.tools.compare import run_variant

METHODS = ("simclr", "simclr_attn", "simclr_cotrain", "supervised", "supervised_attn")
ROW_NAMES = {
    "simclr": "contrastive",
    "simclr_attn": "contrastive + teacher attention",
    "simclr_cotrain": "contrastive, co-trained on human maps",
    "supervised": "supervised",
    "supervised_attn": "supervised + teacher attention",
}
FEW_SHOT = 10  # the few-shot column (or the largest shot count the runs report, e.g. 1 for smoke runs)
ALIGNMENT_METRICS = ("NSS", "CC", "KLD", "SIM", "AUC-Judd", "sAUC")
PROBE, ALIGNMENT = "eval/linear_probe/", "eval/attention_alignment/validation/"
FLAGS = flags.FLAGS


def _define_flags() -> None:
    flags.DEFINE_list("methods", list(METHODS), "Student variants of sagejax/configs/student.py.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
    flags.DEFINE_string("variant_suffix", "", "Extra variants for every student run, e.g. 'smoke'.")
    flags.DEFINE_string("workdir", "workdirs/student_compare", "Parent directory of the runs.")
    flags.DEFINE_string("teacher_workdir", "", "Trained teacher run ('' = <workdir>/teacher, trained if missing).")
    flags.DEFINE_string("labels", "", "Teacher-labelled `unlabeled` split ('' = <workdir>/labels, made if missing).")


def teacher_labels(teacher_workdir: str, labels: str, suffix: str) -> str:
    """The folder of teacher labels for `unlabeled`, training the teacher and labelling first when missing."""
    if not os.path.exists(os.path.join(labels, "dataset_info.json")):
        run_variant("teacher_unet", [suffix], 0, teacher_workdir, evaluator="saliency")
        labeling.label_split(
            teacher_workdir=teacher_workdir,
            dataset="mnist_attention",
            split="unlabeled",
            output_dir=labels,
            batch_size=64,
            progress=False,
        )
    return labels


def _cell(values) -> str:
    return tables.mean_std(values, digits=3)


def _percent_cell(values) -> str:
    return tables.mean_std(values, scale=100)


def probe_columns(run: dict) -> dict[str, str]:
    """Table column → metric key: the full logistic and ridge probes, and both at FEW_SHOT shots (or the largest
    shot count `run` has)."""
    shots = sorted(int(m[1]) for key in run if (m := re.fullmatch(PROBE + r"validation/ridge_(\d+)shot_accuracy", key)))
    columns = {"logistic": "validation/logistic_accuracy", "ridge": "validation/ridge_accuracy"}
    if shots:
        k = FEW_SHOT if FEW_SHOT in shots else shots[-1]
        columns.update({f"{kind} {k}-shot": f"validation/{kind}_{k}shot_accuracy" for kind in ("logistic", "ridge")})
    return columns


def summarize(results: dict[str, list[dict]]) -> str:
    """Two markdown tables: linear-probe accuracy on validation (%), and attention alignment with the human maps of
    validation, beside the centre-bias and uniform baselines; mean ± std over seeds."""
    columns = probe_columns(next(iter(results.values()))[0])
    lines = ["Linear probe on frozen embeddings, validation accuracy (%):", ""]
    lines += ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for method, runs in results.items():
        cells = [_percent_cell([run[PROBE + key] for run in runs]) for key in columns.values()]
        lines.append(f"| {ROW_NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    lines += ["", "Attention alignment with human maps (validation; KLD lower is better, the rest higher):", ""]
    lines += ["| model | " + " | ".join(ALIGNMENT_METRICS) + " |", "|---|" + "---|" * len(ALIGNMENT_METRICS)]
    for method, runs in results.items():
        cells = [_cell([run[ALIGNMENT + metric] for run in runs]) for metric in ALIGNMENT_METRICS]
        lines.append(f"| {ROW_NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    first = next(iter(results.values()))[0]
    for baseline in ("centre_bias", "uniform"):
        cells = [f"{first[f'{ALIGNMENT}{baseline}/{metric}']:.3f}" for metric in ALIGNMENT_METRICS]
        lines.append(f"| {baseline.replace('_', '-')} baseline | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    workdir = FLAGS.workdir
    suffix = FLAGS.variant_suffix
    labels = FLAGS.labels or os.path.join(workdir, "labels")
    if any(method.endswith("_attn") for method in FLAGS.methods):
        teacher_labels(FLAGS.teacher_workdir or os.path.join(workdir, "teacher"), labels, suffix)
    results = {}
    for method in FLAGS.methods:
        for seed in FLAGS.seeds:
            run_dir = os.path.join(workdir, method, f"seed{seed}")
            variants = [method, f"labels={labels}", suffix]
            results.setdefault(method, []).append(
                run_variant("student", variants, int(seed), run_dir, evaluator="linear_probe")
            )
    table = summarize(results)
    with open(os.path.join(workdir, "student_compare.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(workdir, "student_compare.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    _define_flags()
    errors.run(main)
