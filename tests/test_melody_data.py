"""The Beam job on the melody corpus: MIDI files written by the tests (bad ones included) and
music21 tunes."""

import json

import numpy as np
import pytest

from seqtutor import corpus
from seqtutor.domains.melody import sources as melody_sources
from seqtutor import tfrecords
from seqtutor import artifacts
from seqtutor.pipeline import runner
from tests.conftest import melody_config


def _records(data_dir, split):
    return sorted((r["source"].numpy().decode(), int(r["start_step"]), r["tokens"].numpy().tolist())
                  for r in tfrecords.load_split(data_dir, split))


def test_midi_corpus_with_bad_files(midi_corpus, tmp_path):
    config = melody_config(input=[str(midi_corpus)], eval_fraction=0.6)
    result = runner.run_stage(config, "prepare_data", tmp_path / "work")
    out = result.path
    stats = json.loads((out / "stats.json").read_text())

    assert stats["inputs_read"] == 8
    # Every bad input is counted with its reason; the good ones go on.
    assert stats["dropped_by_reason"] == {"corrupt_midi": 3, "drums_only": 1, "no_melody": 1}
    reasons = {d["source"].rsplit("/", 1)[-1]: d["reason"] for d in stats["dropped_examples"]}
    assert reasons == {"truncated.mid": "corrupt_midi", "not_midi.mid": "corrupt_midi",
                       "empty.mid": "corrupt_midi", "drums.mid": "drums_only",
                       "two_pitches.mid": "no_melody"}
    # The D major copy of the C major scale transposes to the same melody: de-duplicated.
    assert stats["duplicate_sequences"] == 1
    assert stats["sequences_written"] == 2
    assert sum(stats["records_out"].values()) > 0

    records = _records(out, "train") + _records(out, "eval")
    assert len(records) == sum(stats["records_out"].values())
    for _, _, tokens in records:
        assert len(tokens) == 32 and 0 <= min(tokens) and max(tokens) < 38
    scale = [r for r in records if "scale_c.mid" in r[0] and r[1] == 0]
    # C4 D4 E4 F4 ... as 8th notes: token 14 then a hold, 16, hold, 18, hold, 19 ...
    assert scale[0][2][:8] == [14, 0, 16, 0, 18, 0, 19, 0]

    assert json.loads((out / "vocab.json").read_text())["num_tokens"] == 38
    record = artifacts.read_artifact(out)
    assert record["stage"] == "prepare_data" and record["summary"]["sequences_written"] == 2


def test_dataset_loads_with_tfds_builder_from_directory(midi_corpus, tmp_path):
    import tensorflow_datasets as tfds

    config = melody_config(input=[str(midi_corpus)], eval_fraction=0.6)
    out = runner.run_stage(config, "prepare_data", tmp_path / "work").path
    builder = tfds.builder_from_directory(str(out))
    counts = {split: sum(1 for _ in builder.as_dataset(split=split)) for split in ("train", "eval")}
    stats = json.loads((out / "stats.json").read_text())
    assert counts == stats["records_out"]
    example = next(iter(builder.as_dataset(split="train")))
    assert example["tokens"].shape == (32,)


def test_music21_tunes_and_same_input_same_records(tmp_path):
    config = melody_config(builtin_corpus="music21_folk", builtin_collections=["oneills1850"],
                           max_builtin_tunes=12, eval_fraction=0.3, num_shards=2)
    first = runner.run_stage(config, "prepare_data", tmp_path / "a").path
    second = runner.run_stage(config, "prepare_data", tmp_path / "b").path
    stats = json.loads((first / "stats.json").read_text())
    assert stats["inputs_read"] == 12 and stats["sequences_written"] >= 10
    for split in ("train", "eval"):
        assert _records(first, split) == _records(second, split)
        assert _records(first, split)
    # All tunes are in C major / A minor after transposition: almost no black keys.
    tokens = np.array([r[2] for r in _records(first, "train")])
    pitches = tokens[tokens >= 2]
    black = np.isin(pitches, [3, 5, 8, 10, 12, 15, 17, 20, 22, 24, 27, 29, 32, 34, 36])
    assert black.mean() < 0.05


def test_split_is_by_source_and_deterministic():
    assert corpus.split_of("ab12", 0.5) == corpus.split_of("ab12", 0.5)
    splits = [corpus.split_of(f"tune{i}", 0.1) for i in range(2000)]
    assert 0.07 < splits.count("eval") / 2000 < 0.13


def test_missing_input_fails_before_beam(tmp_path):
    config = melody_config(input=[str(tmp_path / "no_such_dir" / "*.mid")])
    with pytest.raises(corpus.InputNotFoundError, match="no_such_dir"):
        melody_sources.list_items(config.prepare_data)
    with pytest.raises(runner.StageError, match="matches no file"):
        runner.run_stage(config, "prepare_data", tmp_path / "work")
    assert not (tmp_path / "work" / "prepare_data").exists()


def no_artifact_or_partial(workdir):
    """Neither prepare_data nor its partial directory (its lock file stays: artifacts.claim)."""
    return not (workdir / "prepare_data").exists() and not (
        workdir / ".prepare_data.partial").exists()


def test_empty_corpus_is_an_error_and_leaves_no_artifact(tmp_path):
    config = melody_config()  # no input, no built-in corpus
    with pytest.raises(runner.StageError, match="corpus is empty"):
        runner.run_stage(config, "prepare_data", tmp_path / "work")
    assert no_artifact_or_partial(tmp_path / "work")


def test_zero_melodies_out_is_an_error_and_leaves_no_artifact(midi_corpus, tmp_path):
    bad_only = [str(midi_corpus / name) for name in ("not_midi.mid", "drums.mid")]
    config = melody_config(input=bad_only)
    with pytest.raises(runner.StageError, match=r"no train or eval records.*corrupt_midi"):
        runner.run_stage(config, "prepare_data", tmp_path / "work")
    assert no_artifact_or_partial(tmp_path / "work")


def test_split_abc_tunes_keeps_file_header_fields():
    text = "% comment\nL:1/8\nX:1\nT:One\nK:G\nGABc|\n\nX:2\nT:Two\nK:D\nDEF|\n"
    tunes = melody_sources.split_abc_tunes(text)
    assert len(tunes) == 2
    assert tunes[0].startswith("L:1/8\nX:1") and "T:Two" in tunes[1]


def test_unparsable_abc_tune_is_a_counted_drop():
    with pytest.raises(corpus.DroppedInput) as caught:
        sequence = melody_sources.abc_tune_to_note_sequence("X:1\nT:broken\nK:Q##\n|:::]]\n")
        melody_sources.extract_melodies(sequence)
    assert caught.value.reason in {"abc_parse_error", "no_notes"}


def test_multitrack_midi_takes_the_melody_line():
    from tests.conftest import melody_note_sequence

    melody = melody_note_sequence([72, 74, 76, 77, 79, 81, 83, 84] * 8)
    bass = melody_note_sequence([36, 43, 41, 38] * 16, instrument=1)
    drums = melody_note_sequence([36, 42] * 32, drums=True, instrument=9)
    for extra in (bass, drums):
        for note in extra.notes:
            melody.notes.add().CopyFrom(note)
    melodies = melody_sources.extract_melodies(melody)
    assert len(melodies) == 1
    onsets = melodies[0][melodies[0] >= 2]
    assert onsets[:3].tolist() == [72 - 46 - 12, 74 - 46 - 12, 76 - 46 - 12]
