"""On-device augmentations: Gaussian blur, degradation ops and SAGE's saliency views."""

from sagejax.augment.blur import (
    PADDING_MODES,
    default_kernel_size,
    gaussian_blur,
    gaussian_kernel_1d,
)
from sagejax.augment.degradations import DEGRADATIONS, degrade
from sagejax.augment.saliency import prepare_saliency, saliency_views, validate_saliency

__all__ = [
    "DEGRADATIONS",
    "PADDING_MODES",
    "default_kernel_size",
    "degrade",
    "gaussian_blur",
    "gaussian_kernel_1d",
    "prepare_saliency",
    "saliency_views",
    "validate_saliency",
]
