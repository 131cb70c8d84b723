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


def test_finished_runs_are_read_back_not_retrained(tmp_path):
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


def _student_run(logistic, nss, shots=(1, 10)):
    keys = ["validation/logistic_accuracy", "validation/ridge_accuracy"]
    keys += [f"validation/{kind}_{k}shot_accuracy" for kind in ("logistic", "ridge") for k in shots]
    run = {f"eval/linear_probe/{key}": logistic for key in keys}
    for prefix in ("", "centre_bias/", "uniform/"):
        run.update({f"{student_compare.ALIGNMENT}{prefix}{m}": nss for m in student_compare.ALIGNMENT_METRICS})
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
