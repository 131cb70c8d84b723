"""Saliency-benchmark metrics (AUC-Judd, AUC-Borji, shuffled AUC, information gain), trivial baselines, report table.

S = predicted map, F = fixation map, B = baseline map; NSS, CC, KLD and SIM are `sagejax.losses` (conventions there).
Conventions:
- Fixations: every pixel where F > 0 counts once (MIT binary map), so duplicate fixations on a pixel count once.
- No fixations: AUC-Judd, AUC-Borji, sAUC and IG are NaN for that map (MIT); so is an AUC with no negatives.
- Constant S: every AUC is 0.5, the chance diagonal (MIT gives NaN from its 0/0 min-max rescale).
- AUC-Judd: optional seeded jitter U[0, 1e-7) added to the raw map (MIT's tie breaker), then min-max to [0, 1];
  thresholds = S at the fixated pixels, FP = (#{S ≥ t} − i)/(N_pix − N_fix) verbatim from MIT, trapezoid. The
  trapezoid joins consecutive fixation thresholds by straight lines, so a random map scores ≈ 0.5 + 1/(2·N_fix),
  not 0.5 (0.54 with 12 fixations); compare against the baselines scored on the same fixations.
- AUC-Borji: S min-max to [0, 1]; per split N_fix negatives drawn uniformly with replacement from all pixels (fixated
  ones included, as MIT's randi); thresholds k·step, k = 0…⌊max/step⌋, the top endpoint included as MATLAB's colon
  does (numpy ports using np.arange(0, max, step) drop it); mean over seeded splits.
- sAUC: as AUC-Borji, but each split draws min(N_fix, N_other) negatives without replacement from the pixels set in
  `other_fixations`, a binary union map of other images' fixations (MIT; pysaliency instead takes every fixation of
  all other images as negatives, duplicates counted, in one exact ROC without splits or a threshold grid).
- IG: mean over fixated pixels of log2(eps + S) − log2(eps + B), S and B each divided by its sum, eps = 2.2204e-16,
  bits per fixation; no min-max first (MIT's InfoGain.m rescales, which makes a uniform baseline 0/0).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sagejax.losses.saliency import MIT_EPS, _normalize_sum, _to_float, cc, kld, nss, sim

JITTER = 1e-7
METRICS = ("AUC-Judd", "AUC-Borji", "sAUC", "NSS", "CC", "KLD", "SIM", "IG")


def _host_maps(saliency_map, fixations) -> tuple[np.ndarray, np.ndarray]:
    """`saliency_map` as finite float64 and `fixations` as a bool mask (> 0), both (..., H, W) of one shape."""
    s = np.asarray(saliency_map, dtype=np.float64)
    f = np.asarray(fixations) > 0
    if s.ndim < 2 or s.shape != f.shape:
        raise ValueError(f"saliency_map and fixations must be (..., H, W) of one shape, got {s.shape} and {f.shape}")
    if not np.isfinite(s).all():
        raise ValueError("saliency_map contains NaN or ±inf")
    return s, f


def _per_map(metric: Callable[..., float], seed: int, *maps: np.ndarray) -> float | np.ndarray:
    """Applies `metric(*maps_i, rng_i)` to each (H, W) map i, rng_i seeded by (seed, i); float for a single map."""
    batch_shape = maps[0].shape[:-2]
    flat = [m.reshape(-1, *m.shape[-2:]) for m in maps]
    values = np.array(
        [metric(*(m[i] for m in flat), np.random.default_rng((seed, i))) for i in range(flat[0].shape[0])]
    )
    return float(values[0]) if not batch_shape else values.reshape(batch_shape)


def _minmax(s: np.ndarray) -> np.ndarray | None:
    """The map rescaled to [0, 1], or None when it is constant."""
    span = s.max() - s.min()
    return (s - s.min()) / span if span > 0 else None


def _auc_judd_map(s: np.ndarray, f: np.ndarray, jitter: bool, rng: np.random.Generator) -> float:
    """MIT AUC-Judd of one (H, W) map."""
    n_pix, n_fix = s.size, int(f.sum())
    if n_fix == 0 or n_fix == n_pix:
        return float("nan")
    if jitter:
        s = s + JITTER * rng.random(s.shape)
    s = _minmax(s)
    if s is None:
        return 0.5
    s, f = s.ravel(), f.ravel()
    thresholds = np.sort(s[f])[::-1]
    above = n_pix - np.searchsorted(np.sort(s), thresholds, side="left")
    i = np.arange(1, n_fix + 1)
    tp = np.concatenate([[0.0], i / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - i) / (n_pix - n_fix), [1.0]])
    return float(np.trapezoid(tp, fp))


def _auc_splits(positives: np.ndarray, negatives: np.ndarray, step_size: float) -> float:
    """Mean over splits (rows of `negatives`) of the thresholded ROC area, thresholds k·step down to 0.

    One grid up to the overall maximum serves every split: thresholds above a split's own maximum add (0, 0) points.
    """
    top = max(positives.max(), negatives.max())
    thresholds = step_size * np.arange(np.floor(top / step_size + 1e-10) + 1)
    thresholds[-1] = min(thresholds[-1], top)  # MATLAB's colon snaps a last element within rounding to the endpoint
    thresholds = thresholds[::-1]
    tp = (positives[None, :] >= thresholds[:, None]).mean(axis=1)
    fp = np.stack([(negatives >= t).mean(axis=1) for t in thresholds], axis=1)
    n_splits = negatives.shape[0]
    tp = np.concatenate([np.zeros(1), tp, np.ones(1)])
    fp = np.concatenate([np.zeros((n_splits, 1)), fp, np.ones((n_splits, 1))], axis=1)
    return float(np.mean(np.trapezoid(np.broadcast_to(tp, fp.shape), fp, axis=1)))


def _auc_borji_map(s, f, n_splits: int, step_size: float, rng: np.random.Generator) -> float:
    """MIT AUC-Borji of one (H, W) map."""
    if not f.any():
        return float("nan")
    s = _minmax(s)
    if s is None:
        return 0.5
    positives = s[f]
    negatives = s.ravel()[rng.integers(0, s.size, size=(n_splits, positives.size))]
    return _auc_splits(positives, negatives, step_size)


def _auc_shuffled_map(s, f, other, n_splits: int, step_size: float, rng: np.random.Generator) -> float:
    """MIT shuffled AUC of one (H, W) map."""
    if not f.any() or not other.any():
        return float("nan")
    s = _minmax(s)
    if s is None:
        return 0.5
    positives, pool = s[f], s[other]
    n_neg = min(positives.size, pool.size)
    negatives = np.stack([rng.choice(pool, size=n_neg, replace=False) for _ in range(n_splits)])
    return _auc_splits(positives, negatives, step_size)


def auc_judd(*, saliency_map, fixations, jitter: bool = True, seed: int = 0) -> float | np.ndarray:
    """MIT AUC-Judd per map of (..., H, W) inputs: a float for one map, else an array over the leading axes.

    NaN for a map without fixations; `jitter` adds seeded U[0, 1e-7) noise to break ties, as MIT does.
    """
    s, f = _host_maps(saliency_map, fixations)
    return _per_map(lambda s_i, f_i, rng: _auc_judd_map(s_i, f_i, jitter, rng), seed, s, f)


def auc_borji(
    *, saliency_map, fixations, n_splits: int = 100, step_size: float = 0.1, seed: int = 0
) -> float | np.ndarray:
    """MIT AUC-Borji per map (uniformly sampled negatives, threshold grid with its endpoint), seeded.

    (..., H, W) inputs; a float for one map, else an array over the leading axes; NaN without fixations.
    """
    s, f = _host_maps(saliency_map, fixations)
    return _per_map(lambda s_i, f_i, rng: _auc_borji_map(s_i, f_i, n_splits, step_size, rng), seed, s, f)


def auc_shuffled(
    *, saliency_map, fixations, other_fixations, n_splits: int = 100, step_size: float = 0.1, seed: int = 0
) -> float | np.ndarray:
    """MIT shuffled AUC per map: negatives sampled from `other_fixations`, the binary union of other images' fixations.

    `other_fixations` broadcasts to the maps' shape ((H, W) shared or one per map); NaN if it or F is empty.
    """
    s, f = _host_maps(saliency_map, fixations)
    other = np.broadcast_to(np.asarray(other_fixations) > 0, f.shape)
    return _per_map(
        lambda s_i, f_i, o_i, rng: _auc_shuffled_map(s_i, f_i, o_i, n_splits, step_size, rng), seed, s, f, other
    )


def information_gain(*, saliency_map, fixations, baseline_map, eps: float = MIT_EPS) -> jax.Array:
    """Information gain over `baseline_map` in bits per fixated pixel, one value per map over the leading axes.

    S and B are each divided by their sum; each fixated pixel counts once; NaN for a map without fixations.
    """
    s = _normalize_sum(_to_float(saliency_map))
    b = _normalize_sum(_to_float(baseline_map))
    mask = jnp.asarray(fixations) > 0
    gain = jnp.log2(eps + s) - jnp.log2(eps + b)
    count = jnp.sum(mask, axis=(-2, -1))
    total = jnp.sum(jnp.where(mask, gain, 0.0), axis=(-2, -1))
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)


def centre_bias_map(*, height: int, width: int, sigma_fraction: float = 0.25) -> jax.Array:
    """Centred Gaussian with std sigma_fraction·(height, width), summing to 1: the centre-bias baseline."""
    y = (jnp.arange(height) - (height - 1) / 2) / (sigma_fraction * height)
    x = (jnp.arange(width) - (width - 1) / 2) / (sigma_fraction * width)
    g = jnp.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))
    return g / jnp.sum(g)


def uniform_map(*, height: int, width: int) -> jax.Array:
    """Constant map summing to 1: the chance baseline."""
    return jnp.full((height, width), 1.0 / (height * width), dtype=jnp.float32)


def _nanmean(values) -> float:
    """Mean of the non-NaN entries; NaN when there are none."""
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def evaluate_saliency(
    *, predictions, densities, fixations, other_fixations=None, baseline=None, seed: int = 0
) -> dict[str, float]:
    """Batch means of every metric in METRICS for (B, H, W) predictions against densities and fixation maps.

    sAUC negatives default to each image's union of the OTHER images' fixations (NaN for a batch of one); IG is
    against `baseline` (default centre bias); fixation-based metrics average over the images that have fixations.
    """
    s, f = _host_maps(predictions, fixations)
    if s.ndim != 3 or np.shape(densities) != s.shape:
        raise ValueError(f"predictions, densities, fixations must be (B, H, W), got {s.shape}, {np.shape(densities)}")
    has_fix = f.any(axis=(-2, -1))
    if other_fixations is None:
        other = (f.sum(axis=0) - f) > 0
    else:
        other = np.broadcast_to(np.asarray(other_fixations) > 0, f.shape)
    if baseline is None:
        baseline = centre_bias_map(height=s.shape[1], width=s.shape[2])
    prediction, target = jnp.asarray(predictions), jnp.asarray(densities)
    nss_values = np.asarray(nss(prediction=prediction, fixations=f.astype(np.float32), reduction="none"))
    return {
        "AUC-Judd": _nanmean(auc_judd(saliency_map=s, fixations=f, seed=seed)),
        "AUC-Borji": _nanmean(auc_borji(saliency_map=s, fixations=f, seed=seed)),
        "sAUC": _nanmean(auc_shuffled(saliency_map=s, fixations=f, other_fixations=other, seed=seed)),
        "NSS": _nanmean(np.where(has_fix, nss_values, np.nan)),
        "CC": float(cc(prediction=prediction, target=target)),
        "KLD": float(kld(prediction=prediction, target=target)),
        "SIM": float(sim(prediction=prediction, target=target)),
        "IG": _nanmean(information_gain(saliency_map=prediction, fixations=f, baseline_map=jnp.asarray(baseline))),
    }


def metrics_table(*, rows: dict[str, dict[str, float]]) -> str:
    """Markdown table, one row per model name, one column per metric (first-seen order), values to 3 decimals."""
    if not rows:
        raise ValueError("rows is empty")
    columns = list(dict.fromkeys(name for metrics in rows.values() for name in metrics))
    lines = [
        "| model | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for model, metrics in rows.items():
        cells = [f"{metrics[name]:.3f}" if name in metrics else "" for name in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
