"""Corruption settings of the evaluators that score corrupted images (robustness, retrieval): which corruption, at
which severity of which table, and how an eval batch is corrupted on its devices before the eval forward."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sagejax.augment import corruptions
from sagejax.errors import ConfigError


class Corrupted(NamedTuple):
    """One corruption setting; hashable, so each gets its own compiled corruption program (the static argument of
    `_apply`), shared by every evaluator in the process."""

    name: str
    severity: int | None  # None for MNIST-C (one fixed severity each)
    table: str
    seed: int

    @property
    def label(self) -> str:
        """ "gaussian_noise/3", or the bare name for MNIST-C."""
        return self.name if self.severity is None else f"{self.name}/{self.severity}"

    def apply(self, images: jax.Array, first_index: int) -> jax.Array:
        """The batch's images corrupted on their devices (same sharding), row i with the randomness of split
        example `first_index + i`."""
        return _apply(images, np.int32(first_index), corruption=self, sharding=images.sharding)


@functools.partial(jax.jit, static_argnames=("corruption", "sharding"))
def _apply(images, first_index, *, corruption: Corrupted, sharding):
    indices = first_index + jnp.arange(images.shape[0], dtype=jnp.int32)
    out = corruptions.corrupt_examples(
        images,
        name=corruption.name,
        severity=corruption.severity,
        table=corruption.table,
        seed=corruption.seed,
        indices=indices,
    )
    return jax.lax.with_sharding_constraint(out, sharding)  # a host callback (JPEG) would leave it replicated


def resolve_table(table: str, image_shape, *, where: str) -> str:
    """`table`, or for "" the default of the dataset's image size; names a size no corruption can take."""
    height, width = image_shape[:2]
    if min(height, width) < corruptions.MIN_SIDE:
        raise ConfigError(
            f"{where}: the dataset's {height}×{width} images are smaller than the {corruptions.MIN_SIDE}×"
            f"{corruptions.MIN_SIDE} px the corruptions need"
        )
    table = table or corruptions.default_table(height, width)
    if table not in corruptions.TABLES:
        raise ConfigError(f"{where}.table={table!r} is not a corruption table; known: {list(corruptions.TABLES)}")
    return table


def sweep(table: str, names, severities, *, seed: int, where: str) -> list[Corrupted]:
    """Every corruption of `names` (() = all of the table's) at every severity of `severities` (MNIST-C: its one)."""
    registry = corruptions.MNIST_C if table == "mnist" else corruptions.CORRUPTIONS
    names = tuple(names) or tuple(registry)
    levels = (None,) if table == "mnist" else tuple(severities)
    if not levels:
        raise ConfigError(f"{where}.severities is empty")
    settings = []
    for name in names:
        for severity in levels:
            settings.append(_checked(Corrupted(name, severity, table, seed), where))
    return settings


def parse(specs, table: str, *, seed: int, where: str) -> list[Corrupted]:
    """Settings written "name/severity" (or "name" for MNIST-C), e.g. ("gaussian_noise/3", "fog/5")."""
    settings = []
    for spec in specs:
        name, _, severity = spec.partition("/")
        if severity and not severity.isdigit():
            raise ConfigError(f"{where}: {spec!r} is not 'name/severity' with an integer severity")
        settings.append(_checked(Corrupted(name, int(severity) if severity else None, table, seed), where))
    return settings


def _checked(setting: Corrupted, where: str) -> Corrupted:
    try:
        corruptions.check_request(setting.name, setting.severity, setting.table)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from error
    return setting
