"""The melody domain behind the small interface the tuner and the evaluation use."""

from __future__ import annotations

import numpy as np

from domains.melody import encoding, rules, statistics


class MelodyDomain:
    """Task reward and episode settings for melodies (spec/melody.md).

    Episodes start from a priming token drawn uniformly from all 38 classes (the reference
    never draws 37), which is input only, not part of the composition.
    """

    name = "melody"
    num_tokens = encoding.NUM_TOKENS

    def __init__(self, reward_config):
        self.binding = reward_config.name_binding

    def priming_tokens(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.integers(0, self.num_tokens, size=count, dtype=np.int32)

    def task_reward(self, compositions: np.ndarray) -> np.ndarray:
        """r_T of every step, [B, T] float32 (the composition is the episode's actions)."""
        return rules.task_reward(compositions, self.binding).astype(np.float32)

    def statistics(self, compositions: np.ndarray, log_prior: np.ndarray) -> dict[str, float]:
        """The rule statistics of spec/melody.md section 4 (keys of ARCHITECTURE.md)."""
        return statistics.rule_statistics(compositions, log_prior, self.binding)

    def interval_counts(self, compositions: np.ndarray) -> dict[str, float]:
        """Mean interval counts per composition (octaves, sevenths, ..., rests)."""
        return statistics.interval_counts(rules.detect(compositions, self.binding))
