"""Heads on top of a backbone: linear classifier, SimCLR projection MLP, spatial attention map."""

import jax.numpy as jnp
from flax import nnx


class ClassifierHead(nnx.Module):
    """Dense layer from pooled features to class logits; logits are returned in float32."""

    def __init__(self, in_features, num_classes, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs):
        self.dense = nnx.Linear(in_features, num_classes, dtype=dtype, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, z):
        return self.dense(z).astype(jnp.float32)


class ProjectionHead(nnx.Module):
    """SimCLR projection MLP: Dense–BatchNorm–ReLU–Dense, float32 output."""

    def __init__(self, in_features, hidden_features, out_features, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dense1 = nnx.Linear(in_features, hidden_features, use_bias=False, **kw)
        self.bn = nnx.BatchNorm(hidden_features, momentum=0.9, epsilon=1e-5, **kw)
        self.dense2 = nnx.Linear(hidden_features, out_features, **kw)

    def __call__(self, z):
        return self.dense2(nnx.relu(self.bn(self.dense1(z)))).astype(jnp.float32)


class AttentionHead(nnx.Module):
    """1×1 convolution of a (B,h,w,C) feature map to a (B,h,w,1) float32 map of logits."""

    def __init__(self, in_channels, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs):
        self.conv = nnx.Conv(in_channels, 1, (1, 1), dtype=dtype, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, feature_map):
        return self.conv(feature_map).astype(jnp.float32)
