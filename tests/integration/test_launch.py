"""Launch scripts parse, refuse to start without their arguments, print their exact commands with --dry_run, and
the GPU check runs end to end at toy shapes on the CPU."""

import os
import shlex
import subprocess
import sys

import pytest
from support import REPO

LAUNCH = REPO / "launch"
SCRIPTS = sorted(p for p in LAUNCH.iterdir() if p.suffix in (".sh", ".sbatch"))


def test_every_launcher_is_checked():
    names = {"benchmark.sh", "gpu_check.sh", "local.sh", "pick_python.sh", "slurm.sbatch", "tpu_pod.sh"}
    assert {p.name for p in SCRIPTS} == names


def test_pick_python_prints_an_interpreter_of_at_least_3_11():
    python = subprocess.run(["bash", str(LAUNCH / "pick_python.sh")], capture_output=True, text=True, check=True)
    version = subprocess.run(
        [python.stdout.strip(), "-c", "import sys; print(sys.version_info[:2] >= (3, 11))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "True"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_launcher_is_valid_bash(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("script", ["local.sh", "slurm.sbatch", "tpu_pod.sh"])
def test_launcher_without_arguments_prints_usage(script):
    result = subprocess.run(["bash", str(LAUNCH / script)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "usage:" in result.stderr


def test_tpu_pod_dry_run_prints_the_gcloud_commands_with_the_overrides_quoted_and_the_bucket_unchanged():
    command = [*"bash launch/tpu_pod.sh --dry_run tpu1 zone-a sage_csv:sage gs://bkt/run".split(), "--x=a b"]
    result = subprocess.run(command, cwd=LAUNCH.parent, capture_output=True, text=True, check=True)
    scp, ssh = [shlex.split(line) for line in result.stdout.splitlines()]
    assert scp[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "scp", "--recurse"] and scp[-1] == "tpu1:sagejax"
    assert ssh[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "tpu1"] and "--zone=zone-a" in ssh
    remote = shlex.split(ssh[-1].removeprefix("--command="))
    assert remote[-5:] == ["--config", "sage_csv:sage", "--workdir", "gs://bkt/run", "--x=a b"]
    assert "SAGEJAX_DISTRIBUTED=1" in remote and ".[gcs]" in remote  # the workers can reach the bucket


def test_slurm_dry_run_prints_the_srun_command_with_the_bucket_unchanged():
    env = {**os.environ, "SLURM_SUBMIT_DIR": str(LAUNCH.parent)}
    command = ["bash", str(LAUNCH / "slurm.sbatch"), "--dry_run", "sage_csv:sage", "gs://bkt/r", "--x=1"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    cd, srun = result.stdout.splitlines()
    assert shlex.split(cd) == ["cd", str(LAUNCH.parent)]
    assert shlex.split(srun) == [
        "SAGEJAX_DISTRIBUTED=1", "srun", "python", "-m", "sagejax.main",
        "--config", "sage_csv:sage", "--workdir", "gs://bkt/r", "--x=1",
    ]  # fmt: skip


def test_gpu_check_dry_run_lists_the_rows_of_the_issue():
    result = subprocess.run(["bash", str(LAUNCH / "gpu_check.sh"), "--dry_run"], capture_output=True, text=True)
    lines = [shlex.split(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0 and len(lines) == 8
    resnet, vit, *finetune, pipeline, corruptions = (
        dict(arg.split("=", 1) for arg in line[3:] if "=" in arg) for line in lines
    )
    assert resnet["--models"] == "resnet50" and resnet["--methods"].startswith("xent,sage,")
    assert vit["--models"] == "vit_b16" and vit["--methods"] == "xent"
    for row in (resnet, vit):
        assert (row["--dtypes"], row["--image_sizes"], row["--batch_sizes"]) == ("bfloat16", "224", "256")
    assert pipeline["--mode"] == "input"
    assert corruptions["--mode"] == "corruptions" and corruptions["--config"] == "sage_csv:xent,resnet50"
    assert "--corruptions" not in corruptions and corruptions["--image_sizes"] == "224"  # the whole sweep at 224²
    rows = {(row["--config"], row["--config.optim.accumulate_steps"]) for row in finetune}
    assert rows == {(f"sage_finetune:sage,{b}", k) for b in ("resnet50", "vit_b16") for k in ("1", "4")}
    for row in finetune:
        assert row["--config.init.path"].endswith(".safetensors") and row["--methods"] == "xent,sage"
        assert (row["--dtypes"], row["--image_sizes"], row["--batch_sizes"]) == ("bfloat16", "224", "256")
    only = subprocess.run(
        ["bash", str(LAUNCH / "gpu_check.sh"), "--dry_run"],
        capture_output=True,
        text=True,
        env={**os.environ, "GPU_CHECK_ROWS": "input,corruptions"},
    )
    assert [line.split()[3] for line in only.stdout.splitlines()] == ["--mode=input", "--mode=corruptions"]


@pytest.mark.slow
def test_gpu_check_runs_at_toy_shapes_and_appends_to_the_benchmarks_file(tmp_path):
    benchmarks = tmp_path / "BENCHMARKS.md"
    benchmarks.write_text("# Benchmarks\n")
    env = {
        **os.environ,
        "GPU_CHECK_TINY": "1",
        "PYTHON": sys.executable,  # this interpreter, whether or not its venv is on PATH
        "BENCHMARKS_FILE": str(benchmarks),
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "",  # one device, as on one GPU
        "HOME": str(tmp_path),  # the input row builds Decoy MNIST under ~/tensorflow_datasets
    }
    command = ["bash", str(LAUNCH / "gpu_check.sh"), str(tmp_path / "out")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    text = benchmarks.read_text()
    assert "## GPU check: cpu:cpu" in text and "| sage/view_fraction=0.5 | resnet18 (bfloat16) | 8×32² | 1 |" in text
    assert "| xent | vit_tiny (bfloat16) | 8×32² | 1 |" in text and "| decoy_mnist/" in text
    assert "the sweep's 5 settings run at" in text and "| brightness |" in text
    assert "Fine-tune, weights from a safetensors file: finetune_resnet50_accumulate4" in text
