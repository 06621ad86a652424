"""SMILES tokens and the molecule vocabulary (docs/molecule.md section 1).

Tokens: a bracket atom (``[nH]``, ``[C@@H]``, ``[O-]``) is one token, ``Cl`` and ``Br`` are one
token each, a two-digit ring closure (``%10``) is one token, every other character is a token.
Ids: 0 PAD, 1 BOS, 2 EOS, then the corpus's tokens in sorted order. A record is
``[BOS, t_1, ..., t_n, EOS]``; an episode starts from BOS (input only) and its actions are
``t_1 .. t_n, EOS``.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, BOS, EOS)
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
CARBON = "C"  # aliphatic carbon: the token whose runs the carbon-run penalty counts

_TOKEN = re.compile(r"\[[^\[\]]+\]|Br|Cl|%\d{2}|.")


def tokenize(smiles: str) -> list[str]:
    """SMILES -> tokens; ``"".join(tokenize(s)) == s`` for every string."""
    return _TOKEN.findall(smiles)


def longest_carbon_run(tokens: Sequence[str]) -> int:
    """The longest run of consecutive aliphatic ``C`` tokens."""
    longest = run = 0
    for token in tokens:
        run = run + 1 if token == CARBON else 0
        longest = max(longest, run)
    return longest


def vocabulary(tokens: Iterable[str], *, min_length: int, max_length: int,
               max_carbon_run: int, episode_length_cap: int = 120) -> dict:
    """vocab.json for a corpus whose distinct tokens are ``tokens``.

    ``min_length`` / ``max_carbon_run`` are the training data's shortest sequence and longest
    carbon run (the task reward's penalties use them); ``max_length`` its longest sequence.
    """
    id_to_token = list(SPECIAL_TOKENS) + sorted(set(tokens) - set(SPECIAL_TOKENS))
    return {
        "domain": "molecule",
        "num_tokens": len(id_to_token),
        "tokens": id_to_token,
        "pad": PAD_ID, "bos": BOS_ID, "eos": EOS_ID,
        "min_length": int(min_length),
        "max_length": int(max_length),
        "max_carbon_run": int(max_carbon_run),
        # Actions per episode, EOS included: the longest molecule of either split fits.
        "episode_length": int(min(max_length, episode_length_cap - 1) + 1),
    }


class Codec:
    """Token ids <-> SMILES for one vocabulary."""

    def __init__(self, vocab: dict):
        self.id_to_token = list(vocab["tokens"])
        self.token_to_id = {token: i for i, token in enumerate(self.id_to_token)}
        self.eos = int(vocab["eos"])

    def encode(self, smiles: str) -> list[int]:
        """[BOS, tokens..., EOS]; raises KeyError for a token outside the vocabulary."""
        return self.encode_tokens(tokenize(smiles))

    def encode_tokens(self, tokens: Sequence[str]) -> list[int]:
        """[BOS, ids of ``tokens``..., EOS]; raises KeyError for a token outside the vocabulary."""
        return [BOS_ID] + [self.token_to_id[t] for t in tokens] + [EOS_ID]

    def decode(self, actions: Sequence[int]) -> tuple[str, bool]:
        """An episode's actions -> (SMILES before the first EOS, whether an EOS ended it).

        Special tokens before the EOS (a sampled PAD or BOS) are kept as their names, so the
        string does not parse and the molecule counts as invalid.
        """
        actions = np.asarray(actions)
        ends = np.flatnonzero(actions == self.eos)
        finished = len(ends) > 0
        body = actions[:ends[0]] if finished else actions
        return "".join(self.id_to_token[int(i)] for i in body), finished

    def decode_batch(self, actions: np.ndarray) -> tuple[list[str], np.ndarray]:
        """[N, T] actions -> (N strings, [N] bool finished)."""
        decoded = [self.decode(row) for row in np.asarray(actions)]
        return [s for s, _ in decoded], np.array([f for _, f in decoded], dtype=bool)
