r"""Contrastive and supervised students with teacher-generated attention labels (Yao et al., DESIGN §1.2).

The offline default pretrains on `mnist_attention`'s 4,000 `unlabeled` images and probes on `train` (500 labelled)
/ `validation` (500). The `*_attn` variants read teacher maps: train the teacher and label `unlabeled` first
(README, "Saliency teacher and labeled datasets"):
  sagejax train --config teacher_unet --workdir workdirs/teacher
  sagejax label --teacher_workdir workdirs/teacher --dataset mnist_attention --split unlabeled \
      --output_dir workdirs/labels/mnist_attention
  sagejax train --config student:simclr_attn --workdir workdirs/student_simclr_attn
Variants: a method (`simclr`, `simclr_attn`, `simclr_cotrain`, `supervised`, `supervised_attn`), a backbone
(`resnet18` of width 8 with the 32×32 stem, or `resnet50` with the ImageNet stem at 224²), `labels=DIR` for the
teacher-labelled folder, `lars` for SimCLR's LARS recipe (lr 1.0 × batch/256; the default is AdamW, which
trains these short CPU runs further), `robust` to add the `robustness` (CIFAR-10-C sweep of `validation` through a
logistic probe fit on clean `train`) and `retrieval` evaluators, `grid8` for an 8×8 attention grid (the ResNet-18's
last stage without its stride: 4× that stage's FLOPs, the same parameters), `heldout` for mnist_attention's
`heldout` config (a `test` split of 500 taken from `unlabeled`; every evaluator also scores `test`, so weights chosen
on `validation` are reported on examples no choice saw; label its `unlabeled` with `--dataset_config heldout` into
`workdirs/labels/mnist_attention_heldout`, the labels it reads by default; labels of another config are refused),
`smoke` for a CPU check.
`simclr_cotrain` trains on `train+unlabeled` with the human maps of `train` only (the unlabeled images' maps read as
none). Evaluators: `linear_probe` (ridge and logistic, full and 1/5/10/25-shot, regularisation chosen on a held-out
part of `train`), `attention_pooled_probe` (the same logistic and ridge probes on the last feature map pooled with
the model's attention instead of uniformly), `embedding_geometry` (effective rank, alignment, uniformity) and
`attention_alignment` (NSS, CC, KLD, SIM, AUC-Judd, sAUC of the model's attention against the human maps of
`validation`). Time: about 3 minutes per run on 2 CPU cores (ResNet-18 width 8, 500 steps of batch 64);
see the README's student tables.
"""

import ml_collections

from sagejax.configs import common
from sagejax.errors import ConfigError

METHODS = ("simclr", "simclr_attn", "simclr_cotrain", "supervised", "supervised_attn")
# name → (model, options). resnet50's ImageNet stem needs images of about 224² (on 32² its last feature map, hence
# the attention grid, is 1×1 and the attention term is refused): a 224² dataset with maps, e.g. a saliency_csv or
# saliency_folder build with `--config.data.*` and the evaluators' map keys set to match.
BACKBONES = {
    "resnet18": ("resnet18", dict(stem="small", width=8)),
    "resnet50": ("resnet50", dict(stem="imagenet")),
}
TEACHER_LABELS = "workdirs/labels/mnist_attention"


def get_config(arg: str | None = None):
    """Variants, comma separated: a method, a backbone, optional `labels=DIR`, `lars`, `robust`, `grid8`, `heldout`,
    `smoke`."""
    arg = common.parse_arg(
        arg,
        choices={"method": METHODS, "backbone": tuple(BACKBONES)},
        labels=TEACHER_LABELS,
        lars=False,
        robust=False,
        grid8=False,
        heldout=False,
        smoke=False,
    )
    config = ml_collections.ConfigDict()
    config.seed = 0
    builder_config = "heldout" if arg.heldout else "default"
    config.data = common.data(
        name="mnist_attention", builder_config=builder_config, train_split="unlabeled", num_classes=10
    )
    if arg.method.endswith("_attn"):  # the unlabeled split with teacher_saliency / teacher_fixations
        default_heldout = arg.heldout and arg.labels == TEACHER_LABELS
        config.data.train_dir = f"{TEACHER_LABELS}_heldout" if default_heldout else arg.labels
    if arg.method == "simclr_cotrain":
        config.data.train_split = "train+unlabeled"
        config.data.unannotated_splits = ("unlabeled",)
    name, kwargs = BACKBONES[arg.backbone]
    config.model = common.model(name, **kwargs)
    if arg.grid8:  # the last stage keeps the third stage's resolution: an 8×8 attention grid at 32² (4×4 otherwise)
        if name != "resnet18":
            raise ConfigError(f"variant grid8 is for the resnet18 backbone (8×8 at 32²), not {arg.backbone}")
        config.model.kwargs.last_stride = 1
    config.model.student = ml_collections.ConfigDict(
        dict(projection_hidden=256, projection_dim=64, attention=arg.method.endswith(("_attn", "_cotrain")))
    )
    config.method = common.method(arg.method, crop_scale=(0.2, 1.0), blur_sigma=(0.1, 1.0))
    if arg.lars:  # SimCLR's recipe: LARS with linear lr scaling (here lr 1.0 × batch/256), biases and norms not decayed
        config.optim = common.optim(name="lars", lr=1.0, lr_scaling="linear", weight_decay=1e-6, warmup_steps=50)
    else:  # short CPU runs at batch 64: AdamW reached a lower training loss (3.05 against LARS's 3.45 at step 500)
        config.optim = common.optim(name="adamw", lr=2e-3, weight_decay=1e-4, warmup_steps=50)
    config.train = common.train(steps=500, batch_size=64, log_every_steps=50, checkpoint_every_steps=250)
    splits = ("validation", "test") if arg.heldout else ("validation",)
    config.evals = ml_collections.ConfigDict()
    config.evals.linear_probe = common.evaluator("linear_probe", splits=splits, batch_size=250)
    config.evals.attention_pooled_probe = common.evaluator(
        "linear_probe", splits=splits, batch_size=250, feature_key="attention_pooled", shots=()
    )
    config.evals.embedding_geometry = common.evaluator("embedding_geometry", splits=splits, batch_size=250)
    config.evals.attention_alignment = common.evaluator("attention_alignment", splits=splits, batch_size=100)
    if arg.robust:  # CIFAR-10-C sweep through a probe fit on clean `train`, and retrieval of `validation` in `train`
        config.evals.robustness = common.evaluator(
            "robustness", splits=splits, batch_size=250, classifier="logistic_probe", probe_split="train"
        )
        config.evals.retrieval = common.evaluator(
            "retrieval", splits=splits, batch_size=250, query_corruptions=("gaussian_noise/3", "contrast/3")
        )
    config.mesh = common.mesh()
    config.init = common.init()
    if arg.smoke:
        common.smoke(config)
        config.model.student.update(projection_hidden=16, projection_dim=8)
        config.evals.linear_probe.update(shots=(1,), shot_seeds=1, logistic_steps=5)
        config.evals.attention_pooled_probe.update(logistic_steps=5)
        if arg.robust:
            config.evals.robustness.update(corruptions=("brightness",), severities=(1, 5), logistic_steps=5)
    return config
