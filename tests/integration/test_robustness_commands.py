"""The robustness, retrieval and panels commands on a copy of the shared smoke cross-entropy run: tables, plots,
caches beside the run, mCE of a run against itself, and the saliency views of the panels."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from support import DECOY_EXAMPLES, copy_run, subprocess_env

from sagejax.configs import sage_csv, student
from sagejax.errors import ConfigError
from sagejax.train import make_mesh


@pytest.fixture
def trained_run(xent_run, tmp_path):
    """A copy of the shared smoke cross-entropy run (checkpointed at step 6), in a method folder as a group."""
    return copy_run(xent_run, tmp_path / "runs" / "xent" / "seed0")


def _command(module, *args, cwd):
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_robustness_command_writes_tables_and_a_plot_and_mce_against_itself_is_one(trained_run, tmp_path):
    group = str(trained_run.parent)
    out = tmp_path / "robustness"
    args = ["--workdirs", group, "--baseline", group, "--out", str(out), "--batch_size", "8"]
    results = (trained_run / "results.json").read_text()
    _command(
        "sagejax.tools.robustness",
        *args,
        "--corruptions",
        "brightness,speckle_noise",
        "--severities",
        "1,3",
        cwd=tmp_path,
    )
    summary = json.loads((out / "robustness.json").read_text())
    rows = summary["rows"]["xent"]
    assert rows["mCE"] == [pytest.approx(1.0)] and set(rows) >= {
        "clean",
        "brightness",
        "speckle_noise",
        "validation mean",
    }
    assert (out / "robustness.png").stat().st_size > 0 and "| mCE | 1.000 |" in (out / "robustness.md").read_text()
    assert (trained_run / "robustness-auto-test.json").exists()
    assert summary["checkpoints"][str(trained_run)]["step"] == 6  # the step the run was scored at
    assert (trained_run / "results.json").read_text() == results  # the run's own results are left alone
    failed = subprocess.run(
        [sys.executable, "-m", "sagejax.tools.robustness", "--workdirs", str(tmp_path / "none"), "--out", str(out)],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0 and "neither a sagejax.main run" in failed.stderr


def test_retrieval_command_writes_tables_and_pr_curves(trained_run, tmp_path):
    out = tmp_path / "retrieval"
    args = ["--workdirs", str(trained_run.parent), "--out", str(out), "--batch_size", "8", "--ks", "1,5"]
    result = _command("sagejax.tools.retrieval", *args, "--query_corruptions", "gaussian_noise/5", cwd=tmp_path)
    assert "| xent (1) | clean |" in result.stdout and "| xent (1) | gaussian_noise/5 |" in result.stdout
    assert (out / "retrieval.png").stat().st_size > 0
    cached = json.loads((trained_run / "retrieval-test.json").read_text())
    assert cached["metrics"]["test/queries"] == DECOY_EXAMPLES


def test_saliency_panels_of_a_trained_run(trained_run, tmp_path):
    from sagejax import panel_columns as panels
    from sagejax import report
    from sagejax.train.trained import restore_trained

    run = restore_trained(str(trained_run), make_mesh({"data": 1}, devices=jax.devices()[:1]))
    batch = panels.first_examples(run.config, "test", 4)
    batch["saliency"] = np.zeros_like(batch["saliency"])
    columns = panels.panel_columns(run, batch)
    assert list(columns) == [*panels.COLUMNS, "input gradient"]
    assert columns["input gradient"].shape == (4, 32, 32) and np.all(columns["input gradient"] >= 0)
    # An empty map means "all salient", so x~ is the image and x~' its blur.
    np.testing.assert_allclose(columns["x~ (keep)"], columns["image"], atol=1e-6)
    assert not np.allclose(columns["x~' (degrade)"], columns["image"])
    # A saliency dataset's human map (`density`, no `saliency`) is shown and builds the views.
    density = np.zeros_like(batch.pop("saliency"))
    density[:, :16] = 255
    with_density = panels.panel_columns(run, {**batch, "density": density})
    assert list(with_density)[:2] == ["image", "density"]
    np.testing.assert_allclose(with_density["x~ (keep)"][:, :16], columns["image"][:, :16], atol=1e-6)
    assert not np.allclose(with_density["x~ (keep)"][:, 16:], columns["image"][:, 16:])
    with pytest.raises(ConfigError, match="examples have no 'saliency' map to show"):
        panels.panel_columns(run, batch)
    sage = sage_csv.get_config("sage,resnet18_32").method
    sage.blur_sigma = 3.5
    assert panels.view_settings(sage).blur_sigma == 3.5
    assert panels.view_settings(student.get_config("simclr").method).blur_sigma == 2.0  # not SimCLR's blur range
    path = report.saliency_panels(columns, str(tmp_path / "panels.png"), row_labels=["a", "b"])
    assert os.path.getsize(path) > 0
    with pytest.raises(ValueError, match=r"every column needs 4 rows, got \[4, 3\]"):
        report.saliency_panels({"a": columns["image"], "b": columns["image"][:3]}, str(tmp_path / "bad.png"))
