"""Joint random-resized crop and horizontal flip of an image batch and its spatial maps, on device.

Coordinate convention. A crop box is given as fractions of the image: the image covers [0, 1] from
its top edge to its bottom edge and from its left edge to its right edge, so input pixel i of n
covers [i/n, (i+1)/n] and its centre lies at (i + 0.5)/n. Output pixel j of n (the box is resampled
back to the input size) samples the box at its own pixel centre, i.e. at the fraction
start + extent·(j + 0.5)/n, which in input pixel-index coordinates (centre of pixel i = i) is

    u_j = start·n + extent·(j + 0.5) − 0.5

(the align_corners=False convention of torchvision / tf.image). The full box (start 0, extent 1)
gives u_j = j exactly, so it reproduces the input bit for bit. Samples outside the pixel centres
(within half a pixel of the border) take the edge value (scipy.ndimage mode "nearest"). Bilinear
interpolation or nearest neighbour (round half up) is done separably along H and W, and the flip
reverses the output columns.
"""

import jax
import jax.numpy as jnp
import numpy as np

CROP_KEYS = ("top", "left", "height", "width", "flip")


def _check_range(name: str, pair, *, upper: float | None) -> None:
    """Validate a (low, high) pair when it is concrete (traced values are used unchecked)."""
    if len(pair) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {pair!r}")
    if not all(isinstance(v, (int, float, np.number)) for v in pair):
        return
    low, high = float(pair[0]), float(pair[1])
    if not 0.0 < low <= high or (upper is not None and high > upper):
        bound = f" <= {upper}" if upper is not None else ""
        raise ValueError(f"{name} must satisfy 0 < low <= high{bound}, got {pair!r}")


def sample_crops(rng, batch_size: int, *, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip: bool = True) -> dict:
    """Draw one random-resized-crop box and flip flag per example, as fractions of the image.

    Returns {"top", "left", "height", "width"}: float32 (B,) in [0, 1], and "flip": bool (B,).
    As in torchvision's / Inception's RandomResizedCrop, the area fraction is Uniform(scale) and
    log(width/height) is Uniform(log ratio); height and width are fractions of the image's, so the
    ratio is the anisotropic stretch the crop applies once resized back to H×W (for square images
    it is also the box's pixel aspect ratio). Instead of a rejection-sampling loop, a side longer
    than the image is clipped to 1 (that box then has a smaller area and is squarer than drawn).
    The box position is uniform over all positions that keep it inside the image. scale=(1, 1),
    ratio=(1, 1) gives the full image; flip=False flips nothing, flip=True each example w.p. 1/2.
    """
    _check_range("scale", scale, upper=1.0)
    _check_range("ratio", ratio, upper=None)
    k_area, k_ratio, k_top, k_left, k_flip = jax.random.split(rng, 5)
    shape = (batch_size,)
    area = jax.random.uniform(k_area, shape, jnp.float32, minval=scale[0], maxval=scale[1])
    log_lo, log_hi = jnp.log(jnp.float32(ratio[0])), jnp.log(jnp.float32(ratio[1]))
    aspect = jnp.exp(jax.random.uniform(k_ratio, shape, jnp.float32, minval=log_lo, maxval=log_hi))
    height = jnp.minimum(jnp.sqrt(area / aspect), 1.0)
    width = jnp.minimum(jnp.sqrt(area * aspect), 1.0)
    top = jax.random.uniform(k_top, shape, jnp.float32) * (1.0 - height)
    left = jax.random.uniform(k_left, shape, jnp.float32) * (1.0 - width)
    flips = jax.random.bernoulli(k_flip, 0.5, shape) if flip else jnp.zeros(shape, bool)
    return {"top": top, "left": left, "height": height, "width": width, "flip": flips}


def _sample_positions(start: jax.Array, extent: jax.Array, n: int) -> jax.Array:
    """(B,) box start/extent fractions -> (B, n) input pixel-index coordinates of the output pixel centres."""
    centres = jnp.arange(n, dtype=jnp.float32) + 0.5
    return start[:, None] * n + extent[:, None] * centres[None, :] - 0.5


