"""The `sagejax` command and the shared `--config` flag: packaged names and file paths resolve from any folder,
`--print_config` prints YAML and exits, bad configs are one `error:` line with exit status 2."""

import pytest

from sagejax import cli, configs
from sagejax.configs import common  # noqa: F401  (configs.common below)
from sagejax.errors import ConfigError, MissingError


def test_packaged_configs_are_found_by_name_and_path():
    assert configs.names() == ["digit_pad", "sage_csv", "sage_decoy", "sage_finetune", "student", "teacher_unet"]
    by_name = configs.load("sage_decoy:xent,texture")
    by_path = configs.load(f"{configs.__path__[0]}/sage_decoy.py:xent,texture")
    assert by_name.method.name == "xent" and by_name.to_dict() == by_path.to_dict()


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ("sage_decoy:sagee", ConfigError, r"unknown config variants \['sagee'\]"),
        ("nosuch", ConfigError, "unknown config 'nosuch': packaged configs are digit_pad, sage_csv, sage_decoy"),
        ("missing/config.py", MissingError, "config file missing/config.py does not exist"),
        ("common", ConfigError, "unknown config 'common'"),  # the shared blocks are not an experiment
    ],
)
def test_bad_configs_are_named(spec, error, message):
    with pytest.raises(error, match=message):
        configs.load(spec)


def test_a_broken_config_file_is_named(tmp_path):
    (tmp_path / "syntax.py").write_text("def get_config(:\n")
    (tmp_path / "raises.py").write_text("def get_config(arg=None):\n    return {}['x']\n")
    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match=r"syntax.py could not be loaded: SyntaxError"):
        configs.load(str(tmp_path / "syntax.py"))
    with pytest.raises(ConfigError, match=r"raises.py failed: KeyError"):
        configs.load(str(tmp_path / "raises.py"))
    with pytest.raises(ConfigError, match=r"has no get_config"):
        configs.load(str(tmp_path / "none.py"))


def test_help_lists_every_command_with_a_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"  {name} " in printed
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["trian"])
    assert exit_info.value.code == 2 and "unknown command 'trian'" in capsys.readouterr().err


def test_every_command_module_exists():
    import importlib.util

    for module, _ in cli.COMMANDS.values():
        assert importlib.util.find_spec(module) is not None, module


def test_model_kwargs_carry_every_option_and_old_runs_still_match():
    from sagejax import models
    from sagejax.train.run_config import check_resume

    config = configs.load("sage_csv:sage")
    assert dict(config.model.kwargs) == models.model_defaults(config.model.name)  # every option, overridable
    config.model.kwargs.width = 16  # what --config.model.kwargs.width=16 sets
    with pytest.raises(ConfigError, match=r"model 'resnet18' has no options \['widht'\]"):
        configs.common.model("resnet18", widht=8)
    # A run saved before configs carried every option resumes under the complete config.
    saved = configs.load("sage_decoy:sage").to_dict()
    saved["model"]["kwargs"] = {"stem": "imagenet", "width": 16}
    del saved["mesh"]["num_devices"]  # nor config.mesh.num_devices (0 = all devices, as before it existed)
    del saved["optim"]["accumulate_steps"], saved["optim"]["ema_decay"]  # nor optim.accumulate_steps, ema_decay
    del saved["init"], saved["data"]["normalize"], saved["data"]["image_size"], saved["data"]["eval_crop_fraction"]
    check_resume(saved, configs.load("sage_decoy:sage").to_dict(), step=3, workdir="w")
    saved["optim"]["accumulate_steps"] = 2
    with pytest.raises(ConfigError, match=r"optim.accumulate_steps: 2 -> 1"):
        check_resume(saved, configs.load("sage_decoy:sage").to_dict(), step=3, workdir="w")
    saved["optim"]["accumulate_steps"] = 1
    saved["mesh"]["num_devices"] = 1  # a checkpoint restores on another device count
    check_resume(saved, configs.load("sage_decoy:sage").to_dict(), step=3, workdir="w")


def test_a_full_disk_in_any_command_is_one_error_line(capsys):
    import errno

    from absl import flags

    from sagejax import errors

    def main(argv):
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/data/labels/shard-00003")
        except OSError as error:
            raise RuntimeError("array_record: write failed") from error

    flags.FLAGS.mark_as_parsed()
    with pytest.raises(SystemExit) as exit_info:
        errors.cli(main)(["sagejax label"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "error: no space left on the disk writing /data/labels/shard-00003: free space and rerun the command\n"
    )
