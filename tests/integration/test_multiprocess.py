"""Two JAX processes on this machine (a local coordinator, 4 CPU devices each) train SAGE as one 8-device run does,
each reading only its rows of the global batch; a restarted pair resumes a checkpoint bit-identically, and one
process resumes it too."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from support import REPO, subprocess_env

from sagejax.train import watchdog

STALL_TIMEOUT_S = 150  # a process without progress for this long exits with an error (each run takes < 60 s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _start(workdir, config: str, *, processes: int, overrides=(), env_of=lambda p: {}) -> list[subprocess.Popen]:
    """`sagejax.main` on `config` in `processes` processes sharing 8 CPU devices (`env_of(p)`: process p's extra
    environment)."""
    env = subprocess_env(JAX_PLATFORMS="cpu", JAX_DEFAULT_MATMUL_PRECISION="highest")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={8 // processes}"
    if processes > 1:
        env.update(
            SAGEJAX_DISTRIBUTED="1", SAGEJAX_COORDINATOR_ADDRESS=f"localhost:{_free_port()}", SAGEJAX_NUM_PROCESSES="2"
        )
        env["SAGEJAX_STALL_TIMEOUT"] = str(STALL_TIMEOUT_S)  # a hung pair fails in minutes, with a message
    command = [sys.executable, "-m", "sagejax.main", f"--config={config}", f"--workdir={workdir}", *overrides]
    return [
        subprocess.Popen(
            command,
            cwd=REPO,
            env={**env, "SAGEJAX_PROCESS_ID": str(p), **env_of(p)} if processes > 1 else {**env, **env_of(p)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]


def _finish(running: list[subprocess.Popen]) -> list[str]:
    """Waits for every process (each must exit 0); returns their stdouts."""
    try:
        outputs = [process.communicate(timeout=2 * STALL_TIMEOUT_S + 60) for process in running]
    except subprocess.TimeoutExpired:  # only if the stall watchdog itself failed
        for process in running:
            process.kill()
        pytest.fail(
            f"{len(running)} process(es) still running after {2 * STALL_TIMEOUT_S + 60} s: "
            + str([process.communicate()[1][-2000:] for process in running])
        )
    for process, (_, stderr) in zip(running, outputs):
        assert process.returncode == 0, stderr[-4000:]
    return [stdout for stdout, _ in outputs]


def _train(workdir, data_dir, *, processes: int):
    """The SAGE smoke run in `processes` processes sharing 8 CPU devices; returns each process's stdout."""
    overrides = [
        f"--config.data.data_dir={data_dir}",
        "--config.evals.classification.splits=('test',)", "--config.evals.validation.splits=('validation',)",
    ]  # fmt: skip
    return _finish(_start(workdir, "sage_decoy:sage,smoke", processes=processes, overrides=overrides))


def _losses(workdir):
    rows = [json.loads(line) for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["train/loss"] for row in rows if "train/loss" in row}


def _params(workdir, step):
    """The saved parameters of `step`, read onto this process's first device, by path."""
    path = pathlib.Path(workdir) / "checkpoints" / str(step) / "state"
    checkpointer = ocp.StandardCheckpointer()
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
        checkpointer.metadata(path).item_metadata,
    )
    params = checkpointer.restore(path, target)["params"]
    return {jax.tree_util.keystr(key): np.asarray(leaf) for key, leaf in jax.tree_util.tree_leaves_with_path(params)}


