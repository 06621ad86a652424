"""The melody corpus reader: MIDI files and music21's ABC folk-tune collections to
NoteSequences, and NoteSequences to encoded melodies (docs/melody.md section 1).

Every rejection has its own exception class carrying a short ``reason`` string; the Beam job
counts each reason of a :class:`DroppedInput` (a Beam counter and stats.json).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from seqtutor.corpus import CorpusSequence, DroppedInput, list_input_files
from seqtutor.domains.melody import encoding

MIDI_EXTENSIONS = (".mid", ".midi")
# music21 corpus folders that hold folk tunes in ABC (12,949 tunes). The Essen part is licensed
# for non-commercial use only; `josquin` (Renaissance polyphony) is not folk music.
MUSIC21_FOLK_COLLECTIONS = ("airdsAirs", "essenFolksong", "miscFolk", "nottingham-dataset",
                            "oneills1850", "ryansMammoth")
_SECONDS_PER_QUARTER = 0.5  # NoteSequences built from ABC use 120 qpm; only quarters matter


class CorruptMidiError(DroppedInput):
    reason = "corrupt_midi"


class AbcParseError(DroppedInput):
    reason = "abc_parse_error"


class NoNotesError(DroppedInput):
    reason = "no_notes"


class DrumsOnlyError(DroppedInput):
    reason = "drums_only"


class BadTimeSignatureError(DroppedInput):
    reason = "bad_time_signature"


class NoMelodyError(DroppedInput):
    reason = "no_melody"


@dataclasses.dataclass(frozen=True)
class CorpusItem:
    """One unit of input for the Beam job.

    Attributes:
      kind: "midi" (payload: a file path) or "abc" (payload: the text of one tune).
      source: a stable identifier (a path, or ``music21:<collection>/<file>#<n>``); the train/eval
        split hashes it.
      payload: see ``kind``.
    """

    kind: str
    source: str
    payload: str


@dataclasses.dataclass(frozen=True)
class ExtractionOptions:
    """Melody extraction settings (the melody data config passes its own values)."""

    min_bars: int = 4
    min_unique_pitches: int = 5
    gap_bars: float = 1.0
    melody_track: str = "highest"  # "highest": the non-drum track with the highest mean pitch


# ---------------------------------------------------------------------------------------------
# Listing inputs (in the driver, before any Beam work, so that a missing path fails early)


def list_midi_files(patterns: Sequence[str]) -> list[str]:
    """Expand directories (searched recursively) and globs into a sorted list of MIDI files.

    Raises:
      seqtutor.corpus.InputNotFoundError: a pattern matches nothing, naming the pattern.
    """
    return list_input_files(patterns, MIDI_EXTENSIONS)


def split_abc_tunes(text: str) -> list[str]:
    """Split an ABC file into tunes (each starts at an ``X:`` line; the file header is kept)."""
    parts = re.split(r"(?m)^(?=X:)", text)
    header, tunes = parts[0], parts[1:]
    # File-level fields (L:, M:, ...) in the header apply to every tune; comments are harmless.
    header_fields = "".join(line + "\n" for line in header.splitlines()
                            if re.match(r"^[A-Za-z]:", line))
    return [header_fields + tune for tune in tunes if tune.strip()]


def list_music21_folk_tunes(collections: Sequence[str] = MUSIC21_FOLK_COLLECTIONS,
                            max_tunes: int | None = None) -> list[CorpusItem]:
    """The built-in corpus: music21's ABC folk tunes, in a fixed order, at most ``max_tunes``."""
    from music21 import common, corpus

    unknown = set(collections) - set(MUSIC21_FOLK_COLLECTIONS)
    if unknown:
        raise ValueError(f"unknown music21 collections: {sorted(unknown)}")
    corpus_root = Path(common.getCorpusFilePath())
    items: list[CorpusItem] = []
    for path in sorted(corpus.getPaths(fileExtensions=("abc",))):
        path = Path(path)
        if path.relative_to(corpus_root).parts[0] not in collections:
            continue
        relative = path.relative_to(corpus_root).as_posix()
        for index, tune in enumerate(split_abc_tunes(path.read_text(errors="replace"))):
            items.append(CorpusItem("abc", f"music21:{relative}#{index}", tune))
            if max_tunes is not None and len(items) >= max_tunes:
                return items
    return items


# ---------------------------------------------------------------------------------------------
# Parsing into NoteSequences


def midi_bytes_to_note_sequence(data: bytes):
    """Parse MIDI bytes with note-seq. Raises CorruptMidiError on anything unreadable."""
    import note_seq

    try:
        return note_seq.midi_to_note_sequence(data)
    except Exception as error:  # pretty_midi/mido raise many types on bad bytes
        raise CorruptMidiError(f"{type(error).__name__}: {error}") from error


_beaming = threading.local()  # .skip: this thread is inside without_beaming()


def _beams_unless_skipped(make_beams):
    """music21's ``Stream.makeBeams``, skipped on a thread inside :func:`without_beaming`."""

    @functools.wraps(make_beams)
    def makeBeams(self, *args, **kwargs):  # noqa: N802 (music21's name)
        if getattr(_beaming, "skip", False):
            return None if kwargs.get("inPlace") else self
        return make_beams(self, *args, **kwargs)

    makeBeams.skippable = True
    return makeBeams


@contextlib.contextmanager
def without_beaming():
    """Skip music21's beaming on this thread while parsing: beams are notation only (no pitch
    or timing) and take over half of ABC parsing time. Other threads, and this one outside
    the block, beam as usual: the switch is thread-local, so concurrent parses (Beam's
    multi-threaded workers) cannot leave music21 patched."""
    from music21 import stream

    if not getattr(stream.Stream.makeBeams, "skippable", False):
        stream.Stream.makeBeams = _beams_unless_skipped(stream.Stream.makeBeams)
    outer = getattr(_beaming, "skip", False)
    _beaming.skip = True
    try:
        yield
    finally:
        _beaming.skip = outer


def abc_tune_to_note_sequence(text: str):
    """Parse one ABC tune with music21 and build a NoteSequence from its notes directly.

    Building the NoteSequence from music21's note list is about 5x faster than writing MIDI
    with music21 and reading it back, and it flattens meter changes into time signatures that
    ``split_note_sequence_on_time_changes`` handles.
    """
    from music21 import converter, harmony, key, meter
    from note_seq.protobuf import music_pb2

    try:
        with without_beaming():
            score = converter.parseData(text, format="abc")
        flat = score.flatten()
        elements = list(flat.notes)
        time_signatures = list(flat.getElementsByClass(meter.TimeSignature))
        key_signatures = list(flat.getElementsByClass(key.KeySignature))
    except Exception as error:  # music21's ABC parser raises many types on bad tunes
        raise AbcParseError(f"{type(error).__name__}: {error}") from error

    sequence = music_pb2.NoteSequence()
    sequence.ticks_per_quarter = 220
    sequence.tempos.add(time=0.0, qpm=60.0 / _SECONDS_PER_QUARTER)
    for ts in time_signatures:
        sequence.time_signatures.add(time=float(ts.offset) * _SECONDS_PER_QUARTER,
                                     numerator=int(ts.numerator),
                                     denominator=int(ts.denominator))
    for ks in key_signatures:
        # Only the signature matters for transposition to C major / A minor.
        sequence.key_signatures.add(time=float(ks.offset) * _SECONDS_PER_QUARTER,
                                    key=(7 * int(ks.sharps)) % 12)
    open_ties = {}
    for element in elements:
        if isinstance(element, harmony.ChordSymbol):
            continue
        length = float(element.duration.quarterLength)
        if length <= 0:  # grace notes
            continue
        start = float(element.offset)
        notes = element.notes if element.isChord else [element]
        for note in notes:
            pitch = int(note.pitch.midi)
            tie = note.tie if note.tie is not None else element.tie
            if tie is not None and tie.type in ("stop", "continue") and pitch in open_ties:
                open_ties[pitch].end_time = (start + length) * _SECONDS_PER_QUARTER
                if tie.type == "stop":
                    del open_ties[pitch]
                continue
            proto = sequence.notes.add(pitch=pitch, velocity=80,
                                       start_time=start * _SECONDS_PER_QUARTER,
                                       end_time=(start + length) * _SECONDS_PER_QUARTER)
            if tie is not None and tie.type == "start":
                open_ties[pitch] = proto
    sequence.total_time = max((n.end_time for n in sequence.notes), default=0.0)
    return sequence


def read_item_note_sequence(item: CorpusItem):
    """(NoteSequence, content digest) of one corpus item.

    The digest (of the MIDI bytes or the tune's text) decides the train/eval split, so the
    split does not depend on where the files lie. MIDI files are read through Beam's
    FileSystems, so gs:// and other remote paths work on Dataflow.
    """
    if item.kind == "abc":
        data = item.payload.encode()
        return abc_tune_to_note_sequence(item.payload), hashlib.sha256(data).hexdigest()
    if item.kind == "midi":
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(item.payload) as handle:
            data = handle.read()
        return midi_bytes_to_note_sequence(data), hashlib.sha256(data).hexdigest()
    raise ValueError(f"unknown corpus item kind {item.kind!r}")


# ---------------------------------------------------------------------------------------------
# NoteSequence to encoded melodies


def _melody_instrument(notes, option: str) -> list[int]:
    """The instruments to take melodies from: the highest-pitched track, or all of them."""
    by_instrument: dict[int, list[int]] = {}
    for note in notes:
        by_instrument.setdefault(note.instrument, []).append(note.pitch)
    if option == "all":
        return sorted(by_instrument)
    # The melody line of a multi-track file: the track with the highest mean pitch among
    # those that change pitch at all (a held pedal note is not a melody).
    candidates = [i for i, pitches in by_instrument.items() if len(set(pitches)) > 1]
    candidates = candidates or list(by_instrument)
    return [max(candidates, key=lambda i: (np.mean(by_instrument[i]), -i))]


def _key_at(sequence, time: float) -> int | None:
    """The relative-major pitch class of the key signature in force at ``time``, if any."""
    from note_seq.protobuf import music_pb2

    current = None
    for signature in sorted(sequence.key_signatures, key=lambda k: k.time):
        if signature.time <= time + 1e-6:
            minor = signature.mode == music_pb2.NoteSequence.KeySignature.MINOR
            current = encoding.relative_major_pitch_class(signature.key, minor)
    return current


def extract_melodies(sequence, options: ExtractionOptions = ExtractionOptions()) -> list[np.ndarray]:
    """Encoded monophonic melodies (token arrays) of a NoteSequence.

    Steps: split on time-signature and tempo changes, quantise to 4 steps per quarter, extract
    monophonic melodies (highest note wins; drums ignored) that end after a silence of
    ``gap_bars``, keep those of at least ``min_bars`` bars and ``min_unique_pitches`` pitches,
    transpose to C major / A minor and fold into MIDI 48..83.

    Raises:
      NoNotesError, DrumsOnlyError, BadTimeSignatureError, NoMelodyError.
    """
    import note_seq
    from note_seq import sequences_lib

    if not sequence.notes:
        raise NoNotesError("no notes")
    if all(note.is_drum for note in sequence.notes):
        raise DrumsOnlyError("only drum notes")

    melodies: list[np.ndarray] = []
    bad_time_signature = None
    for part in sequences_lib.split_note_sequence_on_time_changes(sequence):
        pitched = [n for n in part.notes if not n.is_drum and n.velocity > 0]
        if not pitched:
            continue
        try:
            quantized = sequences_lib.quantize_note_sequence(part, encoding.STEPS_PER_QUARTER)
            steps_per_bar = sequences_lib.steps_per_bar_in_quantized_sequence(quantized)
        except (sequences_lib.BadTimeSignatureError, sequences_lib.MultipleTimeSignatureError,
                sequences_lib.NegativeTimeError) as error:
            bad_time_signature = error
            continue
        if steps_per_bar % 1 != 0:
            bad_time_signature = f"{steps_per_bar} steps per bar"
            continue
        steps_per_bar = int(steps_per_bar)
        key = _key_at(part, 0.0)
        if key is None:
            key = _key_at(sequence, 0.0)
        for instrument in _melody_instrument(pitched, options.melody_track):
            search_start = 0
            while True:
                melody = note_seq.Melody()
                melody.from_quantized_sequence(
                    quantized, search_start_step=search_start, instrument=instrument,
                    gap_bars=options.gap_bars, ignore_polyphonic_notes=True, pad_end=True)
                if not len(melody):
                    break
                # Continue at the next bar boundary after this melody (note-seq convention).
                search_start = melody.end_step + (search_start - melody.end_step) % steps_per_bar
                events = list(melody)
                pitches = {e for e in events if e >= 0}
                if (len(events) < options.min_bars * steps_per_bar
                        or len(pitches) < options.min_unique_pitches):
                    continue
                melodies.append(encoding.events_to_tokens(encoding.normalise_events(events, key)))
    if not melodies:
        if bad_time_signature is not None:
            raise BadTimeSignatureError(str(bad_time_signature))
        raise NoMelodyError(
            f"no melody of at least {options.min_bars} bars and "
            f"{options.min_unique_pitches} distinct pitches")
    return melodies


# ---------------------------------------------------------------------------------------------
# The corpus reader of the Beam job (data_prep/sequence_job.py)


def list_items(config) -> list[CorpusItem]:
    """Every corpus item the prepare_data config names, user files first; raises on a missing
    path (seqtutor.corpus.InputNotFoundError)."""
    items = [CorpusItem("midi", path, path) for path in list_midi_files(config.input)]
    if config.builtin_corpus == "music21_folk":
        items += list_music21_folk_tunes(config.builtin_collections, config.max_builtin_tunes)
    return items


def read_melodies(item: CorpusItem, options: ExtractionOptions) -> Iterable[CorpusSequence]:
    """The melodies of one corpus item, ``<source>@<index>``, grouped by the item's content
    digest: all melodies of one file or tune land in one split."""
    sequence, digest = read_item_note_sequence(item)
    for index, tokens in enumerate(extract_melodies(sequence, options)):
        yield CorpusSequence(f"{item.source}@{index}", tokens.tolist(), digest)


def corpus_reader(config):
    """The Beam transform from corpus items to melodies, with the config's extraction settings."""
    from seqtutor.readers import ReadSequences

    options = ExtractionOptions(
        min_bars=config.min_bars, min_unique_pitches=config.min_unique_pitches,
        gap_bars=config.gap_bars, melody_track=config.melody_track)
    return ReadSequences(functools.partial(read_melodies, options=options))
