"""The comparison driver: finished runs are reused, and the table is mean ± std over seeds."""

import json

from sagejax import compare


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


def test_finished_runs_are_read_back_not_retrained(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"step": 400, **_run(0.5, 0.6)}))
    got = compare.run_one("does.not.exist", "sage", "texture", 0, str(tmp_path), "")
    assert got["eval/classification/test/accuracy"] == 0.5 and got["step"] == 400
