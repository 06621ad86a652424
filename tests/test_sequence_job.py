"""The Beam job's own parts: keeping one of identical sequences and the corpus summary, whose
merges the DirectRunner seldom exercises on test-sized corpora."""

from seqtutor.corpus import CorpusSequence, sequence_key
from seqtutor.data_prep import sequence_job


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
    import numpy as np

    from seqtutor.readers import ReadSequences

    reader = ReadSequences(lambda path: [(path, np.array([3, 1], np.int64))])
    (sequence,) = list(reader._safe_read("f.txt"))
    assert sequence == ("f.txt", [3, 1], None) and type(sequence.tokens[0]) is int
