"""The TFDS writer in a fresh Python process (own hash seeds and protobuf state) writes and serializes the same bytes
as this one."""

import os
import subprocess
import sys

import pytest
from support import REPO, subprocess_env
from writer_examples import FEATURES, NAME, examples, write_split

from sagejax.data import tfds_writer as tw


@pytest.fixture(scope="module")
def other_process(tmp_path_factory) -> tuple:
    """(folder, record): the 10-example dataset written, and example 1 serialized, by a fresh Python process."""
    folder = tmp_path_factory.mktemp("other_process")
    code = (
        "from writer_examples import FEATURES, examples, write_split\n"
        "from sagejax.data.tfds_writer import serialize\n"
        f"write_split({str(folder)!r}, examples(10))\n"
        "print(serialize(FEATURES, examples(2)[1]).hex())"
    )
    env = subprocess_env(PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO)]))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return folder, bytes.fromhex(result.stdout)


def _files(folder) -> dict[str, bytes]:
    """Name -> content of every file in `folder`."""
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def test_same_dataset_written_twice_is_byte_identical(tmp_path, other_process):
    first, second = tmp_path, other_process[0]
    write_split(str(first), examples(10))
    assert sorted(_files(first)) == [
        "dataset_info.json",
        "features.json",
        *[f"{NAME}-train.array_record-{i:05d}-of-00003" for i in range(3)],
    ]
    assert _files(first) == _files(second)


def test_serialize_is_identical_in_another_process(other_process):
    assert other_process[1] == tw.serialize(FEATURES, examples(2)[1])
