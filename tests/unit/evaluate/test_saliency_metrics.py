"""Saliency-benchmark metrics: AUC-Judd, AUC-Borji, shuffled AUC, information gain, baselines and the report."""

import numpy as np
import pytest

from sagejax.evaluate.saliency_metrics import (
    METRICS,
    auc_borji,
    auc_judd,
    auc_shuffled,
    centre_bias_map,
    evaluate_saliency,
    information_gain,
    metrics_table,
    uniform_map,
)

H, W = 32, 40


def _blobs(*, n: int, n_fix: int, seed: int, sigma: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """n Gaussian-blob densities at random centres (sum 1) and binary fixation maps sampled from them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    densities = np.zeros((n, H, W))
    fixations = np.zeros((n, H, W), bool)
    for i in range(n):
        cy, cx = rng.uniform(6, H - 6), rng.uniform(6, W - 6)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        densities[i] = blob / blob.sum()
        fixations[i].flat[rng.choice(H * W, size=n_fix, p=densities[i].ravel())] = True
    return densities, fixations


def _centre_biased_fixations(*, n: int, n_fix: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A centre-biased dataset: every image's fixations drawn from one centred Gaussian (returned too)."""
    rng = np.random.default_rng(seed)
    centre = np.asarray(centre_bias_map(height=H, width=W, sigma_fraction=0.15), np.float64)
    centre /= centre.sum()
    fixations = np.zeros((n, H, W), bool)
    for i in range(n):
        fixations[i].flat[rng.choice(H * W, size=n_fix, p=centre.ravel())] = True
    return centre, fixations


def _top_k_fixations(saliency_map: np.ndarray, k: int) -> np.ndarray:
    """Binary map fixating exactly the k highest pixels of `saliency_map`."""
    fixations = np.zeros(saliency_map.shape, bool)
    fixations.flat[np.argsort(saliency_map, axis=None)[-k:]] = True
    return fixations


# ---------------------------------------------------------------- AUC-Judd


def test_auc_judd_hand_computed():
    saliency_map = np.array([[0.1, 0.9, 0.3], [0.7, 0.2, 0.5]])
    fixations = np.array([[0, 1, 0], [0, 0, 1]])
    # Min-max: [[0, 1, .25], [.75, .125, .5]]; fixated values 1 and .5 (descending); N_pix = 6, N_fix = 2.
    # i=1, t=1:  #{S ≥ 1} = 1   → TP = 1/2, FP = (1 − 1)/4 = 0
    # i=2, t=.5: #{S ≥ .5} = 3  → TP = 1,   FP = (3 − 2)/4 = 1/4
    # (0,0) (0,.5) (.25,1) (1,1): area = 0 + .25·(.5 + 1)/2 + .75·1 = 0.9375 (the pairwise AUROC would be 7/8).
    score = auc_judd(saliency_map=saliency_map, fixations=fixations, jitter=False)
    assert isinstance(score, float)
    assert score == pytest.approx(0.9375, abs=1e-12)


@pytest.mark.parametrize("jitter", [False, True])
def test_auc_judd_perfect_map_is_one_and_inverted_map_below_half(jitter):
    saliency_map = np.random.default_rng(0).permutation(H * W).reshape(H, W) / (H * W)  # distinct values, no ties
    fixations = _top_k_fixations(saliency_map, 15)
    assert auc_judd(saliency_map=saliency_map, fixations=fixations, jitter=jitter) == pytest.approx(1.0, abs=1e-12)
    assert auc_judd(saliency_map=-saliency_map, fixations=fixations, jitter=jitter) < 0.5


def test_auc_judd_constant_map_and_no_fixations():
    fixations = np.random.default_rng(1).random((64, 64)) < 0.05
    constant = np.full((64, 64), 0.3)
    assert auc_judd(saliency_map=constant, fixations=fixations, jitter=False) == 0.5
    jittered = auc_judd(saliency_map=constant, fixations=fixations)
    assert jittered != 0.5 and jittered == pytest.approx(0.5, abs=0.08)
    assert np.isnan(auc_judd(saliency_map=constant + np.eye(64), fixations=np.zeros((64, 64))))


def test_auc_judd_batched_over_leading_axes():
    densities, fixations = _blobs(n=3, n_fix=20, seed=2)
    batched = auc_judd(saliency_map=densities.reshape(3, 1, H, W), fixations=fixations.reshape(3, 1, H, W))
    assert batched.shape == (3, 1)
    assert batched[0, 0] == auc_judd(saliency_map=densities[0], fixations=fixations[0])
    no_jitter = auc_judd(saliency_map=densities, fixations=fixations, jitter=False)
    singles = [auc_judd(saliency_map=d, fixations=f, jitter=False) for d, f in zip(densities, fixations)]
    np.testing.assert_array_equal(no_jitter, singles)


# ---------------------------------------------------------------- AUC-Borji and shuffled AUC


def test_borji_and_shuffled_are_seeded():
    densities, fixations = _blobs(n=2, n_fix=30, seed=3)
    noisy = densities[0] + np.random.default_rng(4).random((H, W)) * densities[0].max()
    kwargs = dict(saliency_map=noisy, fixations=fixations[0])
    assert auc_borji(**kwargs, seed=5) == auc_borji(**kwargs, seed=5)
    assert auc_borji(**kwargs, seed=5) != auc_borji(**kwargs, seed=6)
    kwargs["other_fixations"] = fixations[1] | (np.random.default_rng(7).random((H, W)) < 0.2)
    assert auc_shuffled(**kwargs, seed=5) == auc_shuffled(**kwargs, seed=5)
    assert auc_shuffled(**kwargs, seed=5) != auc_shuffled(**kwargs, seed=6)


def test_borji_and_shuffled_density_map_scores_high_and_constant_map_half():
    densities, fixations = _blobs(n=4, n_fix=30, seed=8)
    others = (fixations.sum(axis=0) - fixations) > 0
    assert np.all(auc_borji(saliency_map=densities, fixations=fixations) > 0.8)
    assert np.all(auc_shuffled(saliency_map=densities, fixations=fixations, other_fixations=others) > 0.8)
    constant = np.ones((H, W))
    assert auc_borji(saliency_map=constant, fixations=fixations[0]) == pytest.approx(0.5)
    assert auc_shuffled(saliency_map=constant, fixations=fixations[0], other_fixations=others[0]) == pytest.approx(0.5)


def test_threshold_grid_includes_its_top_endpoint():
    # Fixated pixels sit exactly on the grid's top (1.0, and 0.3 reached as 3·0.1 in floating point); every negative
    # lies below. With the endpoint the ROC passes through (0, 1): AUC 1. np.arange(0, max, 0.1) would drop that
    # threshold, leaving (0,0) → (1,1) at the next one: AUC 0.5.
    fixations = np.zeros((H, W), bool)
    fixations[10:14, 10:14] = True
    others = np.zeros((H, W), bool)
    others[20:, 20:] = True
    for top, below in ((1.0, 0.95), (0.3, 0.25)):
        saliency_map = np.full((H, W), below)
        saliency_map[fixations] = top
        saliency_map[0, 0], saliency_map[0, 1] = 0.0, 1.0  # pins the min-max rescale to the identity
        kwargs = dict(saliency_map=saliency_map, fixations=fixations)
        assert auc_shuffled(**kwargs, other_fixations=others) == pytest.approx(1.0, abs=1e-12)
        if top == 1.0:  # uniform negatives also hit fixated pixels (16 of 1280): AUC ≈ 1 − 0.5·16/1280
            assert auc_borji(**kwargs) > 0.98


def test_shuffled_auc_cancels_centre_bias():
    # A pure centre-bias map on centre-biased fixations: high AUC-Borji, chance sAUC (the union of other images'
    # fixations counts a shared pixel once, so its negatives are slightly less central: sAUC comes out ≈ 0.52).
    centre, fixations = _centre_biased_fixations(n=6, n_fix=20, seed=9)
    others = (fixations.sum(axis=0) - fixations) > 0
    centre_maps = np.broadcast_to(centre, fixations.shape)
    assert np.mean(auc_borji(saliency_map=centre_maps, fixations=fixations)) > 0.7
    shuffled = np.mean(auc_shuffled(saliency_map=centre_maps, fixations=fixations, other_fixations=others))
    assert shuffled == pytest.approx(0.5, abs=0.05)


def test_aucs_without_fixations_or_negatives_are_nan():
    saliency_map = np.random.default_rng(10).random((H, W))
    fixations = np.zeros((H, W), bool)
    fixations[3, 4] = True
    empty = np.zeros((H, W), bool)
    assert np.isnan(auc_borji(saliency_map=saliency_map, fixations=empty))
    assert np.isnan(auc_shuffled(saliency_map=saliency_map, fixations=empty, other_fixations=fixations))
    assert np.isnan(auc_shuffled(saliency_map=saliency_map, fixations=fixations, other_fixations=empty))
    with pytest.raises(ValueError, match="one shape"):
        auc_borji(saliency_map=saliency_map, fixations=fixations[:-1])


# ---------------------------------------------------------------- information gain


def test_information_gain_matches_numpy_formula_with_duplicates_once():
    rng = np.random.default_rng(11)
    saliency_map, baseline = rng.random((2, H, W)), rng.random((H, W))
    counts = rng.integers(0, 3, (2, H, W)) * (rng.random((2, H, W)) < 0.1)  # fixation counts, some pixels twice
    eps = 2.2204e-16
    expected = []
    for s, f in zip(saliency_map, counts):
        s, b, fixated = s / s.sum(), baseline / baseline.sum(), f > 0
        expected.append(np.mean(np.log2(eps + s[fixated]) - np.log2(eps + b[fixated])))
    ours = information_gain(saliency_map=saliency_map, fixations=counts, baseline_map=baseline)
    assert ours.shape == (2,)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-4)


