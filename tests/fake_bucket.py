"""An offline stand-in for Google Cloud Storage: `gs://<bucket>/<key>` is the local file `<root>/<bucket>/<key>`.

It replaces, for one test, the three things a `gs://` workdir reaches the network through: fsspec's `gs`
filesystem (what `etils.epath` opens, normally gcsfs), the `google.cloud.storage` client (which orbax asks whether
the bucket has a hierarchical namespace) and orbax's TensorStore spec for a GCS path (the array bytes, normally
TensorStore's `gcs` driver; here its `file` driver under the same root). Everything above them, sagejax included,
sees a `gs://` URL and must keep it one.
"""

from __future__ import annotations

import importlib
import sys
import types

import fsspec
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem


class FakeBucketFileSystem(DirFileSystem):
    """fsspec's `gs`/`gcs` protocol over the local folder `root` (a class attribute: epath caches the instance)."""

    protocol = ("gs", "gcs")
    root = ""
    cachable = False

    def __init__(self, *args, **storage_options):
        del args, storage_options  # gcsfs's options (e.g. finalize_on_close) mean nothing here
        super().__init__(path="/", fs=LocalFileSystem(auto_mkdir=True))  # objects need no folders made first

    @property
    def path(self):
        return FakeBucketFileSystem.root

    @path.setter
    def path(self, value):
        del value  # set by DirFileSystem.__init__; the root is the class's

    def open(self, path, mode="rb", **kwargs):
        if "a" in mode:  # GCS objects cannot be appended to
            raise NotImplementedError(f"append mode {mode!r} on a bucket object: {path}")
        return super().open(path, mode, **kwargs)

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = fsspec.utils.stringify_path(path)
        for prefix in ("gs://", "gcs://"):
            path = path.removeprefix(prefix)
        return path.rstrip("/")


def clear_caches() -> None:
    """Forgets the filesystem epath and the bucket orbax looked up, so the next test starts from the registry."""
    from etils.epath import backend
    from orbax.checkpoint._src.path import gcs_utils

    type(backend.fsspec_backend)._get_filesystem.cache_clear()
    gcs_utils.get_bucket.cache_clear()


def install(monkeypatch, root: str) -> None:
    """Serves `gs://` from the local folder `root` for the rest of the test (undone by `monkeypatch`)."""
    from orbax.checkpoint._src.path import gcs_utils

    monkeypatch.setattr(FakeBucketFileSystem, "root", str(root))
    registry = importlib.import_module("fsspec.registry")._registry
    for protocol in ("gs", "gcs"):
        monkeypatch.setitem(registry, protocol, FakeBucketFileSystem)
    clear_caches()

    client = types.ModuleType("google.cloud.storage")
    client.Client = lambda *args, **kwargs: types.SimpleNamespace(
        get_bucket=lambda name: types.SimpleNamespace(name=name, hierarchical_namespace_enabled=False)
    )
    cloud = sys.modules.get("google.cloud") or types.ModuleType("google.cloud")
    monkeypatch.setitem(sys.modules, "google.cloud", cloud)
    monkeypatch.setattr(cloud, "storage", client, raising=False)
    monkeypatch.setitem(sys.modules, "google.cloud.storage", client)
    monkeypatch.setitem(sys.modules, "gcsfs", types.ModuleType("gcsfs"))

    def local_kvstore(path: str) -> dict:
        bucket, _, key = path.removeprefix("gs://").partition("/")
        return {"driver": "file", "path": f"{root}/{bucket}/{key}"}

    monkeypatch.setattr(gcs_utils, "get_kvstore_for_gcs", local_kvstore)
