"""Runs as the commands use them: one rule for "train this run unless its results for this config exist" (compare,
sweep, loao, student_compare), and trained runs evaluated after the fact: finding run directories (a run, or a
directory of seed runs), grouping them by method, and running one evaluator on a run's newest checkpoint with the
result cached in the run directory."""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import socket

import jax

from sagejax import storage
from sagejax.errors import ConfigError, ExistsError, MissingError
from sagejax.evaluate.evaluators import default_config
from sagejax.train import run_info
from sagejax.train.run_config import RESUMABLE_CHANGES, flatten, with_defaults
from sagejax.trainer import evaluate_checkpoint, train_and_evaluate

# What a finished run may differ in from the config that asks for it: cadences, not results.
_REUSABLE_CHANGES = tuple(pattern for pattern in RESUMABLE_CHANGES if pattern != "train.steps")


def finished_results(config, workdir: str) -> dict | None:
    """The results of the finished run of `config` in `workdir` (None if it has not finished); refuses a run that
    was trained under another config, naming the keys that differ."""
    results_path = storage.path(workdir) / "results.json"
    if not results_path.exists():
        return None
    stored = flatten(with_defaults(run_info.read_config(workdir).to_dict()))
    wanted = flatten(with_defaults(config.to_dict()))
    differ = sorted(
        key
        for key in stored.keys() | wanted.keys()
        if stored.get(key) != wanted.get(key) and not any(fnmatch.fnmatchcase(key, p) for p in _REUSABLE_CHANGES)
    )
    if differ:
        raise ConfigError(
            f"{workdir} was trained under another config ({', '.join(differ[:8])} differ): use another --workdir "
            "or move the run aside"
        )
    return json.loads(results_path.read_text(encoding="utf-8"))


def train_or_reuse(config, workdir: str) -> dict | None:
    """The final eval metrics of `config`'s run in `workdir`: read back when it finished under this config, else
    trained (resuming its checkpoint) while holding the folder's lock; None when a SIGTERM stopped it (its
    checkpoint is saved)."""
    results = finished_results(config, workdir)
    if results is not None:
        return results
    with run_lock(workdir):
        results = finished_results(config, workdir)  # another command may have finished it meanwhile
        if results is None:
            train_and_evaluate(config, workdir)
            results = finished_results(config, workdir)
    return results


@contextlib.contextmanager
def run_lock(workdir: str):
    """Holds `workdir/.lock` (an flock, released when the process ends however it ends), so two commands never train
    one run folder at once; refuses naming the host and process that hold it. The processes of one multi-process
    run train the folder together and take no lock; nor does a bucket folder, which has no locks (one command per
    bucket run folder is the user's to keep)."""
    if jax.process_count() > 1 or storage.is_url(workdir):
        yield
        return
    folder = storage.path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise ExistsError(f"{workdir} is being trained by {holder}; wait for it, or use another workdir") from None
        f.seek(0)
        f.truncate()
        f.write(f"{socket.gethostname()}:{os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _is_run(path: str) -> bool:
    return (storage.path(path) / "config.json").exists()


def group_runs(paths) -> dict[str, list[str]]:
    """{group: run directories}: each path (globs allowed, also on a bucket) is a run directory, grouped under its
    own name, or a directory whose sub-directories are runs (e.g. the seeds of one method), grouped under its name."""
    groups: dict[str, list[str]] = {}
    for pattern in paths:
        for path in storage.glob(pattern) or [pattern]:
            path = path if storage.is_url(path) else os.path.normpath(path)
            if _is_run(path):
                runs = [path]
            else:
                runs = [p for p in storage.glob(f"{path}/*") if _is_run(p)]
            if not runs:
                raise MissingError(f"{path} is neither a sagejax.main run (no config.json) nor a directory of runs")
            groups.setdefault(storage.path(path).name, []).extend(runs)
    return groups


def checkpoint_fingerprint(workdir: str) -> dict:
    """{"step", "digest"} of the newest checkpoint in `workdir`: its step, and a digest of its files' names, sizes and
    modification times, so a cache keyed on it notices further training, a resume or a replaced checkpoint."""
    root = storage.path(workdir) / "checkpoints"
    steps = sorted(int(child.name) for child in root.iterdir() if child.name.isdigit()) if root.is_dir() else []
    if not steps:
        raise MissingError(f"no checkpoint in {root} to evaluate")
    newest = root / str(steps[-1])
    digest = hashlib.sha256()
    for file in sorted(_files_under(newest), key=lambda file: (os.fspath(file.parent), file.name)):
        if storage.is_url(file):
            stat = file.stat()
            size, mtime = stat.length, stat.mtime
        else:  # nanoseconds, as caches written before bucket workdirs have them
            stat = os.stat(file)
            size, mtime = stat.st_size, stat.st_mtime_ns
        digest.update(f"{file.relative_to(newest)}:{size}:{mtime};".encode())
    return {"step": steps[-1], "digest": digest.hexdigest()[:16]}


def _files_under(folder):
    """The files below `folder`, listed folder by folder (epath's walk drops a bucket's gs:// from the folders)."""
    for child in folder.iterdir():
        if child.is_dir():
            yield from _files_under(child)
        else:
            yield child


def evaluate_run(workdir: str, evaluator_type: str, settings: dict, *, cache: str, overwrite: bool = False) -> dict:
    """The metrics (`<split>/...`, without the `eval/<name>/` prefix) of evaluator `evaluator_type` with `settings` on
    the newest checkpoint of the run in `workdir`. Cached as `workdir/<cache>.json` with the settings and the
    checkpoint's fingerprint: a cache of other settings or of another checkpoint (more training since, a resume),
    or `overwrite`, is recomputed; the run's own results.json is left alone."""
    path = storage.path(workdir) / f"{cache}.json"
    settings = json.loads(json.dumps(settings))  # tuples as lists, as the cache stores them
    fingerprint = checkpoint_fingerprint(workdir)
    if path.exists() and not overwrite:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("settings") == settings and cached.get("checkpoint") == fingerprint:
            return cached["metrics"]
    config = run_info.read_config(workdir)
    config.evals = {evaluator_type: default_config(evaluator_type, **settings)}
    results = evaluate_checkpoint(config, workdir, write=False)
    prefix = f"eval/{evaluator_type}/"
    metrics = {key[len(prefix) :]: value for key, value in results.items() if key.startswith(prefix)}
    storage.write_text(
        path,
        json.dumps({"settings": settings, "checkpoint": fingerprint, "metrics": metrics}, indent=1, sort_keys=True),
    )
    return metrics
