"""SAGE with KL alignment (examples/sage_kl.py) on Decoy MNIST's texture family; `:smoke` for a CPU check.

sagejax train --config examples/sage_kl_config.py --workdir workdirs/sage_kl
"""

from sagejax.configs import common, sage_decoy


def get_config(arg: str | None = None):
    """The sage_decoy texture config with the method named by its import path (no registration needed)."""
    arg = common.parse_arg(arg, smoke=False)
    config = sage_decoy.get_config("sage,texture,smoke" if arg.smoke else "sage,texture")
    config.method = common.method("examples.sage_kl:make_loss", temperature=2.0)
    return config