def test_information_gain_of_baseline_is_zero_and_better_map_positive():
    densities, fixations = _blobs(n=3, n_fix=30, seed=12)
    centre = centre_bias_map(height=H, width=W)
    for baseline in (centre, uniform_map(height=H, width=W)):
        itself = information_gain(
            saliency_map=np.broadcast_to(baseline, densities.shape), fixations=fixations, baseline_map=baseline
        )
        np.testing.assert_allclose(np.asarray(itself), 0.0, atol=1e-6)
        gain = information_gain(saliency_map=densities, fixations=fixations, baseline_map=baseline)
        assert np.all(np.asarray(gain) > 1.0)
    assert np.isnan(information_gain(saliency_map=densities[0], fixations=np.zeros((H, W)), baseline_map=centre))


def test_baselines_sum_to_one_and_centre_bias_peaks_in_the_middle():
    centre, uniform = np.asarray(centre_bias_map(height=H, width=W)), np.asarray(uniform_map(height=H, width=W))
    assert centre.sum() == pytest.approx(1.0, abs=1e-5) and uniform.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.ptp(uniform) == 0
    assert centre[H // 2, W // 2] > centre[H // 4, W // 2] > centre[0, W // 2]
    np.testing.assert_allclose(centre, centre[::-1, ::-1], rtol=1e-6)


# ---------------------------------------------------------------- evaluate_saliency and the table


def test_evaluate_saliency_keys_defaults_and_ranking():
    densities, fixations = _blobs(n=4, n_fix=30, seed=13)
    rows = {
        "teacher": evaluate_saliency(predictions=densities, densities=densities, fixations=fixations),
        "centre bias": evaluate_saliency(
            predictions=np.broadcast_to(centre_bias_map(height=H, width=W), densities.shape),
            densities=densities,
            fixations=fixations,
        ),
        "uniform": evaluate_saliency(
            predictions=np.broadcast_to(uniform_map(height=H, width=W), densities.shape),
            densities=densities,
            fixations=fixations,
        ),
    }
    for metrics in rows.values():
        assert tuple(metrics) == METRICS
        assert all(np.isfinite(v) for v in metrics.values())
    for name in ("NSS", "CC", "AUC-Judd", "AUC-Borji", "SIM"):
        assert rows["teacher"][name] > rows["centre bias"][name] > rows["uniform"][name], name
    assert rows["teacher"]["sAUC"] > max(rows["centre bias"]["sAUC"], rows["uniform"]["sAUC"]) + 0.2
    assert rows["teacher"]["KLD"] < rows["centre bias"]["KLD"]
    assert rows["centre bias"]["IG"] == pytest.approx(0.0, abs=1e-5)  # default baseline = centre bias
    others = (fixations.sum(axis=0) - fixations) > 0
    default_sauc = np.mean(auc_shuffled(saliency_map=densities, fixations=fixations, other_fixations=others))
    assert rows["teacher"]["sAUC"] == pytest.approx(default_sauc, abs=1e-12)
    single = evaluate_saliency(predictions=densities[:1], densities=densities[:1], fixations=fixations[:1])
    assert np.isnan(single["sAUC"]) and np.isfinite(single["NSS"])


def test_evaluate_saliency_skips_images_without_fixations():
    densities, fixations = _blobs(n=3, n_fix=30, seed=14)
    with_empty = fixations.copy()
    with_empty[2] = False
    kept = evaluate_saliency(
        predictions=densities[:2], densities=densities[:2], fixations=fixations[:2], other_fixations=fixations[2]
    )
    full = evaluate_saliency(
        predictions=densities, densities=densities, fixations=with_empty, other_fixations=fixations[2]
    )
    for name in ("AUC-Judd", "AUC-Borji", "sAUC", "NSS", "IG"):
        assert full[name] == pytest.approx(kept[name], abs=1e-6), name


def test_metrics_table_formats_rows():
    table = metrics_table(rows={"teacher": {"NSS": 2.01449, "CC": 0.9}, "uniform": {"NSS": 0.0, "KLD": 1.5}})
    assert table.splitlines() == [
        "| model | NSS | CC | KLD |",
        "|---|---:|---:|---:|",
        "| teacher | 2.014 | 0.900 |  |",
        "| uniform | 0.000 |  | 1.500 |",
    ]
    with pytest.raises(ValueError):
        metrics_table(rows={})
