"""The comparison driver: finished runs are reused, and the table is mean ± std over seeds."""

import json

import pytest

from sagejax import comparisons as compare
from sagejax import configs, runs
from sagejax import student_comparisons as student_compare
from sagejax.errors import ConfigError


def _run(test, clean):
    return {"eval/classification/test/accuracy": test, "eval/classification/test_clean/accuracy": clean}


def test_summary_is_mean_and_population_std_over_seeds():
    results = {
        "xent": {"swatch": [_run(0.90, 0.94), _run(0.92, 0.96)], "texture": [_run(0.10, 0.20), _run(0.10, 0.30)]},
        "sage": {"swatch": [_run(0.95, 0.95), _run(0.95, 0.95)], "texture": [_run(0.50, 0.60), _run(0.70, 0.60)]},
    }
    table = compare.summarize(results).splitlines()
    assert table[0] == "| method | swatch test | swatch test_clean | texture test | texture test_clean |"
    assert table[2] == "| xent | 91.0 ± 1.0 | 95.0 ± 1.0 | 10.0 ± 0.0 | 25.0 ± 5.0 |"
    assert table[3] == "| sage | 95.0 ± 0.0 | 95.0 ± 0.0 | 60.0 ± 10.0 | 60.0 ± 0.0 |"


def _finished_run(workdir, config, **results):
    """A run directory as the trainer leaves a finished run: its config.json and results.json."""
    (workdir / "config.json").write_text(json.dumps({"config": config.to_dict()}, default=list))
    (workdir / "results.json").write_text(json.dumps({"step": 400, **results}))


def test_finished_runs_are_read_back_not_retrained(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "train_and_evaluate", pytest.fail)  # read back: a unit test never trains
    config = configs.load("sage_decoy:sage,texture")
    _finished_run(tmp_path, config, **_run(0.5, 0.6))
    got = compare.run_one("sage_decoy", "sage", "texture", 0, str(tmp_path), "")
    assert got["eval/classification/test/accuracy"] == 0.5 and got["step"] == 400
    config.train.log_every_steps = 7  # a cadence: the finished run still counts
    _finished_run(tmp_path, config, **_run(0.5, 0.6))
    assert runs.finished_results(configs.load("sage_decoy:sage,texture"), str(tmp_path))["step"] == 400


def test_a_run_trained_under_another_config_is_refused_by_every_command(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "train_and_evaluate", pytest.fail)  # refused before training, never trained here
    config = configs.load("sage_decoy:sage,texture")
    config.method.w_js = 99.0
    _finished_run(tmp_path, config, **_run(0.5, 0.6))
    with pytest.raises(ConfigError, match=r"was trained under another config \(method.w_js differ\)"):
        compare.run_one("sage_decoy", "sage", "texture", 0, str(tmp_path), "")
    with pytest.raises(ConfigError, match="method.w_js differ"):
        runs.train_or_reuse(configs.load("sage_decoy:sage,texture"), str(tmp_path))


def _student_run(logistic, nss, shots=(1, 10), split="validation"):
    keys = [f"{split}/logistic_accuracy", f"{split}/ridge_accuracy"]
    keys += [f"{split}/{kind}_{k}shot_accuracy" for kind in ("logistic", "ridge") for k in shots]
    run = {f"eval/linear_probe/{key}": logistic for key in keys}
    for prefix in ("", "centre_bias/", "uniform/"):
        alignment = f"{student_compare.ALIGNMENT}{split}/{prefix}"
        run.update({f"{alignment}{m}": nss for m in student_compare.ALIGNMENT_METRICS})
    return run


def test_the_teacher_takes_only_smoke_from_the_students_variants():
    assert student_compare.teacher_variants("grid8,smoke") == ["smoke"]
    assert student_compare.teacher_variants("grid8, robust") == []
    from sagejax.configs import teacher_unet

    teacher_unet.get_config(",".join(student_compare.teacher_variants("robust,smoke")))  # a variant it knows


def test_student_tables_are_mean_and_std_over_seeds_with_the_baselines():
    results = {"simclr": [_student_run(0.5, 1.0), _student_run(0.7, 2.0)], "simclr_attn": [_student_run(0.8, 3.0)]}
    lines = student_compare.summarize(results).splitlines()
    assert lines[4] == "| contrastive | 60.0 ± 10.0 | 60.0 ± 10.0 | 60.0 ± 10.0 | 60.0 ± 10.0 |"
    assert lines[5] == "| contrastive + teacher attention | 80.0 | 80.0 | 80.0 | 80.0 |"  # one seed: no "± 0.0"
    assert lines[11].startswith("| contrastive | 1.500 ± 0.500 |") and lines[13].startswith(
        "| centre-bias baseline | 1.000 |"
    )
    assert lines[2] == "| model | logistic | ridge | logistic 10-shot | ridge 10-shot |"
    smoke = student_compare.summarize({"simclr": [_student_run(0.5, 1.0, shots=(1,))]}).splitlines()
    assert smoke[2] == "| model | logistic | ridge | logistic 1-shot | ridge 1-shot |"


