"""The evaluation report: one self-contained HTML file (every picture, MIDI file and sound is
embedded as a data URI, so it opens anywhere, offline, and can be mailed around).

Sections: the rule statistics of every model beside the data row and the paper's Table 1; the
tuning curves of every algorithm (the paper's Figure 2); for each model a few sample melodies as
piano rolls, with their MIDI files to download and a WAV rendering to play.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

import numpy as np

from domains.melody import encoding
from domains.melody.statistics import STATISTIC_KEYS

REPORT_FILE = "report.html"
# Paper Table 1 (Jaques et al. 2017), as fractions: MLE, Q, Psi, G.
PAPER_TABLE_1 = {
    "repeated_notes": (0.633, 0.0, 0.0002, 0.0003),
    "autocorr_lag1": (-0.16, -0.11, -0.10, 0.55),
    "autocorr_lag2": (0.14, 0.03, -0.01, 0.31),
    "autocorr_lag3": (-0.13, 0.03, 0.01, 0.17),
    "notes_not_in_key": (0.001, 0.010, 0.006, 0.287),
    "starts_with_tonic": (0.009, 0.288, 0.287, 0.0),
    "leaps_resolved": (0.772, 0.911, 0.900, 0.522),
    "unique_max_note": (0.647, 0.564, 0.594, 0.371),
    "unique_min_note": (0.494, 0.519, 0.583, 0.565),
    "notes_in_motif": (0.059, 0.757, 0.738, 0.693),
    "notes_in_repeated_motif": (0.00007, 0.0011, 0.0009, 0.0001),
}
MODEL_ORDER = ("data", "mle", "q", "psi", "g", "rl_only")
SAMPLE_RATE = 8000


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def curves_png(curves: dict[str, list[dict]]) -> str | None:
    """Mean r_T and mean log p(a|s) against environment steps, one line per algorithm."""
    if not curves:
        return None
    figure, (reward_axis, prior_axis) = _figure(1, 2, figsize=(11, 3.8))
    for algorithm, rows in curves.items():
        steps = [float(r["step"]) for r in rows]
        reward_axis.plot(steps, [float(r["mean_task_reward"]) for r in rows], label=algorithm)
        prior_axis.plot(steps, [float(r["mean_log_prior"]) for r in rows], label=algorithm)
    reward_axis.set(title="mean r_T per composition", xlabel="environment steps")
    prior_axis.set(title="mean log p(a|s) under the Reward RNN", xlabel="environment steps")
    reward_axis.legend()
    return _png(figure)


def piano_roll_png(melodies: np.ndarray) -> str:
    """Piano rolls of a few melodies side by side (pitch against 16th-note steps)."""
    figure, axes = _figure(1, len(melodies), figsize=(3.6 * len(melodies), 2.4), squeeze=False)
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
    return _png(figure)


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


def _cell(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else f"{value:.4g}"


def statistics_table(models: dict[str, dict]) -> str:
    """Models side by side, the MLE row's distance to the data, and the paper's Table 1."""
    names = [m for m in MODEL_ORDER if m in models]
    compare = "data" in models and "mle" in models
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    head += "<th>mle - data</th>" if compare else ""
    paper_head = "".join(f"<th class='paper'>paper {n}</th>" for n in ("MLE", "Q", "Psi", "G"))
    rows = []
    for key in STATISTIC_KEYS:
        cells = "".join(f"<td>{_cell(models[n].get(key))}</td>" for n in names)
        if compare:
            cells += f"<td>{_cell(models['mle'][key] - models['data'][key])}</td>"
        paper = PAPER_TABLE_1.get(key, (None,) * 4)
        paper_cells = "".join(f"<td class='paper'>{_cell(v)}</td>" for v in paper)
        rows.append(f"<tr><th>{key}</th>{cells}{paper_cells}</tr>")
    return (f"<table><thead><tr><th>statistic</th>{head}{paper_head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def read_curves(tune_dir: Path) -> dict[str, list[dict]]:
    curves = {}
    for algorithm in ("q", "psi", "g", "rl_only"):
        path = Path(tune_dir) / algorithm / "curves.csv"
        if path.is_file():
            with path.open() as handle:
                curves[algorithm] = list(csv.DictReader(handle))
    return curves


def write_report(output: Path, metrics: dict, samples: dict[str, np.ndarray],
                 curves: dict[str, list[dict]], per_model: int = 3) -> Path:
    """Write ``output/report.html`` and return its path."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Sequence Tutor report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}.paper{color:#777}img{max-width:100%}</style></head><body>",
        "<h1>Sequence Tutor: evaluation</h1>",
        f"<p>{metrics['num_samples']:,} compositions per model, domain {metrics['domain']}, "
        f"rule name binding <code>{html.escape(str(metrics.get('name_binding')))}</code>. "
        "Fractions are fractions; the grey columns are the paper's Table 1 (its corpus and "
        "reference binding differ: read every model against the data row).</p>",
    ]
    if metrics.get("missing_models"):
        parts.append(f"<p>Not tuned, so not evaluated: "
                     f"{html.escape(', '.join(metrics['missing_models']))}.</p>")
    parts += ["<h2>Rule statistics</h2>", statistics_table(metrics["models"])]
    intervals = metrics.get("intervals_per_composition")
    if intervals:
        names = [m for m in MODEL_ORDER if m in intervals]
        kinds = list(next(iter(intervals.values())))
        rows = "".join(
            f"<tr><th>{kind}</th>"
            + "".join(f"<td>{_cell(intervals[n][kind])}</td>" for n in names) + "</tr>"
            for kind in kinds)
        parts += ["<h2>Intervals per composition</h2>",
                  "<table><thead><tr><th>interval</th>"
                  + "".join(f"<th>{n}</th>" for n in names) + f"</tr></thead>{rows}</table>"]
    curve_image = curves_png(curves)
    if curve_image:
        parts += ["<h2>Training curves (paper Figure 2)</h2>",
                  f"<img alt='training curves' src='{curve_image}'>"]
    parts.append("<h2>Samples</h2>")
    for name in (m for m in MODEL_ORDER if m in samples):
        melodies = np.asarray(samples[name])[:per_model]
        parts += [f"<h3>{html.escape(name)}</h3>",
                  f"<img alt='piano rolls of {name}' src='{piano_roll_png(melodies)}'><p>"]
        for index, melody in enumerate(melodies):
            midi, wav = midi_and_wav(melody)
            parts.append(f"<span>#{index} <audio controls src='{wav}'></audio> "
                         f"<a download='{name}_{index}.mid' href='{midi}'>MIDI</a></span> ")
        parts.append("</p>")
    parts.append("</body></html>")
    path = Path(output) / REPORT_FILE
    path.write_text("\n".join(parts))
    return path
