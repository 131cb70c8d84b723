"""On-device augmentations: Gaussian blur, degradation ops, SAGE's saliency views, joint crop and flip, and the
ImageNet-C / CIFAR-10-C / MNIST-C corruptions (`corrupt`)."""

from sagejax.augment.blur import (
    PADDING_MODES,
    default_kernel_size,
    gaussian_blur,
    gaussian_kernel_1d,
)
from sagejax.augment.corruptions import CORRUPTIONS, MNIST_C, corrupt, corrupt_examples
from sagejax.augment.degradations import DEGRADATIONS, degrade
from sagejax.augment.geometric import augment_batch, crop_and_resize, sample_crops
from sagejax.augment.saliency import fixations_of, prepare_saliency, saliency_views, validate_saliency

__all__ = [
    "CORRUPTIONS",
    "DEGRADATIONS",
    "MNIST_C",
    "PADDING_MODES",
    "augment_batch",
    "corrupt",
    "corrupt_examples",
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
