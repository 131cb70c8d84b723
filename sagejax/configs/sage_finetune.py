r"""Fine-tune an ImageNet-pretrained ResNet-50 or ViT-B/16 at 224² on your own CSV data (README "Fine-tune a pretrained
backbone"): SAGE or a baseline, starting from a timm / torchvision / big_vision weights file.

  sagejax train --config sage_finetune:sage,resnet50 --workdir workdirs/ft_sage \
      --config.init.path=resnet50.safetensors --config.data.manual_dir=/path/to/folder --config.data.num_classes=2
Variants: a method (xent, xent_aug, cyborg, sage, sage_inverted, rrr, rrr_inverted), a backbone (resnet50: timm or
torchvision ResNet-50 names, ImageNet mean/std; vit_b16: timm's vit_base_patch16_224 or a big_vision / original ViT
.npz, class-token pooling, inputs in [-1, 1]), `pad=LABEL`, `validation=csv|FRACTION`, `encoded` (images kept at
full resolution and cropped on the host) and `defaults` (SAGE's DEFAULTS weights) as in sage_csv, `smoke` (a CPU
check of the whole path: a ResNet-50 of width 4, 6 steps). The data block, the CSV layout and the views are
sage_csv's; the classifier starts fresh (init.skip = head/*) because its classes are yours. Optimizer: SGD with
momentum, lr 0.01, gradient norm clipped at 1 (big_vision's transfer recipe), 2,000 steps of 64. Time: see
BENCHMARKS.md (ResNet-50 and ViT-B/16 at 224²).
"""

from sagejax.configs import common, sage_csv, sage_decoy

# backbone → (input normalisation its ImageNet weights expect, model options beside sage_csv's)
BACKBONES = {
    "resnet50": ("imagenet", {}),
    "vit_b16": ("inception", {"pool": "cls"}),
}


def get_config(arg: str | None = None):
    """Variants, comma separated: a method, a backbone, sage_csv's options (`pad=LABEL`, `validation=csv|FRACTION`,
    `encoded`, `defaults`), `smoke`."""
    arg = common.parse_arg(
        arg, choices={"method": sage_decoy.METHODS, "backbone": tuple(BACKBONES)}, **sage_csv.OPTIONS, smoke=False
    )
    passed_on = [key if value is True else f"{key}={value}" for key in sage_csv.OPTIONS if (value := arg[key])]
    variant = ",".join([arg.method, arg.backbone, *passed_on])
    config = sage_csv.get_config(variant)
    normalization, options = BACKBONES[arg.backbone]
    config.data.normalize = normalization
    config.model.kwargs.update(options)
    config.init = common.init(skip=("head/*",))
    config.optim = common.optim(name="sgd", lr=0.01, weight_decay=1e-4, warmup_steps=100, clip_grad_norm=1.0)
    config.train = common.train(steps=2000, batch_size=64, log_every_steps=50, checkpoint_every_steps=500)
    for settings in config.evals.values():
        settings.every_steps = 500
    if arg.smoke:
        common.smoke(config)
    return config
