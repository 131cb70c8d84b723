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


GEOMETRY_METRICS = {  # column → key of the embedding_geometry evaluator
    "effective rank": "effective_rank",
    "alignment": "alignment",
    "uniformity": "uniformity",
    "class alignment": "class_alignment",
}


PROBE, POOLED, GEOMETRY = "eval/linear_probe/", "eval/attention_pooled_probe/", "eval/embedding_geometry/"
ALIGNMENT, ROBUSTNESS = "eval/attention_alignment/", "eval/robustness/"


def _tokens(suffix: str) -> list[str]:
    return [token.strip() for token in suffix.split(",")]


def _heldout(student_suffix: str) -> bool:
    return "heldout" in _tokens(student_suffix)


def reported_split(student_suffix: str) -> str:
    """The split the tables report: `test` with the `heldout` variant (weights chosen on validation), else
    `validation`, which no choice of the comparison looks at."""
    return "test" if _heldout(student_suffix) else "validation"


def labels_dataset_config(student_suffix: str) -> str:
    """The mnist_attention config whose `unlabeled` split the students train on: `heldout` or the default."""
    return "heldout" if _heldout(student_suffix) else ""


def run_overrides(method: str, *, steps: int = 0, kld_weight: float | None = None, nss_weight: float | None = None):
    """Dotted config keys for one student run: `train.steps` (0 = the config's) for every method, and the attention
    term's λ (kld_weight) and β (nss_weight) for the methods that have one (None = the method's default)."""
    overrides = {"train.steps": steps} if steps else {}
    if method.endswith(("_attn", "_cotrain")):
        for key, value in (("kld_weight", kld_weight), ("nss_weight", nss_weight)):
            if value is not None:
                overrides[f"method.{key}"] = float(value)
    return overrides


def teacher_variants(student_suffix: str) -> list[str]:
    """The teacher's share of the students' extra variants: only `smoke` (grid8, robust, lars... are student-only)."""
    return ["smoke"] if "smoke" in _tokens(student_suffix) else []


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
            dataset_config=labels_dataset_config(suffix) or None,
            output_dir=labels,
            batch_size=64,
            progress=False,
        )
    return labels


def _cell(values) -> str:
    return tables.mean_std(values, digits=3)


def _percent_cell(values) -> str:
    return tables.mean_std(values, scale=100)


def probe_columns(run: dict, split: str) -> dict[str, str]:
    """Table column → metric key: the full logistic and ridge probes, both at FEW_SHOT shots (or the largest shot
    count `run` has), and where `run` has them the attention-pooled probes and the probe's accuracy under the
    corruptions (mean over them)."""
    pattern = PROBE + rf"{split}/ridge_(\d+)shot_accuracy"
    shots = sorted(int(m[1]) for key in run if (m := re.fullmatch(pattern, key)))
    columns = {"logistic": f"{PROBE}{split}/logistic_accuracy", "ridge": f"{PROBE}{split}/ridge_accuracy"}
    if shots:
        k = FEW_SHOT if FEW_SHOT in shots else shots[-1]
        columns.update(
            {f"{kind} {k}-shot": f"{PROBE}{split}/{kind}_{k}shot_accuracy" for kind in ("logistic", "ridge")}
        )
    for kind in ("logistic", "ridge"):
        columns[f"attention-pooled {kind}"] = f"{POOLED}{split}/{kind}_accuracy"
    columns["corrupted (logistic)"] = f"{ROBUSTNESS}{split}/main/accuracy"
    return {column: key for column, key in columns.items() if key in run}


def _rows(results: dict[str, list[dict]], columns: dict[str, str], cell) -> list[str]:
    lines = ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for method, runs in results.items():
        cells = [cell([run[key] for run in runs]) for key in columns.values()]
        lines.append(f"| {ROW_NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    return lines


def summarize(results: dict[str, list[dict]], split: str = "validation") -> str:
    """Markdown tables of `split`, mean ± std over seeds: linear-probe accuracy (%), the embedding's geometry when
    the runs measured it, and attention alignment with the human maps beside the centre-bias and uniform
    baselines."""
    first = next(iter(results.values()))[0]
    lines = [f"Linear probe on frozen embeddings, {split} accuracy (%):", ""]
    lines += _rows(results, probe_columns(first, split), _percent_cell)
    geometry = {column: f"{GEOMETRY}{split}/{key}" for column, key in GEOMETRY_METRICS.items()}
    geometry = {column: key for column, key in geometry.items() if key in first}
    if geometry:
        lines += ["", f"Embedding geometry on {split} (alignment and uniformity lower is better):", ""]
        lines += _rows(results, geometry, _cell)
    alignment = {metric: f"{ALIGNMENT}{split}/{metric}" for metric in ALIGNMENT_METRICS}
    lines += ["", f"Attention alignment with human maps ({split}; KLD lower is better, the rest higher):", ""]
    lines += _rows(results, alignment, _cell)
    for baseline in ("centre_bias", "uniform"):
        cells = [f"{first[f'{ALIGNMENT}{split}/{baseline}/{metric}']:.3f}" for metric in ALIGNMENT_METRICS]
        lines.append(f"| {baseline.replace('_', '-')} baseline | " + " | ".join(cells) + " |")
    return "\n".join(lines)
