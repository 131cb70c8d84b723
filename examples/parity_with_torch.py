r"""Parity of converted weights with their source: timm / torchvision ResNet-18 and ResNet-50 and timm ViT-B/16 with
random weights (BatchNorm statistics randomised too), their logits in PyTorch against sagejax's after `config.init`'s
conversion. Two steps, because PyTorch and sagejax live in different environments:

  # with torch, torchvision and timm installed (not sagejax's dependencies):
  python examples/parity_with_torch.py write /tmp/parity
  # in sagejax's environment:
  python examples/parity_with_torch.py check /tmp/parity
"""

import json
import os
import sys

import numpy as np

# (sagejax model name, its options, source library, the source's model name)
CASES = {
    "resnet18_torchvision": ("resnet18", {}, "torchvision", "resnet18"),
    "resnet50_torchvision": ("resnet50", {}, "torchvision", "resnet50"),
    "resnet50_timm": ("resnet50", {}, "timm", "resnet50"),
    "vit_b16_timm": ("vit_b16", {"pool": "cls", "image_size": 224}, "timm", "vit_base_patch16_224"),
}
BATCH, SIZE = 4, 224


def write(folder: str) -> None:
    """Builds each source model with random weights, saves its state dict and its logits on fixed inputs."""
    import timm
    import torch
    import torchvision
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    images = np.random.default_rng(0).uniform(0, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    np.save(os.path.join(folder, "images.npy"), images)
    for case, (_, _, library, name) in CASES.items():
        model = getattr(torchvision.models, name)() if library == "torchvision" else timm.create_model(name)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # statistics a fresh model would not exercise
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                torch.nn.init.uniform_(module.weight, 0.5, 1.5)
                torch.nn.init.uniform_(module.bias, -0.2, 0.2)
        model.eval()
        with torch.no_grad():
            logits = model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(folder, f"{case}.safetensors"))
        np.save(os.path.join(folder, f"{case}_logits.npy"), logits)
        print(case, "written")


def check(folder: str) -> dict:
    """Loads each file through `config.init`'s reader into the sagejax model and compares logits."""
    import jax.numpy as jnp
    import ml_collections

    from sagejax import models
    from sagejax.models.named import assign
    from sagejax.train.pretrained import read_pretrained

    images = np.load(os.path.join(folder, "images.npy"))
    results = {}
    for case, (name, options, _, _) in CASES.items():
        config = ml_collections.ConfigDict(
            {
                "seed": 0,
                "model": {"name": name, "kwargs": options, "dtype": "float32"},
                "data": {"num_classes": 1000, "normalize": "none"},
                "init": {"path": os.path.join(folder, f"{case}.safetensors"), "format": "", "skip": ()},
            }
        )
        model = models.build_model(config)
        assign(model, {k: jnp.asarray(v) for k, v in read_pretrained(config).items()})
        model.eval()
        logits = np.asarray(model(jnp.asarray(images))["logits"])
        reference = np.load(os.path.join(folder, f"{case}_logits.npy"))
        results[case] = {
            "max_abs_diff": float(np.max(np.abs(logits - reference))),
            "max_abs_logit": float(np.max(np.abs(reference))),
            "same_top1": float(np.mean(logits.argmax(-1) == reference.argmax(-1))),
        }
        print(case, json.dumps(results[case]))
    return results


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
