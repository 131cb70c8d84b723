r"""Saliency teacher: a U-Net predicting a density over pixels, trained on human maps (DESIGN §1.2).

Run (default = the offline `mnist_attention` stand-in: 500 annotated training images, 500 validation):
  sagejax train --config teacher_unet --workdir workdirs/teacher
Variants: `:decoy` trains the teacher that labels Decoy MNIST (texture family) from its first 500 training
images and their stroke maps (no fixations stored: fixations = map ≥ method.fixation_threshold × max);
`:smoke` shrinks everything for a CPU check. Loss = w_kld·KLD − w_cc·CC − w_nss·NSS; evaluation prints every
saliency metric for the teacher, a centre-bias Gaussian and a uniform map (results.md).
"""

import ml_collections

from sagejax.configs import common


def get_config(arg: str | None = None):
    """Variants, comma separated: optional `decoy`, `smoke`."""
    arg = common.parse_arg(arg, decoy=False, smoke=False)
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.data = common.data(name="mnist_attention", builder_config="default", num_classes=1)  # one logit a pixel
    config.model = common.model("unet", base_width=16, depth=3)
    config.method = common.method("teacher")
    config.optim = common.optim(lr=3e-3, clip_grad_norm=1.0)
    config.train = common.train(steps=600, batch_size=32, log_every_steps=50, checkpoint_every_steps=300)
    config.evals = ml_collections.ConfigDict()
    config.evals.saliency = common.evaluator("saliency", splits=("validation",), every_steps=300, batch_size=100)
    for eval_key, method_key in (("map_key", "density_key"), ("fixations_key", "fixations_key")):
        config.evals.saliency[eval_key] = config.method.get_ref(method_key)  # scored on the maps it learns
    config.evals.saliency.fixation_threshold = config.method.get_ref("fixation_threshold")
    config.mesh = common.mesh()
    config.init = common.init()
    if arg.decoy:
        config.data.name = "decoy_mnist"
        config.data.builder_config = "texture_32_rgb"
        config.data.train_split = "train[:500]"  # the small annotated subset
        config.method.density_key = "saliency"
        config.method.fixations_key = ""
        config.evals.saliency.splits = ("test",)
    if arg.smoke:
        common.smoke(config)
    return config
