"""Test setup: 8 simulated CPU devices, fixed before JAX initialises; programs compiled without most XLA
optimizations; one JAX compilation cache that the session, the runs it starts as subprocesses and later sessions
share."""

import atexit
import importlib.metadata
import os
import shutil
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The suite's many short runs compile the same programs again and again; cached programs are the same executables,
# so results are too. The cache lives in the user's cache folder (one per jaxlib release, emptied when it has grown
# past 4 GB), so a second run of the suite starts warm; SAGEJAX_TEST_CACHE=temp gives the session a fresh one that
# is removed at exit (a cold run, as on a new machine). JAX's own size cap is not used: its per-entry file locking
# tripled the suite's system time.
CACHE_LIMIT_BYTES = 4 * 2**30
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    if os.environ.get("SAGEJAX_TEST_CACHE") == "temp":
        os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="sagejax-test-jax-cache-")
        atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
    else:
        root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        release = importlib.metadata.version("jaxlib")
        cache = os.path.join(root, "sagejax", f"jax-test-cache-{release}")
        oversized = os.path.isdir(cache) and sum(e.stat().st_size for e in os.scandir(cache)) > CACHE_LIMIT_BYTES
        if oversized and "PYTEST_XDIST_WORKER" not in os.environ:  # emptied by the main process, before any worker
            shutil.rmtree(cache, ignore_errors=True)
        os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# The suite's programs are tiny, so compiling is most of its time: without most XLA optimizations the whole suite
# ran in about 3/4 of the time (a smoke run in 7 s instead of 17 s). The tests whose subject is the optimized
# program (multi-device steps against the 1-device step) ask for the `optimized` fixture. JAX_DISABLE_MOST_
# OPTIMIZATIONS=0 runs the whole suite optimized.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax  # noqa: E402  (imported after XLA_FLAGS on purpose)
import pytest  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def optimized():
    """Compiles the test's programs with XLA's optimizations, as a real run does (the in-memory compile cache is
    emptied first: it does not tell the two apart)."""
    disabled = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", False)
    jax.clear_caches()
    yield
    jax.config.update("jax_disable_most_optimizations", disabled)


@pytest.fixture(scope="session")
def devices():
    """The 8 simulated CPU devices every parallelism test runs on."""
    devs = jax.devices()
    assert len(devs) == 8, f"expected 8 simulated devices, got {len(devs)}"
    return devs


@pytest.fixture
def fake_bucket(tmp_path, monkeypatch):
    """`gs://` served offline from a local folder (tests/fake_bucket.py), yielded as that folder; the test runs in a
    fresh working directory, so a URL mistaken for a path would show up there as a `gs:` folder."""
    import fake_bucket

    root = tmp_path / "bucket-root"
    root.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    fake_bucket.install(monkeypatch, str(root))
    yield root
    monkeypatch.undo()
    fake_bucket.clear_caches()
    assert not (work / "gs:").exists(), "a gs:// URL was written as a local path"
