"""The platform a second method builds on: data from config, joint augmentation in the step, abstract init and AOT
compile, variant parsing, PAD classes by label name (evaluator cadences and methods from outside: integration)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sagejax import data, methods, models
from sagejax.configs import common, sage_csv, sage_decoy
from sagejax.evaluate.evaluators import make_evaluators
from sagejax.evaluate.split_metrics import split_metrics
from sagejax.train import create_train_state, global_batch, init_state, make_mesh, make_train_step
from sagejax.train.logger import MetricLogger


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    data.build_dataset("decoy_mnist", data_dir=path, config="swatch_32_rgb", max_examples_per_split=64)
    return path


def _config(data_dir, variant="xent,smoke"):
    config = sage_decoy.get_config(variant)
    config.data.data_dir = data_dir
    config.train.tensorboard = False
    config.evals.classification.batch_size = 32
    return config


def test_train_iter_delivers_uint8_images_and_resumes_exactly(data_dir):
    config = _config(data_dir)
    iterator = data.train_iter(config)
    first = next(iterator)
    assert first["image"].dtype == np.uint8 and first["saliency"].dtype == np.uint8
    assert first["label"].dtype == np.int32 and first["image"].shape == (16, 32, 32, 3)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(7)]  # 64 examples = 4 batches an epoch: crosses into epoch 2
    resumed = data.train_iter(config)
    resumed.set_state(state)
    for want, got in zip(expected, (next(resumed) for _ in range(7))):
        for key in want:
            np.testing.assert_array_equal(want[key], got[key], err_msg=key)
    epochs = [[first] + expected[:3], expected[3:7]]
    orders = [[image.tobytes() for batch in epoch for image in batch["image"]] for epoch in epochs]
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]  # every example once, reshuffled


def test_eval_iter_pads_to_whole_batches_and_marks_the_padding(data_dir):
    config = _config(data_dir)
    config.evals.classification.batch_size = 24
    batches = list(data.eval_iter(config, "classification", "test"))
    assert len(batches) == 3 and all(b["image"].shape[0] == 24 for b in batches)
    assert sum(int(b["valid"].sum()) for b in batches) == 64


def test_device_transform_casts_uint8_and_moves_maps_with_the_image():
    rng = np.random.default_rng(0)
    saliency = rng.integers(0, 256, (8, 32, 32), dtype=np.uint8)
    image = np.repeat(saliency[..., None], 3, axis=-1)
    fixations = (saliency > 200).astype(np.uint8)
    batch = {"image": image, "saliency": saliency, "fixations": fixations, "label": np.arange(8, dtype=np.int32)}
    data_config = common.data(augment="crop_flip")
    out = jax.jit(data.make_train_transform(data_config))(batch, jax.random.key(1))
    assert out["image"].dtype == jnp.float32 and float(out["image"].max()) <= 1.0
    # The image and its map are resampled by separate ops, which may round apart by ~1e-6.
    np.testing.assert_allclose(out["image"][..., 0], out["saliency"], atol=1e-5)
    assert not np.allclose(out["saliency"], saliency / 255)  # the crop moved something
    assert out["fixations"].dtype == jnp.uint8 and set(np.unique(out["fixations"])) <= {0, 1}
    np.testing.assert_array_equal(out["label"], batch["label"])
    plain = jax.jit(data.make_train_transform(common.data()))(batch, jax.random.key(1))
    np.testing.assert_allclose(plain["saliency"], saliency / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown data.augment 'rotate'"):
        data.make_train_transform(common.data(augment="rotate"))


def test_a_crop_that_loses_the_whole_salient_region_is_not_applied():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    saliency = np.zeros((16, 32, 32), np.uint8)
    saliency[:, :12, :12] = 255  # evidence only in the top-left corner: many small crops miss it
    batch = {"image": image, "saliency": saliency}
    data_config = common.data(augment="crop_flip", crop_scale=(0.1, 0.2))
    out = jax.device_get(jax.jit(data.make_train_transform(data_config))(batch, jax.random.key(0)))
    kept = out["saliency"].reshape(16, -1).max(axis=1) > 0
    assert kept.all()  # no example reaches the loss with its map emptied by the crop
    unchanged = np.array([np.allclose(out["image"][i], image[i] / 255) for i in range(16)])
    assert unchanged.any() and not unchanged.all()  # some crops fell back to the full view, others were applied


def test_abstract_init_allocates_on_the_mesh_and_equals_eager_init(devices):
    config = sage_decoy.get_config("xent,smoke")
    mesh = make_mesh({"data": 8}, devices=devices)
    optimizer = optax.adamw(1e-3)
    setup = init_state(config, optimizer, mesh)
    assert all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree.leaves(setup.abstract))
    state = setup.init()
    for leaf, abstract in zip(jax.tree.leaves(state), jax.tree.leaves(setup.abstract)):
        assert leaf.sharding == abstract.sharding and leaf.shape == abstract.shape
    _, eager = create_train_state(models.build_model(config), optimizer)
    chex.assert_trees_all_close(jax.device_get(state.params), jax.device_get(eager.params), rtol=1e-5, atol=1e-6)


def test_train_step_is_traced_once(devices):
    config = sage_decoy.get_config("sage,smoke")
    mesh = make_mesh({"data": 8}, devices=devices)
    setup = init_state(config, optax.sgd(0.1), mesh)
    step = make_train_step(
        graphdef=setup.graphdef,
        loss_fn=methods.make_loss(config.method),
        optimizer=optax.sgd(0.1),
        transform=data.make_train_transform(config.data),
    )
    jitted = jax.jit(chex.assert_max_traces(step, n=1), donate_argnums=(0,))
    rng = np.random.default_rng(0)
    state = setup.init()
    for seed in range(3):
        local = {
            "image": rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
            "saliency": rng.integers(0, 256, (16, 32, 32), dtype=np.uint8),
            "label": rng.integers(0, 10, 16).astype(np.int32),
        }
        state, metrics = jitted(state, global_batch(mesh, local), jax.random.key(seed))
    assert float(metrics["finite"]) == 1.0 and int(state.step) == 3


def test_variant_parser_reads_bare_values_flags_and_key_value_pairs():
    arg = common.parse_arg("texture,smoke,pad=attack", choices={"family": ("swatch", "texture")}, smoke=False, pad="")
    assert (arg.family, arg.smoke, arg.pad) == ("texture", True, "attack")
    assert common.parse_arg("", choices={"family": ("swatch", "texture")}).family == "swatch"
    with pytest.raises(ValueError, match="both set family"):
        common.parse_arg("swatch,texture", choices={"family": ("swatch", "texture")})
    with pytest.raises(ValueError, match="family must be one of"):
        common.parse_arg("family=stripes", choices={"family": ("swatch", "texture")})
    with pytest.raises(ValueError, match="'pad' needs a value: pad=VALUE"):
        sage_csv.get_config("sage,pad")
    config = sage_decoy.get_config("method=cyborg,family=texture")
    assert config.method.name == "cyborg" and config.data.builder_config == "texture_32_rgb"
    assert "temperature" not in config.method and config.method.alpha == 0.5  # each method has only its own keys
    assert sage_decoy.get_config("sage_inverted").method.invert_saliency is True


def test_smoke_shrinks_every_config():
    for config in (sage_decoy.get_config("smoke"), sage_csv.get_config("resnet18_32")):
        small = common.smoke(config)
        assert small.train.steps == 6 and all(e.every_steps == 3 for e in small.evals.values())


def test_progress_line_shows_a_rate_only_once_one_is_known(capsys, tmp_path):
    logger = MetricLogger(str(tmp_path), total_steps=10, tensorboard=False)
    logger.progress(1, {"train/loss": 1.0})
    logger.progress(2, {"train/loss": 0.5})
    logger.close()
    first, second = capsys.readouterr().err.splitlines()
    assert "steps/s" not in first and "nan" not in first
    assert "steps/s" in second


def _csv_folder(root, labels):
    """A tiny CSV dataset whose two labels are `labels` (alternating), 16 train and 16 test rows."""
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        lines = ["image,label,saliency"]
        for i in range(16):
            name = f"{split}{i}.png"
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / name)
            lines.append(f"{name},{labels[i % 2]},")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("labels, attack_index", [(("bonafide", "attack"), 0), (("0", "1"), 1)])
def test_pad_attack_class_is_resolved_by_label_name(tmp_path, devices, labels, attack_index):
    attack = labels[1]
    config = sage_csv.get_config(f"xent,resnet18_32,pad={attack}")
    config.data.manual_dir = str(_csv_folder(tmp_path / "csv", labels))
    config.data.data_dir = str(tmp_path / "tfds")
    config.model.kwargs.width = 4
    config.model.dtype = "float32"
    config.evals.classification.batch_size = 8
    mesh = make_mesh({"data": 8}, devices=devices)
    setup = init_state(config, optax.sgd(0.1), mesh)
    evaluator = make_evaluators(config, graphdef=setup.graphdef, mesh=mesh, predict=methods.classify)["classification"]
    assert evaluator.builder.info.features["label"].names[attack_index] == attack
    assert evaluator.attack_class == attack_index
    state = setup.init()
    metrics, _ = evaluator.run(state)
    outputs = list(evaluator.batches(state, "test"))
    logits, label = (np.concatenate([o[k] for o in outputs]) for k in ("logits", "label"))
    expected = split_metrics(logits=logits, labels=label, attack_class=attack_index)
    assert metrics["test/apcer_at_bpcer1"] == expected["apcer_at_bpcer1"] and metrics["test/eer"] == expected["eer"]
    config.evals.classification.attack_label = "spoof"
    with pytest.raises(ValueError, match=r"attack_label='spoof' is not a label .* its labels are"):
        make_evaluators(config, graphdef=setup.graphdef, mesh=mesh, predict=methods.classify)
