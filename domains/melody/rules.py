"""The music-theory reward r_T of docs/melody.md section 2, vectorised over a batch.

``detect(tokens)`` runs every rule's detector on a whole batch of compositions [B, L] at once
and returns per-step arrays; ``reward_terms`` turns them into the nine reward terms, and the
rule statistics of section 4 count the same arrays. Tested equal to the step-at-a-time
reference in :mod:`domains.melody.rules_reference`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from seqtutor.domains.melody import rules_reference as ref
from seqtutor.domains.melody.encoding import C_NOTES, E_NOTES, G_NOTES, IN_KEY_TOKENS, NUM_TOKENS, TONIC

# Interval codes as integers: semitone counts 0..36 as themselves, named codes above them.
CODE_HOLD, CODE_HOLD_CG, CODE_REST, CODE_REST_CG, CODE_THIRD, CODE_FIFTH = 101, 102, 103, 104, \
    105, 106
_NAMED_CODES = {ref.HOLD: CODE_HOLD, ref.HOLD_AFTER_C_OR_G: CODE_HOLD_CG, ref.REST: CODE_REST,
                ref.REST_AFTER_C_OR_G: CODE_REST_CG, ref.IN_KEY_THIRD: CODE_THIRD,
                ref.IN_KEY_FIFTH: CODE_FIFTH}
_INTERVAL_TABLE = np.full(110, ref.LARGE_INTERVAL_REWARD)
for _code, _value in ref.INTERVAL_REWARD.items():
    _INTERVAL_TABLE[_NAMED_CODES.get(_code, _code)] = _value
# Semitone counts 13..36 keep LARGE_INTERVAL_REWARD; unused slots 37..100 are never indexed.
LEAP_NONE, LEAP_RESOLVED, LEAP_DOUBLED = 0, 1, 2

_IN_KEY = np.zeros(NUM_TOKENS, dtype=bool)
_IN_KEY[list(IN_KEY_TOKENS)] = True
_C_OR_G = np.zeros(NUM_TOKENS, dtype=bool)
_C_OR_G[list(C_NOTES + G_NOTES)] = True
_C_OR_E = np.zeros(NUM_TOKENS, dtype=bool)
_C_OR_E[list(C_NOTES + E_NOTES)] = True


@dataclasses.dataclass
class Detections:
    """Per-step detector outputs for a batch [B, L] (see docs/melody.md sections 2 and 4)."""

    out_of_key: np.ndarray        # bool
    tonic: np.ndarray             # bool: rule 2 qualifies
    repeated: np.ndarray          # bool: rule 2.1 fires
    autocorr_penalty: np.ndarray  # float: rule 4's summed penalty at this step
    motif_size: np.ndarray        # int: u when the trailing window is a motif, else 0
    repeated_motif: np.ndarray    # bool
    interval_code: np.ndarray     # int: semitones, or one of the CODE_* values
    leap: np.ndarray              # int: LEAP_NONE / LEAP_RESOLVED / LEAP_DOUBLED
    extrema_count: np.ndarray     # int: 0..2 unique extrema, at the last step only
    unique_max: np.ndarray        # bool [B]: the highest token occurs once
    unique_min: np.ndarray        # bool [B]: the lowest pitch token occurs once


def _previous_pitch(tokens: np.ndarray) -> np.ndarray:
    """[B, L]: the most recent pitch token strictly before each step, or -1."""
    batch, length = tokens.shape
    prev = np.full((batch, length), -1, dtype=np.int64)
    last = np.full(batch, -1, dtype=np.int64)
    for t in range(length):
        prev[:, t] = last
        last = np.where(tokens[:, t] >= 2, tokens[:, t], last)
    return prev


def _repetition(tokens: np.ndarray, no_event: int, note_off: int,
                chunk: int = 4096) -> np.ndarray:
    """Rule 2.1 for every step at once, on [B, L, L] comparison masks (in batch chunks, to
    bound memory at 100,000 compositions)."""
    if len(tokens) > chunk:
        return np.concatenate([_repetition(tokens[i:i + chunk], no_event, note_off, chunk)
                               for i in range(0, len(tokens), chunk)])
    batch, length = tokens.shape
    a = tokens[:, :, None]                      # the new token, per step t
    x = tokens[:, None, :]                      # the composition, position j
    before = np.arange(length)[None, :] < np.arange(length)[:, None]  # [t, j]: j < t
    stopper = before & (x >= 2) & (x != a)      # a pitch different from a stops the walk
    positions = np.arange(length)[None, None, :]
    stop = np.where(stopper, positions, -1).max(axis=2, keepdims=True)
    walked = before & (positions > stop)
    count = np.sum(walked & (x == a), axis=2)
    breaks = np.any(walked & (x == note_off) & (a != note_off), axis=2)
    holds = np.any(walked & (x == no_event) & (a != no_event), axis=2)
    plain = ~holds & ~breaks
    return (((tokens == note_off) & (count > 1))
            | (plain & (count > 4)) | (~plain & (count > 6)))


def _autocorr_penalty(tokens: np.ndarray) -> np.ndarray:
    """Rule 4 for every prefix x = tokens[:t+1]."""
    batch, length = tokens.shape
    x = tokens.astype(np.float64)
    penalty = np.zeros((batch, length))
    for t in range(length):
        prefix = x[:, :t + 1]
        n = t + 1
        mean = prefix.mean(axis=1, keepdims=True)
        variance = prefix.var(axis=1)
        centred = prefix - mean
        defined = variance > 0
        safe = np.where(defined, variance, 1.0)
        for lag in (1, 2, 3):
            if n <= lag:
                continue
            rho = np.sum(centred[:, :n - lag] * centred[:, lag:], axis=1) / n / safe
            hit = defined & (np.abs(rho) > ref.AUTOCORR_THRESHOLD)
            penalty[:, t] += np.where(hit, ref.AUTOCORR_WEIGHT * np.abs(rho), 0.0)
    return penalty


def _motifs(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rules 5 and 6: (u or 0, repeated) per step."""
    batch, length = tokens.shape
    size = np.zeros((batch, length), dtype=np.int64)
    repeated = np.zeros((batch, length), dtype=bool)
    w = ref.MOTIF_LENGTH
    if length < w:
        return size, repeated
    windows = np.lib.stride_tricks.sliding_window_view(tokens, w, axis=1)  # [B, L-w+1, w]
    ordered = np.sort(windows, axis=2)
    is_pitch = ordered >= 2
    new_value = np.concatenate([np.ones_like(ordered[..., :1], dtype=bool),
                                ordered[..., 1:] != ordered[..., :-1]], axis=2)
    distinct = np.sum(is_pitch & new_value, axis=2)          # [B, L-w+1]
    size[:, w - 1:] = np.where(distinct >= 3, distinct, 0)
    for start in range(w, length - w + 1):  # window starting at `start` ends at t = start+w-1
        earlier = windows[:, :start - w + 1]                  # windows ending before `start`
        match = np.all(earlier == windows[:, start:start + 1], axis=2).any(axis=1)
        t = start + w - 1
        repeated[:, t] = match & (size[:, t] > 0)
    return size, repeated


