"""Loading experiment config files by path, as `--config=FILE:VARIANT` does, for drivers and tests."""

from __future__ import annotations

import importlib.util
import os


def load_module(path: str):
    """Imports the config file at `path` as a module (config files are not a package)."""
    name = "sagejax_config_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise FileNotFoundError(f"no config file at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(path: str, variant: str | None = None):
    """`get_config(variant)` of the config file at `path`."""
    return load_module(str(path)).get_config(variant)
