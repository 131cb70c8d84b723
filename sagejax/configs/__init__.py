"""Experiment configs shipped with sagejax (`sagejax.configs.<name>.get_config(variant)`), and the `--config` flag
every command shares: a packaged name (`sage_decoy:sage,texture`) or a config file path (`my_config.py:sage`),
from any folder, with `--config.a.b=value` overrides; an unknown name, a missing or broken file, or an unknown
variant is one `error:` line."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys

from absl import flags
from ml_collections import config_flags

from sagejax.errors import ConfigError, MissingError, SagejaxError

_NOT_CONFIGS = ("common",)  # the shared blocks, not an experiment


def names() -> list[str]:
    """The packaged experiment configs, e.g. ["sage_csv", "sage_decoy", "student", "teacher_unet"]."""
    found = pkgutil.iter_modules(__path__)
    return sorted(m.name for m in found if not m.ispkg and m.name not in _NOT_CONFIGS and not m.name.startswith("_"))


def _module(source: str):
    """The config module of a packaged name or a file path (a path has a '/' or ends in .py)."""
    if source.endswith(".py") or os.sep in source or "/" in source:
        path = os.path.expanduser(source)
        if not os.path.isfile(path):
            raise MissingError(f"config file {source} does not exist (packaged configs: {', '.join(names())})")
        module_name = f"sagejax_config_{abs(hash(os.path.abspath(path)))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
        try:
            spec.loader.exec_module(module)
        except SagejaxError:
            raise
        except Exception as error:
            raise ConfigError(f"config file {source} could not be loaded: {type(error).__name__}: {error}") from error
        return module
    if source not in names():
        raise ConfigError(f"unknown config {source!r}: packaged configs are {', '.join(names())}, or give a file path")
    return importlib.import_module(f"{__name__}.{source}")


def load(spec: str):
    """`get_config(variant)` of "name[:variant]" or "path.py[:variant]"."""
    source, _, variant = spec.partition(":")
    module = _module(source)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config {source} has no get_config(variant) function")
    try:
        return module.get_config(variant or None)
    except SagejaxError:
        raise
    except Exception as error:
        raise ConfigError(f"config {spec} failed: {type(error).__name__}: {error}") from error


class _Parser(flags.ArgumentParser):
    """Parses a `--config` value into its loaded (and optionally locked) config."""

    def __init__(self, lock: bool):
        self.lock = lock

    def parse(self, spec):
        config = load(spec)
        if self.lock:
            config.lock()
        return config

    def flag_type(self):
        return "config"


def define_flag(name: str = "config", *, lock: bool = True, help_text: str = "Experiment config") -> flags.FlagHolder:
    """`--<name>=NAME[:VARIANT]` (or a .py path) with `--<name>.a.b=value` overrides, as every command takes it."""
    holder = config_flags.DEFINE_config_file(
        name,
        None,
        f"{help_text}: a packaged name ({', '.join(names())}) or a .py path, then :variant.",
        lock_config=lock,
    )
    flags.FLAGS[name].parser = _Parser(lock)
    return holder
