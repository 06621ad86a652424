"""The melody domain behind the small interface the tuner and the evaluation use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqtutor.domains import Domain
from seqtutor.domains.melody import encoding, rules, statistics
from seqtutor.domains.melody.config import MelodyDataConfig, MelodyRewardConfig


class MelodyDomain(Domain):
    """Task reward and episode settings for melodies (docs/melody.md).

    Episodes start from a priming token drawn uniformly from all 38 classes (the reference
    never draws 37), which is input only, not part of the composition. Every episode has the
    configured length (no end token).
    """

    name = "melody"
    data_config = MelodyDataConfig
    reward_config = MelodyRewardConfig
    dataset_description = (
        "Monophonic melodies in the Sequence Tutor encoding (38 tokens, 16th-note steps, "
        "C major / A minor, MIDI 48..83).")
    num_tokens = encoding.NUM_TOKENS
    end_token = None
    statistic_keys = statistics.STATISTIC_KEYS
    statistic_info = statistics.STATISTICS
    paper_table = statistics.PAPER_TABLE_1
    details_key = "intervals_per_composition"
    sample_suffix = ".npz"

    def __init__(self, reward_config, vocab: dict | None = None, data_dir: Path | None = None):
        del vocab, data_dir  # the melody vocabulary is fixed
        self.binding = reward_config.name_binding
        self.weights = dict(reward_config.weights)

    @classmethod
    def list_inputs(cls, options) -> list:
        """MIDI files of ``prepare_data.input``, then the built-in corpus's tunes."""
        from seqtutor.domains.melody import sources
        return sources.list_items(options)

    @classmethod
    def corpus_reader(cls, options):
        from seqtutor.domains.melody import sources
        return sources.corpus_reader(options)

    @classmethod
    def vocabulary(cls, options, summary: dict) -> dict:
        del summary  # the encoding is fixed
        return encoding.vocabulary(options.sequence_length)

    @staticmethod
    def records(options, ids) -> list[tuple[int, list[int]]]:
        """Consecutive non-overlapping pieces of ``sequence_length`` steps; the first starts at
        the melody's first step, so the model sees tune openings from the zero state; a last
        piece shorter than that is dropped."""
        length = options.sequence_length
        return [(start, ids[start:start + length])
                for start in range(0, len(ids) - length + 1, length)]

    def metrics_extras(self) -> dict:
        """Which tokens the rules' names were bound to, and any reward weights (the report
        shows them)."""
        extras = {"name_binding": self.binding}
        if self.weights:
            extras["reward_weights"] = self.weights
        return extras

    def episode_length(self, configured: int | None) -> int:
        return int(configured or 32)

    def priming_tokens(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.integers(0, self.num_tokens, size=count, dtype=np.int32)

    def step_mask(self, actions: np.ndarray) -> np.ndarray:
        return np.ones(np.shape(actions), dtype=bool)

    def task_reward(self, compositions: np.ndarray) -> np.ndarray:
        """r_T of every step, [B, T] float32 (the composition is the episode's actions)."""
        return rules.task_reward(compositions, self.binding, self.weights).astype(np.float32)

    def statistics(self, compositions: np.ndarray, log_prior: np.ndarray) -> dict[str, float]:
        """The rule statistics of docs/melody.md section 4 (keys: statistics.STATISTIC_KEYS)."""
        return statistics.rule_statistics(compositions, log_prior, self.binding, self.weights)

    def interval_counts(self, compositions: np.ndarray) -> dict[str, float]:
        """Mean interval counts per composition (octaves, sevenths, ..., rests)."""
        return statistics.interval_counts(rules.detect(compositions, self.binding))

    def evaluate(self, compositions: np.ndarray, log_prior: np.ndarray) -> tuple[dict, dict]:
        """(the rule statistics, the interval counts per composition)."""
        return self.statistics(compositions, log_prior), self.interval_counts(compositions)

    def data_episodes(self, records, length: int, limit: int):
        """(compositions [N, L], observations [N, L-1], actions [N, L-1]) from eval records cut
        into non-overlapping L-step pieces. The prior was trained from each record's first
        token, so it scores every later token of a piece given the ones before it."""
        pieces = []
        for record in records:
            tokens = np.asarray(record["tokens"])
            for start in range(0, len(tokens) - length + 1, length):
                pieces.append(tokens[start:start + length])
                if len(pieces) >= limit:
                    break
            if len(pieces) >= limit:
                break
        if not pieces:
            raise ValueError(f"no eval record is {length} steps long or longer")
        pieces = np.array(pieces)
        return pieces, pieces[:, :-1], pieces[:, 1:]

    def write_samples(self, path_stem: Path, compositions: np.ndarray) -> Path:
        """``<stem>.npz`` with the int array ``tokens`` [N, L]."""
        path = Path(f"{path_stem}{self.sample_suffix}")
        np.savez_compressed(path, tokens=compositions)
        return path

    def export(self, out: Path, model: str, compositions: np.ndarray) -> list[Path]:
        """One MIDI file per composition (pitch = token + 46, 80 quarter notes per minute)."""
        paths = []
        for index, melody in enumerate(compositions):
            path = Path(out) / f"{model}_{index:05d}.mid"
            encoding.write_midi(melody, path)
            paths.append(path)
        return paths

    def samples_html(self, name: str, compositions: np.ndarray) -> str:
        from seqtutor.domains.melody import render
        return render.samples_html(name, np.asarray(compositions)[:3])
