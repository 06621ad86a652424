"""The music-theory reward of docs/melody.md section 2, one step at a time, written as that page
reads. It is the readable reference (and the "one melody at a time" baseline of the
benchmarks); :mod:`domains.melody.rules` computes the same numbers vectorised over a batch and
is tested equal to this module.

``binding`` picks which token the names NO_EVENT and NOTE_OFF mean: "data" (0 = hold, 1 = rest,
the data encoding) or "reference" (swapped, as the magenta rl_tuner code binds them; it reproduces
the paper's Table 1). Every other reference bug stays fixed in both modes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from seqtutor.domains.melody.encoding import C_NOTES, E_NOTES, G_NOTES, IN_KEY_TOKENS, TONIC

# Interval codes that are not semitone counts.
HOLD, HOLD_AFTER_C_OR_G, REST, REST_AFTER_C_OR_G, IN_KEY_THIRD, IN_KEY_FIFTH = (
    "HOLD", "HOLD_AFTER_C_OR_G", "REST", "REST_AFTER_C_OR_G", "IN_KEY_THIRD", "IN_KEY_FIFTH")
INTERVAL_REWARD = {
    0: 0.0, 1: 0.0, 3: 0.0, 6: 0.0, 8: 0.0, 10: 0.0, 12: 0.0,
    REST: 0.05, HOLD: 0.075, REST_AFTER_C_OR_G: 0.15, HOLD_AFTER_C_OR_G: 0.3,
    2: 0.08, 4: 0.09, IN_KEY_THIRD: 0.15, 5: 0.07, 7: 0.02, IN_KEY_FIFTH: 0.1, 9: 0.05,
    11: -0.3,
}
LARGE_INTERVAL_REWARD = -1.0  # any interval greater than 12 semitones
RESOLVED, DOUBLED = "RESOLVED", "DOUBLED"

KEY_PENALTY = -1.0
TONIC_REWARD = 3.0
REPETITION_PENALTY = -100.0
AUTOCORR_THRESHOLD = 0.15
AUTOCORR_WEIGHT = -3.0
MOTIF_LENGTH = 8
INTERVAL_WEIGHT = 5.0
LEAP_RESOLVED_REWARD = 5.0
LEAP_DOUBLED_PENALTY = -5.0
UNIQUE_EXTREMUM_REWARD = 3.0


def name_binding(binding: str) -> tuple[int, int]:
    """(NO_EVENT, NOTE_OFF) token values for a binding ("data" or "reference")."""
    if binding == "data":
        return 0, 1
    if binding == "reference":
        return 1, 0
    raise ValueError(f"unknown name binding {binding!r}: 'data' or 'reference'")


def last_pitch(composition) -> int | None:
    for token in reversed(composition):
        if token >= 2:
            return int(token)
    return None


def repeats_excessively(composition, a: int, no_event: int, note_off: int) -> bool:
    """Rule 2.1."""
    count, holds, breaks = 0, False, False
    for token in reversed(composition):
        if token == a:
            count += 1
        elif token == note_off:
            breaks = True
        elif token == no_event:
            holds = True
        else:  # a pitch token different from a
            break
    if a == note_off and count > 1:
        return True
    if not holds and not breaks:
        return count > 4
    return count > 6


def autocorrelation(x, lag: int) -> float | None:
    """rho_k of docs/melody.md section 2, rule 4 (population variance); None when x is constant."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    variance = x.var()
    if variance == 0:
        return None
    m = x.mean()
    return float(np.sum((x[:n - lag] - m) * (x[lag:] - m)) / n / variance) if n > lag else 0.0


def distinct_pitches(window) -> int:
    return len({int(t) for t in window if t >= 2})


def motif_size(x) -> int | None:
    """u of rule 5 when the trailing 8-token window of x is a motif, else None."""
    if len(x) < MOTIF_LENGTH:
        return None
    u = distinct_pitches(x[-MOTIF_LENGTH:])
    return u if u >= 3 else None


def motif_repeated(x) -> bool:
    """Rule 6 (given that the window is a motif): it occurs earlier, wholly before itself."""
    window = list(x[-MOTIF_LENGTH:])
    before = list(x[:-MOTIF_LENGTH])
    return any(before[s:s + MOTIF_LENGTH] == window
               for s in range(len(before) - MOTIF_LENGTH + 1))


