"""The melody encoding of docs/melody.md section 1: 38 tokens, one step per 16th note.

Token 0 is NO_EVENT (hold), token 1 is NOTE_OFF (rest starts), tokens 2..37 are note onsets of
MIDI pitch ``token + 46`` (MIDI 48, C3 .. 83, B5). Melodies are transposed to C major / A minor
and folded into that range by octaves before they are encoded.

The functions here are small pure transforms (they return new values), so the Beam job, the
tests and ``seqtutor generate`` all share one definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NO_EVENT = 0
NOTE_OFF = 1
FIRST_PITCH_TOKEN = 2
NUM_TOKENS = 38
PITCH_OFFSET = 46  # MIDI pitch = token + 46 (the reference adds 48: a bug we do not copy)
MIN_PITCH = FIRST_PITCH_TOKEN + PITCH_OFFSET  # 48, C3
MAX_PITCH = NUM_TOKENS - 1 + PITCH_OFFSET  # 83, B5
STEPS_PER_QUARTER = 4
OUTPUT_QPM = 80.0  # quarter notes per minute of generated MIDI

TONIC = 14  # C4, MIDI 60
C_NOTES = (2, 14, 26)
E_NOTES = (6, 18, 30)
G_NOTES = (9, 21, 33)
IN_KEY_TOKENS = frozenset(
    (NO_EVENT, NOTE_OFF, 2, 4, 6, 7, 9, 11, 13, 14, 16, 18, 19, 21, 23, 25, 26, 28, 30, 31, 33,
     35, 37))

# note-seq's Melody events: -2 hold, -1 note off, 0..127 onsets.
_NS_NO_EVENT = -2
_NS_NOTE_OFF = -1

# Pitch classes of the C major scale, used to estimate a key from a pitch-class histogram.
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


class MelodyEncodingError(ValueError):
    """A melody event cannot be encoded (a pitch outside MIDI 48..83 after folding)."""


def pitch_to_token(pitch: int) -> int:
    """MIDI pitch (48..83) to its onset token (2..37)."""
    if not MIN_PITCH <= pitch <= MAX_PITCH:
        raise MelodyEncodingError(f"pitch {pitch} is outside MIDI {MIN_PITCH}..{MAX_PITCH}")
    return pitch - PITCH_OFFSET


def token_to_pitch(token: int) -> int:
    """Onset token (2..37) to its MIDI pitch (48..83)."""
    if not FIRST_PITCH_TOKEN <= token < NUM_TOKENS:
        raise MelodyEncodingError(f"token {token} is not a note onset")
    return token + PITCH_OFFSET


def events_to_tokens(events: Sequence[int]) -> np.ndarray:
    """note-seq Melody events (-2 hold, -1 note off, MIDI pitch) to tokens (int64 array)."""
    tokens = np.empty(len(events), dtype=np.int64)
    for i, event in enumerate(events):
        if event == _NS_NO_EVENT:
            tokens[i] = NO_EVENT
        elif event == _NS_NOTE_OFF:
            tokens[i] = NOTE_OFF
        else:
            tokens[i] = pitch_to_token(int(event))
    return tokens


def tokens_to_events(tokens: Sequence[int]) -> list[int]:
    """Tokens back to note-seq Melody events."""
    events = []
    for token in tokens:
        token = int(token)
        if token == NO_EVENT:
            events.append(_NS_NO_EVENT)
        elif token == NOTE_OFF:
            events.append(_NS_NOTE_OFF)
        else:
            events.append(token_to_pitch(token))
    return events


def relative_major_pitch_class(key: int, minor: bool) -> int:
    """The pitch class of the major key that shares this key's signature (A minor -> C)."""
    return (key + 3) % 12 if minor else key % 12


