"""The sweep driver: grid parsing, checks before any run, reuse of finished runs, selection on validation only,
process sharding of the runs."""

import json
import os

import pytest

from sagejax import data, runs
from sagejax import sweeps as sweep
from sagejax.configs import sage_decoy
from sagejax.errors import ConfigError

SELECT = "eval/validation/validation/accuracy"


def _base():
    return sage_decoy.get_config("sage,texture,defaults,smoke")


def test_parse_grid_reads_literals_strings_tuples_and_fixed_axes():
    grid = sweep.parse_grid("method.temperature=1,2.5; method.degrade=blur,mean;method.ce_views=('x', 'x_keep'),x")
    assert grid == {
        "method.temperature": [1, 2.5],
        "method.degrade": ["blur", "mean"],
        "method.ce_views": [("x", "x_keep"), "x"],
    }
    assert sweep.grid_points({"a": [1, 2], "b": ["u"]}) == [{"a": 1, "b": "u"}, {"a": 2, "b": "u"}]
    ablation = sweep.axis_points({"a": [1, 2, 3], "b": ["u", "v"]})  # the centre, then one axis at a time
    assert ablation == [{"a": 1, "b": "u"}, {"a": 2, "b": "u"}, {"a": 3, "b": "u"}, {"a": 1, "b": "v"}]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "--grid is empty"),
        (" ; ", "--grid is empty"),
        ("method.temperature", "is not key=v1,v2"),
        ("method.temperature=", "has no values"),
        ("a=1;a=2", "names 'a' twice"),
        ("method.w_js=1,1.0,3", r"axis 'method.w_js' gives one value twice: \[1.0\]"),
        ("a=x,y,x", r"gives one value twice: \['x'\]"),
    ],
)
def test_parse_grid_refuses_malformed_grids(text, message):
    with pytest.raises(ConfigError, match=message):
        sweep.parse_grid(text)


def test_point_config_sets_values_in_the_fields_type_and_names_bad_keys_and_types():
    base = _base()
    config = sweep.point_config(base, {"method.temperature": 4, "method.ce_views": "x_keep", "seed": 3})
    assert (config.method.temperature, config.method.ce_views, config.seed) == (4.0, ("x_keep",), 3)
    assert base.method.temperature == 2.0  # the base is not changed
    with pytest.raises(ConfigError, match=r"'method.temprature': config.method has no field 'temprature'"):
        sweep.point_config(base, {"method.temprature": 4})
    with pytest.raises(ConfigError, match=r"method.w_js='high': expected a float"):
        sweep.point_config(base, {"method.w_js": "high"})
    assert sweep.point_name(base, {"method.temperature": 2, "method.w_js": 3}) == "method.w_js=3.0"
    assert sweep.point_name(base, {"method.temperature": 2.0}) == "base"
    assert sweep.point_name(base, {"method.w_js": 10}) == sweep.point_name(base, {"method.w_js": 10.0})


@pytest.mark.parametrize(
    "select, message",
    [
        ("eval/classification/test/accuracy", "reads split 'test': choose settings on a validation split"),
        ("eval/nope/validation/accuracy", "no evaluator 'nope'"),
        ("eval/validation/train/accuracy", "scores \\['validation', 'validation_clean'\\], not 'train'"),
        ("validation/accuracy", "is not eval/<evaluator>/<split>/<metric>"),
    ],
)
def test_selection_metric_is_checked_before_any_run(tmp_path, select, message):
    with pytest.raises(ConfigError, match=message):
        sweep.sweep(_base(), grid={"method.w_js": [1.0]}, seeds=[0], select=select, workdir=str(tmp_path))
    assert not os.listdir(tmp_path)


def test_an_impossible_point_is_refused_before_any_run(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "train_and_evaluate", pytest.fail)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        sweep.sweep(_base(), grid={"method.temperature": [2.0, 0.0]}, seeds=[0], select=SELECT, workdir=str(tmp_path))


class FakeTrainer:
    """Writes what a run writes (config.json, results.json): validation accuracy rises with the temperature, test
    accuracy falls with it, so choosing on test would pick another point than choosing on validation."""

    def __init__(self):
        self.trained = []

    def __call__(self, config, workdir):
        self.trained.append((config.method.temperature, config.seed))
        os.makedirs(workdir, exist_ok=True)
        t, seed = config.method.temperature, config.seed
        results = {
            SELECT: 0.1 * t + 0.01 * seed,
            "eval/validation/validation_clean/accuracy": 0.5,
            "eval/classification/test/accuracy": 0.9 - 0.1 * t,
            "eval/classification/test_clean/accuracy": 0.8,
        }
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump({"config": config.to_dict()}, f, default=list)
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(results, f)
        return results


