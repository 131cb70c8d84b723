"""The open-set PAD benchmark: methods × seeds, each the leave-one-attack-type-out protocol on Digit PAD (one run
per held-out type, trained or reused), summarised per held-out type as mean ± std over seeds; its command line is
`sagejax pad_benchmark`."""

from __future__ import annotations

import os
import statistics

from sagejax import configs
from sagejax.loao_protocol import run_protocol
from sagejax.report import tables

# Rates in % at the operating point ISO/IEC 30107-3 reports, and the threshold-free AUROC, on `test`.
METRICS = {"auroc": "AUROC", "apcer_at_bpcer1": "APCER @ BPCER 1 %"}
_TEST = "classification/test/"


def run(config: str, methods, seeds, workdir: str, *, variant_suffix: str = "") -> dict:
    """{method: {seed: {held-out type: {metric: value}}}} of `config:<method>[,suffix]` (a packaged name or a .py
    path); each protocol in `workdir/<method>/seed<seed>/<held-out type>`."""
    results = {}
    for method in methods:
        for seed in seeds:
            config_of_run = configs.load(f"{config}:{','.join(v for v in (method, variant_suffix) if v)}")
            config_of_run.seed = int(seed)
            protocol = run_protocol(config_of_run, os.path.join(workdir, method, f"seed{seed}"))
            results.setdefault(method, {})[str(seed)] = protocol
    return results


def summarize(results: dict) -> str:
    """Markdown table: a row per method; per held-out type and over all types, each metric of METRICS on `test` as
    mean ± std over seeds (%), and the worst seed's mean over types."""
    by_seed = next(iter(results.values()))
    held_out = list(next(iter(by_seed.values())))
    header = ["method"]
    for name in (*held_out, "all types"):
        header += [f"{name} {label}" for label in METRICS.values()]
    header.append("worst seed APCER")
    rows = []
    for method, seeds in results.items():
        cells = [method]
        for name in (*held_out, None):
            for metric in METRICS:
                per_seed = [_value(protocol, name, metric) for protocol in seeds.values()]
                cells.append(tables.mean_std(per_seed, scale=100))
        cells.append(f"{100 * max(_value(p, None, 'apcer_at_bpcer1') for p in seeds.values()):.1f}")
        rows.append(cells)
    return tables.markdown_table(header, rows)


def _value(protocol: dict, held_out: str | None, metric: str) -> float:
    """`metric` on `test` for one held-out type, or its mean over the types (None)."""
    if held_out is not None:
        return protocol[held_out][_TEST + metric]
    return statistics.fmean(row[_TEST + metric] for row in protocol.values())
