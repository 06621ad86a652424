"""Rule statistics of docs/melody.md section 4 (the paper's Table 1), vectorised over N
compositions with the same detectors as the reward (:func:`domains.melody.rules.detect`).

Fractions are fractions (not percent). ``mean_log_prior`` and ``mean_task_reward`` come from the
caller's log-probabilities and :func:`rules.task_reward`.
"""

from __future__ import annotations

import numpy as np

from seqtutor.domains.melody import rules
from seqtutor.domains.melody.encoding import TONIC
from seqtutor.statistic import COMMON, FRACTION, HIGHER, LOWER, VALUE, ZERO, Statistic

# Each statistic, in the paper's order, as the report shows and ranks it: the first block
# should fall, the second rise; rule 4 penalises |autocorrelation|, so closer to 0 is better.
STATISTICS: dict[str, Statistic] = {
    "repeated_notes": Statistic("notes excessively repeated", FRACTION, LOWER),
    "autocorr_lag1": Statistic("mean autocorrelation, lag 1", VALUE, ZERO),
    "autocorr_lag2": Statistic("mean autocorrelation, lag 2", VALUE, ZERO),
    "autocorr_lag3": Statistic("mean autocorrelation, lag 3", VALUE, ZERO),
    "notes_not_in_key": Statistic("notes not in key", FRACTION, LOWER),
    "starts_with_tonic": Statistic("starts with tonic", FRACTION, HIGHER),
    "leaps_resolved": Statistic("leaps resolved", FRACTION, HIGHER),
    "unique_max_note": Statistic("unique max note", FRACTION, HIGHER),
    "unique_min_note": Statistic("unique min note", FRACTION, HIGHER),
    "notes_in_motif": Statistic("notes in motif", FRACTION, HIGHER),
    "notes_in_repeated_motif": Statistic("notes in repeated motif", FRACTION, HIGHER),
    **COMMON,
}
STATISTIC_KEYS = tuple(STATISTICS)
# Paper Table 1 (Jaques et al. 2017), as fractions: MLE, Q, Psi, G.
PAPER_TABLE_1 = {
    "source": "Jaques et al. 2017, Table 1",
    "columns": ("MLE", "Q", "Psi", "G"),
    "rows": {
        "repeated_notes": (0.633, 0.0, 0.0002, 0.0003),
        "autocorr_lag1": (-0.16, -0.11, -0.10, 0.55),
        "autocorr_lag2": (0.14, 0.03, -0.01, 0.31),
        "autocorr_lag3": (-0.13, 0.03, 0.01, 0.17),
        "notes_not_in_key": (0.001, 0.010, 0.006, 0.287),
        "starts_with_tonic": (0.009, 0.288, 0.287, 0.0),
        "leaps_resolved": (0.772, 0.911, 0.900, 0.522),
        "unique_max_note": (0.647, 0.564, 0.594, 0.371),
        "unique_min_note": (0.494, 0.519, 0.583, 0.565),
        "notes_in_motif": (0.059, 0.757, 0.738, 0.693),
        "notes_in_repeated_motif": (0.00007, 0.0011, 0.0009, 0.0001),
    },
}


def autocorrelations(tokens: np.ndarray, lag: int) -> np.ndarray:
    """Signed rho_k of each whole composition [N]; NaN where the composition is constant."""
    x = np.asarray(tokens, dtype=np.float64)
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    variance = x.var(axis=1)
    products = np.sum(centred[:, :n - lag] * centred[:, lag:], axis=1) if n > lag else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(variance > 0, products / n / variance, np.nan)


def interval_counts(detections: rules.Detections) -> dict[str, float]:
    """Mean count per composition of each interval class (both in-key thirds and fifths count;
    the reference's in-key counter never counted thirds)."""
    code = detections.interval_code
    classes = {
        "octave_jumps": code == 12,
        "sevenths": np.isin(code, (10, 11)),
        "fifths": (code == 7) | (code == rules.CODE_FIFTH),
        "sixths": np.isin(code, (8, 9)),
        "fourths": code == 5,
        "seconds": np.isin(code, (1, 2)),
        "thirds": np.isin(code, (3, 4)) | (code == rules.CODE_THIRD),
        "rests": np.isin(code, (rules.CODE_REST, rules.CODE_REST_CG)),
        "in_key_thirds": code == rules.CODE_THIRD,
        "in_key_fifths": code == rules.CODE_FIFTH,
    }
    return {name: float(mask.sum(axis=1).mean()) for name, mask in classes.items()}


def rule_statistics(tokens, log_prior=None, binding: str = "data",
                    weights: dict[str, float] | None = None) -> dict[str, float]:
    """The statistics of N compositions ``tokens`` [N, L].

    Args:
      tokens: int array [N, L] of compositions.
      log_prior: optional [N, L] log p(a_t|s_t) under the Reward RNN (NaN reported without it).
      binding: the NO_EVENT/NOTE_OFF name binding of the rules ("data" or "reference").
      weights: the reward terms' weights (``reward.weights``) for ``mean_task_reward``.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise ValueError(f"tokens must be a non-empty [N, L] array, got shape {tokens.shape}")
    detections = rules.detect(tokens, binding)
    steps = tokens.size
    resolved = np.count_nonzero(detections.leap == rules.LEAP_RESOLVED)
    doubled = np.count_nonzero(detections.leap == rules.LEAP_DOUBLED)
    stats = {
        "repeated_notes": np.count_nonzero(detections.repeated) / steps,
        "notes_not_in_key": np.count_nonzero(detections.out_of_key) / steps,
        "starts_with_tonic": float(np.mean(tokens[:, 0] == TONIC)),
        "leaps_resolved": resolved / (resolved + doubled) if resolved + doubled else float("nan"),
        "unique_max_note": float(np.mean(detections.unique_max)),
        "unique_min_note": float(np.mean(detections.unique_min)),
        "notes_in_motif": np.count_nonzero(detections.motif_size > 0) / steps,
        "notes_in_repeated_motif": np.count_nonzero(detections.repeated_motif) / steps,
        "mean_log_prior": float(np.mean(log_prior)) if log_prior is not None else float("nan"),
        "mean_task_reward": float(
            sum(rules.reward_terms(detections, weights).values()).sum(axis=1).mean()),
    }
    for lag in (1, 2, 3):
        rho = autocorrelations(tokens, lag)
        stats[f"autocorr_lag{lag}"] = float(np.nanmean(rho)) if np.any(~np.isnan(rho)) \
            else float("nan")
    return {key: float(stats[key]) for key in STATISTIC_KEYS}
