"""Source records of builds from user files: what a build was made from (file contents or sizes and times, and
the builder config), stored in the build's metadata, so a later run refuses a build whose sources changed instead
of training on stale data."""

import hashlib
import os
import pathlib

import tensorflow_datasets as tfds

from sagejax.errors import DataError

METADATA_KEY = "sources"
CONTENTS = "the contents of "  # the prefix of content-digest records, which builds before them lack
CONTENT_DIGEST_MAX_BYTES = 256 * 2**20  # listed files up to this size in all are also hashed byte by byte


def content_digest(path: pathlib.Path) -> str:
    """sha256 of a small file's bytes (the CSVs that list a dataset)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing_digest(root: pathlib.Path, paths) -> str:
    """One digest of many files' paths (relative to root, so a moved folder is the same source), sizes and
    modification times: images and maps are too many and too big to hash."""
    digest = hashlib.sha256()
    for path in paths:
        name = os.path.relpath(path, root)
        try:
            stat = path.stat()
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{name}\0missing\n".encode())
    return digest.hexdigest()


def contents_digest(root: pathlib.Path, paths, *, max_bytes: int = CONTENT_DIGEST_MAX_BYTES) -> str | None:
    """One digest of many files' paths and bytes, or None when they hold more than `max_bytes` in all: it catches a
    file replaced with its size and time kept (`cp -p`, `rsync -a`, `tar x`), which the listing digest misses."""
    paths = list(paths)
    try:
        if sum(path.stat().st_size for path in paths) > max_bytes:
            return None
    except OSError:
        return None  # a missing file: the listing digest names the change
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{os.path.relpath(path, root)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def record(builder: tfds.core.DatasetBuilder, sources: dict[str, str]) -> None:
    """Stores `sources` (name → digest) with the build being prepared (tfds writes it as metadata.json)."""
    builder.info.metadata[METADATA_KEY] = sources


def changes(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """What differs between a build's recorded sources and the current ones, one phrase per source."""
    phrases = []
    for name in sorted(set(recorded) | set(current)):
        if name.startswith(CONTENTS) and name not in recorded:
            continue  # a build made before content digests: checked by sizes and times only
        if name not in current:
            phrases.append(f"{name} is gone")
        elif name not in recorded:
            phrases.append(f"{name} is new")
        elif recorded[name] != current[name]:
            phrases.append(f"{name} changed")
    return phrases


def check_fresh(builder: tfds.core.DatasetBuilder, current: dict[str, str]) -> None:
    """DataError naming what changed when the prepared build was made from other sources than `current`.

    A build without a record (made before records were kept) cannot be checked and is accepted.
    """
    metadata = builder.info.metadata
    recorded = metadata.get(METADATA_KEY) if metadata is not None else None
    if recorded is None:
        return
    changed = changes(recorded, current)
    if changed:
        raise DataError(
            f"{builder.data_dir} was built from other sources: "
            f"{'; '.join(changed)}. Remove {builder.data_dir} to rebuild it from the current files "
            "(or build into another data_dir)"
        )
