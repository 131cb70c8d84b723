"""An independent NumPy forward of PyTorch-layout state dicts (NCHW, OIHW kernels, (out, in) linear weights), in eval
mode, and random state dicts in timm / torchvision names, for checking the weight converters without PyTorch."""

import numpy as np


def conv2d(x, w, stride=1, padding=0, bias=None):
    """PyTorch's conv2d: x (N, C, H, W), w (O, C, kh, kw)."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    _, _, kh, kw = w.shape
    h_out = (x.shape[2] - kh) // stride + 1
    w_out = (x.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], h_out, w_out), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out if bias is None else out + bias[None, :, None, None]


def batch_norm(x, sd, name, eps=1e-5):
    scale = sd[f"{name}.weight"] / np.sqrt(sd[f"{name}.running_var"] + eps)
    shift = sd[f"{name}.bias"] - sd[f"{name}.running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def max_pool_3x3_s2(x):
    x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    h_out, w_out = (x.shape[2] - 3) // 2 + 1, (x.shape[3] - 3) // 2 + 1
    windows = [x[:, :, i : i + 2 * h_out : 2, j : j + 2 * w_out : 2] for i in range(3) for j in range(3)]
    return np.max(windows, axis=0)


def relu(x):
    return np.maximum(x, 0)


def resnet_forward(sd, images, *, bottleneck, stage_sizes):
    """Logits of a torchvision-layout ResNet (v1.5: stride on the 3×3 conv) on (N, H, W, C) images."""
    x = np.transpose(images, (0, 3, 1, 2)).astype(np.float64)
    x = max_pool_3x3_s2(relu(batch_norm(conv2d(x, sd["conv1.weight"], 2, 3), sd, "bn1")))
    for stage, blocks in enumerate(stage_sizes):
        for b in range(blocks):
            p = f"layer{stage + 1}.{b}"
            stride = 2 if stage > 0 and b == 0 else 1
            if bottleneck:
                y = relu(batch_norm(conv2d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
                y = relu(batch_norm(conv2d(y, sd[f"{p}.conv2.weight"], stride, 1), sd, f"{p}.bn2"))
                y = batch_norm(conv2d(y, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            else:
                y = relu(batch_norm(conv2d(x, sd[f"{p}.conv1.weight"], stride, 1), sd, f"{p}.bn1"))
                y = batch_norm(conv2d(y, sd[f"{p}.conv2.weight"], 1, 1), sd, f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = batch_norm(conv2d(x, sd[f"{p}.downsample.0.weight"], stride), sd, f"{p}.downsample.1")
            x = relu(y + x)
    z = x.mean(axis=(2, 3))
    return z @ sd["fc.weight"].T + sd["fc.bias"]


def random_resnet_state(rng, *, bottleneck, stage_sizes, width, num_classes, in_channels=3):
    """A torchvision-named ResNet state dict with random weights and BatchNorm statistics."""
    sd = {}

    def conv(name, cout, cin, k):
        sd[name] = rng.normal(0, np.sqrt(2 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)

    def bn(name, c):
        sd[f"{name}.weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        sd[f"{name}.bias"] = rng.uniform(-0.2, 0.2, c).astype(np.float32)
        sd[f"{name}.running_mean"] = rng.uniform(-0.2, 0.2, c).astype(np.float32)
        sd[f"{name}.running_var"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        sd[f"{name}.num_batches_tracked"] = np.array(100, np.int64)

    conv("conv1.weight", width, in_channels, 7)
    bn("bn1", width)
    cin, expansion = width, 4 if bottleneck else 1
    for stage, blocks in enumerate(stage_sizes):
        w = width * 2**stage
        for b in range(blocks):
            p, stride = f"layer{stage + 1}.{b}", 2 if stage > 0 and b == 0 else 1
            if bottleneck:
                conv(f"{p}.conv1.weight", w, cin, 1), bn(f"{p}.bn1", w)
                conv(f"{p}.conv2.weight", w, w, 3), bn(f"{p}.bn2", w)
                conv(f"{p}.conv3.weight", w * 4, w, 1), bn(f"{p}.bn3", w * 4)
            else:
                conv(f"{p}.conv1.weight", w, cin, 3), bn(f"{p}.bn1", w)
                conv(f"{p}.conv2.weight", w, w, 3), bn(f"{p}.bn2", w)
            if stride != 1 or cin != w * expansion:
                conv(f"{p}.downsample.0.weight", w * expansion, cin, 1), bn(f"{p}.downsample.1", w * expansion)
            cin = w * expansion
    sd["fc.weight"] = rng.normal(0, 0.1, (num_classes, cin)).astype(np.float32)
    sd["fc.bias"] = rng.normal(0, 0.1, num_classes).astype(np.float32)
    return sd


def layer_norm(x, weight, bias, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x):
    from math import erf, sqrt

    return 0.5 * x * (1 + np.vectorize(erf)(x / sqrt(2)))


def vit_forward(sd, images, *, patch, heads, depth):
    """Logits of a timm-layout ViT with a class token (token pooling) on (N, H, W, C) images."""
    x = conv2d(
        np.transpose(images, (0, 3, 1, 2)).astype(np.float64),
        sd["patch_embed.proj.weight"],
        patch,
        0,
        sd["patch_embed.proj.bias"],
    )
    n, d = x.shape[0], x.shape[1]
    tokens = x.reshape(n, d, -1).transpose(0, 2, 1)
    tokens = np.concatenate([np.broadcast_to(sd["cls_token"], (n, 1, d)), tokens], axis=1) + sd["pos_embed"]
    hd = d // heads
    for i in range(depth):
        p = f"blocks.{i}"
        y = layer_norm(tokens, sd[f"{p}.norm1.weight"], sd[f"{p}.norm1.bias"])
        qkv = (y @ sd[f"{p}.attn.qkv.weight"].T + sd[f"{p}.attn.qkv.bias"]).reshape(n, -1, 3, heads, hd)
        q, k, v = (qkv[:, :, s].transpose(0, 2, 1, 3) for s in range(3))  # (n, heads, tokens, hd)
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        attended = (weights @ v).transpose(0, 2, 1, 3).reshape(n, -1, d)
        tokens = tokens + attended @ sd[f"{p}.attn.proj.weight"].T + sd[f"{p}.attn.proj.bias"]
        y = layer_norm(tokens, sd[f"{p}.norm2.weight"], sd[f"{p}.norm2.bias"])
        y = gelu(y @ sd[f"{p}.mlp.fc1.weight"].T + sd[f"{p}.mlp.fc1.bias"])
        tokens = tokens + y @ sd[f"{p}.mlp.fc2.weight"].T + sd[f"{p}.mlp.fc2.bias"]
    tokens = layer_norm(tokens, sd["norm.weight"], sd["norm.bias"])
    return tokens[:, 0] @ sd["head.weight"].T + sd["head.bias"]


def random_vit_state(rng, *, patch, dim, depth, mlp_dim, grid, num_classes, in_channels=3):
    """A timm-named ViT state dict (class token) with random weights."""

    def normal(*shape, scale=0.2):
        return rng.normal(0, scale, shape).astype(np.float32)

    sd = {
        "cls_token": normal(1, 1, dim),
        "pos_embed": normal(1, grid * grid + 1, dim),
        "patch_embed.proj.weight": normal(dim, in_channels, patch, patch),
        "patch_embed.proj.bias": normal(dim),
        "norm.weight": 1 + normal(dim),
        "norm.bias": normal(dim),
        "head.weight": normal(num_classes, dim),
        "head.bias": normal(num_classes),
    }
    for i in range(depth):
        p = f"blocks.{i}"
        sd.update(
            {
                f"{p}.norm1.weight": 1 + normal(dim),
                f"{p}.norm1.bias": normal(dim),
                f"{p}.attn.qkv.weight": normal(3 * dim, dim),
                f"{p}.attn.qkv.bias": normal(3 * dim),
                f"{p}.attn.proj.weight": normal(dim, dim),
                f"{p}.attn.proj.bias": normal(dim),
                f"{p}.norm2.weight": 1 + normal(dim),
                f"{p}.norm2.bias": normal(dim),
                f"{p}.mlp.fc1.weight": normal(mlp_dim, dim),
                f"{p}.mlp.fc1.bias": normal(mlp_dim),
                f"{p}.mlp.fc2.weight": normal(dim, mlp_dim),
                f"{p}.mlp.fc2.bias": normal(dim),
            }
        )
    return sd


def as_big_vision(sd, *, heads, depth):
    """The same ViT in the original ViT / big_vision `.npz` names and layouts (separate q, k, v of (D, H, hd))."""
    d = sd["cls_token"].shape[-1]
    hd = d // heads
    out = {
        "cls": sd["cls_token"],
        "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
        "embedding/kernel": np.transpose(sd["patch_embed.proj.weight"], (2, 3, 1, 0)),
        "embedding/bias": sd["patch_embed.proj.bias"],
        "Transformer/encoder_norm/scale": sd["norm.weight"],
        "Transformer/encoder_norm/bias": sd["norm.bias"],
        "head/kernel": sd["head.weight"].T,
        "head/bias": sd["head.bias"],
    }
    for i in range(depth):
        p, b = f"blocks.{i}", f"Transformer/encoderblock_{i}"
        out[f"{b}/LayerNorm_0/scale"], out[f"{b}/LayerNorm_0/bias"] = sd[f"{p}.norm1.weight"], sd[f"{p}.norm1.bias"]
        out[f"{b}/LayerNorm_2/scale"], out[f"{b}/LayerNorm_2/bias"] = sd[f"{p}.norm2.weight"], sd[f"{p}.norm2.bias"]
        qkv_w, qkv_b = sd[f"{p}.attn.qkv.weight"], sd[f"{p}.attn.qkv.bias"]
        for s, part in enumerate(("query", "key", "value")):
            out[f"{b}/MultiHeadDotProductAttention_1/{part}/kernel"] = qkv_w[s * d : (s + 1) * d].T.reshape(
                d, heads, hd
            )
            out[f"{b}/MultiHeadDotProductAttention_1/{part}/bias"] = qkv_b[s * d : (s + 1) * d].reshape(heads, hd)
        out[f"{b}/MultiHeadDotProductAttention_1/out/kernel"] = sd[f"{p}.attn.proj.weight"].T.reshape(heads, hd, d)
        out[f"{b}/MultiHeadDotProductAttention_1/out/bias"] = sd[f"{p}.attn.proj.bias"]
        out[f"{b}/MlpBlock_3/Dense_0/kernel"], out[f"{b}/MlpBlock_3/Dense_0/bias"] = (
            sd[f"{p}.mlp.fc1.weight"].T,
            sd[f"{p}.mlp.fc1.bias"],
        )
        out[f"{b}/MlpBlock_3/Dense_1/kernel"], out[f"{b}/MlpBlock_3/Dense_1/bias"] = (
            sd[f"{p}.mlp.fc2.weight"].T,
            sd[f"{p}.mlp.fc2.bias"],
        )
    return out
