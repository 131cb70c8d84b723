"""The decoy comparison: methods × decoy families × seeds, each run trained or reused by the shared rule
(`sagejax.runs.train_or_reuse`), summarised as mean ± std; its command line is `sagejax compare`."""

from __future__ import annotations

from sagejax import configs, runs
from sagejax.errors import ConfigError, SagejaxError
from sagejax.report import tables

_SPLITS = ("test", "test_clean")


_EVALUATOR = "classification"


def run_variant(
    config: str, variants: list[str], seed: int, workdir: str, *, evaluator: str, overrides: dict | None = None
) -> dict:
    """Final eval metrics of the run of `config:variants` (config: a packaged name or a .py path) with `seed` and
    the dotted-key `overrides`, training it unless `workdir/results.json` already exists (which must hold
    `evaluator`'s metrics)."""
    loaded = configs.load(f"{config}:{','.join(v for v in variants if v)}")
    loaded.seed = seed
    loaded.update_from_flattened_dict(overrides or {})
    results = runs.train_or_reuse(loaded, workdir)
    if results is None:
        raise SagejaxError(f"stopped by SIGTERM in {workdir} (checkpoint saved); rerun the command to continue")
    if not any(key.startswith(f"eval/{evaluator}/") for key in results):
        raise ConfigError(
            f"{workdir}/results.json has no eval/{evaluator}/... metrics; this config has no such evaluator"
        )
    return results


def run_one(config: str, method: str, family: str, seed: int, workdir: str, suffix: str) -> dict[str, float]:
    """One run of the decoy comparison (family "swatch" is the config's default)."""
    variants = [method, "" if family == "swatch" else family, suffix]
    return run_variant(config, variants, seed, workdir, evaluator=_EVALUATOR)


def summarize(results: dict) -> str:
    """Markdown table: a row per method, mean ± std over seeds of each family's test / test_clean accuracy."""
    families = list(next(iter(results.values())))
    header = ["method"] + [f"{family} {split}" for family in families for split in _SPLITS]
    rows = []
    for method, by_family in results.items():
        cells = [method]
        for family in families:
            for split in _SPLITS:
                values = [run[f"eval/{_EVALUATOR}/{split}/accuracy"] for run in by_family[family]]
                cells.append(tables.mean_std(values, scale=100))
        rows.append(cells)
    return tables.markdown_table(header, rows)
