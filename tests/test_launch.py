"""Launch scripts parse, and refuse to start without their arguments."""

import pathlib
import subprocess

import pytest

LAUNCH = pathlib.Path(__file__).parent.parent / "launch"
SCRIPTS = sorted(p for p in LAUNCH.iterdir() if p.suffix in (".sh", ".sbatch"))


def test_every_launcher_is_checked():
    assert {p.name for p in SCRIPTS} == {"benchmark.sh", "local.sh", "pick_python.sh", "slurm.sbatch", "tpu_pod.sh"}


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
