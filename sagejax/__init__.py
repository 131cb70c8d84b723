"""sagejax: training vision models with human saliency as an extra signal, in JAX/Flax.

The Python API (`sagejax.api`): `load(workdir)` → a run's config, model and `predict`; `export(workdir, out)` and
`load_exported(path)` for weights in safetensors; `sage_loss` / `sage_loss_from_apply` for another training loop.
"""

__version__ = "0.2.0"
_API = ("load", "export", "load_exported", "make_predict", "sage_loss", "sage_loss_from_apply")


def __getattr__(name):  # the API imports jax and flax: only when used, so `sagejax --help` starts at once
    if name in _API:
        from sagejax import api

        return getattr(api, name)
    raise AttributeError(f"module 'sagejax' has no attribute {name!r}")
