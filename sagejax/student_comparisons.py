"""The student comparison (Yao et al.'s tables on our data): teacher labels made when missing, then linear-probe and
attention-alignment tables over the student variants × seeds; its command line is `sagejax student_compare`."""

from __future__ import annotations

import os
import re

from sagejax import labeling, storage
from sagejax.comparisons import run_variant
from sagejax.errors import ConfigError
from sagejax.report import tables

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


def teacher_variants(student_suffix: str) -> list[str]:
    """The teacher's share of the students' extra variants: only `smoke` (grid8, robust, lars... are student-only)."""
    return ["smoke"] if "smoke" in (token.strip() for token in student_suffix.split(",")) else []


def teacher_labels(teacher_workdir: str, labels: str, suffix: str) -> str:
    """The folder of teacher labels for `unlabeled`, training the teacher and labelling first when missing; `suffix`
    is the students' extra variants (the teacher takes `smoke` from it)."""
    if storage.is_url(labels):  # found before the teacher is trained
        raise ConfigError(
            f"teacher labels {labels}: labels are an ArrayRecord dataset, read from filesystem paths only; pass "
            "--labels with a local or mounted folder (the workdir may stay a bucket)"
        )
    if not os.path.exists(os.path.join(labels, "dataset_info.json")):
        run_variant("teacher_unet", teacher_variants(suffix), 0, teacher_workdir, evaluator="saliency")
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
