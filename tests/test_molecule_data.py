"""The Beam job on the molecule corpus: SMILES files written by the tests (bad lines
included)."""

import gzip
import json

import pytest

from seqtutor.data_prep import sequence_job
from seqtutor.domains.molecule import reader
from seqtutor.domains.molecule.domain import MoleculeDomain
from seqtutor import tfrecords
from seqtutor.corpus import EmptyCorpusError
from seqtutor.corpus import InputNotFoundError
from seqtutor.domains.molecule import tokens
from seqtutor import config as config_lib
from seqtutor.pipeline import runner
from tests.conftest import FAST_BEAM_ARGS

GOOD = ["CCO", "c1ccccc1", "OC(=O)c1ccccc1Cl", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "C[C@@H](N)C(=O)O",
        "CCN(CC)CC", "Brc1ccc(Br)cc1", "C1CC2CCC1C2", "CCCCCC(=O)OC", "c1ccc2[nH]ccc2c1"]


def molecule_config(**prepare_data):
    values = {"builtin_corpus": "none", "eval_fraction": 0.3, "num_shards": 1,
              "beam_args": FAST_BEAM_ARGS}
    values.update(prepare_data)
    return config_lib.config_from_dict({"name": "test", "domain": "molecule",
                                        "prepare_data": values})


@pytest.fixture
def smiles_corpus(tmp_path):
    corpus = tmp_path / "smiles"
    corpus.mkdir()
    # .smi: SMILES then a name; a bad string, an empty line, a non-canonical duplicate of CCO.
    (corpus / "a.smi").write_text("\n".join(f"{s} mol{i}" for i, s in enumerate(GOOD[:6]))
                                  + "\nnot_a_smiles x\n\nOCC ethanol_again\n")
    # .csv.gz with the SMILES in a named column, quoted fields included.
    rows = ["id,name,smiles"] + [f'{i},"name, {i}",{s}' for i, s in enumerate(GOOD[6:])]
    rows.append('99,"too long",' + "C" * 120)
    with gzip.open(corpus / "b.csv.gz", "wt") as handle:
        handle.write("\n".join(rows) + "\n")
    return corpus


def test_smiles_files_with_bad_lines(smiles_corpus, tmp_path):
    config = molecule_config(input=[str(smiles_corpus)], smiles_column="smiles")
    out = runner.run_stage(config, "prepare_data", tmp_path / "work").path
    stats = json.loads((out / "stats.json").read_text())
    assert stats["inputs_read"] == 2 and stats["lines_read"] == 9 + 5
    assert stats["dropped_by_reason"] == {"empty_line": 1, "invalid_smiles": 1, "too_long": 1}
    assert stats["duplicate_sequences"] == 1  # OCC is CCO once canonicalised
    assert stats["sequences_written"] == len(GOOD)

    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab["tokens"][:3] == list(tokens.SPECIAL_TOKENS)
    assert {"Cl", "Br", "[nH]", "[C@@H]"} <= set(vocab["tokens"])
    assert vocab["min_length"] >= 3 and vocab["max_carbon_run"] >= 1
    codec = tokens.Codec(vocab)
    written = set()
    for split in tfrecords.SPLITS:
        sources = []
        for record in tfrecords.load_split(out, split):
            ids = record["tokens"].numpy().tolist()
            smiles = record["source"].numpy().decode()
            assert ids == codec.encode(smiles)
            sources.append(smiles)
        # The batched reader (novelty's training set) reads the same strings, across batches.
        assert sorted(tfrecords.read_sources(out, split, batch_size=3)) == sorted(sources)
        written.update(sources)
    from seqtutor.domains.molecule import chemistry
    assert written == {chemistry.canonical(s) for s in GOOD}


