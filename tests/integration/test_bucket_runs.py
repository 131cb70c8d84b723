"""A run whose workdir is a `gs://` bucket (served offline by tests/fake_bucket.py) stays in the bucket end to end:
train, resume, evaluate, robustness, export. Every file lands under the bucket's folder, none in a local folder
named after the URL (the fixture checks the working directory)."""

import json

import numpy as np
import pytest
from support import smoke_config

import sagejax
from sagejax import report, runs
from sagejax.robustness_tables import evaluate_groups, markdown, summarize
from sagejax.trainer import evaluate_checkpoint, train_and_evaluate

RUN = "gs://bkt/runs/xent/seed0"


@pytest.fixture
def bucket_run(fake_bucket, decoy_dir):
    """The smoke cross-entropy run trained into the bucket (checkpoints at 3 and 6, TensorBoard on)."""
    config = smoke_config(decoy_dir, "xent,smoke")
    config.train.tensorboard = True
    results = train_and_evaluate(config, RUN)
    return config, results, fake_bucket / "bkt" / "runs" / "xent" / "seed0"


def test_a_bucket_workdir_trains_resumes_evaluates_and_exports_in_the_bucket(bucket_run, fake_bucket):
    config, results, folder = bucket_run
    assert results and sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["3", "6"]
    assert {"config.json", "metrics.jsonl", "results.json", "results.md", "tensorboard"} <= {
        p.name for p in folder.iterdir()
    }
    assert json.loads((folder / "results.json").read_text())["step"] == 6
    events = list((folder / "tensorboard").iterdir())
    assert len(events) == 1 and b"train/loss" in events[0].read_bytes()

    logged = (folder / "metrics.jsonl").read_text().splitlines()
    config.train.steps = 9  # a longer run resumes from step 6 in the bucket
    train_and_evaluate(config, RUN)
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["6", "9"]
    assert (folder / "config.1.json").exists()  # the 6-step config, kept
    rows = (folder / "metrics.jsonl").read_text().splitlines()
    added = [json.loads(row)["step"] for row in rows[len(logged) :]]
    assert rows[: len(logged)] == logged and added == sorted(added) and added[0] >= 6 and added[-1] == 9

    evaluated = evaluate_checkpoint(config, RUN)
    assert evaluated == pytest.approx(
        {k: v for k, v in json.loads((folder / "results.json").read_text()).items() if k != "step"}
    )

    groups = runs.group_runs(["gs://bkt/runs/xent"])
    assert groups == {"xent": [RUN]}
    settings = dict(
        splits=("test",),
        batch_size=8,
        table="",
        corruptions=("brightness",),
        severities=(1,),
        corruption_seed=0,
        classifier="logits",
    )
    summary = summarize(evaluate_groups(groups, settings), split="test", baseline=None)
    report.write_outputs(
        "gs://bkt/robustness", "robustness", data=summary, markdown=markdown(summary["rows"]), show=False
    )
    assert (folder / "robustness-auto-test.json").exists()  # the per-run cache, beside the run in the bucket
    assert (
        "brightness" in json.loads((fake_bucket / "bkt" / "robustness" / "robustness.json").read_text())["rows"]["xent"]
    )

    run = sagejax.load(RUN)
    assert run.step == 9
    sagejax.export(RUN, "gs://bkt/exports/xent.safetensors")
    assert (fake_bucket / "bkt" / "exports" / "xent.safetensors").stat().st_size > 0
    model = sagejax.load_exported("gs://bkt/exports/xent.safetensors")
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8)
    again = sagejax.make_predict(model, run.config)(images)
    np.testing.assert_array_equal(again["logits"], run.predict(images)["logits"])
