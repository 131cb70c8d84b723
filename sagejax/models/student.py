"""The contrastive student: any registered backbone with a SimCLR projection MLP on its pooled embedding and,
optionally, a spatial attention head on its last feature map, assembled around the backbone without editing it."""

import jax
import jax.numpy as jnp
from flax import nnx

from sagejax.models.heads import AttentionHead, ProjectionHead


class Student(nnx.Module):
    """`student(x)` → the backbone's outputs plus "projection" (B, projection_dim) and, with an attention head,
    "attention": log-probabilities over the head's grid (B, h, w), a log-softmax over h·w (as DeepGaze and UNISAL
    normalise their maps)."""

    def __init__(
        self,
        backbone: nnx.Module,
        *,
        projection_hidden: int = 512,
        projection_dim: int = 128,
        attention: bool = True,
        attention_hidden_layers: int = 0,
        attention_hidden_channels: int = 64,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.backbone = backbone
        features = backbone.num_features  # the width of both its pooled embedding and its last feature map
        self.projection = ProjectionHead(features, projection_hidden, projection_dim, **kw)
        self.attention = (
            AttentionHead(
                features,
                hidden_layers=attention_hidden_layers,
                hidden_channels=attention_hidden_channels,
                **kw,
            )
            if attention
            else None
        )

    def __call__(self, x):
        out = dict(self.backbone(x))
        out["projection"] = self.projection(out["embedding"])
        if self.attention is not None:
            logits = self.attention(out["feature_map"])
            flat = jax.nn.log_softmax(logits.reshape(logits.shape[0], -1), axis=-1)
            out["attention"] = flat.reshape(logits.shape)
        return out
