"""The Beam job's own parts: keeping one of identical sequences and the corpus summary, whose
merges the DirectRunner seldom exercises on test-sized corpora, and shards written in an order
that does not depend on how the records arrive; and the random order evaluate samples its data
row in."""

import subprocess
import sys

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from seqtutor import tfrecords
from seqtutor.corpus import CorpusSequence, sequence_key
from seqtutor.data_prep import sequence_job
from tests.conftest import FAST_BEAM_ARGS


def _combine_in_parts(fn, parts):
    """What a runner does with pre-combined bundles: add each part, then merge the parts."""
    accumulators = []
    for part in parts:
        accumulator = fn.create_accumulator()
        for element in part:
            accumulator = fn.add_input(accumulator, element)
        accumulators.append(accumulator)
    return fn.extract_output(fn.merge_accumulators(accumulators))


def test_identical_sequences_keep_the_smallest_source_however_they_are_bundled():
    fn = sequence_job.FirstOfIdenticalFn()
    copies = [sequence_job._keyed(CorpusSequence(source, [1, 2, 3]))[1]
              for source in ("c", "a", "b", "d")]
    for parts in ([copies], [copies[:1], copies[1:]], [copies[2:], [], copies[:2]]):
        count, kept = _combine_in_parts(fn, parts)
        assert count == 4 and kept[0] == "a"


def test_corpus_summary_is_the_same_however_it_is_bundled():
    fn = sequence_job.CorpusSummaryFn(lambda tokens: {"max_ones": tokens.count("1")})
    elements = [("train", ("s1", list("1102"), None)), ("eval", ("s2", list("1111111"), None)),
                ("train", ("s3", list("21"), None)), ("train", ("s4", list("0" * 20), None))]
    whole = _combine_in_parts(fn, [elements])
    assert whole == _combine_in_parts(fn, [elements[:1], [], elements[1:3], elements[3:]])
    assert whole["tokens"] == ["0", "1", "2"]
    assert whole["sequences"] == {"train": 3, "eval": 1}
    # The shortest training sequence; the longest of both splits; maxima over training only.
    assert (whole["min_length"], whole["max_length"], whole["max_ones"]) == (2, 20, 2)
    assert whole["length_histogram"] == {"0": 3, "16": 1}


def test_an_empty_corpus_summary_has_every_key():
    fn = sequence_job.CorpusSummaryFn(lambda tokens: {})
    empty = fn.extract_output(fn.create_accumulator())
    assert empty["tokens"] == [] and empty["min_length"] == 0 and empty["max_length"] == 0


def test_the_sequence_key_tells_apart_what_joining_would_merge():
    assert sequence_key(["1", "23"]) != sequence_key(["12", "3"])


def test_a_sequence_crosses_the_shuffle_and_comes_back_unchanged():
    for sequence in (CorpusSequence("path:3@0", [1, 2, 3]),          # no group: split by tokens
                     CorpusSequence("CCO", ["C", "C", "O"], "CCO"),  # group = source (SMILES)
                     CorpusSequence("a.mid@1", [5, 0, 7], "digest")):
        key, value = sequence_job._keyed(sequence)
        assert sequence_job._unkeyed((key, (1, value))) == tuple(sequence)


def test_of_identical_sequences_the_first_source_is_kept_counting_at_indices_as_numbers():
    fn = sequence_job.FirstOfIdenticalFn()
    for sources, kept in ((["a@10", "a@2"], "a@2"), (["t#123@0", "t#12@0"], "t#12@0"),
                          (["b", "a@5"], "a@5")):
        values = [sequence_job._keyed(CorpusSequence(s, [1]))[1] for s in sources]
        assert _combine_in_parts(fn, [values])[1][0] == kept


def test_a_plain_reader_function_may_yield_numpy_tokens():
    from seqtutor.readers import ReadSequences

    reader = ReadSequences(lambda path: [(path, np.array([3, 1], np.int64))])
    (sequence,) = list(reader._safe_read("f.txt"))
    assert sequence == ("f.txt", [3, 1], None) and type(sequence.tokens[0]) is int


