"""What the integration tests share besides their session fixtures: the environment and command line of a run
they start, the smoke and loop configs, and copies of shared runs."""

import os
import pathlib
import shutil
import sys

from sagejax.configs import common, sage_decoy, teacher_unet

HERE = pathlib.Path(__file__).parent
REPO = HERE.parent.parent
DECOY_EXAMPLES = 96  # per split of the shared Decoy MNIST (swatch, 32×32 RGB)
ATTENTION_EXAMPLES = 160  # per split of the shared mnist_attention


def subprocess_env(**extra) -> dict:
    """The environment of a command a test starts: this interpreter's, with the repository and this folder (the
    loop method) importable."""
    path = os.pathsep.join(filter(None, [str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def main_command(workdir, config: str, *overrides) -> list[str]:
    """`python -m sagejax.main` on `config` ("name:variant" or a file) in `workdir`, with --config.K=V overrides."""
    return [sys.executable, "-m", "sagejax.main", f"--config={config}", f"--workdir={workdir}", *overrides]


def smoke_config(data_dir, variant="sage,smoke", *, num_devices=1):
    """The packaged Decoy MNIST config shrunk to a smoke run on `data_dir`, on `num_devices` devices."""
    config = sage_decoy.get_config(variant)
    config.data.data_dir = str(data_dir)
    config.mesh.num_devices = num_devices
    config.train.tensorboard = False
    config.evals.classification.batch_size = 32
    return config


def teacher_config(data_dir, variant="smoke", every_steps=3, **train):
    """The packaged teacher config (smoke-sized by default) on the mnist_attention of `data_dir`, on one device."""
    config = teacher_unet.get_config(variant)
    config.data.data_dir = str(data_dir)
    config.mesh.num_devices = 1
    config.evals.saliency.update(batch_size=32, every_steps=every_steps)
    config.train.update(train)
    return config


def loop_config(data_dir, **train):
    """A smoke config whose model is one convolution and whose method is its cross-entropy (tests/integration/
    loop_method.py): the training loop's rules at a fraction of a real model's compile time."""
    config = smoke_config(data_dir, "xent,smoke")
    config.model = common.model("loop_method:OneLayer")
    config.method = common.method("loop_method:make_loss")
    config.train.update(train)
    return config


def copy_run(run: pathlib.Path, destination: pathlib.Path) -> pathlib.Path:
    """A copy of a shared run that a test may resume, evaluate or damage."""
    return pathlib.Path(shutil.copytree(run, destination))
