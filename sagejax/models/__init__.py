"""Flax NNX models: ResNet, ViT, U-Net teacher, heads, and embedding taps ("hooks")."""

from sagejax.models.heads import AttentionHead, ClassifierHead, ProjectionHead
from sagejax.models.registry import build_model, create_model, model_defaults, model_names, model_options
from sagejax.models.resnet import ResNet
from sagejax.models.tap import available_taps, forward, pool_embedding, tap
from sagejax.models.unet import UNet
from sagejax.models.vit import ViT

__all__ = [
    "AttentionHead",
    "ClassifierHead",
    "ProjectionHead",
    "ResNet",
    "UNet",
    "ViT",
    "available_taps",
    "build_model",
    "create_model",
    "forward",
    "model_names",
    "model_defaults",
    "model_options",
    "pool_embedding",
    "tap",
]
