"""On-device augmentations: Gaussian blur, degradation ops, SAGE's saliency views, joint crop and flip."""

from sagejax.augment.blur import (
    PADDING_MODES,
    default_kernel_size,
    gaussian_blur,
    gaussian_kernel_1d,
)
from sagejax.augment.degradations import DEGRADATIONS, degrade
from sagejax.augment.geometric import augment_batch, crop_and_resize, sample_crops
from sagejax.augment.saliency import fixations_of, prepare_saliency, saliency_views, validate_saliency

__all__ = [
    "DEGRADATIONS",
    "PADDING_MODES",
    "augment_batch",
    "crop_and_resize",
    "default_kernel_size",
    "degrade",
    "fixations_of",
    "gaussian_blur",
    "gaussian_kernel_1d",
    "prepare_saliency",
    "saliency_views",
    "sample_crops",
    "validate_saliency",
]
