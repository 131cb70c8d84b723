r"""SAGE, CYBORG or cross-entropy on your own data, laid out as a CSV (see README "Your own data").

The folder MANUAL_DIR holds `train.csv` (and `test.csv`, any `<split>.csv`) with columns
`image,label,saliency[,attack_type]`; paths are relative to the CSV; `saliency` may be empty.
  python -m sagejax.main --config configs/sage_csv.py:sage,resnet50 --workdir workdirs/mydata \
      --config.data.manual_dir=/path/to/folder --config.data.num_classes=2
Variants: a method (xent, xent_aug, cyborg, sage, sage_inverted), a backbone (resnet50 at 224²,
vit_b16 at 224² with cuDNN-friendly average pooling, or resnet18_32 for 32² inputs), `pad` to report
APCER/BPCER with class 1 = attack. Each user dataset needs its own --config.data.data_dir (the
built copy lives there). Time: dominated by the backbone (see BENCHMARKS.md).
"""

import os

import ml_collections

from sagejax.config_files import load_module

sage_decoy = load_module(os.path.join(os.path.dirname(__file__), "sage_decoy.py"))

BACKBONES = {
    "resnet50": ("resnet50", {"stem": "imagenet"}, "rgb_224"),
    "vit_b16": ("vit_b16", {"image_size": 224, "pool": "gap"}, "rgb_224"),
    "resnet18_32": ("resnet18", {"stem": "small"}, "rgb_32"),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Variants, comma separated: a method, a backbone, optional `pad`."""
    variants = [v for v in (arg or "sage,resnet50").split(",") if v]
    unknown = sorted(set(variants) - set(sage_decoy.METHODS) - set(BACKBONES) - {"pad"})
    if unknown:
        raise ValueError(
            f"unknown config variants {unknown}; known: {list(sage_decoy.METHODS) + list(BACKBONES) + ['pad']}"
        )
    method = next((v for v in variants if v in sage_decoy.METHODS), "sage")
    backbone = next((v for v in variants if v in BACKBONES), "resnet50")

    config = sage_decoy.get_config(method)
    name, kwargs, builder_config = BACKBONES[backbone]
    config.data.name = "saliency_csv"
    config.data.builder_config = builder_config
    config.data.manual_dir = ""
    config.data.data_dir = "~/tensorflow_datasets/sagejax_csv"
    config.data.num_classes = 2
    config.model.name = name
    config.model.kwargs = ml_collections.ConfigDict(kwargs)
    config.model.dtype = "bfloat16"
    config.method.blur_sigma = 4.0 if builder_config == "rgb_224" else 2.0
    config.method.blur_kernel_size = 25 if builder_config == "rgb_224" else 13
    config.optim.name = "sgd"
    config.optim.lr = 0.05
    config.optim.weight_decay = 5e-5
    config.optim.warmup_steps = 200
    config.train.steps = 5000
    config.train.batch_size = 128
    config.train.log_every_steps = 100
    config.train.eval_every_steps = 1000
    config.train.checkpoint_every_steps = 1000
    config.eval.splits = ("test",)
    config.eval.batch_size = 256
    config.eval.attack_class = 1 if "pad" in variants else -1
    return config
