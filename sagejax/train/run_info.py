"""What makes a run reproducible: its config, code revision, library versions, devices and compiled step."""

from __future__ import annotations

import json
import os
import subprocess

import flax
import jax
import ml_collections
import optax

from sagejax import storage
from sagejax.errors import DataError, MissingError
from sagejax.train.run_config import with_defaults


def git_revision() -> str:
    """The sagejax checkout's commit (with '+dirty' when it has changes), or 'unknown'."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev.strip() + ("+dirty" if dirty.strip() else "")


def write_run_info(workdir: str, config, *, devices=None, **extra) -> dict:
    """Writes `workdir/config.json` with the config, the environment (`devices`: those the run's mesh spans,
    default all) and `extra` entries such as the compile report (process 0 only). A config.json of an earlier
    invocation with another config (a resume that changed e.g. train.steps) is kept as config.1.json, ..."""
    info = {
        "config": config.to_dict(),
        "git_revision": git_revision(),
        "versions": {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__},
        "devices": [str(d) for d in (jax.devices() if devices is None else devices)],
        "process_count": jax.process_count(),
        **extra,
    }
    if jax.process_index() == 0:
        path = storage.path(workdir) / "config.json"
        _keep_earlier_version(path, json.loads(json.dumps(info["config"], default=str)))
        storage.write_text(path, json.dumps(info, indent=2, default=str))
    return info


def read_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a sagejax.main run in `workdir` was trained with (its config.json)."""
    path = storage.path(workdir) / "config.json"
    if not path.exists():
        raise MissingError(f"{path} not found; expected a sagejax.main run directory")
    try:
        return ml_collections.ConfigDict(json.loads(path.read_text(encoding="utf-8"))["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{path} is damaged or not a sagejax run's config ({type(error).__name__}: {error})") from error


def _keep_earlier_version(path, config: dict) -> None:
    if not path.exists():
        return
    earlier = json.loads(path.read_text(encoding="utf-8"))
    if with_defaults(earlier.get("config") or {}) == with_defaults(config):  # keys added since count as unchanged
        return
    version = 1
    while path.with_name(f"{path.stem}.{version}.json").exists():
        version += 1
    storage.write_text(path.with_name(f"{path.stem}.{version}.json"), path.read_text(encoding="utf-8"))
