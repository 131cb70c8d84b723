"""Data: TFDS builders (array_record, no TensorFlow) and grain loaders of per-process numpy batches."""

from sagejax.data.decoy_mnist import DecoyMnist, DecoyMnistConfig
from sagejax.data.device import UNIT_SCALED, make_train_transform, to_model_inputs
from sagejax.data.digit_pad import DigitPad, DigitPadConfig
from sagejax.data.iterators import build, dataset_config, eval_iter, image_shape, train_iter
from sagejax.data.mnist_attention import MnistAttention, MnistAttentionConfig
from sagejax.data.pipeline import BUILDERS, TFDS_DIR, build_dataset, get_builder, make_loader
from sagejax.data.salicon import Salicon
from sagejax.data.saliency_csv import SaliencyCsv, SaliencyCsvConfig
from sagejax.data.saliency_folder import SaliencyFolder, SaliencyFolderConfig

__all__ = [
    "BUILDERS",
    "TFDS_DIR",
    "UNIT_SCALED",
    "DecoyMnist",
    "DecoyMnistConfig",
    "DigitPad",
    "DigitPadConfig",
    "MnistAttention",
    "MnistAttentionConfig",
    "Salicon",
    "SaliencyCsv",
    "SaliencyCsvConfig",
    "SaliencyFolder",
    "SaliencyFolderConfig",
    "build",
    "build_dataset",
    "dataset_config",
    "eval_iter",
    "get_builder",
    "image_shape",
    "make_loader",
    "make_train_transform",
    "to_model_inputs",
    "train_iter",
]
