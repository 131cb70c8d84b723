"""The sweep driver on real runs: it trains each grid point on the shared Decoy MNIST, selects on validation, and a
second sweep reads the finished runs back instead of training."""

import pytest

from sagejax import runs
from sagejax import sweeps as sweep
from sagejax.configs import sage_decoy

SELECT = "eval/validation/validation/accuracy"


def test_sweep_trains_real_runs_and_reads_what_they_write(tmp_path, monkeypatch, decoy_dir):
    base = sage_decoy.get_config("sage,defaults,smoke")
    base.data.data_dir = str(decoy_dir)
    base.mesh.num_devices = 1
    for settings in base.evals.values():
        settings.batch_size = 16
    summary = sweep.sweep(
        base, grid={"method.temperature": [1.0, 2.0]}, seeds=[0], select=SELECT, workdir=str(tmp_path)
    )
    assert set(summary["points"]) == {"method.temperature=1.0", "base"}
    assert set(summary["report"]) == {"eval/classification/test/accuracy", "eval/classification/test_clean/accuracy"}
    monkeypatch.setattr(runs, "train_and_evaluate", pytest.fail)  # finished: reused with their stored configs
    assert sweep.sweep(base, grid={"method.temperature": [1.0, 2.0]}, seeds=[0], select=SELECT, workdir=str(tmp_path))