def interval_code(composition, a: int, no_event: int, note_off: int):
    """Rule 2.2."""
    prev = last_pitch(composition)
    if prev is None:
        return 0
    c_or_g = prev in C_NOTES or prev in G_NOTES
    if a == no_event:
        return HOLD_AFTER_C_OR_G if c_or_g else HOLD
    if a == note_off:
        return REST_AFTER_C_OR_G if c_or_g else REST
    d = abs(a - prev)
    if d == 7 and c_or_g:
        return IN_KEY_FIFTH
    if d == 4 and (prev in C_NOTES or prev in E_NOTES):
        return IN_KEY_THIRD
    return d


def interval_reward(code) -> float:
    if isinstance(code, int) and code > 12:
        return LARGE_INTERVAL_REWARD
    return INTERVAL_REWARD[code]


@dataclasses.dataclass
class LeapState:
    """Rule 2.3's per-composition state."""

    direction: str | None = None  # "up", "down" or None
    leapt_from: int | None = None
    steps_since_leap: int = 0

    def step(self, composition, a: int, no_event: int, note_off: int) -> str | None:
        """Advance by one step; return RESOLVED, DOUBLED or None. Call exactly once per step."""
        if not composition or a in (no_event, note_off):
            self.steps_since_leap += 1
            return None
        prev = last_pitch(composition)
        d = 0 if prev is None else abs(a - prev)
        if d >= 7:
            direction = "up" if a > prev else "down"
            outcome = None
            if self.direction is not None and direction != self.direction:
                outcome = RESOLVED if self.steps_since_leap > 6 else None
                self.direction, self.leapt_from = None, None
            elif self.direction is not None:
                outcome = DOUBLED
            else:
                self.direction, self.leapt_from = direction, prev
            self.steps_since_leap = 0
            return outcome
        self.steps_since_leap += 1
        if ((self.direction == "up" and a <= self.leapt_from)
                or (self.direction == "down" and a >= self.leapt_from)):
            self.direction, self.leapt_from = None, None
            return RESOLVED
        return None


@dataclasses.dataclass
class StepTerms:
    """The nine terms of r_T for one step, and the detectors the statistics count."""

    key: float
    tonic: float
    repetition: float
    autocorrelation: float
    motif: float
    repeated_motif: float
    interval: float
    leap: float
    extrema: float
    interval_code: object
    leap_outcome: str | None

    @property
    def total(self) -> float:
        return (self.key + self.tonic + self.repetition + self.autocorrelation + self.motif
                + self.repeated_motif + self.interval + self.leap + self.extrema)


def step_terms(composition: list[int], a: int, leap_state: LeapState, length: int,
               binding: str = "data") -> StepTerms:
    """r_T's terms for emitting ``a`` after ``composition`` in an episode of ``length`` steps."""
    no_event, note_off = name_binding(binding)
    beat = len(composition)
    x = list(composition) + [a]

    key = KEY_PENALTY if a not in IN_KEY_TOKENS else 0.0
    tonic = TONIC_REWARD if ((beat in (0, length - 4) and a == TONIC)
                             or (beat == length - 3 and a == no_event)
                             or (beat > length - 3 and a in (no_event, note_off))) else 0.0
    repetition = REPETITION_PENALTY if repeats_excessively(composition, a, no_event,
                                                           note_off) else 0.0
    autocorr = 0.0
    for lag in (1, 2, 3):
        rho = autocorrelation(x, lag)
        if rho is not None and abs(rho) > AUTOCORR_THRESHOLD:
            autocorr += AUTOCORR_WEIGHT * abs(rho)
    u = motif_size(x)
    motif = 3.0 + 0.3 * (u - 3) if u is not None else 0.0
    repeated = 4.0 + 1.0 * (u - 3) if u is not None and motif_repeated(x) else 0.0
    code = interval_code(composition, a, no_event, note_off)
    outcome = leap_state.step(composition, a, no_event, note_off)
    leap = {RESOLVED: LEAP_RESOLVED_REWARD, DOUBLED: LEAP_DOUBLED_PENALTY, None: 0.0}[outcome]
    extrema = 0.0
    if beat == length - 1:
        if x.count(max(x)) == 1:
            extrema += UNIQUE_EXTREMUM_REWARD
        pitches = [t for t in x if t >= 2]
        if pitches and pitches.count(min(pitches)) == 1:
            extrema += UNIQUE_EXTREMUM_REWARD
    return StepTerms(key, tonic, repetition, autocorr, motif, repeated,
                     INTERVAL_WEIGHT * interval_reward(code), leap, extrema, code, outcome)


def composition_terms(tokens, binding: str = "data") -> list[StepTerms]:
    """The step terms of every step of one composition (the episode length is len(tokens))."""
    tokens = [int(t) for t in tokens]
    state = LeapState()
    return [step_terms(tokens[:t], tokens[t], state, len(tokens), binding)
            for t in range(len(tokens))]