def _write_shards(records, num_shards, out_dir, beam_args):
    prefix = str(out_dir / "toy-train.tfrecord")
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        _ = (pipeline | beam.Create(records)
             | sequence_job.WriteOrderedShards(prefix, num_shards))
    return sorted(out_dir.iterdir())


def _read_records(path):
    import tensorflow as tf

    return [record.numpy() for record in tf.data.TFRecordDataset(str(path))]


def test_shards_are_byte_identical_however_the_records_arrive(tmp_path):
    records = [tfrecords.serialize_example([i % 7, i], f"in.smi@{i}", 0) for i in range(300)]
    one = _write_shards(records, 3, tmp_path / "one", FAST_BEAM_ARGS)
    # Another order, in bundles over two threads: WriteToTFRecord would deal them otherwise.
    other = _write_shards(records[::-1], 3, tmp_path / "other",
                          ["--runner=DirectRunner", "--direct_running_mode=multi_threading",
                           "--direct_num_workers=2"])
    assert [p.name for p in one] == [f"toy-train.tfrecord-0000{i}-of-00003" for i in range(3)]
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in other]
    shards = [_read_records(path) for path in one]
    assert sorted(sum(shards, [])) == sorted(records)
    assert all(len(shard) > 50 for shard in shards)  # the hash spreads them
    for shard in shards:  # in key order, not in the order they came
        assert shard == sorted(shard, key=tfrecords.record_key)


def test_a_shard_without_records_is_written_empty(tmp_path):
    records = [tfrecords.serialize_example([1, 2], "a", 0)]
    paths = _write_shards(records, 4, tmp_path, FAST_BEAM_ARGS)
    assert len(paths) == 4
    assert sorted(len(_read_records(path)) for path in paths) == [0, 0, 0, 1]


def test_a_record_serialises_to_the_same_bytes_in_every_process():
    # A proto map's order varies from process to process unless serialised deterministically.
    code = ("import sys; from seqtutor import tfrecords; "
            "sys.stdout.write(tfrecords.serialize_example([5, 3, 9], 'x.smi@4', 2).hex())")
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True) for _ in range(5)]
    outputs = {process.communicate(timeout=300)[0] for process in processes}
    assert outputs == {tfrecords.serialize_example([5, 3, 9], "x.smi@4", 2).hex()}


def _write_plain_shards(records, paths):
    """Records dealt round-robin over plain TFRecord files, in the order given."""
    import tensorflow as tf

    writers = [tf.io.TFRecordWriter(str(path)) for path in paths]
    for index, record in enumerate(records):
        writers[index % len(writers)].write(record)
    for writer in writers:
        writer.close()


def _as_tuples(records):
    return [(tuple(int(t) for t in r["tokens"]), bytes(r["source"]), int(r["start_step"]))
            for r in records]


def test_a_random_order_of_a_split_is_fair_and_ignores_the_shards(tmp_path):
    # A corpus in a drifting order: record i holds token i. The first 100 in file order
    # average 49.5; a fair sample of 100 out of 1,000 averages 499.5 +- 29.
    records = [tfrecords.serialize_example([i], f"in.smi@{i}", i % 3) for i in range(1000)]
    one, three = tmp_path / "one", tmp_path / "three"
    one.mkdir(), three.mkdir()
    _write_plain_shards(records, [one / "toy-eval.tfrecord-00000-of-00001"])
    _write_plain_shards(records[::-1], [three / f"toy-eval.tfrecord-0000{i}-of-00003"
                                        for i in range(3)])
    ordered = _as_tuples(tfrecords.records_in_random_order(one, "eval", seed=0))
    assert ordered == _as_tuples(tfrecords.records_in_random_order(three, "eval", seed=0))
    assert sorted(ordered) == sorted(_as_tuples(
        tfrecords.load_split(one, "eval").as_numpy_iterator()))  # each record once, parsed alike
    first = [tokens[0] for tokens, _, _ in ordered[:100]]
    assert abs(np.mean(first) - 499.5) < 150
    other_seed = _as_tuples(tfrecords.records_in_random_order(one, "eval", seed=1))
    assert other_seed != ordered and sorted(other_seed) == sorted(ordered)
    with pytest.raises(FileNotFoundError, match="no 'train' TFRecord shards"):
        tfrecords.records_in_random_order(one, "train", seed=0)
