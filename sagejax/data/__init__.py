"""Data: TFDS builders (array_record, no TensorFlow) and grain loaders of per-process numpy batches."""

from sagejax.data.decoy_mnist import DecoyMnist, DecoyMnistConfig
from sagejax.data.pipeline import BUILDERS, build_dataset, get_builder, make_loader
from sagejax.data.saliency_csv import SaliencyCsv, SaliencyCsvConfig

__all__ = [
    "BUILDERS",
    "DecoyMnist",
    "DecoyMnistConfig",
    "SaliencyCsv",
    "SaliencyCsvConfig",
    "build_dataset",
    "get_builder",
    "make_loader",
]
