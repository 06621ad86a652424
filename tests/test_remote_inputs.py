"""Inputs on a remote file system (gs://, s3://): listed and read through Beam's FileSystems, as
a job on Dataflow reads them. An in-memory object store stands in for the bucket; the datasets
written from it must equal those written from the same files on local disk."""

import json
from pathlib import Path

import pytest

from seqtutor import corpus, tfrecords
from seqtutor.pipeline import runner
from tests import object_store
from tests.conftest import melody_config
from tests.test_molecule_data import molecule_config, smiles_corpus  # noqa: F401 - a fixture


def _upload(directory: Path, prefix: str) -> None:
    for path in sorted(directory.iterdir()):
        object_store.put(prefix + path.name, path.read_bytes())


def _dataset(out: Path, root: str) -> tuple[dict, list]:
    """stats.json and every record, with each path relative to ``root``."""
    stats = json.loads((out / "stats.json").read_text().replace(root, ""))
    records = sorted((r["source"].numpy().decode().removeprefix(root), int(r["start_step"]),
                      r["tokens"].numpy().tolist())
                     for split in ("train", "eval") for r in tfrecords.load_split(out, split))
    return stats, records


def test_listing_a_remote_store_by_directory_and_by_glob():
    object_store.put("memstore://listing/midi/a.mid", b"x")
    object_store.put("memstore://listing/midi/deep/b.MID", b"x")
    object_store.put("memstore://listing/midi/notes.txt", b"x")
    object_store.put("memstore://listing/midi-other/c.mid", b"x")
    every = ["memstore://listing/midi/a.mid", "memstore://listing/midi/deep/b.MID"]
    # A directory is searched recursively for the domain's suffixes, as on local disk.
    assert corpus.list_input_files(["memstore://listing/midi/"], (".mid",)) == every
    assert corpus.list_input_files(["memstore://listing/midi"], (".mid",)) == every
    assert corpus.list_input_files(["memstore://listing/midi/a.mid"], (".mid",)) == every[:1]
    # A glob is matched as the store matches it: ** crosses /, * does not.
    assert corpus.list_input_files(["memstore://listing/midi/**.mid"], (".mid",)) == every[:1]
    assert corpus.list_input_files(["memstore://listing/midi/*"], (".mid",)) == [
        "memstore://listing/midi/a.mid", "memstore://listing/midi/notes.txt"]
    for missing in ("memstore://listing/none/", "memstore://listing/none", "memstore://listing/x*"):
        with pytest.raises(corpus.InputNotFoundError, match=missing.replace("*", r"\*")):
            corpus.list_input_files([missing], (".mid",))
    # A scheme no installed file system serves: named, not a traceback from Beam.
    with pytest.raises(corpus.InputNotFoundError, match="nosuchfs://bucket/x.mid"):
        corpus.list_input_files(["nosuchfs://bucket/x.mid"], (".mid",))


def test_melody_dataset_from_a_remote_store_equals_the_local_one(midi_corpus, tmp_path):
    root = "memstore://melody-bucket/midi/"
    _upload(midi_corpus, root)
    local = runner.run_stage(melody_config(input=[str(midi_corpus)], eval_fraction=0.6),
                             "prepare_data", tmp_path / "local").path
    remote = runner.run_stage(melody_config(input=[root], eval_fraction=0.6),
                              "prepare_data", tmp_path / "remote").path
    local_stats, local_records = _dataset(local, str(midi_corpus) + "/")
    remote_stats, remote_records = _dataset(remote, root)
    assert remote_stats == local_stats and local_stats["inputs_read"] == 8
    assert remote_records == local_records and local_records


def test_molecule_dataset_from_a_remote_store_equals_the_local_one(smiles_corpus, tmp_path):
    root = "memstore://molecule-bucket/smiles/"
    _upload(smiles_corpus, root)  # a .smi and a gzipped .csv
    local = runner.run_stage(molecule_config(input=[str(smiles_corpus)], smiles_column="smiles"),
                             "prepare_data", tmp_path / "local").path
    remote = runner.run_stage(molecule_config(input=[root], smiles_column="smiles"),
                              "prepare_data", tmp_path / "remote").path
    local_stats, local_records = _dataset(local, str(smiles_corpus) + "/")
    remote_stats, remote_records = _dataset(remote, root)
    assert remote_stats == local_stats and local_stats["lines_read"] == 14
    assert remote_records == local_records and local_records
