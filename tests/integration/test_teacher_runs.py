"""The saliency teacher trained by the trainer on the shared mnist_attention: every metric with both baselines, eval
mode's equal numbers, learning past the baselines, and a missing human map named before training."""

import json

import numpy as np
import pytest
from support import copy_run, teacher_config

from sagejax.trainer import evaluate_checkpoint, train_and_evaluate


def test_teacher_run_reports_every_metric_with_both_baselines(teacher_run, attention_dir, tmp_path):
    workdir, results = teacher_run
    workdir = copy_run(workdir, tmp_path / "teacher")
    names = ("AUC-Judd", "AUC-Borji", "sAUC", "NSS", "CC", "KLD", "SIM", "IG")
    for prefix in ("", "centre_bias/", "uniform/"):
        for name in names:
            assert np.isfinite(results[f"eval/saliency/validation/{prefix}{name}"]), (prefix, name)
    uniform = "eval/saliency/validation/uniform/"
    assert results[f"{uniform}CC"] == 0.0 and results[f"{uniform}NSS"] == 0.0
    table = (workdir / "results.md").read_text()
    for row in ("| saliency/validation |", "| saliency/validation/centre_bias |", "| saliency/validation/uniform |"):
        assert row in table
    assert json.loads((workdir / "results.json").read_text())["step"] == 6
    events = list((workdir / "tensorboard").glob("events.*"))
    assert events and max(e.stat().st_size for e in events) > 10_000  # image panels were written
    config = teacher_config(attention_dir)
    assert evaluate_checkpoint(config, str(workdir)) == results  # --mode=eval gives the same numbers


def test_trained_teacher_beats_centre_bias_and_uniform_on_nss_and_cc(attention_dir, tmp_path):
    config = teacher_config(attention_dir, steps=120, every_steps=0, checkpoint_every_steps=1000)
    config.model.kwargs.base_width = 8
    config.optim.lr = 3e-3
    config.optim.warmup_steps = 10
    results = train_and_evaluate(config, str(tmp_path))
    for metric in ("NSS", "CC"):
        teacher = results[f"eval/saliency/validation/{metric}"]
        assert teacher > results[f"eval/saliency/validation/centre_bias/{metric}"] + 0.1, metric
        assert teacher > results[f"eval/saliency/validation/uniform/{metric}"] + 0.1, metric


def test_a_dataset_without_the_human_map_is_named(attention_dir, tmp_path):
    config = teacher_config(attention_dir)
    config.evals.saliency.map_key = "gaze"
    with pytest.raises(ValueError, match="evals.saliency: .* has no feature 'gaze'"):
        train_and_evaluate(config, str(tmp_path))
