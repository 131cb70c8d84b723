"""ResNet-18/34/50 (He et al. 2016; torchvision v1.5 layout: stride on the 3×3 conv) in Flax NNX."""

import jax.numpy as jnp
from flax import nnx

from sagejax.models import normalize
from sagejax.models.heads import ClassifierHead

_CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(cin, cout, kernel, stride, *, dtype, param_dtype, rngs):
    pad = kernel // 2
    return nnx.Conv(
        cin,
        cout,
        (kernel, kernel),
        strides=stride,
        padding=((pad, pad), (pad, pad)),
        use_bias=False,
        kernel_init=_CONV_INIT,
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
    )


def _bn(features, *, zero_scale=False, dtype, param_dtype, rngs):
    scale_init = nnx.initializers.zeros if zero_scale else nnx.initializers.ones
    return nnx.BatchNorm(
        features, momentum=0.9, epsilon=1e-5, scale_init=scale_init, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )


class Downsample(nnx.Module):
    """Projection shortcut: strided 1×1 conv + BatchNorm."""

    def __init__(self, cin, cout, stride, **kw):
        self.conv = _conv(cin, cout, 1, stride, **kw)
        self.bn = _bn(cout, **kw)

    def __call__(self, x):
        return self.bn(self.conv(x))


class BasicBlock(nnx.Module):
    """Two 3×3 convs with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin, width, stride, *, zero_init_residual, **kw):
        self.conv1 = _conv(cin, width, 3, stride, **kw)
        self.bn1 = _bn(width, **kw)
        self.conv2 = _conv(width, width, 3, 1, **kw)
        self.bn2 = _bn(width, zero_scale=zero_init_residual, **kw)
        needs_proj = stride != 1 or cin != width
        self.downsample = Downsample(cin, width, stride, **kw) if needs_proj else None

    def __call__(self, x):
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return nnx.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nnx.Module):
    """1×1 reduce, 3×3 (strided), 1×1 expand ×4, with a residual connection (ResNet-50)."""

    expansion = 4

    def __init__(self, cin, width, stride, *, zero_init_residual, **kw):
        cout = width * self.expansion
        self.conv1 = _conv(cin, width, 1, 1, **kw)
        self.bn1 = _bn(width, **kw)
        self.conv2 = _conv(width, width, 3, stride, **kw)
        self.bn2 = _bn(width, **kw)
        self.conv3 = _conv(width, cout, 1, 1, **kw)
        self.bn3 = _bn(cout, zero_scale=zero_init_residual, **kw)
        needs_proj = stride != 1 or cin != cout
        self.downsample = Downsample(cin, cout, stride, **kw) if needs_proj else None

    def __call__(self, x):
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = nnx.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return nnx.relu(y + (x if self.downsample is None else self.downsample(x)))


class Stage(nnx.Module):
    """A sequence of residual blocks; the first one may downsample."""

    def __init__(self, block_cls, cin, width, num_blocks, stride, **kw):
        blocks = []
        for i in range(num_blocks):
            blocks.append(block_cls(cin, width, stride if i == 0 else 1, **kw))
            cin = width * block_cls.expansion
        self.blocks = nnx.List(blocks)

    def __call__(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class Stem(nnx.Module):
    """Input stem: "imagenet" = 7×7/2 conv + 3×3/2 max-pool, "small" = 3×3/1 conv (32×32 inputs)."""

    def __init__(self, cin, cout, kind, **kw):
        if kind not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {kind!r}")
        self.conv = _conv(cin, cout, 7 if kind == "imagenet" else 3, 2 if kind == "imagenet" else 1, **kw)
        self.bn = _bn(cout, **kw)
        self.max_pool = kind == "imagenet"

    def __call__(self, x):
        x = nnx.relu(self.bn(self.conv(x)))
        if self.max_pool:
            x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        return x


class SpatialMeanPool(nnx.Module):
    """Global average pooling (B,h,w,C) → (B,C)."""

    def __call__(self, x):
        return jnp.mean(x, axis=(1, 2))


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nnx.Module):
    """ResNet backbone + linear classifier; `model(x)` → {"logits", "embedding", "feature_map"}. `last_stride=1`
    keeps the last stage at the previous one's resolution (twice the feature-map side, the same parameters), e.g. an
    8×8 grid for a student's attention at 32² with the small stem."""

    input_stats = None  # (mean, std) of `normalize.apply`, set from config.data.normalize by `build_model`

    def __init__(
        self,
        *,
        block,
        stage_sizes,
        num_classes,
        in_channels=3,
        width=64,
        stem="imagenet",
        last_stride=2,
        zero_init_residual=False,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        rngs,
    ):
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        block_cls = _BLOCKS[block]
        self.dtype = dtype
        self.stem = Stem(in_channels, width, stem, **kw)
        strides = [1] + [2] * (len(stage_sizes) - 2) + [last_stride]  # the first stage keeps the stem's resolution
        stages, cin = [], width
        for i, (num_blocks, stride) in enumerate(zip(stage_sizes, strides)):
            stages.append(
                Stage(
                    block_cls,
                    cin,
                    width * 2**i,
                    num_blocks,
                    stride,
                    zero_init_residual=zero_init_residual,
                    **kw,
                )
            )
            cin = width * 2**i * block_cls.expansion
        self.layers = nnx.List(stages)
        self.pool = SpatialMeanPool()
        self.head = ClassifierHead(cin, num_classes, **kw)
        self.num_features = cin

    def __call__(self, x):
        x = self.stem(jnp.asarray(normalize.apply(x, self.input_stats), self.dtype))
        for stage in self.layers:
            x = stage(x)
        z = self.pool(x)
        return {"logits": self.head(z), "embedding": z.astype(jnp.float32), "feature_map": x}