def _interval_codes(tokens, prev, no_event, note_off) -> np.ndarray:
    safe_prev = np.maximum(prev, 0)
    c_or_g = _C_OR_G[safe_prev]
    d = np.abs(tokens - prev)
    code = np.where((d == 7) & c_or_g, CODE_FIFTH,
                    np.where((d == 4) & _C_OR_E[safe_prev], CODE_THIRD, d))
    code = np.where(tokens == no_event, np.where(c_or_g, CODE_HOLD_CG, CODE_HOLD), code)
    code = np.where(tokens == note_off, np.where(c_or_g, CODE_REST_CG, CODE_REST), code)
    return np.where(prev < 0, 0, code)


def _leaps(tokens, prev, no_event, note_off) -> np.ndarray:
    """Rule 2.3's state machine, stepped over time for the whole batch."""
    batch, length = tokens.shape
    outcome = np.zeros((batch, length), dtype=np.int64)
    direction = np.zeros(batch, dtype=np.int64)     # 0 none, 1 up, -1 down
    leapt_from = np.zeros(batch, dtype=np.int64)
    since = np.zeros(batch, dtype=np.int64)
    for t in range(length):
        a = tokens[:, t]
        p = prev[:, t]
        quiet = (a == no_event) | (a == note_off) | (t == 0)
        d = np.where(p < 0, 0, np.abs(a - p))
        leap = ~quiet & (d >= 7)
        step_dir = np.where(a > p, 1, -1)
        opposite = leap & (direction != 0) & (step_dir != direction)
        same = leap & (direction != 0) & (step_dir == direction)
        fresh = leap & (direction == 0)
        gradual = ~quiet & ~leap & (((direction == 1) & (a <= leapt_from))
                                    | ((direction == -1) & (a >= leapt_from)))
        outcome[:, t] = np.where((opposite & (since > 6)) | gradual, LEAP_RESOLVED,
                                 np.where(same, LEAP_DOUBLED, LEAP_NONE))
        direction = np.where(opposite | gradual, 0, np.where(fresh, step_dir, direction))
        leapt_from = np.where(fresh, p, leapt_from)
        since = np.where(leap, 0, since + 1)
    return outcome


