"""The molecule task reward r_T and the Table 2 statistics (docs/molecule.md sections 2-3).

r_T is given once, at the episode's last step (its EOS, or the cap); every other step gets 0.
"""

from __future__ import annotations

import math

import numpy as np

from seqtutor.domains.molecule import chemistry
from seqtutor.statistic import COMMON, FRACTION, HIGHER, VALUE, Statistic

# Each statistic as the report shows and ranks it (the SA and ring penalties are negated, so
# higher is better for every one).
STATISTICS: dict[str, Statistic] = {
    "valid": Statistic("valid", FRACTION, HIGHER),
    "mean_logp": Statistic("mean logP", VALUE, HIGHER),
    "mean_qed": Statistic("mean QED", VALUE, HIGHER),
    "mean_sa_penalty": Statistic("mean SA penalty (-SA)", VALUE, HIGHER),
    "mean_ring_penalty": Statistic("mean ring penalty", VALUE, HIGHER),
    "unique_at_1k": Statistic("unique@1k", FRACTION, HIGHER),
    "unique_at_10k": Statistic("unique@10k", FRACTION, HIGHER),
    "novelty": Statistic("novelty", FRACTION, HIGHER),
    "int_div1": Statistic("IntDiv1", VALUE, HIGHER),
    **COMMON,
}
STATISTIC_KEYS = tuple(STATISTICS)
# Paper Table 2 (Jaques et al. 2017): MLE and Sequence Tutor (Psi); valid as a fraction.
PAPER_TABLE_2 = {
    "source": "Jaques et al. 2017, Table 2",
    "columns": ("MLE", "Psi"),
    "rows": {"valid": (0.303, 0.358), "mean_logp": (2.07, 4.21), "mean_qed": (0.678, 0.417),
             "mean_sa_penalty": (-2.77, -1.79), "mean_ring_penalty": (-0.096, -0.001)},
}
INT_DIV_SAMPLE = 1000  # IntDiv1 over this many valid molecules (all pairs: O(n^2))


def episode_mask(actions: np.ndarray, eos: int) -> np.ndarray:
    """[N, T] bool: the steps of each episode, up to and including its first EOS."""
    is_end = np.asarray(actions) == eos
    ended_before = np.cumsum(is_end, axis=1) - is_end
    return ended_before == 0


def last_step(actions: np.ndarray, eos: int) -> np.ndarray:
    """[N] index of each episode's last step (its first EOS, or T - 1 when cut by the cap)."""
    is_end = np.asarray(actions) == eos
    return np.where(is_end.any(axis=1), is_end.argmax(axis=1), is_end.shape[1] - 1)


def valid_molecules(finished: np.ndarray, scores: chemistry.Scores) -> np.ndarray:
    """[N] bool: RDKit parsed the string and EOS ended it (a string cut by the episode cap is
    invalid whatever it parses to)."""
    return scores.valid & np.asarray(finished, bool)


def task_rewards(finished: np.ndarray, scores: chemistry.Scores, weights, vocab: dict
                 ) -> np.ndarray:
    """r_T per molecule [N]; only a valid molecule (:func:`valid_molecules`) earns the
    chemistry terms.

    Args:
      finished: [N] whether EOS ended the episode.
      scores: RDKit scores of the decoded strings (tokens before EOS).
      weights: a MoleculeRewardConfig.
      vocab: the dataset's vocabulary (min_length, max_carbon_run).
    """
    valid = valid_molecules(finished, scores)
    chemistry_terms = (weights.valid + weights.logp * scores.logp + weights.qed * scores.qed
                       - weights.sa * scores.sa + weights.ring * scores.ring_penalty)
    reward = np.where(valid, np.nan_to_num(chemistry_terms), 0.0)
    reward -= weights.too_short * (scores.lengths < int(vocab["min_length"]))
    reward -= weights.carbon_run * (scores.carbon_runs > int(vocab["max_carbon_run"]))
    reward -= weights.unfinished * ~np.asarray(finished, bool)
    return reward.astype(np.float32)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def unique_at(canonical: list[str], k: int) -> float:
    """Unique canonical SMILES among the first k valid ones (MOSES unique@k); NaN if none."""
    first = canonical[:k]
    return len(set(first)) / len(first) if first else math.nan


def statistics(canonical_valid: list[str], scores: chemistry.Scores, valid: np.ndarray,
               rewards: np.ndarray, log_prior: np.ndarray, mask: np.ndarray,
               training_set: set[str] | None) -> dict[str, float]:
    """The statistics of docs/molecule.md section 3 (keys: STATISTIC_KEYS) over N molecules.

    Chemistry means are over the valid molecules; ``mean_log_prior`` is per token over the
    episodes' steps (EOS included); novelty needs the training set (NaN without it).
    """
    unique = set(canonical_valid)
    novelty = (len(unique - training_set) / len(unique)) if unique and training_set \
        is not None else math.nan
    return {
        "valid": float(np.mean(valid)) if len(valid) else math.nan,
        "mean_logp": _mean(scores.logp[valid]),
        "mean_qed": _mean(scores.qed[valid]),
        "mean_sa_penalty": -_mean(scores.sa[valid]),
        "mean_ring_penalty": _mean(scores.ring_penalty[valid]),
        "unique_at_1k": unique_at(canonical_valid, 1000),
        "unique_at_10k": unique_at(canonical_valid, 10000),
        "novelty": novelty,
        "int_div1": chemistry.internal_diversity(canonical_valid[:INT_DIV_SAMPLE]),
        "mean_log_prior": float(np.sum(log_prior * mask) / max(1, np.sum(mask))),
        "mean_task_reward": _mean(rewards),
    }
