"""A third domain that lives only in the tests: lines of digits, rewarded for ascending steps.

It is what a user's domain is: one class, its option types and a corpus reader, found by the
import path ``tests.toy_domain:DigitsDomain`` in a config (or by an entry point), with no edit
of the seqtutor package.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from pydantic import Field

from seqtutor.config import DEFAULT_BEAM_ARGS, Options
from seqtutor.corpus import DroppedInput
from seqtutor.domains import Domain
from seqtutor.readers import ReadSequences

NUM_DIGITS = 10


class NotDigitsError(DroppedInput):
    reason = "not_digits"


class TooShortError(DroppedInput):
    reason = "too_short"


class DigitsDataConfig(Options):
    """prepare_data for digits: text files, one sequence of digits per line."""

    input: list[str] = Field(default_factory=list, description="Text files or directories.")
    sequence_length: int = Field(8, ge=2, description="Digits per record.")
    eval_fraction: float = Field(0.25, gt=0, lt=1, description="Fraction in the eval split.")
    num_shards: int = Field(1, ge=1, description="TFRecord shards per split.")
    beam_args: list[str] = Field(default_factory=lambda: list(DEFAULT_BEAM_ARGS),
                                 description="Beam pipeline options.")


class DigitsRewardConfig(Options):
    """The digits' task reward."""

    ascending: float = Field(1.0, description="Reward of a digit one above the one before.")


def read_digit_lines(path: str, length: int):
    """Every line of ``path`` cut into records of ``length`` digits; a bad line is dropped."""
    for number, line in enumerate(Path(path).read_text().splitlines()):
        source, line = f"{path}:{number + 1}", line.strip()
        if not line:
            continue
        if not line.isdigit():
            yield source, NotDigitsError(f"{line[:20]!r} is not a line of digits")
        elif len(line) < length:
            yield source, TooShortError(f"{len(line)} digits, fewer than {length}")
        else:
            for start in range(0, len(line) - length + 1, length):
                yield f"{source}@{start}", [int(d) for d in line[start:start + length]]


class DigitsDomain(Domain):
    """Sequences of digits; r_T of a step is ``ascending`` where the digit is one above the
    previous one. Fixed-length episodes primed by a uniform digit."""

    name = "digits"
    data_config = DigitsDataConfig
    reward_config = DigitsRewardConfig
    input_suffixes = (".txt",)
    num_tokens = NUM_DIGITS
    end_token = None
    statistic_keys = ("ascending_steps", "mean_task_reward", "mean_log_prior")
    details_key = "digit_frequencies"
    sample_suffix = ".npz"

    def __init__(self, reward_config, vocab: dict | None = None, data_dir=None):
        del vocab, data_dir
        self.weight = reward_config.ascending

    @staticmethod
    def corpus_reader(options):
        return ReadSequences(functools.partial(read_digit_lines,
                                               length=options.sequence_length))

    @staticmethod
    def vocabulary(options, summary: dict) -> dict:
        return {"domain": "digits", "num_tokens": NUM_DIGITS,
                "sequence_length": options.sequence_length}

    def episode_length(self, configured: int | None) -> int:
        return int(configured or 8)

    def priming_tokens(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.integers(0, NUM_DIGITS, size=count, dtype=np.int32)

    def step_mask(self, actions: np.ndarray) -> np.ndarray:
        return np.ones(np.shape(actions), dtype=bool)

    def task_reward(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        reward = np.zeros(actions.shape, np.float32)
        reward[:, 1:] = self.weight * (actions[:, 1:] == actions[:, :-1] + 1)
        return reward

    def evaluate(self, actions: np.ndarray, log_prior: np.ndarray) -> tuple[dict, dict]:
        actions = np.asarray(actions)
        stats = {"ascending_steps": float(np.mean(actions[:, 1:] == actions[:, :-1] + 1)),
                 "mean_task_reward": float(self.task_reward(actions).sum(axis=1).mean()),
                 "mean_log_prior": float(np.mean(log_prior))}
        counts = np.bincount(actions.ravel(), minlength=NUM_DIGITS) / max(1, actions.size)
        return stats, {str(digit): float(share) for digit, share in enumerate(counts)}

    def data_episodes(self, records, length: int, limit: int):
        pieces = [np.asarray(r["tokens"])[:length] for r in records
                  if len(r["tokens"]) >= length][:limit]
        if not pieces:
            raise ValueError(f"no eval record is {length} digits long")
        pieces = np.array(pieces)
        return pieces, pieces[:, :-1], pieces[:, 1:]

    def write_samples(self, path_stem: Path, actions: np.ndarray) -> Path:
        path = Path(f"{path_stem}{self.sample_suffix}")
        np.savez_compressed(path, tokens=actions)
        return path

    def export(self, out: Path, model: str, actions: np.ndarray) -> list[Path]:
        path = Path(out) / f"{model}.txt"
        path.write_text("".join("".join(map(str, row)) + "\n" for row in actions))
        return [path]

    def samples_html(self, name: str, actions: np.ndarray) -> str:
        return "<pre>" + "\n".join("".join(map(str, row)) for row in actions) + "</pre>"
