"""Where run folders live: a local path or a `gs://` bucket, read and written through `etils.epath`.

A local location is made absolute (orbax needs that); a URL is kept as written. Whole files are written so that a
reader never sees half of one (a temporary file renamed on a filesystem; one object upload on a bucket, where an
upload is atomic). A bucket object cannot be appended to, so `AppendFile` rewrites it whole at each flush.
"""

from __future__ import annotations

import glob as glob_module
import importlib
import io
import os
import uuid

from etils import epath

from sagejax.errors import ConfigError, MissingError

# What a `gs://` location needs: fsspec's GCS filesystem (epath) and the GCS client (orbax's bucket lookups).
# TensorStore, which writes the checkpoint arrays, has its GCS driver built in.
GCS_MODULES = {"gcsfs": "gcsfs", "google.cloud.storage": "google-cloud-storage"}


def is_url(location) -> bool:
    """Whether `location` names a bucket (`scheme://...`) rather than a filesystem path."""
    return "://" in os.fspath(location)


def path(location) -> epath.Path:
    """`location` as an epath.Path: a URL unchanged (after `check_backend`: one line naming what to install, instead
    of an import error deep in a command), a filesystem path with `~` expanded and made absolute."""
    if is_url(location):
        check_backend(location)
        return location if isinstance(location, epath.Path) else epath.Path(os.fspath(location))
    return epath.Path(os.path.abspath(os.path.expanduser(os.fspath(location))))


def _unique(name: str) -> str:
    """`name` made unique to this call: processes of a pod share folders and may share a pid."""
    return f"{name}-{uuid.uuid4().hex[:12]}"


def check_backend(location) -> None:
    """Raises one line when `location` is a URL sagejax cannot write: a scheme other than gs:// (orbax writes
    checkpoints to filesystems and GCS only), or gs:// without the packages that reach a bucket."""
    if not is_url(location):
        return
    scheme = os.fspath(location).split("://", 1)[0]
    if scheme != "gs":
        raise ConfigError(
            f"{location}: sagejax writes run folders to filesystem paths and gs:// buckets only (orbax checkpoints "
            f"support no {scheme}://); mount the storage on every host and pass the mounted path"
        )
    missing = []
    for module, package in GCS_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ConfigError(
            f"{location} is a GCS bucket, which needs {' and '.join(missing)}: pip install 'sagejax[gcs]'"
        )


def probe_writable(folder) -> None:
    """Creates `folder` and writes and removes a probe file in it; raises the OSError when it cannot."""
    folder = path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / _unique(".write-check")
    probe.write_text("")
    probe.unlink()


def check_writable(folder, *, what: str = "folder") -> None:
    """Raises one line naming `folder` (as `what`) when it cannot be created or written, found before any work (a
    read-only folder otherwise surfaces minutes later as an orbax timeout)."""
    try:
        probe_writable(folder)
    except OSError as error:
        raise MissingError(f"the {what} {path(folder)} cannot be written ({error.strerror or error})") from error


def write_bytes(target, data: bytes) -> epath.Path:
    """Writes `data` to `target` whole: a temporary file renamed over it, or one object upload on a bucket."""
    target = path(target)
    if is_url(target):  # a bucket has no folders to create
        target.write_bytes(data)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(_unique(f"{target.name}.partial"))
    partial.write_bytes(data)
    os.replace(partial, target)
    return target


def write_text(target, text: str) -> epath.Path:
    """Writes `text` (UTF-8) to `target` whole (see `write_bytes`)."""
    return write_bytes(target, text.encode("utf-8"))


def glob(pattern) -> list[str]:
    """The paths matching `pattern` (`*`, `?`, `[...]` in any folder name below the bucket), sorted."""
    pattern = os.fspath(pattern)
    if not is_url(pattern):
        return sorted(glob_module.glob(os.path.expanduser(pattern)))
    parts = pattern.rstrip("/").split("/")
    first = next((i for i, part in enumerate(parts) if glob_module.has_magic(part)), len(parts))
    if first == len(parts):
        return [pattern] if path(pattern).exists() else []
    return sorted(os.fspath(match) for match in path("/".join(parts[:first])).glob("/".join(parts[first:])))


class AppendFile:
    """A text file grown by `write` calls and made durable by `flush`: appended in place on a filesystem, rewritten
    whole on a bucket (objects cannot be appended to, so the content is kept in memory there)."""

    def __init__(self, target):
        self.path = path(target)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if is_url(self.path):
            self._text = io.StringIO()
            self._text.write(self.path.read_text(encoding="utf-8") if self.path.exists() else "")
            self._file = None
        else:
            self._text = None
            self._file = open(self.path, "a", encoding="utf-8")

    def write(self, text: str) -> None:
        """Adds `text` at the end (visible to readers after `flush`)."""
        (self._file or self._text).write(text)

    def flush(self) -> None:
        """Makes what was written so far durable."""
        if self._file is not None:
            self._file.flush()
        else:
            write_text(self.path, self._text.getvalue())

    def close(self) -> None:
        """Flushes and closes."""
        self.flush()
        if self._file is not None:
            self._file.close()
