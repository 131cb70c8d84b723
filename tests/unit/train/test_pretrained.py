"""`config.init`: a pretrained file is read, converted and matched before anything is built, lands in the initial
state with the state's shardings (the moving average starts from it), and every misfit is one error naming it."""

import logging
import sys

import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

from sagejax.configs import sage_decoy
from sagejax.errors import ConfigError, MissingError
from sagejax.train.mesh import make_mesh
from sagejax.train.optim import ema_params, make_optimizer
from sagejax.train.pretrained import read_pretrained
from sagejax.train.state import init_state

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "models"))
from torch_reference import as_big_vision, random_resnet_state, random_vit_state  # noqa: E402


def _vit_config(path, **init):
    config = sage_decoy.get_config("sage,vit,smoke")
    config.model.kwargs.pool = "cls"
    config.data.normalize = "inception"
    config.init.update(path=str(path), **init)
    return config


@pytest.fixture(scope="module")
def timm_vit(tmp_path_factory):
    state = random_vit_state(np.random.default_rng(0), patch=4, dim=32, depth=2, mlp_dim=64, grid=8, num_classes=10)
    path = tmp_path_factory.mktemp("weights") / "vit.safetensors"
    save_file(state, str(path))
    return path, state


def test_a_timm_file_lands_in_the_initial_sharded_state(timm_vit):
    path, state = timm_vit
    config = _vit_config(path)
    config.optim.ema_decay = 0.9
    pretrained = read_pretrained(config)
    np.testing.assert_array_equal(pretrained["params/blocks/1/attn/qkv/kernel"], state["blocks.1.attn.qkv.weight"].T)
    mesh = make_mesh({"data": -1}, devices=jax.devices()[:2])
    setup = init_state(config, make_optimizer(config.optim, 10), mesh)
    initial = setup.init(pretrained)
    qkv = initial.params["blocks"][1]["attn"]["qkv"]["kernel"][...]
    np.testing.assert_array_equal(np.asarray(qkv), pretrained["params/blocks/1/attn/qkv/kernel"])
    assert qkv.sharding == setup.abstract.params["blocks"][1]["attn"]["qkv"]["kernel"].sharding
    average = ema_params(initial.opt_state)["pos_embed"][...]
    np.testing.assert_array_equal(np.asarray(average), state["pos_embed"])  # the moving average starts from it
    fresh = setup.init()
    assert not np.array_equal(np.asarray(fresh.params["pos_embed"][...]), state["pos_embed"])


def test_a_student_reads_a_backbone_file_under_its_backbone(tmp_path):
    from sagejax.configs import student

    config = student.get_config("simclr_attn,smoke")
    sd = random_resnet_state(
        np.random.default_rng(0),
        bottleneck=False,
        stage_sizes=(2, 2, 2, 2),
        width=config.model.kwargs.width,
        num_classes=config.data.num_classes,
    )
    save_file(sd, str(tmp_path / "r.safetensors"))
    config.data.normalize = "imagenet"
    config.init.update(path=str(tmp_path / "r.safetensors"), skip=("projection/*", "attention/*"))
    config.model.kwargs.stem = "imagenet"
    pretrained = read_pretrained(config)
    assert "params/backbone/stem/conv/kernel" in pretrained and "batch_stats/backbone/stem/bn/mean" in pretrained
    assert not any(name.startswith(("params/projection", "params/attention")) for name in pretrained)


def test_an_imagenet_file_without_normalisation_warns(timm_vit, caplog, tmp_path):
    config = _vit_config(timm_vit[0])
    config.data.normalize = "none"
    with caplog.at_level(logging.WARNING):
        read_pretrained(config)
    assert "config.data.normalize is 'none'" in caplog.text
    sd = as_big_vision(timm_vit[1], heads=2, depth=2)
    np.savez(tmp_path / "vit.npz", **sd)
    config.init.path = str(tmp_path / "vit.npz")
    with caplog.at_level(logging.WARNING):
        read_pretrained(config)
    assert "tanh-approximate GELU" in caplog.text
    caplog.clear()
    config.model.kwargs.gelu_approximate = True
    with caplog.at_level(logging.WARNING):
        read_pretrained(config)
    assert "tanh-approximate GELU" not in caplog.text


def test_sagejax_weights_keep_the_normalisation_they_were_trained_with(tmp_path):
    from sagejax import models
    from sagejax.models.named import named_arrays

    trained = sage_decoy.get_config("sage,smoke")
    trained.data.normalize = "imagenet"
    arrays = {name: np.asarray(value) for name, value in named_arrays(models.build_model(trained)).items()}
    metadata = {"format": "sagejax", "config": trained.to_json()}
    save_file(arrays, str(tmp_path / "export.safetensors"), metadata=metadata)
    config = sage_decoy.get_config("sage,smoke")
    config.init.path = str(tmp_path / "export.safetensors")
    with pytest.raises(ConfigError, match=r"trained with config.data.normalize='imagenet', this config has 'none'"):
        read_pretrained(config)
    config.data.normalize = "imagenet"
    assert read_pretrained(config).keys() == arrays.keys()


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(format="big_vision"), ConfigError, r"vit.safetensors holds timm weights, not big_vision"),
        (dict(format="keras"), ConfigError, r"config.init.format='keras': choose from"),
        (dict(path="/nonexistent/w.safetensors"), MissingError, "no weights file /nonexistent/w.safetensors"),
        (dict(extra="blocks.0.ls1.gamma"), ConfigError, r"1 timm tensors fit no vit parameter.*blocks.0.ls1.gamma"),
        (dict(extra="head.weight"), ConfigError, r"params/head/dense/kernel: .* holds shape \(32, 3\), the model"),
    ],
)
def test_a_misfit_is_named(timm_vit, tmp_path, change, error, message):
    config = _vit_config(timm_vit[0])
    if "extra" in change:  # the file with one tensor more, or of another shape
        save_file({**timm_vit[1], change.pop("extra"): np.zeros((3, 32), np.float32)}, str(tmp_path / "w.safetensors"))
        config.init.path = str(tmp_path / "w.safetensors")
    config.init.update(**change)
    with pytest.raises(error, match=message):
        read_pretrained(config)


def test_a_vit_file_for_a_resnet_and_an_unknown_layout_are_named(timm_vit, tmp_path):
    config = sage_decoy.get_config("sage,smoke")
    config.init.path = str(timm_vit[0])
    with pytest.raises(ConfigError, match=r"vit.safetensors holds timm vit weights; model 'resnet18' is a resnet"):
        read_pretrained(config)
    save_file({"weights": np.zeros(3, np.float32)}, str(tmp_path / "odd.safetensors"))
    config.init.path = str(tmp_path / "odd.safetensors")
    with pytest.raises(ConfigError, match="cannot tell the format of .*odd.safetensors.*set config.init.format"):
        read_pretrained(config)
