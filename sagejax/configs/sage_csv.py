r"""SAGE, CYBORG or cross-entropy on your own data, laid out as a CSV (see README "Your own data").

The folder MANUAL_DIR holds `train.csv` (and `test.csv`, any `<split>.csv`) with columns
`image,label,saliency[,attack_type]`; paths are relative to the CSV; `saliency` may be empty.
  sagejax train --config sage_csv:sage,resnet50 --workdir workdirs/mydata \
      --config.data.manual_dir=/path/to/folder --config.data.num_classes=2
Variants: a method (xent, xent_aug, cyborg, sage, sage_inverted, rrr, rrr_inverted), a backbone (resnet50 at 224²,
vit_b16 at 224² with cuDNN-friendly average pooling, or resnet18_32 for 32² inputs), `pad=LABEL` to report
APCER/BPCER with the class named LABEL (a label of the CSV, e.g. `pad=attack` or `pad=1`) as the attack class,
`defaults` for SAGE's DEFAULTS instead of the weights chosen on two tasks (w_js = 10, w_tri = 3) and, with
`pad=`, the black fill of the views chosen on two PAD tasks (method.degrade = "zero"; blur otherwise),
`validation=csv` to score the folder's validation.csv (for sagejax.tools.sweep) or `validation=0.1` to hold out a
seeded, stratified 10 % of train.csv as the `validation` split instead, `encoded` to store the images (JPEG/PNG as
given) and maps at full resolution and crop them on the host to the backbone's size (builder config rgb_encoded,
data.image_size). Training uses a joint random-resized crop and flip of images and saliency maps
(`--config.data.augment=""` turns it off). Each user dataset needs its own --config.data.data_dir (the built copy
lives there). Time: dominated by the backbone (see BENCHMARKS.md).
"""

import ml_collections

from sagejax.configs import common, sage_decoy
from sagejax.errors import ConfigError

# The variants beside a method and a backbone, with their defaults (sage_finetune passes them on).
OPTIONS = dict(pad="", validation="", encoded=False, defaults=False)
# backbone → (model name, options, input size)
BACKBONES = {
    "resnet50": ("resnet50", {"stem": "imagenet"}, 224),
    "vit_b16": ("vit_b16", {"image_size": 224, "pool": "gap"}, 224),
    "resnet18_32": ("resnet18", {"stem": "small"}, 32),
}


def get_config(arg: str | None = None):
    """Variants, comma separated: a method, a backbone, optional `pad=LABEL`, `validation=csv|FRACTION`, `encoded`,
    `defaults`."""
    arg = common.parse_arg(arg, choices={"method": sage_decoy.METHODS, "backbone": tuple(BACKBONES)}, **OPTIONS)
    # SAGE's weights: sage_decoy.CHOSEN_SAGE (w_js = 10, w_tri = 3), chosen on two tasks' validation splits (README,
    # "SAGE's weights for your own data"); `defaults` gives the method's DEFAULTS (w_js = w_tri = 1).
    config = sage_decoy.get_config(",".join([arg.method, *(["defaults"] if arg.defaults else [])]))
    name, kwargs, size = BACKBONES[arg.backbone]
    config.data = common.data(
        name="saliency_csv",
        builder_config="rgb_encoded" if arg.encoded else f"rgb_{size}",
        data_dir="~/tensorflow_datasets/sagejax_csv",
        num_classes=2,
        augment="crop_flip",
        image_size=size if arg.encoded else 0,
    )
    config.model = common.model(name, dtype="bfloat16", **kwargs)
    if "blur_sigma" in config.method:  # the methods that build saliency views
        config.method.blur_sigma = 4.0 if size == 224 else 2.0
        config.method.blur_kernel_size = 25 if size == 224 else 13
        if arg.pad and not arg.defaults:
            # PAD: the views fill the non-salient region with black. A blur keeps that region's mean brightness, which
            # separated bona fide from attacks by itself on both PAD tasks measured (README, "SAGE's views for PAD").
            config.method.degrade = "zero"
    config.optim = common.optim(name="sgd", lr=0.05, weight_decay=5e-5, warmup_steps=200)
    config.train = common.train(steps=5000, batch_size=128, log_every_steps=100, checkpoint_every_steps=1000)
    config.evals = ml_collections.ConfigDict()
    config.evals.classification = common.evaluator(
        "classification", splits=("test",), every_steps=1000, attack_label=arg.pad
    )
    if arg.validation:
        if arg.validation != "csv":
            config.data.validation_fraction = _fraction(arg.validation)
        config.evals.validation = common.evaluator(
            "classification", splits=("validation",), every_steps=1000, attack_label=arg.pad
        )
    return config


def _fraction(text: str) -> float:
    """The `validation=FRACTION` variant as a float in (0, 1)."""
    try:
        fraction = float(text)
    except ValueError:
        fraction = -1.0
    if not 0 < fraction < 1:
        raise ConfigError(f"config variant validation={text!r}: expected 'csv' or a fraction in (0, 1)")
    return fraction