def test_sweep_selects_on_validation_reports_test_of_the_chosen_point_and_reuses_runs(tmp_path, monkeypatch):
    fake = FakeTrainer()
    monkeypatch.setattr(runs, "train_and_evaluate", fake)
    grid = {"method.temperature": [1.0, 2.0, 4.0], "method.w_js": [3.0]}
    args = dict(grid=grid, seeds=[0, 1], select=SELECT, workdir=str(tmp_path))
    summary = sweep.sweep(_base(), **args)
    assert len(fake.trained) == 6
    assert summary["chosen"] == "method.temperature=4.0,method.w_js=3.0"
    assert summary["points"][summary["chosen"]]["select"] == pytest.approx([0.4, 0.41])
    mean, std = summary["report"]["eval/classification/test/accuracy"]
    assert (mean, std) == (pytest.approx(0.5), pytest.approx(0.0))
    assert set(summary["report"]) == {"eval/classification/test/accuracy", "eval/classification/test_clean/accuracy"}
    table = (tmp_path / "sweep.md").read_text()
    assert "| 4.0 | 3.0 | 40.5 ± 0.5 **(chosen)** | 2 |" in table
    assert table.count("test/accuracy") == 1  # test is shown for the chosen point only
    assert (tmp_path / "sweep_method.temperature.png").stat().st_size > 0
    assert not (tmp_path / "sweep_method.w_js.png").exists()  # a fixed axis has no plot
    assert json.loads((tmp_path / "sweep.json").read_text())["chosen"] == summary["chosen"]

    fake.trained.clear()  # a rerun, and another sweep sharing the workdir, reuse the finished runs
    sweep.sweep(_base(), **args)
    sweep.sweep(_base(), **{**args, "grid": {"method.temperature": [4.0, 8.0], "method.w_js": [3.0]}}, name="more")
    assert fake.trained == [(8.0, 0), (8.0, 1)]
    assert (tmp_path / "more.md").exists()

    config = tmp_path / "runs/method.temperature=8.0,method.w_js=3.0/seed0/config.json"
    stored = json.loads(config.read_text())
    stored["config"]["train"]["steps"] = 99
    config.write_text(json.dumps(stored))
    with pytest.raises(ConfigError, match=r"seed0 was trained under another config \(train.steps differ\)"):
        sweep.sweep(_base(), **{**args, "grid": {"method.temperature": [8.0], "method.w_js": [3.0]}})


def test_a_run_stopped_by_sigterm_stops_the_sweep(tmp_path, monkeypatch):
    """The trainer returns after a SIGTERM checkpoint without results.json; the sweep must not go on to the next."""
    calls = []
    monkeypatch.setattr(runs, "train_and_evaluate", lambda config, workdir: calls.append(workdir))
    args = dict(grid={"method.temperature": [1.0, 2.0]}, seeds=[0], select=SELECT, workdir=str(tmp_path))
    assert sweep.sweep(_base(), **args) is None
    assert len(calls) == 1


def test_an_ablation_has_one_table_and_plot_per_axis_around_the_centre(tmp_path, monkeypatch):
    fake = FakeTrainer()
    monkeypatch.setattr(runs, "train_and_evaluate", fake)
    grid = {"method.temperature": [2.0, 1.0, 4.0], "method.w_js": [1.0, 3.0]}
    summary = sweep.sweep(_base(), grid=grid, seeds=[0], select=SELECT, workdir=str(tmp_path), mode="axes")
    assert sorted(summary["points"]) == ["base", "method.temperature=1.0", "method.temperature=4.0", "method.w_js=3.0"]
    assert summary["chosen"] == "method.temperature=4.0"
    tables = (tmp_path / "sweep.md").read_text().split("\n\n")
    assert tables[0] == "Centre: method.temperature=2.0, method.w_js=1.0"
    assert [row.split(" | ")[0] for row in tables[1].splitlines()[2:]] == ["| 2.0", "| 1.0", "| 4.0"]  # grid order
    assert [row.split(" | ")[0] for row in tables[2].splitlines()[2:]] == ["| 1.0", "| 3.0"]
    assert (tmp_path / "sweep_method.w_js.png").exists() and (tmp_path / "sweep_method.temperature.png").exists()


def test_processes_share_the_runs_and_the_last_one_writes_the_tables(tmp_path, monkeypatch):
    fake = FakeTrainer()
    monkeypatch.setattr(runs, "train_and_evaluate", fake)
    args = dict(grid={"method.temperature": [1.0, 2.0, 4.0]}, seeds=[0, 1], select=SELECT, workdir=str(tmp_path))
    assert sweep.sweep(_base(), **args, process_index=0, process_count=2) is None  # the others are not done yet
    assert fake.trained == [(1.0, 0), (2.0, 0), (4.0, 0)]  # runs 0, 2, 4 of (point, seed)
    assert not (tmp_path / "sweep.md").exists()
    fake.trained.clear()
    assert sweep.sweep(_base(), **args, process_index=1, process_count=2)["chosen"] == "method.temperature=4.0"
    assert fake.trained == [(1.0, 1), (2.0, 1), (4.0, 1)]
    with pytest.raises(ConfigError, match=r"--process_index 2 must be in \[0, --process_count=2\)"):
        sweep.sweep(_base(), **args, process_index=2, process_count=2)


@pytest.fixture(scope="module")
def decoy_data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("decoy"))
    data.build_dataset("decoy_mnist", data_dir=path, config="texture_32_rgb", max_examples_per_split=64)
    return path


def test_a_seed_given_twice_is_refused_before_any_run(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "train_and_evaluate", pytest.fail)
    with pytest.raises(ConfigError, match=r"--seeds repeats \[0\]"):
        sweep.sweep(
            _base(), grid={"method.temperature": [1.0, 2.0]}, seeds=[0, 0], select=SELECT, workdir=str(tmp_path)
        )
    assert sweep.parse_grid("a=True,1") == {"a": [True, 1]}  # a flag and a number are different values
