"""The prepare_data Beam job: any domain's corpus, through its corpus reader, to TFRecord shards.

Graph::

    the domain's inputs -> Reshuffle -> the domain's corpus reader (sequences; an input that
    yields nothing is counted by reason) -> keep one of identical sequences -> split by a hash of
    each sequence's group -> CorpusSummary (tokens, counts, lengths: one global combine)
    -> the domain's vocabulary of the summary -> encode and cut into records with it as a side
    input -> WriteOrderedShards (train, eval: shards in a fixed order, the same on every run)
           \\-> stats events and the summary -> JSON files -> stats.json

What differs between domains is the domain's (``seqtutor.domains``): which inputs it reads, its
reader, its vocabulary and encoding, and how a sequence is cut into records. The driver lists
the inputs before any Beam work (a missing path fails at once), then writes stats.json,
vocab.json and the TFDS metadata. Only pipeline options choose the runner, so the same code runs
on the DirectRunner, Dataflow, Flink or Spark.
"""

from __future__ import annotations

import collections
import json
import logging
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
# WriteToTFRecord's own record framing (length, masked CRC32C, data, masked CRC32C); private,
# but Beam is pinned in setup.py and a rename fails at import.
from apache_beam.io.tfrecordio import _TFRecordUtil
from apache_beam.options.pipeline_options import PipelineOptions

from seqtutor import console, tfrecords
from seqtutor.corpus import (DroppedInput, EmptyCorpusError, drop_counts, drops, read_events,
                             sequence_key, split_of)

log = logging.getLogger(__name__)

_STATS = "stats"
_STATS_PREFIX = "stats-events"
_SUMMARY_PREFIX = "corpus-summary"
_COUNTERS = "seqtutor.prepare_data"
# stats.json lists this many dropped inputs with their reason; the counts are exact.
MAX_DROPPED_EXAMPLES = 1000
LENGTH_BIN = 16  # stats.json's histogram of sequence lengths, in bins of this many tokens


_GROUP_IS_SOURCE = 1  # how a group equal to the source crosses the shuffle


def _keyed(sequence) -> tuple[tuple, tuple]:
    """(tokens, (source, group)): identical sequences share the key. Plain tuples, and the
    tokens only once: all of it crosses the shuffle, which Beam encodes fastest so. A group
    equal to the source (a molecule's canonical SMILES) crosses as a small marker."""
    source, tokens, group = sequence
    return tuple(tokens), (source, _GROUP_IS_SOURCE if group == source else group)


def _unkeyed(element) -> tuple[str, list, str | None]:
    """(tokens, (count, (source, group))) -> the kept (source, tokens, group)."""
    tokens, (_, (source, group)) = element
    return source, list(tokens), source if group == _GROUP_IS_SOURCE else group


def _assign_split(sequence: tuple, eval_fraction: float) -> tuple[str, tuple]:
    """(split, sequence): a hash of the sequence's group, or of its tokens without one."""
    _, tokens, group = sequence
    return split_of(group or sequence_key(tokens), eval_fraction), sequence


def _is_drop(element) -> bool:
    return isinstance(element[1], DroppedInput)


def _drop_event(element) -> dict:
    source, error = element
    beam.metrics.Metrics.counter(_COUNTERS, f"dropped_{error.reason}").inc()
    return {"event": "dropped", "source": source, "reason": error.reason,
            "detail": str(error)[:200]}


def _source_order(source: str) -> tuple[str, int]:
    """Sources in order, a trailing ``@N`` (the N-th sequence of an input) as a number:
    ``a@2`` before ``a@10``, and ``tune#12@0`` before ``tune#123@0``."""
    stem, at, index = source.rpartition("@")
    return (stem, int(index)) if at and index.isdigit() else (source, -1)


class FirstOfIdenticalFn(beam.CombineFn):
    """The (source, group) of identical sequences -> (how many, the one with the smallest
    source): deterministic."""

    def create_accumulator(self):
        return 0, None

    def add_input(self, accumulator, sequence):
        return self.merge_accumulators([accumulator, (1, sequence)])

    def merge_accumulators(self, accumulators):
        total, kept = 0, None
        for count, first in accumulators:
            total += count
            if first is not None and (kept is None
                                      or _source_order(first[0]) < _source_order(kept[0])):
                kept = first
        return total, kept

    def extract_output(self, accumulator):
        return accumulator