def _resample_axis(x: jax.Array, coords: jax.Array, axis: int, nearest: bool) -> jax.Array:
    """Sample one example `x` along `axis` at fractional pixel indices `coords` (edge values outside)."""
    n = x.shape[axis]
    coords = jnp.clip(coords, 0.0, n - 1)
    if nearest:
        index = jnp.clip(jnp.floor(coords + 0.5).astype(jnp.int32), 0, n - 1)
        return jnp.take(x, index, axis=axis)
    lower = jnp.floor(coords)
    index0 = lower.astype(jnp.int32)
    index1 = jnp.minimum(index0 + 1, n - 1)
    weight = (coords - lower).astype(x.dtype)
    weight = weight.reshape(weight.shape + (1,) * (x.ndim - 1 - axis))
    return (1 - weight) * jnp.take(x, index0, axis=axis) + weight * jnp.take(x, index1, axis=axis)


def crop_and_resize(array: jax.Array, crops: dict, *, nearest: bool = False) -> jax.Array:
    """Resample each example's crop box back to H×W, then mirror it where crops["flip"]; same shape and dtype.

    `array` is (B, H, W) or (B, H, W, C) (further trailing axes are carried along like C).
    Bilinear on pixel centres (floats only; computed in at least float32) or nearest neighbour
    (any dtype, values stay in the input's set: use it for integer/boolean binary maps).
    """
    array = jnp.asarray(array)
    if array.ndim < 3:
        raise ValueError(f"array must be (B, H, W) or (B, H, W, C), got shape {array.shape}")
    missing = [k for k in CROP_KEYS if k not in crops]
    if missing:
        raise ValueError(f"crops is missing {missing}; expected keys {list(CROP_KEYS)}")
    if not nearest and not jnp.issubdtype(array.dtype, jnp.floating):
        raise ValueError(f"bilinear resampling needs a floating dtype, got {array.dtype}; use nearest=True")
    batch, height, width = array.shape[:3]
    boxes = {k: jnp.asarray(crops[k], bool if k == "flip" else jnp.float32) for k in CROP_KEYS}
    for key, value in boxes.items():
        if value.shape != (batch,):
            raise ValueError(f"crops[{key!r}] must have shape ({batch},) to match the array, got {value.shape}")
    rows = _sample_positions(boxes["top"], boxes["height"], height)
    cols = _sample_positions(boxes["left"], boxes["width"], width)
    cols = jnp.where(boxes["flip"][:, None], cols[:, ::-1], cols)

    dtype = array.dtype
    work = array if nearest else array.astype(jnp.promote_types(dtype, jnp.float32))

    def one(example, ys, xs):
        return _resample_axis(_resample_axis(example, ys, 0, nearest), xs, 1, nearest)

    return jax.vmap(one)(work, rows, cols).astype(dtype)


def augment_batch(batch: dict, rng, *, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip: bool = True) -> dict:
    """Apply one random crop+flip per example to batch["image"] and to every spatial map, jointly.

    Maps are the other entries with ndim >= 3, (B, h, w[, C]); each is cropped at its own resolution (boxes are
    fractions of the image), so a map stored at another resolution than the image still moves with it. Floats
    are resampled bilinearly, integer/boolean ones (binary fixations) by nearest neighbour so their values stay
    in the original set; an integer image is likewise resampled by nearest neighbour. Entries with ndim < 3
    (labels, flags, embeddings) pass through untouched. `rng` goes straight to sample_crops(rng, B, ...), so the
    draw can be reproduced. Raises ValueError if "image" is missing, or naming a map whose batch size differs.
    """
    if "image" not in batch:
        raise ValueError(f"batch has no 'image' entry; keys: {sorted(batch)}")
    image = batch["image"]
    if getattr(image, "ndim", 0) < 3:
        raise ValueError(f"batch['image'] must be (B, H, W[, C]), got shape {getattr(image, 'shape', None)}")
    size = image.shape[0]
    map_keys = [key for key, value in batch.items() if key != "image" and getattr(value, "ndim", 0) >= 3]
    for key in map_keys:
        if batch[key].shape[0] != size:
            raise ValueError(f"map {key!r} has batch size {batch[key].shape[0]}, image has {size}")
    crops = sample_crops(rng, size, scale=scale, ratio=ratio, flip=flip)
    out = dict(batch)
    for key in ("image", *map_keys):
        value = jnp.asarray(batch[key])
        out[key] = crop_and_resize(value, crops, nearest=not jnp.issubdtype(value.dtype, jnp.floating))
    return out