def estimate_major_key(pitches: Sequence[int]) -> int:
    """The major key (pitch class 0..11) whose scale holds the most of these notes.

    Ties go to the lowest pitch class, as in note-seq's ``Melody.get_major_key``.
    """
    histogram = np.bincount(np.asarray(pitches, dtype=np.int64) % 12, minlength=12)
    fits = [sum(histogram[(key + degree) % 12] for degree in _MAJOR_SCALE) for key in range(12)]
    return int(np.argmax(fits))


def transposition_to_c(major_key: int) -> int:
    """Semitones that move a major key (pitch class) to C, the smaller way round (-6..+5)."""
    shift = (-major_key) % 12
    return shift - 12 if shift > 5 else shift


def fold_pitches(pitches: Sequence[int], low: int = MIN_PITCH, high: int = MAX_PITCH) -> list[int]:
    """Shift a melody by whole octaves into [low, high], then fold any note still outside.

    The whole-melody shift keeps the melody's contour; it is the octave shift that puts the most
    notes in range (ties: the one closest to no shift). Notes that still fall outside are moved by
    octaves one at a time, as note-seq's ``Melody.squash`` does.
    """
    pitches = np.asarray(pitches, dtype=np.int64)
    if pitches.size == 0:
        return []
    candidates = range(-10, 11)
    best = max(candidates,
               key=lambda k: (np.count_nonzero((pitches + 12 * k >= low) &
                                               (pitches + 12 * k <= high)), -abs(k)))
    shifted = pitches + 12 * best
    while np.any(shifted < low):
        shifted = np.where(shifted < low, shifted + 12, shifted)
    while np.any(shifted > high):
        shifted = np.where(shifted > high, shifted - 12, shifted)
    return [int(p) for p in shifted]


def normalise_events(events: Sequence[int], major_key: int | None) -> list[int]:
    """Transpose Melody events to C major / A minor and fold their pitches into MIDI 48..83.

    Args:
      events: note-seq Melody events.
      major_key: the pitch class of the melody's (relative) major key from its key signature,
        or None to estimate it from the pitch-class histogram.

    Returns:
      New events, holds and note-offs unchanged.
    """
    pitch_positions = [i for i, e in enumerate(events) if e >= 0]
    pitches = [events[i] for i in pitch_positions]
    if major_key is None:
        major_key = estimate_major_key(pitches) if pitches else 0
    shift = transposition_to_c(major_key)
    folded = fold_pitches([p + shift for p in pitches])
    result = list(events)
    for i, pitch in zip(pitch_positions, folded):
        result[i] = pitch
    return result


def tokens_to_note_sequence(tokens: Sequence[int], qpm: float = OUTPUT_QPM):
    """Tokens to a NoteSequence at ``qpm`` quarter notes per minute (pitch = token + 46)."""
    import note_seq  # heavy import kept local: the encoding itself needs only numpy

    melody = note_seq.Melody(tokens_to_events(tokens), steps_per_quarter=STEPS_PER_QUARTER)
    return melody.to_sequence(qpm=qpm)


def write_midi(tokens: Sequence[int], path, qpm: float = OUTPUT_QPM) -> None:
    """Write tokens as a MIDI file."""
    import note_seq

    note_seq.sequence_proto_to_midi_file(tokens_to_note_sequence(tokens, qpm), str(path))


_PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def token_names() -> list[str]:
    """Readable names of the 38 tokens: NO_EVENT, NOTE_OFF, C3 .. B5."""
    names = ["NO_EVENT", "NOTE_OFF"]
    for token in range(FIRST_PITCH_TOKEN, NUM_TOKENS):
        pitch = token_to_pitch(token)
        names.append(f"{_PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}")
    return names


def vocabulary(sequence_length: int) -> dict:
    """The vocab.json content of a melody dataset."""
    return {
        "domain": "melody",
        "num_tokens": NUM_TOKENS,
        "tokens": token_names(),
        "no_event": NO_EVENT,
        "note_off": NOTE_OFF,
        "pitch_offset": PITCH_OFFSET,
        "steps_per_quarter": STEPS_PER_QUARTER,
        "sequence_length": sequence_length,
    }
