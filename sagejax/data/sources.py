"""Source records of builds from user files: what a build was made from (file contents or sizes and times, and
the builder config), stored in the build's metadata, so a later run refuses a build whose sources changed instead
of training on stale data."""

import hashlib
import os
import pathlib

import tensorflow_datasets as tfds

from sagejax.errors import DataError

METADATA_KEY = "sources"


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


def record(builder: tfds.core.DatasetBuilder, sources: dict[str, str]) -> None:
    """Stores `sources` (name → digest) with the build being prepared (tfds writes it as metadata.json)."""
    builder.info.metadata[METADATA_KEY] = sources


def changes(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """What differs between a build's recorded sources and the current ones, one phrase per source."""
    phrases = []
    for name in sorted(set(recorded) | set(current)):
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