def test_two_processes_train_as_one_and_resume_bit_identically(decoy_dir, tmp_path):
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    _train(one, decoy_dir, processes=1)
    stdouts = _train(two, decoy_dir, processes=2)

    # The same global batches, the same loss and parameters as on one process, to float tolerance (the
    # cross-process all-reduce may sum in another order).
    assert sorted(_losses(two)) == [2, 4, 6]
    np.testing.assert_allclose(list(_losses(two).values()), list(_losses(one).values()), rtol=1e-5)
    final_one, final_two = _params(one, 6), _params(two, 6)
    assert final_one.keys() == final_two.keys()
    for key in final_one:
        np.testing.assert_allclose(final_two[key], final_one[key], rtol=1e-4, atol=1e-6, err_msg=key)
    results = [json.loads((path / "results.json").read_text()) for path in (one, two)]
    assert results[0].keys() == results[1].keys() and "eval/classification/test/accuracy" in results[1]
    printed = ['"eval/classification/test/accuracy"' in stdout for stdout in stdouts]
    assert printed == [True, False]  # process 0 alone prints the results
    positions = sorted(p.name for p in (two / "checkpoints" / "6" / "data").glob("process_*.json"))
    assert positions == ["process_0-of-2.json", "process_1-of-2.json"]  # each process saved its own position
    # Process 0 alone writes logs and results: one copy of each file, each row once.
    outside = sorted(str(p.relative_to(two)) for p in two.rglob("*") if p.is_file() and "checkpoints" not in p.parts)
    assert [name for name in outside if not name.startswith("tensorboard/")] == [
        "config.json",
        "metrics.jsonl",
        "results.json",
        "results.md",
    ]
    assert len([name for name in outside if name.startswith("tensorboard/")]) == 1
    rows = [json.loads(line) for line in (two / "metrics.jsonl").read_text().splitlines()]
    keyed = [(row["step"], key) for row in rows for key in row if key != "step"]
    assert len(keyed) == len(set(keyed))

    # Restart: the pair restores step 3 (parameters, optimizer, both data positions) and trains steps 4..6 again.
    shutil.copytree(two, resumed)
    shutil.rmtree(resumed / "checkpoints" / "6")
    _train(resumed, decoy_dir, processes=2)
    assert _losses(resumed)[6] == _losses(two)[6] and _losses(resumed)[4] == _losses(two)[4]
    final_resumed = _params(resumed, 6)
    for key in final_two:
        np.testing.assert_array_equal(final_resumed[key], final_two[key], err_msg=key)

    # The pair's checkpoint of step 3 resumes in one process with the same 8 devices: the same global batches follow
    # (each process's data position counts global batches), so the same losses to float tolerance.
    single = tmp_path / "single"
    shutil.copytree(two, single)
    shutil.rmtree(single / "checkpoints" / "6")
    _train(single, decoy_dir, processes=1)
    np.testing.assert_allclose([_losses(single)[s] for s in (4, 6)], [_losses(two)[s] for s in (4, 6)], rtol=1e-5)


def test_sigterm_to_one_process_stops_the_pair_at_one_step_and_the_pair_resumes_bit_identically(decoy_dir, tmp_path):
    (tmp_path / "slow_pair.py").write_text(
        "from support import loop_config\n\n\n"
        "def get_config(arg=None):\n"
        f"    config = loop_config({str(decoy_dir)!r}, steps=10, log_every_steps=1, checkpoint_every_steps=100)\n"
        "    config.mesh.num_devices = 0  # all 8 devices of both processes\n"
        "    config.method.sleep_seconds = 0.2\n"
        "    for settings in config.evals.values():\n"
        "        settings.every_steps = 0\n"
        "    return config\n"
    )
    config = str(tmp_path / "slow_pair.py")
    executed = tmp_path / "executed.log"  # a line per executed step of the stopped run (its callback runs on process 0)

    def env_of(p):
        return {"SAGEJAX_TEST_STEP_LOG": str(executed if p == 0 else tmp_path / "executed_elsewhere.log")}

    def unwatched(p):
        return {"SAGEJAX_TEST_STEP_LOG": str(tmp_path / "executed_elsewhere.log")}

    _finish(_start(tmp_path / "straight", config, processes=2, env_of=unwatched))
    running = _start(tmp_path / "stopped", config, processes=2, env_of=env_of)
    deadline = time.time() + 300
    while time.time() < deadline and running[1].poll() is None:
        if executed.exists() and len(executed.read_text().splitlines()) >= 2:  # past compilation, in step 2
            break
        time.sleep(0.05)
    running[1].send_signal(signal.SIGTERM)  # process 1 alone sees it; process 0 learns of it at the next step
    stdouts = _finish(running)
    saved = sorted(int(p.name) for p in (tmp_path / "stopped" / "checkpoints").iterdir() if p.name.isdigit())
    assert len(saved) == 1 and saved[0] < 10, saved
    assert all(f"SIGTERM: saved step {saved[0]}" in stdout for stdout in stdouts), stdouts
    positions = sorted(
        p.name for p in (tmp_path / "stopped" / "checkpoints" / str(saved[0]) / "data").glob("process_*")
    )
    assert positions == ["process_0-of-2.json", "process_1-of-2.json"]

    _finish(_start(tmp_path / "stopped", config, processes=2, env_of=unwatched))  # the restarted pair
    straight, resumed = _params(tmp_path / "straight", 10), _params(tmp_path / "stopped", 10)
    assert straight.keys() == resumed.keys()
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)
    assert _losses(tmp_path / "stopped")[10] == _losses(tmp_path / "straight")[10]


