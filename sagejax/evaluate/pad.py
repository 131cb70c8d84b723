"""Presentation-attack detection error rates per ISO/IEC 30107-3: APCER, BPCER, APCER at a BPCER, EER.

Conventions: a higher score means "more likely an attack", and a sample is classified as an attack
when score ≥ threshold (a score equal to the threshold counts as an attack). Scores must be finite.
Thresholds are searched over the observed scores plus +inf: every t in (next lower observed score, s] gives
the same rates as the observed score s, so the smallest admissible observed score is the least strict threshold.
"""

import dataclasses
from typing import NamedTuple

import numpy as np

from sagejax.evaluate import _checks

# The attack type given to every attack when no `attack_types` are passed.
SINGLE_TYPE = "attack"


@dataclasses.dataclass(frozen=True)
class PADRates:
    """Rates at one threshold: `apcer` = max over attack types (ISO/IEC 30107-3), `apcer_pooled` = over all attacks."""

    apcer: float
    bpcer: float
    apcer_pooled: float
    apcer_per_type: dict
    threshold: float


class EqualErrorRate(NamedTuple):
    """Pooled APCER = BPCER on the interpolated error curve, and the threshold where APCER first reaches BPCER."""

    eer: float
    threshold: float


def _inputs(scores, is_attack, attack_types) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (scores, is_attack, attack type of each sample); bona fide entries of attack_types are ignored."""
    scores = _checks.scores_1d(scores, allow_inf=False)
    is_attack = _checks.binary_1d(is_attack, "is_attack", scores.size)
    if is_attack.all():
        raise ValueError("no bona fide samples (is_attack is all True): BPCER is undefined")
    if not is_attack.any():
        raise ValueError("no attack samples (is_attack is all False): APCER is undefined")
    if attack_types is None:
        return scores, is_attack, np.full(scores.shape, SINGLE_TYPE, dtype=object)
    types = np.asarray(attack_types, dtype=object)
    if types.shape != scores.shape:
        raise ValueError(f"shape mismatch: attack_types has shape {types.shape}, scores have shape {scores.shape}")
    return scores, is_attack, types


def _rates(scores: np.ndarray, is_attack: np.ndarray, types: np.ndarray, threshold: float) -> PADRates:
    """The rates at `threshold` on already validated inputs."""
    flagged = scores >= threshold
    missed = ~flagged & is_attack
    per_type = {
        t: float(missed[is_attack & (types == t)].mean()) for t in sorted(set(types[is_attack].tolist()), key=str)
    }
    return PADRates(
        apcer=max(per_type.values()),
        bpcer=float(flagged[~is_attack].mean()),
        apcer_pooled=float(missed[is_attack].mean()),
        apcer_per_type=per_type,
        threshold=float(threshold),
    )


def apcer_bpcer(*, scores, is_attack, threshold: float, attack_types=None) -> PADRates:
    """BPCER = share of bona fide flagged (score ≥ threshold); APCER per type = share of its attacks not flagged.

    `attack_types` (N,) names each sample's attack type (bona fide entries ignored); None = one type.
    """
    scores, is_attack, types = _inputs(scores, is_attack, attack_types)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    return _rates(scores, is_attack, types, threshold)


def _candidates(scores: np.ndarray) -> np.ndarray:
    """Every distinct observed score plus +inf (flags nothing): between consecutive ones the rates are constant."""
    return np.append(np.unique(scores), np.inf)


def apcer_at_bpcer(*, scores, is_attack, bpcer_target: float = 0.01, attack_types=None) -> PADRates:
    """Rates at the smallest observed score (or +inf) with BPCER ≤ target: the least strict such threshold.

    Ties are flagged as a group and BPCER moves in steps of 1/n_bona_fide, so the achieved `bpcer` may be < target.
    """
    if not 0.0 <= bpcer_target <= 1.0:
        raise ValueError(f"bpcer_target must lie in [0, 1], got {bpcer_target}")
    scores, is_attack, types = _inputs(scores, is_attack, attack_types)
    candidates = _candidates(scores)
    bona = np.sort(scores[~is_attack])
    bpcer = (bona.size - np.searchsorted(bona, candidates, side="left")) / bona.size
    # BPCER does not increase with the threshold, and is 0 at +inf, so the first admissible one is the least strict.
    threshold = candidates[np.argmax(bpcer <= bpcer_target)]
    return _rates(scores, is_attack, types, threshold)


def equal_error_rate(*, scores, is_attack) -> EqualErrorRate:
    """Pooled APCER = BPCER on the linearly interpolated ROC (the usual roc_curve recipe), between the two
    operating points around the crossing; the threshold is the smallest observed score (or +inf) with APCER ≥ BPCER.
    """
    scores, is_attack, _ = _inputs(scores, is_attack, None)
    candidates = _candidates(scores)
    bona = np.sort(scores[~is_attack])
    attacks = np.sort(scores[is_attack])
    bpcer = (bona.size - np.searchsorted(bona, candidates, side="left")) / bona.size
    apcer = np.searchsorted(attacks, candidates, side="left") / attacks.size
    gap = apcer - bpcer  # non-decreasing: −1 at the smallest score, +1 at +inf
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0:
        return EqualErrorRate(eer=float(apcer[i]), threshold=float(candidates[i]))
    alpha = -gap[i - 1] / (gap[i] - gap[i - 1])
    eer = apcer[i - 1] + alpha * (apcer[i] - apcer[i - 1])
    return EqualErrorRate(eer=float(eer), threshold=float(candidates[i]))