def detect(tokens, binding: str = "data") -> Detections:
    """Run every detector on compositions ``tokens`` [B, L] (L = the episode length)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be [batch, length], got shape {tokens.shape}")
    no_event, note_off = ref.name_binding(binding)
    batch, length = tokens.shape
    beat = np.arange(length)[None, :]
    tonic = (((beat == 0) | (beat == length - 4)) & (tokens == TONIC)) \
        | ((beat == length - 3) & (tokens == no_event)) \
        | ((beat > length - 3) & ((tokens == no_event) | (tokens == note_off)))
    prev = _previous_pitch(tokens)
    motif_size, repeated_motif = _motifs(tokens)

    unique_max = np.sum(tokens == tokens.max(axis=1, keepdims=True), axis=1) == 1
    pitch_or_big = np.where(tokens >= 2, tokens, NUM_TOKENS)
    lowest = pitch_or_big.min(axis=1, keepdims=True)
    unique_min = (lowest[:, 0] < NUM_TOKENS) & (np.sum(tokens == lowest, axis=1) == 1)
    extrema = np.zeros((batch, length), dtype=np.int64)
    if length:
        extrema[:, -1] = unique_max.astype(np.int64) + unique_min.astype(np.int64)
    return Detections(
        out_of_key=~_IN_KEY[tokens],
        tonic=tonic,
        repeated=_repetition(tokens, no_event, note_off),
        autocorr_penalty=_autocorr_penalty(tokens),
        motif_size=motif_size,
        repeated_motif=repeated_motif,
        interval_code=_interval_codes(tokens, prev, no_event, note_off),
        leap=_leaps(tokens, prev, no_event, note_off),
        extrema_count=extrema,
        unique_max=unique_max,
        unique_min=unique_min,
    )


# The nine terms of r_T (the reference's StepTerms); reward.weights multiplies them by name.
REWARD_TERMS = ("key", "tonic", "repetition", "autocorrelation", "motif", "repeated_motif",
                "interval", "leap", "extrema")


def reward_terms(detections: Detections, weights: dict[str, float] | None = None
                 ) -> dict[str, np.ndarray]:
    """The nine terms of r_T per step, [B, L] each, each times its weight (default 1)."""
    d = detections
    u = d.motif_size
    terms = {
        "key": np.where(d.out_of_key, ref.KEY_PENALTY, 0.0),
        "tonic": np.where(d.tonic, ref.TONIC_REWARD, 0.0),
        "repetition": np.where(d.repeated, ref.REPETITION_PENALTY, 0.0),
        "autocorrelation": d.autocorr_penalty,
        "motif": np.where(u > 0, 3.0 + 0.3 * (u - 3), 0.0),
        "repeated_motif": np.where(d.repeated_motif, 4.0 + 1.0 * (u - 3), 0.0),
        "interval": ref.INTERVAL_WEIGHT * _INTERVAL_TABLE[d.interval_code],
        "leap": np.select([d.leap == LEAP_RESOLVED, d.leap == LEAP_DOUBLED],
                          [ref.LEAP_RESOLVED_REWARD, ref.LEAP_DOUBLED_PENALTY], 0.0),
        "extrema": ref.UNIQUE_EXTREMUM_REWARD * d.extrema_count,
    }
    for name, weight in (weights or {}).items():
        terms[name] = weight * terms[name]
    return terms


def task_reward(tokens, binding: str = "data", weights: dict[str, float] | None = None
                ) -> np.ndarray:
    """r_T per step, [B, L] float64: the sum of the nine (weighted) terms."""
    return sum(reward_terms(detect(tokens, binding), weights).values())
