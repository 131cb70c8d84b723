"""The `sagejax` command as installed: --print_config prints YAML and exits, and config errors are one line, from a
folder outside the checkout."""

import pathlib
import subprocess
import sys

import pytest
import yaml


def _sagejax(*args, cwd):
    """The installed `sagejax` script beside this interpreter (as `pip install` puts it), else the module."""
    script = pathlib.Path(sys.executable).parent / "sagejax"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sagejax.cli"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_print_config_and_config_errors_from_a_folder_outside_the_checkout(tmp_path):
    result = _sagejax("train", "--config", "sage_decoy:sage", "--config.method.w_js=7", "--print_config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    printed = yaml.safe_load(result.stdout)
    assert printed["method"]["name"] == "sage" and printed["method"]["w_js"] == 7
    assert not list(tmp_path.iterdir())  # nothing built, nothing written
    for spec, message in [
        ("sage_decoy:sagee", "error: unknown config variants ['sagee']"),
        ("nothere.py", "error: config file nothere.py does not exist"),
    ]:
        result = _sagejax("train", "--config", spec, "--workdir", str(tmp_path / "w"), cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
        assert "Traceback" not in result.stderr
