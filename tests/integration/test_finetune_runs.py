"""Fine-tuning end to end: a 224² SAGE run of the packaged fine-tune config from a timm-format file (a ResNet-50 of
width 4 with random weights) on generated JPEG data, and a SAGE run that starts from the shared xent run."""

import json
import pathlib
import sys

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file
from support import smoke_config

from sagejax.configs import sage_decoy, sage_finetune
from sagejax.errors import ConfigError
from sagejax.train.pretrained import read_pretrained
from sagejax.trainer import train_and_evaluate

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "unit" / "models"))
from torch_reference import random_resnet_state, random_vit_state  # noqa: E402


def _jpeg_csv_folder(root: pathlib.Path) -> pathlib.Path:
    """train/test CSVs of JPEGs of varying sizes (a bright square on class 1) with PNG maps marking it."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 32), ("test", 16)):
        lines = ["image,label,saliency"]
        for i in range(count):
            h, w = rng.integers(40, 90, 2)
            label = i % 2
            image = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4 : h // 2, w // 4 : w // 2] = 255
            if label:
                image[mask > 0] = 230
            Image.fromarray(image).save(root / f"{split}_{i}.jpg", quality=90)
            Image.fromarray(mask).save(root / f"{split}_{i}_map.png")
            lines.append(f"{split}_{i}.jpg,{label},{split}_{i}_map.png")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def test_a_224_sage_finetune_from_a_timm_file_runs_end_to_end(tmp_path):
    config = sage_finetune.get_config("sage,resnet50,smoke,encoded")
    assert config.model.kwargs.width == 4 and config.data.builder_config == "rgb_encoded"
    assert config.data.image_size == 224  # decoded and cropped to 224² on the host from the files' own sizes
    state = random_resnet_state(
        np.random.default_rng(0), bottleneck=True, stage_sizes=(3, 4, 6, 3), width=4, num_classes=1000
    )  # an ImageNet classifier, skipped by the config
    save_file(state, str(tmp_path / "resnet50.safetensors"))
    (tmp_path / "csv").mkdir()
    config.data.update(manual_dir=str(_jpeg_csv_folder(tmp_path / "csv")), data_dir=str(tmp_path / "tfds"))
    config.init.path = str(tmp_path / "resnet50.safetensors")
    config.mesh.num_devices = 1
    config.train.tensorboard = False
    config.evals.classification.batch_size = 16
    results = train_and_evaluate(config, str(tmp_path / "run"))
    assert 0 <= results["eval/classification/test/accuracy"] <= 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(row["train/loss"]) for row in rows if "train/loss" in row)
    from sagejax.api import load

    images = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    assert np.isfinite(load(str(tmp_path / "run")).predict(images)["logits"]).all()


def test_sage_starts_from_an_xent_runs_weights(xent_run, decoy_dir, tmp_path):
    config = smoke_config(decoy_dir, "sage,smoke")
    config.init.path = str(xent_run)
    pretrained = read_pretrained(config)
    from sagejax.api import load
    from sagejax.models.named import named_arrays

    trained = {name: np.asarray(value) for name, value in named_arrays(load(str(xent_run)).model).items()}
    assert pretrained.keys() == trained.keys()
    assert all(np.array_equal(pretrained[name], trained[name]) for name in trained)
    results = train_and_evaluate(config, str(tmp_path / "sage_from_xent"))
    assert 0 <= results["eval/classification/test/accuracy"] <= 1


def test_a_misfitting_weights_file_is_named_before_anything_is_written(tmp_path):
    state = random_vit_state(np.random.default_rng(0), patch=4, dim=32, depth=2, mlp_dim=64, grid=8, num_classes=10)
    save_file(state, str(tmp_path / "vit.safetensors"))
    config = sage_decoy.get_config("sage,smoke")
    config.data.data_dir = str(tmp_path / "tfds")
    config.init.path = str(tmp_path / "vit.safetensors")
    with pytest.raises(ConfigError, match=r"vit.safetensors holds timm vit weights; model 'resnet18' is a resnet"):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists() and not (tmp_path / "tfds").exists()
