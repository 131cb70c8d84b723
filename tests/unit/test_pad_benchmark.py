"""Digit PAD and its benchmark: attacks dim and pattern the strokes (the marked evidence), the background shortcut
follows the attack type in `train` only, leave-one-attack-out chooses on seen types and tests the held-out one, and
the table reports each held-out type's AUROC and APCER at BPCER = 1 % over seeds."""

import numpy as np
import pytest

from sagejax import loao_protocol, pad_benchmark, runs
from sagejax.configs import digit_pad as digit_pad_config
from sagejax.data import digit_pad
from sagejax.data.decoy_mnist import texture_grating


def _digit():
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a vertical stroke
    return digit


def test_an_attack_dims_and_patterns_the_strokes_and_the_background_stays_off_them():
    bona_fide = digit_pad.make_example(_digit(), 1, size=32, channels=3, attack_type=-1, background=-1)
    strokes = bona_fide["image"][..., 0] == 255
    assert strokes.sum() == 16 * 4 and bona_fide["label"] == 0 and bona_fide["attack_type"] == "none"
    assert bona_fide["image"][~strokes].max() == 0 and bona_fide["saliency"][strokes].min() == 255
    for index, name in enumerate(digit_pad.ATTACK_TYPES):
        attack = digit_pad.make_example(_digit(), 1, size=32, channels=1, attack_type=index, background=index)
        pixels = attack["image"][..., 0].astype(float)
        pattern = digit_pad.stroke_pattern(index, 32).astype(bool)
        assert attack["label"] == 1 and attack["attack_type"] == name
        assert pixels[strokes & pattern].max() == round(255 * digit_pad.ATTACK_GAIN)
        off_gain = digit_pad.ATTACK_GAIN - digit_pad.PATTERN_DEPTH
        assert pixels[strokes & ~pattern].max() == round(255 * off_gain)
        salient = attack["saliency"] > 0
        np.testing.assert_array_equal(pixels[~salient], texture_grating(index, 32)[~salient])
    patterns = {digit_pad.stroke_pattern(i, 32).tobytes() for i in range(len(digit_pad.ATTACK_TYPES))}
    assert len(patterns) == len(digit_pad.ATTACK_TYPES)  # each type its own evidence


@pytest.mark.parametrize("config", ["32_rgb", "32_rgb_no_shortcut"])
def test_the_background_gives_the_class_away_in_train_only(tmp_path, config):
    builder = digit_pad.DigitPad(data_dir=str(tmp_path), config=config)
    digits = np.repeat(_digit()[None], 400, axis=0)
    labels = np.arange(400) % 10
    for split in ("train", "validation", "test"):
        examples = [
            e for _, e in digit_pad.generate_examples(builder.builder_config, split, digits, labels, range(400))
        ]
        types = [digit_pad.ATTACK_TYPES.index(e["attack_type"]) if e["label"] else -1 for e in examples]
        backgrounds = [e["background"] for e in examples]
        assert 0.4 < np.mean([e["label"] for e in examples]) < 0.6
        if split == "train" and config == "32_rgb":
            assert backgrounds == types
        else:  # every background under both classes, drawn whatever the class
            for label in (0, 1):
                seen = {b for e, b in zip(examples, backgrounds) if e["label"] == label}
                assert seen == {-1, 0, 1, 2, 3}
            assert np.mean(np.asarray(backgrounds) == np.asarray(types)) < 0.4


def test_validation_scores_the_seen_types_and_test_the_held_out_one(monkeypatch):
    trained = {}

    def fake_train(config, workdir):
        trained[workdir.rsplit("/", 1)[-1]] = config
        return {"eval/classification/test/auroc": 0.9, "eval/validation/validation/auroc": 0.8}

    monkeypatch.setattr(loao_protocol, "attack_types", lambda config: list(digit_pad.ATTACK_TYPES))
    monkeypatch.setattr(runs, "train_or_reuse", fake_train)
    results = loao_protocol.run_protocol(digit_pad_config.get_config("sage"), "/runs/sage")
    assert set(results) == set(digit_pad.ATTACK_TYPES) == set(trained)
    assert results["mask"] == {"classification/test/auroc": 0.9, "validation/validation/auroc": 0.8}
    config = trained["replay"]
    assert tuple(config.data.train_exclude_attack_types) == ("replay",)
    assert tuple(config.evals.classification.attack_types) == ("replay",)
    assert tuple(config.evals.validation.attack_types) == ("print", "cutout", "mask")