def test_damaged_files_and_bytes_that_are_not_utf8_are_counted_drops(tmp_path):
    corpus = tmp_path / "smiles"
    corpus.mkdir()
    # Latin-1 bytes: in a name (the line is kept), in a SMILES (the line is an invalid SMILES).
    (corpus / "latin1.smi").write_bytes(b"CCO caf\xe9\nc1ccccc1 x\nCC\xe9O y\nCCN z\n")
    (corpus / "random.smi.gz").write_bytes(b"3\xfd not gzip at all")  # no line read
    # Cut inside gzip's trailer: both lines decompress, then the end is missing.
    (corpus / "cut.smi.gz").write_bytes(gzip.compress(b"CCCl a\nOC(=O)C b\n")[:-4])
    # Cut mid-stream: whole lines before the cut are read, never the cut one (a shorter SMILES
    # that may well be valid).
    long_lines = [f"{'C' * n}O" for n in range(1, 41)] * 50
    packed = gzip.compress("".join(f"{s} x\n" for s in long_lines).encode())
    (corpus / "mid.smi.gz").write_bytes(packed[:len(packed) // 2])
    config = molecule_config(input=[str(corpus)], eval_fraction=0.4)
    out = runner.run_stage(config, "prepare_data", tmp_path / "work").path
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dropped_by_reason"] == {"invalid_smiles": 1, "unreadable_file": 3}
    written = {source for split in tfrecords.SPLITS
               for source in tfrecords.read_sources(out, split, batch_size=100)}
    from seqtutor.domains.molecule import chemistry
    first = {chemistry.canonical(s) for s in ("CCO", "c1ccccc1", "CCN", "CCCl", "OC(=O)C")}
    assert first < written <= first | {chemistry.canonical(s) for s in long_lines}
    unreadable = {d["source"].rsplit("/", 1)[1] for d in stats["dropped_examples"]
                  if d["reason"] == "unreadable_file"}
    assert unreadable == {"random.smi.gz", "cut.smi.gz", "mid.smi.gz"}


def test_dataset_loads_with_tfds_builder_from_directory(smiles_corpus, tmp_path):
    import tensorflow_datasets as tfds

    config = molecule_config(input=[str(smiles_corpus / "a.smi")])
    out = runner.run_stage(config, "prepare_data", tmp_path / "work").path
    builder = tfds.builder_from_directory(str(out))
    counts = {split: sum(1 for _ in builder.as_dataset(split=split)) for split in ("train", "eval")}
    assert counts == json.loads((out / "stats.json").read_text())["records_out"]


def test_builtin_moses_sample(tmp_path):
    config = molecule_config(builtin_corpus="moses", sample_size=300, eval_fraction=0.2)
    out = runner.run_stage(config, "prepare_data", tmp_path / "work").path
    stats = json.loads((out / "stats.json").read_text())
    assert stats["lines_read"] == 1_584_663
    assert 200 < stats["sequences_written"] < 400 and stats["inputs_dropped"] == 0
    # The sample and the split use different hashes: both splits get molecules.
    assert stats["records_out"]["eval"] > 20 and stats["records_out"]["train"] > 150


def test_bad_inputs_fail_before_beam_and_leave_no_artifact(smiles_corpus, tmp_path):
    with pytest.raises(InputNotFoundError, match="nothing_here"):
        reader.list_inputs(
            molecule_config(input=[str(tmp_path / "nothing_here.smi")]).prepare_data)
    with pytest.raises(runner.StageError, match="no column 'SMILES'"):
        runner.run_stage(molecule_config(input=[str(smiles_corpus / "b.csv.gz")]),
                         "prepare_data", tmp_path / "work")
    (tmp_path / "bad.smi").write_text("xx\nyy\n")
    with pytest.raises(runner.StageError, match=r"no train or eval records.*for example: "
                                                r"\S*bad.smi: invalid_smiles \(xx\)"):
        runner.run_stage(molecule_config(input=[str(tmp_path / "bad.smi")]), "prepare_data",
                         tmp_path / "work2")
    assert not (tmp_path / "work2" / "prepare_data").exists()
    with pytest.raises(EmptyCorpusError):
        sequence_job.run_job(MoleculeDomain, molecule_config().prepare_data, tmp_path)


def test_molecule_config_errors_name_the_key():
    with pytest.raises(config_lib.ConfigError, match="reward.qde: unknown key"):
        config_lib.config_from_dict({"domain": "molecule", "reward": {"qde": 1}})
    with pytest.raises(config_lib.ConfigError, match="domain: unknown domain 'protein'"):
        config_lib.config_from_dict({"domain": "protein"})
    with pytest.raises(config_lib.ConfigError, match="prepare_data.builtin_corpus"):
        config_lib.config_from_dict({"domain": "molecule",
                                     "prepare_data": {"builtin_corpus": "music21_folk"}})
    # G starts at the prior from log_prior too (its values start at v(s)): allowed.
    config_lib.load_config("configs/molecule.yaml", ["tune.algorithms=[psi, g]"])
    config = config_lib.load_config("configs/molecule.yaml")
    assert (config.tune.c, config.tune.gamma, config.tune.epsilon_final,
            config.tune.batch_episodes, config.tune.replay) == (2.85, 0.95, 0.01, 512,
                                                                "prioritized")
