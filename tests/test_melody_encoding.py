"""The melody encoding of docs/melody.md section 1: pitch mapping, transposition, folding."""

import numpy as np
import pytest

from seqtutor.domains.melody import encoding


def test_token_14_is_middle_c_and_range_is_midi_48_to_83():
    assert encoding.token_to_pitch(14) == 60  # C4, the tonic
    assert encoding.pitch_to_token(60) == 14
    assert encoding.token_to_pitch(2) == 48 and encoding.token_to_pitch(37) == 83
    with pytest.raises(encoding.MelodyEncodingError):
        encoding.pitch_to_token(84)
    with pytest.raises(encoding.MelodyEncodingError):
        encoding.token_to_pitch(1)  # NOTE_OFF is not a note


def test_events_map_hold_and_rest_to_tokens_0_and_1():
    # note-seq events: C4, hold, hold, note off, hold, G4
    assert encoding.events_to_tokens([60, -2, -2, -1, -2, 67]).tolist() == [14, 0, 0, 1, 0, 21]
    assert encoding.tokens_to_events([14, 0, 0, 1, 0, 21]) == [60, -2, -2, -1, -2, 67]


def test_token_names():
    names = encoding.token_names()
    assert len(names) == 38 and names[:2] == ["NO_EVENT", "NOTE_OFF"]
    assert names[14] == "C4" and names[2] == "C3" and names[37] == "B5"


def test_tokens_round_trip_through_midi(tmp_path):
    """tokens -> MIDI file -> NoteSequence -> melody extraction -> the same tokens."""
    import note_seq

    from seqtutor.domains.melody import sources as melody_sources

    # Two 4/4 bars, C major: C4 (4 steps), D4, E4 (2 each), a rest, G4 ... ends holding C5.
    tokens = [14, 0, 0, 0, 16, 0, 18, 0, 1, 0, 21, 0, 23, 25, 26, 0,
              28, 0, 26, 0, 25, 0, 23, 21, 19, 18, 16, 0, 26, 0, 0, 0]
    path = tmp_path / "round_trip.mid"
    encoding.write_midi(tokens, path)
    sequence = note_seq.midi_file_to_note_sequence(str(path))
    assert [n.pitch for n in sequence.notes][:3] == [60, 62, 64]  # pitch = token + 46
    assert sequence.tempos[0].qpm == pytest.approx(80.0)
    (melody,) = melody_sources.extract_melodies(
        sequence, melody_sources.ExtractionOptions(min_bars=2))
    assert melody.tolist() == tokens


@pytest.mark.parametrize("key,minor,expected", [(0, False, 0), (2, False, 2), (9, True, 0),
                                                (4, True, 7), (11, False, 11)])
def test_relative_major(key, minor, expected):
    assert encoding.relative_major_pitch_class(key, minor) == expected


@pytest.mark.parametrize("major_key,shift", [(0, 0), (2, -2), (5, -5), (7, 5), (6, 6 - 12),
                                             (11, 1)])
def test_transposition_to_c_takes_the_short_way(major_key, shift):
    assert encoding.transposition_to_c(major_key) == shift


def test_estimate_major_key_from_histogram():
    d_major_scale = [62, 64, 66, 67, 69, 71, 73, 74]
    assert encoding.estimate_major_key(d_major_scale) == 2
    assert encoding.estimate_major_key([60, 64, 67]) == 0  # ties go to the lowest key


def test_normalise_transposes_d_major_to_c_major():
    # D major tune D E F# (events) with a hold and a rest between.
    events = [62, -2, 64, -1, 66]
    assert encoding.normalise_events(events, major_key=2) == [60, -2, 62, -1, 64]
    # Same answer without a key signature: estimated from the notes.
    assert encoding.normalise_events([62, 64, 66, 67, 69, 71, 73], None)[:3] == [60, 62, 64]


def test_fold_shifts_whole_melody_then_folds_outliers():
    # Two octaves too high: the whole melody moves down by 24 with its contour intact.
    assert encoding.fold_pitches([96, 100, 103]) == [72, 76, 79]
    # A melody spanning more than the range: the whole-melody shift keeps most notes, the
    # out-of-range low note (A1 = 33) folds up by octaves into 48..83.
    assert encoding.fold_pitches([33, 60, 72, 83]) == [45 + 12, 60, 72, 83]
    assert all(48 <= p <= 83 for p in encoding.fold_pitches(np.arange(20, 110)))


def test_vocabulary_describes_the_encoding():
    vocab = encoding.vocabulary(64)
    assert vocab["num_tokens"] == 38 and vocab["pitch_offset"] == 46
    assert vocab["tokens"][vocab["note_off"]] == "NOTE_OFF"


def test_beaming_is_skipped_only_inside_the_block_and_only_on_its_thread():
    import threading

    from music21 import stream

    from seqtutor.domains.melody import sources as melody_sources

    def beamed() -> bool:
        """Whether makeBeams ran: a 4/4 bar of eighth notes gets beams."""
        from music21 import meter, note

        part = stream.Measure([meter.TimeSignature("4/4")]
                              + [note.Note("C4", quarterLength=0.5) for _ in range(8)])
        part.makeBeams(inPlace=True)
        return any(n.beams.beamsList for n in part.notes)

    assert beamed()
    seen_elsewhere = []
    with melody_sources.without_beaming():
        assert not beamed()
        other = threading.Thread(target=lambda: seen_elsewhere.append(beamed()))
        other.start()
        other.join()
        with melody_sources.without_beaming():  # nested blocks restore the outer state
            assert not beamed()
        assert not beamed()
    assert seen_elsewhere == [True]  # another thread beams as usual
    assert beamed()
    # A second block does not stack a second wrapper.
    wrapper = stream.Stream.makeBeams
    with melody_sources.without_beaming():
        pass
    assert stream.Stream.makeBeams is wrapper
