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
    """A spatial map of logits (B, h, w) from a (B, h, w, C) feature map: a 1×1 convolution, or with
    `hidden_layers` > 0 that many 3×3 conv–ReLU layers of `hidden_channels` before it."""

    def __init__(
        self, in_channels, *, hidden_layers=0, hidden_channels=64, dtype=jnp.float32, param_dtype=jnp.float32, rngs
    ):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        widths = [in_channels] + [hidden_channels] * hidden_layers
        self.hidden = nnx.List([nnx.Conv(cin, cout, (3, 3), **kw) for cin, cout in zip(widths[:-1], widths[1:])])
        self.conv = nnx.Conv(widths[-1], 1, (1, 1), **kw)

    def __call__(self, feature_map):
        x = feature_map
        for conv in self.hidden:
            x = nnx.relu(conv(x))
        return self.conv(x)[..., 0].astype(jnp.float32)
