"""Saliency views of a batch as a method config asks for them: one place for every caller."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sagejax import augment
from sagejax.errors import ConfigError

PANEL_COUNT = 8  # training examples shown in the TensorBoard image panels

# Hyperparameters of the views, shared by every method that builds them (SAGE, the augmentation control).
SALIENCY_VIEW_DEFAULTS = dict(
    blur_sigma=2.0,  # Gaussian σ of the degradation, pixels
    blur_kernel_size=13,
    degrade="blur",  # or "mean" (fill), "noise", "zero" (black fill) (augment.DEGRADATIONS)
    invert_saliency=False,  # the sanity check: s -> 1 - s
    empty_saliency="ones",  # an all-zero map means "all salient" (the saliency terms vanish)
)


def check_view_config(config) -> None:
    """Raises naming the `method.*` key of an impossible view setting, before anything is compiled."""
    if not config.blur_sigma > 0:
        raise ConfigError(
            f"method.blur_sigma must be > 0 (the degradation's Gaussian σ, pixels), got {config.blur_sigma}"
        )
    if config.blur_kernel_size < 1 or config.blur_kernel_size % 2 == 0:
        raise ConfigError(f"method.blur_kernel_size must be a positive odd number, got {config.blur_kernel_size}")
    if config.degrade not in augment.DEGRADATIONS:
        raise ConfigError(f"unknown method.degrade {config.degrade!r}; choose from {sorted(augment.DEGRADATIONS)}")


def config_views(config, *, images, saliency, rng) -> dict:
    """x, x', x~, x~' from raw maps with the config's degradation and inversion; the prepared map as "saliency"."""
    prepared = augment.prepare_saliency(saliency, empty=config.empty_saliency)
    views = augment.saliency_views(
        images=images,
        saliency=prepared,
        sigma=config.blur_sigma,
        kernel_size=config.blur_kernel_size,
        degrade=config.degrade,
        invert=config.invert_saliency,
        rng=rng,
    )
    return {**views, "saliency": prepared}


def view_panels(config, batch, count: int = PANEL_COUNT) -> dict[str, np.ndarray]:
    """x, s, x~ and x~' of the first `count` examples, for the TensorBoard image panel."""
    views = config_views(
        config,
        images=jnp.asarray(batch["image"][:count]),
        saliency=jnp.asarray(batch["saliency"][:count]),
        rng=jax.random.key(0),
    )
    return {f"panels/{name}": np.asarray(views[name]) for name in ("x", "saliency", "x_keep", "x_degrade")}
