"""Melody samples in the report: piano rolls, MIDI downloads and WAV renderings."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from seqtutor.figures import figure, figure_uri
from seqtutor.domains.melody import encoding

SAMPLE_RATE = 8000


def piano_roll_png(melodies: np.ndarray) -> str:
    """Piano rolls of a few melodies side by side (pitch against 16th-note steps)."""
    fig, axes = figure(1, len(melodies), figsize=(3.6 * len(melodies), 2.4), squeeze=False)
    for axis, melody in zip(axes[0], melodies):
        roll = np.zeros((encoding.NUM_TOKENS - 2, len(melody)))
        pitch = None
        for step, token in enumerate(melody):
            if token >= encoding.FIRST_PITCH_TOKEN:
                pitch = token - encoding.FIRST_PITCH_TOKEN
                roll[pitch, step] = 2  # onset
            elif token == encoding.NOTE_OFF:
                pitch = None
            elif pitch is not None:
                roll[pitch, step] = 1  # held
        axis.imshow(roll, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=2)
        axis.set_yticks([12, 24], ["C4", "C5"])
        axis.set_xlabel("16th notes")
    return figure_uri(fig)


def midi_and_wav(melody) -> tuple[str, str]:
    """(MIDI data URI, WAV data URI) of one melody at 80 quarter notes per minute."""
    import note_seq
    from scipy.io import wavfile

    sequence = encoding.tokens_to_note_sequence(melody)
    midi = io.BytesIO()
    note_seq.note_sequence_to_pretty_midi(sequence).write(midi)
    audio = note_seq.midi_synth.synthesize(sequence, sample_rate=SAMPLE_RATE)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    samples = (audio / peak * 0.8 * 32767).astype(np.int16) if peak > 0 else \
        np.zeros(SAMPLE_RATE, np.int16)
    wav = io.BytesIO()
    wavfile.write(wav, SAMPLE_RATE, samples)
    return ("data:audio/midi;base64," + base64.b64encode(midi.getvalue()).decode(),
            "data:audio/wav;base64," + base64.b64encode(wav.getvalue()).decode())


def samples_html(name: str, melodies: np.ndarray) -> str:
    """Piano rolls of a few melodies, each with a player and a MIDI download."""
    parts = [f"<img alt='piano rolls of {html.escape(name)}' "
             f"src='{piano_roll_png(melodies)}'><p>"]
    for index, melody in enumerate(melodies):
        midi, wav = midi_and_wav(melody)
        parts.append(f"<span>#{index} <audio controls src='{wav}'></audio> "
                     f"<a download='{html.escape(name)}_{index}.mid' href='{midi}'>MIDI</a>"
                     "</span> ")
    parts.append("</p>")
    return "".join(parts)
