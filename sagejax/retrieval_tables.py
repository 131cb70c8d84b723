"""Retrieval of trained runs grouped by method: the query sets scored and the markdown table with the precision–recall
curves to plot; its command line is `sagejax retrieval`."""

from __future__ import annotations

from sagejax.evaluate.retrieval_metrics import RECALL_LEVELS
from sagejax.report import tables


def query_sets(metrics: dict[str, float], split: str) -> list[str]:
    """The query-set prefixes of one run's metrics: the clean split first, then each corruption."""
    prefixes = {key.rsplit("/", 1)[0] for key in metrics if key.endswith("/mAP")}
    return [split] + sorted(p for p in prefixes if p != split)


def summarize(results: dict[str, list[dict]], *, split: str) -> tuple[str, dict]:
    """The markdown table (a row per group and query set) and the curves {"<group> · <query set>": (recall,
    precisions per run)}."""
    first = next(iter(results.values()))[0]
    scalars = [
        "mAP",
        *sorted(k.rsplit("/", 1)[1] for k in first if k.startswith(f"{split}/precision@") and "recall" not in k),
        "r_precision",
    ]
    lines = ["| group (runs) | queries | " + " | ".join(scalars) + " |", "|---" * (len(scalars) + 2) + "|"]
    curves = {}
    for group, metrics in results.items():
        for prefix in query_sets(metrics[0], split):
            name = "clean" if prefix == split else prefix[len(split) + 1 :]
            cells = []
            for scalar in scalars:
                cells.append(tables.mean_std([m[f"{prefix}/{scalar}"] for m in metrics], scale=100))
            lines.append(f"| {group} ({len(metrics)}) | {name} | " + " | ".join(cells) + " |")
            precisions = [[m[f"{prefix}/precision@recall={r:.1f}"] for r in RECALL_LEVELS] for m in metrics]
            curves[f"{group} · {name}"] = (list(RECALL_LEVELS), precisions)
    return "\n".join(lines) + "\n", curves
