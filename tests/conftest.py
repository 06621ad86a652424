"""Shared fixtures: tiny corpora written by the tests themselves."""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # the packages set it too; tests may import TF first

import pytest

from seqtutor import config as config_lib

pytest_plugins = ["tests.worker_exit"]  # a dead xdist worker's exit status in its report

# In-process Beam runner: the multi-process one is exercised by the CLI test.
FAST_BEAM_ARGS = ["--runner=DirectRunner", "--direct_running_mode=in_memory",
                  "--direct_num_workers=1"]


@pytest.fixture(scope="session")
def melody_smoke_prior(tmp_path_factory):
    """prepare_data and pretrain of the melody smoke config, run once for the whole session
    (about a minute). Tests link them into their own workdirs: see ``workdir_with_prior``."""
    from seqtutor.pipeline import runner

    workdir = tmp_path_factory.mktemp("melody_smoke_prior")
    config = config_lib.load_config("configs/melody_smoke.yaml",
                                    [("prepare_data.beam_args", FAST_BEAM_ARGS)])
    for stage in ("prepare_data", "pretrain"):
        runner.run_stage(config, stage, workdir)
    return workdir


def workdir_with_prior(workdir, prior_workdir):
    """``workdir`` with the shared prepare_data and pretrain artifacts linked in, so that what
    a test tunes or evaluates stays in its own workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stage in ("prepare_data", "pretrain"):
        (workdir / stage).symlink_to(prior_workdir / stage)
    return workdir


def melody_smoke_config(*overrides):
    """configs/melody_smoke.yaml with Beam in this process and ``overrides``."""
    from seqtutor import config as config_lib

    return config_lib.load_config("configs/melody_smoke.yaml",
                                  [("prepare_data.beam_args", FAST_BEAM_ARGS), *overrides])


def read_curve(path):
    """A tune artifact's curves.csv as rows of floats."""
    import csv

    from seqtutor import layout

    with open(path / layout.CURVES_FILE) as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def melody_note_sequence(pitches, durations=None, *, drums=False, instrument=0, qpm=120.0):
    """A monophonic NoteSequence: ``pitches`` one after another (durations in 16th steps)."""
    from note_seq.protobuf import music_pb2

    durations = durations or [2] * len(pitches)
    sequence = music_pb2.NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(qpm=qpm)
    sequence.time_signatures.add(numerator=4, denominator=4)
    step_seconds = 60.0 / qpm / 4
    time = 0.0
    for pitch, steps in zip(pitches, durations):
        if pitch is not None:
            sequence.notes.add(pitch=pitch, velocity=90, start_time=time,
                               end_time=time + steps * step_seconds, is_drum=drums,
                               instrument=instrument, program=0)
        time += steps * step_seconds
    sequence.total_time = time
    return sequence


def write_midi(sequence, path):
    import note_seq

    note_seq.sequence_proto_to_midi_file(sequence, str(path))
    return path


SCALE_TUNE = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62] * 6  # C major, 84 notes


@pytest.fixture
def midi_corpus(tmp_path):
    """A directory of MIDI files: three good tunes and one of every kind of bad input."""
    corpus = tmp_path / "midi"
    corpus.mkdir()
    write_midi(melody_note_sequence(SCALE_TUNE), corpus / "scale_c.mid")
    # The same tune in D major (two sharps): transposes to the same melody -> a duplicate.
    d_major = melody_note_sequence([p + 2 for p in SCALE_TUNE])
    d_major.key_signatures.add(key=2)
    write_midi(d_major, corpus / "scale_d.mid")
    write_midi(melody_note_sequence([57, 60, 64, 67, 69, 72, 76, 79] * 12, [1, 1, 2, 4] * 24),
               corpus / "arpeggio.midi")
    good = (corpus / "scale_c.mid").read_bytes()
    (corpus / "truncated.mid").write_bytes(good[: len(good) // 3])
    (corpus / "not_midi.mid").write_text("this is not a MIDI file\n")
    (corpus / "empty.mid").write_bytes(b"")
    write_midi(melody_note_sequence([36, 38, 42, 46] * 20, drums=True, instrument=9),
               corpus / "drums.mid")
    write_midi(melody_note_sequence([60, 62] * 40), corpus / "two_pitches.mid")  # no melody
    return corpus


def melody_config(**prepare_data):
    """A validated Config for the melody domain with fast Beam options."""
    values = {"builtin_corpus": "none", "sequence_length": 32, "eval_fraction": 0.5,
              "num_shards": 1, "beam_args": FAST_BEAM_ARGS}
    values.update(prepare_data)
    return config_lib.config_from_dict({"name": "test", "prepare_data": values})


def write_token_dataset(data_dir, train, eval_=None, *, num_tokens=38):
    """A minimal prepare_data directory: one shard per split and vocab.json."""
    import json

    import tensorflow as tf

    from seqtutor import tfrecords

    data_dir.mkdir(parents=True, exist_ok=True)
    for split, sequences in (("train", train), ("eval", train if eval_ is None else eval_)):
        path = tfrecords.shard_prefix(data_dir, "melody", split) + "-00000-of-00001"
        with tf.io.TFRecordWriter(path) as writer:
            for i, tokens in enumerate(sequences):
                writer.write(tfrecords.serialize_example(tokens, f"seq{i}", 0))
    length = max(len(s) for s in train)
    (data_dir / "vocab.json").write_text(json.dumps(
        {"domain": "melody", "num_tokens": num_tokens, "sequence_length": length}))
    return data_dir


# Four 16-step patterns a tiny LSTM can learn exactly (after the first token, each is
# determined by its first note): C major scale runs and arpeggios with holds.
TINY_PATTERNS = [
    [14, 0, 16, 0, 18, 0, 19, 0, 21, 0, 23, 0, 25, 0, 26, 0],
    [26, 0, 25, 0, 23, 0, 21, 0, 19, 0, 18, 0, 16, 0, 14, 0],
    [9, 0, 0, 0, 14, 0, 0, 0, 18, 0, 0, 0, 21, 0, 1, 0],
    [21, 0, 18, 0, 14, 0, 9, 0, 14, 0, 18, 0, 21, 0, 0, 0],
]


def pretrain_config(**pretrain):
    values = {"lstm_units": [32], "batch_size": 8, "learning_rate": 0.01, "max_steps": 40,
              "eval_every": 20, "shuffle_buffer": 100, "l2": 0.0}
    values.update(pretrain)
    return config_lib.config_from_dict({"name": "test", "pretrain": values})
