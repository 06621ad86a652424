"""The molecule domain behind the small interface the tuner and the evaluation use."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from seqtutor.domains import Domain
from seqtutor.domains.molecule import chemistry, reward, tokens as smiles_tokens
from seqtutor.domains.molecule.config import MoleculeDataConfig, MoleculeRewardConfig
from seqtutor.statistic import COUNT, FRACTION

log = logging.getLogger(__name__)


class MoleculeDomain(Domain):
    """SMILES episodes: start from BOS (input only), end at EOS or at the episode cap; the
    task reward r_T comes at the last step. The vocabulary is the dataset's (vocab.json).
    """

    name = "molecule"
    data_config = MoleculeDataConfig
    reward_config = MoleculeRewardConfig
    dataset_description = (
        "SMILES molecules as token ids ([BOS, tokens, EOS]; vocab.json maps ids to tokens), "
        "canonicalised by RDKit, de-duplicated, split by a hash of the SMILES.")
    statistic_keys = reward.STATISTIC_KEYS
    statistic_info = reward.STATISTICS
    paper_table = reward.PAPER_TABLE_2
    details_key = "outcomes"
    details_unit = FRACTION  # of the episodes
    details_row_units = {"scoring_errors": COUNT}
    sample_suffix = ".smi"
    curve_fields = ("valid",)

    def __init__(self, reward_config, vocab: dict | None, data_dir: Path | None = None):
        if vocab is None or vocab.get("domain") != "molecule":
            raise ValueError("the molecule domain needs a molecule vocabulary (vocab.json of "
                             "a molecule prepare_data artifact)")
        self.weights = reward_config
        self.vocab = vocab
        self.codec = smiles_tokens.Codec(vocab)
        self.num_tokens = int(vocab["num_tokens"])
        self.end_token = int(vocab["eos"])
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.scorer = chemistry.MoleculeScorer(reward_config.workers)
        self.scoring_errors = 0  # molecules whose RDKit scoring raised (scored invalid)
        self._training_set = None

    def close(self) -> None:
        self.scorer.close()

    @classmethod
    def list_inputs(cls, options) -> list:
        """The SMILES files of ``prepare_data.input``, then the built-in corpus, checked."""
        from seqtutor.domains.molecule import reader
        return reader.list_inputs(options)

    @classmethod
    def corpus_reader(cls, options):
        from seqtutor.domains.molecule import reader
        return reader.ReadSmiles(options)

    @classmethod
    def input_stats(cls, options, inputs: list) -> dict:
        return {"input_files": [file.source for file in inputs],
                "lines_read": sum(file.lines for file in inputs)}

    @staticmethod
    def train_maxima(tokens) -> dict[str, int]:
        return {"max_carbon_run": smiles_tokens.longest_carbon_run(tokens)}

    @classmethod
    def vocabulary(cls, options, summary: dict) -> dict:
        """The corpus's tokens after PAD, BOS and EOS, with the training split's shortest
        length and longest carbon run (the task reward's penalties)."""
        return smiles_tokens.vocabulary(
            summary.get("tokens", []), min_length=summary.get("min_length", 0),
            max_length=summary.get("max_length", 0),
            max_carbon_run=summary.get("max_carbon_run", 0),
            episode_length_cap=options.episode_length_cap)

    @staticmethod
    def encode(vocab: dict, tokens) -> list[int]:
        """[BOS, token ids..., EOS]."""
        return _codec(tuple(vocab["tokens"]), int(vocab["eos"])).encode_tokens(tokens)

    def episode_length(self, configured: int | None) -> int:
        return int(configured or self.vocab["episode_length"])

    def priming_tokens(self, rng: np.random.Generator, count: int) -> np.ndarray:
        del rng
        return np.full(count, smiles_tokens.BOS_ID, dtype=np.int32)

    def step_mask(self, actions: np.ndarray) -> np.ndarray:
        return reward.episode_mask(actions, self.end_token)

    def _score(self, actions: np.ndarray, with_canonical: bool = True):
        strings, finished = self.codec.decode_batch(actions)
        scores = self.scorer.score(strings, with_canonical)
        if scores.errors:
            self.scoring_errors += scores.errors
            log.warning("molecule: RDKit raised on %d molecules (scored invalid; %d so far)",
                        scores.errors, self.scoring_errors)
        rewards = reward.task_rewards(finished, scores, self.weights, self.vocab)
        return strings, finished, scores, rewards

    def task_reward(self, actions: np.ndarray) -> np.ndarray:
        """[B, T] float32: r_T at each episode's last step, 0 elsewhere."""
        actions = np.asarray(actions)
        _, _, _, rewards = self._score(actions, with_canonical=False)
        out = np.zeros(actions.shape, np.float32)
        out[np.arange(len(actions)), reward.last_step(actions, self.end_token)] = rewards
        return out

    def curve_point(self, actions: np.ndarray) -> dict[str, float]:
        """Mean r_T and the fraction of valid molecules (ended by EOS, parsed by RDKit)."""
        _, finished, scores, rewards = self._score(np.asarray(actions), with_canonical=False)
        return {"mean_task_reward": float(rewards.mean()),
                "valid": float(reward.valid_molecules(finished, scores).mean())}

    def training_set(self) -> set[str] | None:
        """Canonical SMILES of the train split (for novelty), or None without a dataset."""
        if self._training_set is None and self.data_dir is not None:
            from seqtutor import tfrecords
            self._training_set = set(tfrecords.read_sources(self.data_dir, "train"))
        return self._training_set

    def evaluate(self, actions: np.ndarray, log_prior: np.ndarray) -> tuple[dict, dict]:
        """(the Table 2 statistics, the fractions of episodes by outcome) of N episodes."""
        strings, finished, scores, rewards = self._score(actions)
        valid = reward.valid_molecules(finished, scores)
        canonical = [c for c, ok in zip(scores.canonical, valid) if ok]
        log_prior = np.asarray(log_prior)
        stats = reward.statistics(canonical, scores, valid, rewards, log_prior,
                                  self.step_mask(actions)[:, :log_prior.shape[1]],
                                  self.training_set())
        n = max(1, len(strings))
        rejected = ~valid & finished
        outcomes = {"valid": float(valid.sum() / n),
                    "invalid_smiles": float(rejected.sum() / n),
                    "cut_by_episode_cap": float((~finished).sum() / n),
                    "scoring_errors": int(scores.errors)}
        # Why the finished strings failed (they add up to invalid_smiles): the errors a
        # tuned policy has still to unlearn.
        reasons = [chemistry.invalid_reason(s) for s, r in zip(strings, rejected) if r]
        for reason in chemistry.INVALID_REASONS:
            outcomes[f"invalid_{reason}"] = reasons.count(reason) / n
        return stats, outcomes

    def data_episodes(self, records, length: int, limit: int):
        """(compositions, observations, actions) [N, T] of eval-split molecules: the data
        row is scored like a model's samples."""
        actions, observations = [], []
        for record in records:
            tokens = np.asarray(record["tokens"])[:length + 1]
            row_obs = np.full(length, smiles_tokens.PAD_ID, np.int32)
            row_act = np.full(length, smiles_tokens.PAD_ID, np.int32)
            row_obs[:len(tokens) - 1] = tokens[:-1]
            row_act[:len(tokens) - 1] = tokens[1:]
            observations.append(row_obs)
            actions.append(row_act)
            if len(actions) >= limit:
                break
        if not actions:
            raise ValueError("the eval split holds no molecule")
        return np.array(actions), np.array(observations), np.array(actions)

    def write_samples(self, path_stem: Path, actions: np.ndarray) -> Path:
        """``<stem>.smi``: one generated string per line, invalid ones included."""
        strings, _ = self.codec.decode_batch(actions)
        path = Path(f"{path_stem}{self.sample_suffix}")
        path.write_text("".join(s.replace("\n", " ") + "\n" for s in strings))
        return path

    def export(self, out: Path, model: str, actions: np.ndarray) -> list[Path]:
        """``<model>.smi``: one generated string per line, invalid ones included."""
        return [self.write_samples(Path(out) / model, actions)]

    def samples_html(self, name: str, actions: np.ndarray) -> str:
        from seqtutor.domains.molecule import render
        strings, finished = self.codec.decode_batch(actions)
        return render.samples_html(name, [s for s, f in zip(strings, finished) if f])


@functools.lru_cache(maxsize=4)
def _codec(id_to_token: tuple[str, ...], eos: int) -> smiles_tokens.Codec:
    """One codec per vocabulary for the Beam job's many ``encode`` calls."""
    return smiles_tokens.Codec({"tokens": list(id_to_token), "eos": eos})
