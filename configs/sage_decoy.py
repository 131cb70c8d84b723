r"""SAGE and its baselines on Decoy MNIST (real digits with a class-coded decoy).

Run (default = SAGE, ResNet-18 of width 16 with the ImageNet stem, gray-swatch decoy):
  python -m sagejax.main --config configs/sage_decoy.py --workdir workdirs/sage_decoy
Variants: `:xent`, `:xent_aug`, `:cyborg`, `:sage`, `:sage_inverted`; add `,texture` for the
high-frequency decoy, `,small_stem` for the 32×32-stem ResNet-18 (about 4× slower on CPU) and
`,vit` for ViT-tiny, e.g. `--config configs/sage_decoy.py:xent,texture`.
`,teacher_maps` trains on a saliency teacher's maps instead of the built-in ones: train the teacher on 500
annotated images and label the train split first (README, "Teacher maps for SAGE"):
  python -m sagejax.main --config configs/teacher_unet.py:decoy --workdir workdirs/teacher_decoy
  python -m sagejax.label --teacher_workdir workdirs/teacher_decoy --dataset decoy_mnist \
      --dataset_config texture_32_rgb --split train --output_dir workdirs/labels/decoy_texture
`:smoke` shrinks everything for a CPU check (tens of seconds).
Expected: a plain cross-entropy model learns the decoy and loses accuracy on `test` (random
decoy) against `test_clean`; see the README's comparison table for measured numbers.
"""

import ml_collections

METHODS = ("xent", "xent_aug", "cyborg", "sage", "sage_inverted")
OPTIONS = ("texture", "small_stem", "vit", "teacher_maps", "smoke")
TEACHER_LABELS = "workdirs/labels/decoy_{family}"  # where `teacher_maps` reads the teacher-labeled train split


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Variant names, comma separated: a method, optional `texture`, `small_stem`, `vit`, `smoke`."""
    variants = [v for v in (arg or "sage").split(",") if v]
    unknown = sorted(set(variants) - set(METHODS) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown config variants {unknown}; known: {list(METHODS) + list(OPTIONS)}")
    method = next((v for v in variants if v in METHODS), "sage")

    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.name = "decoy_mnist"
    config.data.builder_config = "texture_32_rgb" if "texture" in variants else "swatch_32_rgb"
    config.data.data_dir = "~/tensorflow_datasets"
    config.data.manual_dir = ""  # folder of a manually downloaded dataset (saliency_csv), "" for none
    config.data.train_split = "train"
    config.data.train_exclude_attack_types = ()  # attack types left out of training (leave-one-out protocols)
    config.data.num_classes = 10
    config.data.train_dir = ""  # a TFDS folder (e.g. written by sagejax.label) to train on; "" = the split above
    config.data.saliency_feature = "saliency"  # the training feature SAGE reads as its saliency map

    config.model = ml_collections.ConfigDict()
    config.model.name = "vit_tiny" if "vit" in variants else "resnet18"
    stem = "small" if "small_stem" in variants else "imagenet"
    config.model.kwargs = ml_collections.ConfigDict({} if "vit" in variants else {"stem": stem, "width": 16})
    config.model.dtype = "float32"

    config.method = ml_collections.ConfigDict()
    config.method.name = "sage" if method == "sage_inverted" else method
    config.method.label_smoothing = 0.0
    config.method.temperature = 2.0  # T of the JS logit alignment
    config.method.t2_scale = True  # multiply the JS terms by T²
    config.method.w_js = 1.0  # weight of JS(y‖y~) + JS(y'‖y~')
    config.method.w_tri = 1.0  # weight of the triplet (anchor z, positive z~, negative z~')
    config.method.margin = 0.5
    config.method.distance = "squared_normalized_l2"  # or "l2", "cosine"
    config.method.batch_hard = False  # hardest negative of the batch instead of z~'_i
    config.method.blur_sigma = 2.0  # Gaussian σ of the degradation, pixels
    config.method.blur_kernel_size = 13
    config.method.degrade = "blur"  # or "mean" (fill), "noise" (augment.DEGRADATIONS)
    config.method.view_fraction = 1.0  # fraction of the batch that gets saliency views
    config.method.invert_saliency = method == "sage_inverted"
    config.method.empty_saliency = "ones"  # an all-zero map means "all salient" (SAGE terms vanish)
    config.method.ce_views = ("x",)  # views that get cross-entropy: x, x_blur, x_keep, x_degrade
    config.method.stop_gradient_targets = False  # treat y, y' and z as fixed targets
    config.method.hook = ""  # "" = pooled penultimate features; else a tap name (models.available_taps)
    config.method.cyborg_alpha = 0.5
    config.method.cyborg_cam_class = "true"  # or "predicted", as the original CYBORG code

    config.optim = ml_collections.ConfigDict()
    config.optim.name = "adamw"
    config.optim.lr = 1e-3
    config.optim.weight_decay = 1e-4
    config.optim.momentum = 0.9
    config.optim.schedule = "cosine"
    config.optim.warmup_steps = 50
    config.optim.final_lr_fraction = 0.0
    config.optim.clip_grad_norm = 0.0

    config.train = ml_collections.ConfigDict()
    config.train.steps = 400
    config.train.batch_size = 64
    config.train.log_every_steps = 50
    config.train.eval_every_steps = 200
    config.train.checkpoint_every_steps = 200
    config.train.tensorboard = True

    config.eval = ml_collections.ConfigDict()
    config.eval.splits = ("test", "test_clean")
    config.eval.batch_size = 256
    config.eval.attack_types = ()  # evaluate on bona fide + only these attack types; () = everything
    config.eval.attack_class = -1  # class index of "attack" for PAD rates (APCER/BPCER); -1 = not a PAD task

    config.mesh = ml_collections.ConfigDict()
    config.mesh.axes = ml_collections.ConfigDict({"data": -1})

    if "teacher_maps" in variants:
        family = "texture" if "texture" in variants else "swatch"
        config.data.train_dir = TEACHER_LABELS.format(family=family)
        config.data.saliency_feature = "teacher_saliency"
    if "smoke" in variants:
        if "vit" not in variants:
            config.model.kwargs.width = 4
        config.train.steps = 6
        config.train.batch_size = 16
        config.train.log_every_steps = 2
        config.train.eval_every_steps = 3
        config.train.checkpoint_every_steps = 3
        config.eval.batch_size = 64
        config.optim.warmup_steps = 1
    return config
