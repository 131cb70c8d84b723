"""A trained run restored for use (labeling, figures): its config, NNX graph and arrays from the newest checkpoint."""

from __future__ import annotations

import dataclasses
import os

import jax
import ml_collections

from sagejax import storage
from sagejax.errors import MissingError
from sagejax.train import checkpoint, run_info
from sagejax.train.mesh import replicated
from sagejax.train.optim import ema_params, make_optimizer
from sagejax.train.state import init_state, merge_model


@dataclasses.dataclass(frozen=True)
class Trained:
    """A run restored from its workdir: its config, NNX graph, arrays and checkpoint step."""

    workdir: str
    config: ml_collections.ConfigDict
    graphdef: object
    params: object
    model_state: object
    step: int

    def model(self):
        """The model in eval mode (BatchNorm running statistics, no dropout)."""
        model = merge_model(self.graphdef, self.params, self.model_state)
        model.eval()
        return model


def restore_trained(workdir: str, mesh) -> Trained:
    """The newest checkpoint of the sagejax.main run in `workdir`, replicated over `mesh`."""
    workdir = os.fspath(storage.path(workdir))  # a bucket without its packages: one line, before anything is read
    config = run_info.read_config(workdir)
    manager = checkpoint.make_manager(workdir, asynchronous=False)
    try:
        step = manager.latest_step()
        if step is None:
            raise MissingError(f"no checkpoint in {storage.path(workdir) / 'checkpoints'}")
        # Shapes only (nothing is initialised), replicated over this process's mesh, then the restore.
        setup = init_state(config, make_optimizer(config.optim, config.train.steps, config.train.batch_size), mesh)
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated(mesh)), setup.abstract
        )
        state = checkpoint.restore_state(manager, abstract, step=step)
    finally:
        manager.close()
    average = ema_params(state.opt_state)  # what the run's evaluators scored, when it kept one
    params = state.params if average is None else average
    return Trained(workdir, config, setup.graphdef, params, state.model_state, int(step))
