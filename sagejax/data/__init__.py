"""Data: TFDS builders (array_record, no TensorFlow) and grain loaders of per-process numpy batches."""

from sagejax.data.decoy_mnist import DecoyMnist, DecoyMnistConfig
from sagejax.data.mnist_attention import MnistAttention, MnistAttentionConfig
from sagejax.data.pipeline import BUILDERS, build_dataset, get_builder, make_loader
from sagejax.data.salicon import Salicon
from sagejax.data.saliency_csv import SaliencyCsv, SaliencyCsvConfig
from sagejax.data.saliency_folder import SaliencyFolder, SaliencyFolderConfig

__all__ = [
    "BUILDERS",
    "DecoyMnist",
    "DecoyMnistConfig",
    "MnistAttention",
    "MnistAttentionConfig",
    "Salicon",
    "SaliencyCsv",
    "SaliencyCsvConfig",
    "SaliencyFolder",
    "SaliencyFolderConfig",
    "build_dataset",
    "get_builder",
    "make_loader",
]