def test_the_table_gives_each_held_out_type_and_all_types_over_seeds_with_the_worst_seed():
    def protocol(auroc, apcer):
        return {
            t: {"classification/test/auroc": auroc, "classification/test/apcer_at_bpcer1": apcer + i / 10}
            for i, t in enumerate(("print", "replay"))
        }

    results = {"xent": {"0": protocol(0.5, 0.6), "1": protocol(0.7, 0.8)}, "sage": {"0": protocol(0.9, 0.1)}}
    header, _, xent, sage = pad_benchmark.summarize(results).splitlines()
    assert header.startswith("| method | print AUROC | print APCER @ BPCER 1 % | replay AUROC |")
    assert xent == "| xent | 60.0 ± 10.0 | 70.0 ± 10.0 | 60.0 ± 10.0 | 80.0 ± 10.0 | 60.0 ± 10.0 | 75.0 ± 10.0 | 85.0 |"
    assert sage == "| sage | 90.0 | 10.0 | 90.0 | 20.0 | 90.0 | 15.0 | 15.0 |"


@pytest.mark.parametrize("method", ["xent", "sage", "rrr", "cyborg"])
def test_the_config_is_a_two_class_pad_task_of_each_method(method):
    config = digit_pad_config.get_config(method)
    assert config.data.name == "digit_pad" and config.data.num_classes == 2 and config.method.name == method
    assert config.evals.classification.attack_label == config.evals.validation.attack_label == "attack"
    assert digit_pad_config.get_config(f"{method},no_shortcut").data.builder_config == "32_rgb_no_shortcut"
    if method == "sage":  # the weights chosen on Digit PAD, not the texture decoy's; `defaults` gives DEFAULTS
        assert (config.method.w_js, config.method.w_tri) == (30.0, 1.0)
        assert digit_pad_config.get_config("sage,defaults").method.w_js == 1.0


def test_the_csv_config_uses_the_settings_chosen_on_two_tasks_and_defaults_gives_the_defaults():
    from sagejax.configs import sage_csv, sage_decoy
    from sagejax.methods import sage

    chosen = sage_csv.get_config("sage,resnet18_32").method
    assert (chosen.w_js, chosen.w_tri) == (sage_decoy.CHOSEN_SAGE["w_js"], sage_decoy.CHOSEN_SAGE["w_tri"])
    defaults = sage_csv.get_config("sage,resnet18_32,defaults").method
    assert (defaults.w_js, defaults.w_tri) == (sage.DEFAULTS["w_js"], sage.DEFAULTS["w_tri"])
    # PAD: the views fill the non-salient region with black (the choice of two PAD tasks), the control's views too;
    # classification keeps the blur, and `defaults` gives the method's DEFAULTS (blur) for PAD as well.
    for method in ("sage", "xent_aug", "sage_inverted"):
        assert sage_csv.get_config(f"{method},resnet18_32,pad=attack").method.degrade == "zero"
        assert sage_csv.get_config(f"{method},resnet18_32").method.degrade == "blur"
    assert sage_csv.get_config("sage,resnet18_32,pad=attack,defaults").method.degrade == sage.DEFAULTS["degrade"]
    assert "degrade" not in sage_csv.get_config("rrr,resnet18_32,pad=attack").method
    from sagejax.configs import sage_finetune  # passes every sage_csv option on

    assert sage_finetune.get_config("sage,resnet50").method.w_js == sage_decoy.CHOSEN_SAGE["w_js"]
    finetune = sage_finetune.get_config("sage,vit_b16,defaults,pad=attack,validation=0.1,encoded,smoke")
    assert finetune.method.w_js == sage.DEFAULTS["w_js"] and finetune.data.builder_config == "rgb_encoded"
    assert finetune.evals.validation.attack_label == "attack" and finetune.data.validation_fraction == 0.1
