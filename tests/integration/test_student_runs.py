"""Student runs end to end on a small mnist_attention: SimCLR with teacher-map attention (the labels written here as a
tfds folder, standing in for sagejax.tools.label's), co-training on the human maps of `train` only, and the errors a run
gives before step 1."""

import json

import numpy as np
import pytest
from support import ATTENTION_EXAMPLES

from sagejax import data, labeling
from sagejax.configs import student as student_configs
from sagejax.data import tfds_writer
from sagejax.trainer import train_and_evaluate

LABELED = ATTENTION_EXAMPLES  # unlabeled examples given teacher labels


@pytest.fixture(scope="module")
def labels(attention_dir, tmp_path_factory):
    """A tfds folder of `unlabeled[:160]` with teacher_saliency / teacher_fixations = the stored human maps."""
    folder = str(tmp_path_factory.mktemp("labels"))
    builder = data.get_builder("mnist_attention", data_dir=str(attention_dir))
    source = builder.as_data_source(split=f"unlabeled[:{LABELED}]")
    features = labeling.labeled_features(builder.info.features, (32, 32))
    records = (
        tfds_writer.serialize(
            features,
            {**source[i], labeling.MAP_KEY: source[i]["density"], labeling.FIXATIONS_KEY: source[i]["fixations"]},
        )
        for i in range(len(source))
    )
    kwargs = dict(output_dir=folder, dataset_name="mnist_attention_teacher", split="unlabeled")
    tfds_writer.write_shard(path=tfds_writer.shard_path(**kwargs, shard=0, num_shards=1), records=records)
    tfds_writer.write_metadata(**kwargs, features=features, shard_lengths=[LABELED], description="test labels")
    return folder


def _config(variant, data_dir, labels=""):
    """The smoke config, evaluated once at the end on the first 128 images of each split."""
    config = student_configs.get_config(f"{variant},smoke" + (f",labels={labels}" if labels else ""))
    config.data.data_dir = str(data_dir)
    config.mesh.num_devices = 1
    for name in ("linear_probe", "attention_pooled_probe"):
        config.evals[name].update(train_split="train[:128]", splits=("validation[:128]",), every_steps=0)
    for name in ("attention_alignment", "embedding_geometry"):
        config.evals[name].update(splits=("validation[:128]",), every_steps=0)
    return config


def _train_rows(workdir):
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if "train/loss" in row]


def test_simclr_attn_trains_on_teacher_maps_and_reports_probe_and_alignment(attention_dir, labels, tmp_path):
    results = train_and_evaluate(_config("simclr_attn", attention_dir, labels), str(tmp_path))
    for key in ("validation[:128]/logistic_accuracy", "validation[:128]/ridge_1shot_accuracy", "probe/ridge_lambda"):
        assert np.isfinite(results[f"eval/linear_probe/{key}"])
    for key in ("NSS", "sAUC", "centre_bias/NSS", "uniform/KLD"):
        assert np.isfinite(results[f"eval/attention_alignment/validation[:128]/{key}"])
    assert 0 <= results["eval/attention_pooled_probe/validation[:128]/logistic_accuracy"] <= 1
    geometry = {key.rpartition("/")[2]: value for key, value in results.items() if "embedding_geometry" in key}
    assert 1 <= geometry["effective_rank"] <= 128 and geometry["uniformity"] < 0  # the 128 images are not one point
    assert 0 < geometry["alignment"] < 4 and 0 < geometry["class_alignment"] < 4  # two views differ; ‖z−z'‖² ≤ 4
    rows = _train_rows(tmp_path)
    # every example has a map; only views whose crop misses all of it are left out of the attention term
    assert np.mean([row["train/attention_examples"] for row in rows]) > 0.8
    assert all(row["train/attention_kld"] > 0 for row in rows)
    assert all(np.isfinite(row["train/contrastive"]) for row in rows)


def test_cotrain_counts_the_human_maps_of_train_only(attention_dir, tmp_path):
    results = train_and_evaluate(_config("simclr_cotrain", attention_dir), str(tmp_path))
    assert np.isfinite(results["eval/linear_probe/validation[:128]/logistic_accuracy"])
    fractions = [row["train/attention_examples"] for row in _train_rows(tmp_path)]
    assert 0.15 < np.mean(fractions) < 0.75  # the train half of the joined train+unlabeled has maps


def test_an_attention_run_without_teacher_maps_stops_before_training(attention_dir, tmp_path):
    config = _config("simclr_attn", attention_dir)
    config.data.train_dir = ""  # the raw unlabeled split: no teacher_saliency
    del config.evals.linear_probe  # (nothing to evaluate: the run stops first)
    with pytest.raises(ValueError, match="the batch has no 'teacher_saliency'"):
        train_and_evaluate(config, str(tmp_path))
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
