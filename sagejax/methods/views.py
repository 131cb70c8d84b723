"""Saliency views of a batch as a method config asks for them: one place for every caller."""

from __future__ import annotations

from sagejax import augment


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
