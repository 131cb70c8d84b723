"""U-Net saliency teacher (Ronneberger et al. 2015): per-pixel logits at the input's spatial size."""

import jax
import jax.numpy as jnp
from flax import nnx

_CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


class DoubleConv(nnx.Module):
    """(3×3 conv – BatchNorm – ReLU) × 2."""

    def __init__(self, cin, cout, *, dtype, param_dtype, rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.conv1 = nnx.Conv(cin, cout, (3, 3), use_bias=False, kernel_init=_CONV_INIT, **kw)
        self.bn1 = nnx.BatchNorm(cout, momentum=0.9, epsilon=1e-5, **kw)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), use_bias=False, kernel_init=_CONV_INIT, **kw)
        self.bn2 = nnx.BatchNorm(cout, momentum=0.9, epsilon=1e-5, **kw)

    def __call__(self, x):
        x = nnx.relu(self.bn1(self.conv1(x)))
        return nnx.relu(self.bn2(self.conv2(x)))


class UNet(nnx.Module):
    """Encoder (`depth` 2×2 max-pools), bottleneck, decoder with skips: (B,H,W,C) → (B,H,W,K) f32.

    For a saliency density use num_classes=1 and apply a log-softmax over the H·W pixels."""

    def __init__(
        self, *, num_classes=1, in_channels=3, base_width=32, depth=4, dtype=jnp.float32, param_dtype=jnp.float32, rngs
    ):
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.dtype = dtype
        self.depth = depth
        self.down = nnx.List(
            [DoubleConv(cin, cout, **kw) for cin, cout in zip([in_channels] + widths[: depth - 1], widths[:depth])]
        )
        self.middle = DoubleConv(widths[depth - 1], widths[depth], **kw)
        self.up = nnx.List([DoubleConv(widths[i + 1] + widths[i], widths[i], **kw) for i in reversed(range(depth))])
        self.out = nnx.Conv(widths[0], num_classes, (1, 1), **kw)

    def __call__(self, x):
        if min(x.shape[1:3]) < 2**self.depth:
            raise ValueError(
                f"U-Net of depth {self.depth} needs inputs of at least {2**self.depth} pixels a side, got {x.shape}"
            )
        x = jnp.asarray(x, self.dtype)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = nnx.max_pool(x, (2, 2), strides=(2, 2))
        x = self.middle(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = jax.image.resize(x, skip.shape[:3] + x.shape[3:], "bilinear")
            x = block(jnp.concatenate([x, skip], axis=-1))
        return self.out(x).astype(jnp.float32)