def test_heldout_student_tables_report_test_with_the_diagnostics_the_runs_measured():
    runs_ = []
    for logistic in (0.6, 0.8):
        run = _student_run(logistic, 2.0, split="test") | _student_run(0.99, 9.0, split="validation")
        run |= {f"eval/attention_pooled_probe/test/{kind}_accuracy": 0.5 for kind in ("logistic", "ridge")}
        run |= {"eval/robustness/test/main/accuracy": 0.4}
        run |= {f"eval/embedding_geometry/test/{key}": 3.0 for key in student_compare.GEOMETRY_METRICS.values()}
        runs_.append(run)
    lines = student_compare.summarize({"simclr_attn": runs_}, student_compare.reported_split("grid8,heldout"))
    lines = lines.splitlines()
    assert lines[0] == "Linear probe on frozen embeddings, test accuracy (%):"
    assert lines[2] == (
        "| model | logistic | ridge | logistic 10-shot | ridge 10-shot | attention-pooled logistic | "
        "attention-pooled ridge | corrupted (logistic) |"
    )
    cells = [cell.strip() for cell in lines[4].strip("|").split("|")]
    assert cells == ["contrastive + teacher attention"] + ["70.0 ± 10.0"] * 4 + ["50.0 ± 0.0"] * 2 + ["40.0 ± 0.0"]
    assert lines[8] == "| model | effective rank | alignment | uniformity | class alignment |"
    assert lines[10] == "| contrastive + teacher attention | " + " | ".join(["3.000 ± 0.000"] * 4) + " |"
    assert lines[16].startswith("| contrastive + teacher attention | 2.000 ± 0.000 |")  # test's NSS, not validation's 9
    assert student_compare.reported_split("grid8") == "validation"


def test_attention_weights_and_steps_reach_only_the_runs_they_are_for():
    given = dict(steps=1000, kld_weight=0.1, nss_weight=1)
    assert student_compare.run_overrides("simclr", **given) == {"train.steps": 1000}
    assert student_compare.run_overrides("simclr_attn", **given) == {
        "train.steps": 1000,
        "method.kld_weight": 0.1,
        "method.nss_weight": 1.0,
    }
    assert student_compare.run_overrides("supervised_attn") == {}  # the config's steps and the method's weights
    assert student_compare.labels_dataset_config("grid8,heldout") == "heldout"
    assert student_compare.labels_dataset_config("grid8") == ""


def test_a_cached_evaluation_is_recomputed_after_more_training(tmp_path, monkeypatch):
    """The cache of an after-the-fact evaluation is keyed on the newest checkpoint (step and a digest of its files):
    a resumed run that trained further is scored again, not read back from the earlier step."""
    config = configs.load("sage_decoy:xent,smoke")
    (tmp_path / "config.json").write_text(json.dumps({"config": config.to_dict()}, default=list))
    (tmp_path / "checkpoints" / "4").mkdir(parents=True)
    (tmp_path / "checkpoints" / "4" / "state").write_bytes(b"step 4")
    scored = []

    def fake_evaluate(config, workdir, write):
        scored.append(runs.checkpoint_fingerprint(workdir)["step"])
        return {"eval/robustness/test/clean/accuracy": 0.1 * len(scored)}

    monkeypatch.setattr(runs, "evaluate_checkpoint", fake_evaluate)
    settings = {"splits": ["test"]}
    first = runs.evaluate_run(str(tmp_path), "robustness", settings, cache="robustness")
    assert runs.evaluate_run(str(tmp_path), "robustness", settings, cache="robustness") == first and scored == [4]
    (tmp_path / "checkpoints" / "6").mkdir()  # the run was resumed and trained to step 6
    (tmp_path / "checkpoints" / "6" / "state").write_bytes(b"step 6")
    again = runs.evaluate_run(str(tmp_path), "robustness", settings, cache="robustness")
    assert scored == [4, 6] and again != first
    cached = json.loads((tmp_path / "robustness.json").read_text())
    assert cached["checkpoint"]["step"] == 6 and len(cached["checkpoint"]["digest"]) == 16


def test_a_run_folder_being_trained_is_refused_naming_its_holder(tmp_path, monkeypatch):
    import socket

    from sagejax.errors import ExistsError

    monkeypatch.setattr(runs, "train_and_evaluate", pytest.fail)
    config = configs.load("sage_decoy:sage,texture")
    with runs.run_lock(str(tmp_path)):  # another sweep is training this folder
        with pytest.raises(ExistsError, match=rf"is being trained by {socket.gethostname()}:\d+; wait for it"):
            runs.train_or_reuse(config, str(tmp_path))
    trained = []
    monkeypatch.setattr(runs, "train_and_evaluate", lambda config, workdir: trained.append(workdir))
    runs.train_or_reuse(config, str(tmp_path))  # released: trains
    assert trained == [str(tmp_path)]