_COLLECTIVE_LOOP = """
import jax, numpy as np
from sagejax.train import distributed, watchdog
distributed.initialize_from_env()
from jax.sharding import NamedSharding, PartitionSpec as P
mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
total = jax.jit(lambda x: x.sum(), out_shardings=NamedSharding(mesh, P()))
x = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), np.ones(jax.local_device_count()))
for step in range(100000):
    assert float(total(x)) == jax.device_count()
    watchdog.beat(f"step {step}")
    print(f"step {step}", flush=True)
"""


def test_a_process_whose_peer_stops_exits_with_a_message_within_the_stall_timeout():
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "SAGEJAX_DISTRIBUTED": "1",
        "SAGEJAX_COORDINATOR_ADDRESS": f"localhost:{_free_port()}",
        "SAGEJAX_NUM_PROCESSES": "2",
        "SAGEJAX_STALL_TIMEOUT": "5",
    }
    running = [
        subprocess.Popen(
            [sys.executable, "-c", _COLLECTIVE_LOOP],
            cwd=REPO,
            env={**env, "SAGEJAX_PROCESS_ID": str(p)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(2)
    ]
    try:
        for line in running[0].stdout:  # both processes are past start-up and summing together
            if line.startswith("step 3"):
                break
        running[1].send_signal(signal.SIGSTOP)  # the peer stops making progress (but does not die)
        started = time.monotonic()
        _, stderr = running[0].communicate(timeout=120)
        waited = time.monotonic() - started
    finally:
        for process in running:
            process.kill()
            process.communicate()
    assert running[0].returncode == watchdog.EXIT_CODE, stderr[-2000:]
    assert "error: process 0 of 2: no progress for" in stderr and "since step" in stderr
    assert waited < 60


def test_a_process_whose_peers_never_connect_says_so_at_once_and_exits_within_the_limit():
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "SAGEJAX_DISTRIBUTED": "1",
        "SAGEJAX_COORDINATOR_ADDRESS": f"localhost:{_free_port()}",
        "SAGEJAX_NUM_PROCESSES": "2",
        "SAGEJAX_PROCESS_ID": "0",  # process 1 is never started
        "SAGEJAX_CONNECT_TIMEOUT": "4",
    }
    command = [sys.executable, "-c", "from sagejax.train import distributed; distributed.initialize_from_env()"]
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == watchdog.EXIT_CODE, result.stderr[-2000:]
    assert "process 0 of 2: connecting to the coordinator at localhost:" in lines[0]
    assert lines[-1].startswith("error: not all 2 processes connected to the coordinator at localhost:")
    assert time.monotonic() - started < 60


def test_a_multi_process_run_outside_a_launcher_is_one_error_line():
    # Without the coordinator variables (and no cluster launcher to read them from): one clear line.
    cluster = ("SLURM", "OMPI", "PMI", "TPU", "JAX_COORDINATOR", "KUBERNETES", "SAGEJAX")
    env = {key: value for key, value in os.environ.items() if not key.startswith(cluster)}
    result = subprocess.run(
        [sys.executable, "-m", "sagejax.main", "--config=sage_decoy:smoke", "--workdir=unused"],
        cwd=REPO,
        env={**env, "SAGEJAX_DISTRIBUTED": "1", "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "error: SAGEJAX_DISTRIBUTED=1 but no coordinator address" in result.stderr
