r"""Saliency teacher: a U-Net predicting a density over pixels, trained on human maps (DESIGN §1.2).

Run (default = the offline `mnist_attention` stand-in: 500 annotated training images, 500 validation):
  python -m sagejax.main --config configs/teacher_unet.py --workdir workdirs/teacher
Variants: `:decoy` trains the teacher that labels Decoy MNIST (texture family) from its first 500 training
images and their stroke maps (no fixations stored: fixations = map ≥ method.fixation_threshold × max);
`:smoke` shrinks everything for a CPU check. Loss = w_kld·KLD − w_cc·CC − w_nss·NSS; evaluation prints every
saliency metric for the teacher, a centre-bias Gaussian and a uniform map (results.md).
"""

import ml_collections

VARIANTS = ("decoy", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Variant names, comma separated: optional `decoy`, `smoke`."""
    variants = [v for v in (arg or "").split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown config variants {unknown}; known: {list(VARIANTS)}")

    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.name = "mnist_attention"
    config.data.builder_config = "default"
    config.data.data_dir = "~/tensorflow_datasets"
    config.data.manual_dir = ""  # folder of a manually downloaded dataset (salicon, saliency_folder)
    config.data.train_split = "train"
    config.data.train_exclude_attack_types = ()
    config.data.num_classes = 1  # the U-Net's output channels: one logit per pixel

    config.model = ml_collections.ConfigDict()
    config.model.name = "unet"
    config.model.kwargs = ml_collections.ConfigDict({"base_width": 16, "depth": 3})
    config.model.dtype = "float32"

    config.method = ml_collections.ConfigDict()
    config.method.name = "teacher"
    config.method.density_key = "density"  # the human map the teacher learns
    config.method.fixations_key = "fixations"  # "" = derive fixations from the map (below)
    config.method.fixation_threshold = 0.5  # with no fixations stored: pixels ≥ this × the map's maximum
    config.method.w_kld = 1.0
    config.method.w_cc = 1.0
    config.method.w_nss = 0.1

    config.optim = ml_collections.ConfigDict()
    config.optim.name = "adamw"
    config.optim.lr = 3e-3
    config.optim.weight_decay = 1e-4
    config.optim.momentum = 0.9
    config.optim.schedule = "cosine"
    config.optim.warmup_steps = 50
    config.optim.final_lr_fraction = 0.0
    config.optim.clip_grad_norm = 1.0

    config.train = ml_collections.ConfigDict()
    config.train.steps = 600
    config.train.batch_size = 32
    config.train.log_every_steps = 50
    config.train.eval_every_steps = 300
    config.train.checkpoint_every_steps = 300
    config.train.tensorboard = True

    config.eval = ml_collections.ConfigDict()
    config.eval.task = "saliency"
    config.eval.splits = ("validation",)
    config.eval.batch_size = 100  # sAUC negatives are the other images of an eval batch
    config.eval.attack_types = ()
    config.eval.attack_class = -1

    config.mesh = ml_collections.ConfigDict()
    config.mesh.axes = ml_collections.ConfigDict({"data": -1})

    if "decoy" in variants:
        config.data.name = "decoy_mnist"
        config.data.builder_config = "texture_32_rgb"
        config.data.train_split = "train[:500]"  # the small annotated subset
        config.method.density_key = "saliency"
        config.method.fixations_key = ""
        config.eval.splits = ("test",)
    if "smoke" in variants:
        config.model.kwargs.base_width = 4
        config.model.kwargs.depth = 2
        config.train.steps = 6
        config.train.batch_size = 16
        config.train.log_every_steps = 2
        config.train.eval_every_steps = 3
        config.train.checkpoint_every_steps = 3
        config.eval.batch_size = 64
        config.optim.warmup_steps = 1
    return config
