"""Vision Transformer (Dosovitskiy et al. 2021; timm layout) with global-average or CLS pooling."""

import jax
import jax.numpy as jnp
from flax import nnx

from sagejax.models import normalize
from sagejax.models.heads import ClassifierHead

_DENSE_INIT = nnx.initializers.truncated_normal(0.02)


def _dense(din, dout, *, dtype, param_dtype, rngs):
    return nnx.Linear(din, dout, kernel_init=_DENSE_INIT, dtype=dtype, param_dtype=param_dtype, rngs=rngs)


def _dropout(rate, rngs):
    return nnx.Dropout(rate, rngs=rngs if rate > 0 else None)


class Attention(nnx.Module):
    """Multi-head self-attention through `jax.nn.dot_product_attention` (fused qkv projection)."""

    def __init__(self, dim, num_heads, *, attention_impl, **kw):
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.qkv = _dense(dim, 3 * dim, **kw)
        self.proj = _dense(dim, dim, **kw)
        self.num_heads = num_heads
        self.attention_impl = attention_impl

    def __call__(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        y = jax.nn.dot_product_attention(q, k, v, implementation=self.attention_impl)
        return self.proj(y.reshape(b, n, d))


class Mlp(nnx.Module):
    """Dense–GELU–Dense feed-forward block (exact GELU as timm, or tanh-approximate as big_vision)."""

    def __init__(self, dim, hidden, dropout_rate, *, gelu_approximate=False, **kw):
        self.fc1 = _dense(dim, hidden, **kw)
        self.fc2 = _dense(hidden, dim, **kw)
        self.dropout1 = _dropout(dropout_rate, kw["rngs"])
        self.dropout2 = _dropout(dropout_rate, kw["rngs"])
        self.gelu_approximate = gelu_approximate

    def __call__(self, x):
        x = self.dropout1(jax.nn.gelu(self.fc1(x), approximate=self.gelu_approximate))
        return self.dropout2(self.fc2(x))


class EncoderBlock(nnx.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim, num_heads, mlp_dim, *, attention_impl, dropout_rate, gelu_approximate=False, **kw):
        self.norm1 = nnx.LayerNorm(dim, epsilon=1e-6, **kw)
        self.attn = Attention(dim, num_heads, attention_impl=attention_impl, **kw)
        self.attn_dropout = _dropout(dropout_rate, kw["rngs"])
        self.norm2 = nnx.LayerNorm(dim, epsilon=1e-6, **kw)
        self.mlp = Mlp(dim, mlp_dim, dropout_rate, gelu_approximate=gelu_approximate, **kw)

    def __call__(self, x):
        x = x + self.attn_dropout(self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))


class TokenPool(nnx.Module):
    """(B,N,D) tokens → (B,D): mean over tokens ("gap") or the first token ("cls")."""

    def __init__(self, kind):
        self.kind = kind

    def __call__(self, tokens):
        return jnp.mean(tokens, axis=1) if self.kind == "gap" else tokens[:, 0]


class ViT(nnx.Module):
    """ViT + linear classifier; `model(x)` → {"logits", "embedding", "feature_map"}.

    feature_map = the final-normed patch tokens on the (H/p, W/p) grid."""

    input_stats = None  # (mean, std) of `normalize.apply`, set from config.data.normalize by `build_model`

    def __init__(
        self,
        *,
        num_classes,
        patch_size=16,
        dim=768,
        depth=12,
        num_heads=12,
        mlp_dim=3072,
        image_size=224,
        in_channels=3,
        pool="gap",
        attention_impl=None,
        dropout_rate=0.0,
        gelu_approximate=False,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        rngs,
    ):
        if pool not in ("gap", "cls"):
            raise ValueError(f"pool must be 'gap' or 'cls', got {pool!r}")
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch {patch_size}")
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dtype = dtype
        self.grid = image_size // patch_size
        self.patch_embed = nnx.Conv(
            in_channels, dim, (patch_size, patch_size), strides=patch_size, padding="VALID", **kw
        )
        num_tokens = self.grid**2 + (pool == "cls")
        self.cls_token = nnx.Param(jnp.zeros((1, 1, dim), param_dtype)) if pool == "cls" else None
        self.pos_embed = nnx.Param(_DENSE_INIT(rngs.params(), (1, num_tokens, dim), param_dtype))
        self.blocks = nnx.List(
            [
                EncoderBlock(
                    dim,
                    num_heads,
                    mlp_dim,
                    attention_impl=attention_impl,
                    dropout_rate=dropout_rate,
                    gelu_approximate=gelu_approximate,
                    **kw,
                )
                for _ in range(depth)
            ]
        )
        self.norm = nnx.LayerNorm(dim, epsilon=1e-6, **kw)
        self.pool = TokenPool(pool)
        self.head = ClassifierHead(dim, num_classes, **kw)
        self.num_features = dim
        self.gelu_approximate = gelu_approximate  # big_vision's ViTs were trained with tanh-approximate GELU

    def __call__(self, x):
        image_shape = x.shape
        x = self.patch_embed(jnp.asarray(normalize.apply(x, self.input_stats), self.dtype))
        b, h, w, d = x.shape
        if (h, w) != (self.grid, self.grid):
            raise ValueError(
                f"ViT built for a {self.grid}×{self.grid} patch grid got {h}×{w} "
                f"from input {image_shape}; set image_size to the input size"
            )
        tokens = x.reshape(b, h * w, d)
        if self.cls_token is not None:
            cls = jnp.broadcast_to(self.cls_token[...].astype(self.dtype), (b, 1, d))
            tokens = jnp.concatenate([cls, tokens], axis=1)
        tokens = tokens + self.pos_embed[...].astype(self.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        z = self.pool(tokens)
        patches = tokens[:, -h * w :]
        return {"logits": self.head(z), "embedding": z.astype(jnp.float32), "feature_map": patches.reshape(b, h, w, d)}