def _smaller(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


class CorpusSummaryFn(beam.CombineFn):
    """(split, sequence) -> distinct tokens, sequences per split, the shortest training and the
    longest sequence, a length histogram, and the maximum over the training split of each figure
    the domain's ``train_maxima(tokens)`` gives (the molecule's longest carbon run)."""

    def __init__(self, train_maxima):
        self._train_maxima = train_maxima

    def create_accumulator(self):
        return {"tokens": set(), "sequences": collections.Counter(), "min_length": None,
                "max_length": 0, "maxima": {}, "lengths": collections.Counter()}

    def add_input(self, acc, element):
        split, (_, tokens, _) = element
        acc["tokens"].update(tokens)
        acc["sequences"][split] += 1
        acc["max_length"] = max(acc["max_length"], len(tokens))
        acc["lengths"][len(tokens) // LENGTH_BIN * LENGTH_BIN] += 1
        if split == "train":
            acc["min_length"] = _smaller(acc["min_length"], len(tokens))
            for name, value in self._train_maxima(tokens).items():
                acc["maxima"][name] = max(value, acc["maxima"].get(name, value))
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for acc in accumulators:
            merged["tokens"] |= acc["tokens"]
            merged["sequences"] += acc["sequences"]
            merged["lengths"] += acc["lengths"]
            merged["max_length"] = max(merged["max_length"], acc["max_length"])
            merged["min_length"] = _smaller(merged["min_length"], acc["min_length"])
            for name, value in acc["maxima"].items():
                merged["maxima"][name] = max(value, merged["maxima"].get(name, value))
        return merged

    def extract_output(self, acc):
        return {"tokens": sorted(acc["tokens"]),
                "sequences": {split: acc["sequences"][split] for split in tfrecords.SPLITS},
                "min_length": acc["min_length"] or 0, "max_length": acc["max_length"],
                **acc["maxima"],
                "length_histogram": {str(k): v for k, v in sorted(acc["lengths"].items())}}


class ToRecordsFn(beam.DoFn):
    """(split, sequence) -> (split, serialised Example) per record the domain cuts it into."""

    def __init__(self, domain_class, options):
        self._domain = domain_class
        self._options = options

    def process(self, element, vocab):
        split, (source, tokens, _) = element
        encoded = self._domain.encode(vocab, tokens)
        records = 0
        for start, piece in self._domain.records(self._options, encoded):
            records += 1
            yield split, tfrecords.serialize_example(piece, source, start)
        if not records:
            yield beam.pvalue.TaggedOutput(_STATS, {"event": "no_record"})


def _shard_keyed(record: bytes, num_shards: int) -> tuple[int, tuple[bytes, bytes]]:
    key = tfrecords.record_key(record)
    return int.from_bytes(key[:8], "little") % num_shards, (key, record)


def _write_shard(element, prefix: str, num_shards: int):
    """(shard index, its (key, record) pairs and a None marker) -> the shard file, in key
    order. A worker retried after a failure writes the same bytes again."""
    index, keyed = element
    path = tfrecords.shard_name(prefix, index, num_shards)
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as file:
        for _, record in sorted(pair for pair in keyed if pair is not None):
            _TFRecordUtil.write_record(file, record)
    yield path


class WriteOrderedShards(beam.PTransform):
    """Serialised records -> ``num_shards`` TFRecord files: each record in the shard and at the
    place a hash of its bytes gives (``tfrecords.record_key``), an empty shard written empty.
    Unlike WriteToTFRecord, which deals records round-robin from a random start, the same
    records give byte-identical shards, so a rerun on the same CPU machine trains the same prior
    bit for bit. A shard is sorted in one worker's memory: size num_shards for that."""

    def __init__(self, prefix: str, num_shards: int):
        super().__init__()
        self._prefix, self._num_shards = prefix, num_shards

    def expand(self, records):
        every_shard = records.pipeline | "EveryShard" >> beam.Create(
            [(index, None) for index in range(self._num_shards)])
        return ((records | "KeyByHash" >> beam.Map(_shard_keyed, self._num_shards),
                 every_shard)
                | "WithEveryShard" >> beam.Flatten()
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.FlatMap(_write_shard, self._prefix, self._num_shards))


def build_pipeline(pipeline: beam.Pipeline, inputs: list, output_dir: Path, domain_class,
                   options) -> None:
    """The job's graph, from the listed inputs to shards, stats events and the summary."""
    read = (pipeline
            | "ListInputs" >> beam.Create(inputs)
            # Break fusion so that reading, often the costly part, spreads over every worker.
            | "Spread" >> beam.Reshuffle()
            | "ReadCorpus" >> domain_class.corpus_reader(options))
    dropped = (read
               | "Dropped" >> beam.Filter(_is_drop)
               | "DropEvents" >> beam.Map(_drop_event))
    identical = (read
                 | "Sequences" >> beam.Filter(lambda element: not _is_drop(element))
                 | "KeyByTokens" >> beam.Map(_keyed)
                 | "FirstOfIdentical" >> beam.CombinePerKey(FirstOfIdenticalFn()))
    duplicates = identical | "DuplicateEvents" >> beam.FlatMap(
        lambda kv: [{"event": "duplicates", "count": kv[1][0] - 1}] if kv[1][0] > 1 else [])
    sequences = (identical
                 | "Unique" >> beam.Map(_unkeyed)
                 | "Split" >> beam.Map(_assign_split, options.eval_fraction))
    summary = sequences | "CorpusSummary" >> beam.CombineGlobally(
        CorpusSummaryFn(domain_class.train_maxima))
    vocab = summary | "Vocabulary" >> beam.Map(
        lambda corpus: domain_class.vocabulary(options, corpus))
    records = sequences | "ToRecords" >> beam.ParDo(
        ToRecordsFn(domain_class, options), beam.pvalue.AsSingleton(vocab)).with_outputs(
            _STATS, main="records")
    for split in tfrecords.SPLITS:
        _ = (records.records
             | f"Select{split.title()}" >> beam.Filter(lambda r, s=split: r[0] == s)
             | f"Payload{split.title()}" >> beam.Values()
             | f"Write{split.title()}" >> WriteOrderedShards(
                 tfrecords.shard_prefix(output_dir, domain_class.name, split),
                 options.num_shards))
    record_counts = (records.records
                     | "RecordSplits" >> beam.Keys()
                     | "CountRecords" >> beam.combiners.Count.PerElement()
                     | "RecordEvents" >> beam.Map(
                         lambda kv: {"event": "records", "split": kv[0], "count": kv[1]}))
    _ = (summary
         | "SummaryToJson" >> beam.Map(json.dumps, sort_keys=True)
         | "WriteSummary" >> beam.io.WriteToText(str(output_dir / _SUMMARY_PREFIX),
                                                 file_name_suffix=".json", num_shards=1))
    _ = ((dropped, duplicates, records[_STATS], record_counts)
         | "MergeStats" >> beam.Flatten()
         | "StatsToJson" >> beam.Map(json.dumps, sort_keys=True)
         | "WriteStats" >> beam.io.WriteToText(str(output_dir / _STATS_PREFIX),
                                               file_name_suffix=".jsonl", num_shards=1))


def _summarise(events: list[dict], corpus: dict, num_inputs: int, input_stats: dict) -> dict:
    records = {split: 0 for split in tfrecords.SPLITS}
    for event in events:
        if event["event"] == "records":
            records[event["split"]] += event["count"]
    sequences = corpus.get("sequences", {})
    figures = {key: value for key, value in corpus.items()
               if key not in ("tokens", "sequences", "length_histogram")}
    return {
        "inputs_read": num_inputs,
        **input_stats,
        **drop_counts(events),
        "dropped_examples": sorted(drops(events), key=lambda d: (
            d["reason"], d["source"], d["detail"]))[:MAX_DROPPED_EXAMPLES],
        "duplicate_sequences": sum(e["count"] for e in events if e["event"] == "duplicates"),
        "sequences_written": sum(sequences.values()),
        "sequences_per_split": sequences,
        "sequences_without_record": sum(1 for e in events if e["event"] == "no_record"),
        "records_out": records,
        "distinct_tokens": len(corpus.get("tokens", [])),
        **figures,
        "length_histogram": corpus.get("length_histogram", {}),
    }


def run_job(domain_class, options, output_dir: Path) -> dict:
    """Run the job for ``domain_class`` into ``output_dir``; returns stats.json's content.

    Args:
      domain_class: the domain (its data-preparation part of the protocol in
        ``seqtutor.domains``).
      options: the domain's prepare_data options (``eval_fraction``, ``num_shards``,
        ``beam_args`` and its own).
      output_dir: the stage's in-progress artifact directory.

    Raises:
      seqtutor.corpus.InputNotFoundError: an input path matches nothing (before Beam starts).
      EmptyCorpusError: no input, or no record in a split.
    """
    output_dir = Path(output_dir)
    inputs = domain_class.list_inputs(options)
    if not inputs:
        builtin = " or a built-in corpus" if hasattr(options, "builtin_corpus") else ""
        raise EmptyCorpusError(f"the corpus is empty: give prepare_data.input files{builtin}")
    input_stats = domain_class.input_stats(options, inputs)
    log.debug("prepare_data: %d inputs %s", len(inputs), input_stats)
    beam_args = list(options.beam_args)
    beam_options = PipelineOptions(beam_args, **console.beam_worker_options(beam_args))
    with beam.Pipeline(options=beam_options) as pipeline:
        build_pipeline(pipeline, inputs, output_dir, domain_class, options)

    summaries = read_events(output_dir, _SUMMARY_PREFIX, ".json")
    corpus = summaries[0] if summaries else {}
    stats = _summarise(read_events(output_dir, _STATS_PREFIX), corpus, len(inputs), input_stats)
    with console.quiet():  # TFDS prints the splits it found and a progress bar
        tfrecords.finish_dataset(
            output_dir, stats, domain_class.vocabulary(options, corpus),
            domain_class.dataset_description,
            f"records out of {len(inputs)} inputs ({stats['inputs_dropped']} dropped: "
            f"{stats['dropped_by_reason']}; {stats['sequences_written']} sequences, "
            f"{stats['sequences_without_record']} of them too short for a record): add "
            "inputs, or change prepare_data.eval_fraction")
    return stats
