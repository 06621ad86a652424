"""The Beam job shared by every domain whose corpus reader turns input files into token
sequences (a domain without a ``prepare_data_job`` of its own).

Graph::

    input files -> the domain's corpus reader (a PTransform: path -> (source, tokens); an input
    that yields nothing comes out as (source, DroppedInput) and is counted by reason)
    -> de-duplicate identical sequences -> split by a hash of the tokens
    -> WriteToTFRecord (train, eval)
                      \\-> stats events -> one JSON-lines file -> stats.json

The driver lists the inputs before any Beam work (a missing path fails at once), then writes
stats.json, the domain's vocab.json and the TFDS metadata. Only pipeline options choose the
runner, so the same code runs on the DirectRunner, Dataflow, Flink or Spark.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from seqtutor import console, tfrecords
from seqtutor.corpus import (DroppedInput, EmptyCorpusError, drop_counts, drops,
                             list_input_files, read_events, split_of)

log = logging.getLogger(__name__)

_STATS = "stats"
_STATS_PREFIX = "stats-events"


class ReadSequences(beam.PTransform):
    """A corpus reader made of a plain function ``read(path) -> iterable of (source, tokens)``,
    where ``tokens`` is a list of ints, or a DroppedInput for an input that yields none (a
    DroppedInput raised by ``read`` drops the whole file)."""

    def __init__(self, read: Callable[[str], Iterable[tuple]]):
        super().__init__()
        self._read = read

    def expand(self, paths):
        return paths | "Read" >> beam.FlatMap(self._safe_read)

    def _safe_read(self, path: str):
        try:
            yield from self._read(path)
        except DroppedInput as error:
            yield path, error


class _SplitFn(beam.DoFn):
    """(source, tokens | DroppedInput) -> (split, record); drops and sequences go to stats."""

    def __init__(self, eval_fraction: float):
        self._eval_fraction = eval_fraction

    def process(self, element):
        source, tokens = element
        if isinstance(tokens, DroppedInput):
            beam.metrics.Metrics.counter("seqtutor.prepare_data", tokens.reason).inc()
            yield beam.pvalue.TaggedOutput(_STATS, {"event": "dropped", "source": source,
                                                    "reason": tokens.reason,
                                                    "detail": str(tokens)})
            return
        key = ",".join(str(int(t)) for t in tokens)
        split = split_of(key, self._eval_fraction)
        yield beam.pvalue.TaggedOutput(_STATS, {"event": "sequence", "split": split})
        yield split, tfrecords.serialize_example(tokens, source, 0)


def build_pipeline(pipeline: beam.Pipeline, files: list[str], output_dir: Path, domain_class,
                   options) -> None:
    """The job's graph, from the listed input files to shards and stats events."""
    read = (pipeline
            | "ListInputs" >> beam.Create(files)
            | "Spread" >> beam.Reshuffle()
            | "ReadCorpus" >> domain_class.corpus_reader(options))
    dropped = read | "Dropped" >> beam.Filter(lambda item: isinstance(item[1], DroppedInput))
    # Identical sequences are kept once (the first source in sort order).
    unique = (read
              | "Sequences" >> beam.Filter(lambda item: not isinstance(item[1], DroppedInput))
              | "KeyByContent" >> beam.Map(lambda item: (tuple(int(t) for t in item[1]), item))
              | "GroupIdentical" >> beam.GroupByKey()
              | "KeepFirst" >> beam.FlatMap(_keep_first).with_outputs(_STATS, main="records"))
    records = ((unique.records, dropped)
               | "WithDropped" >> beam.Flatten()
               | "Split" >> beam.ParDo(_SplitFn(options.eval_fraction)).with_outputs(
                   _STATS, main="records"))
    for split in tfrecords.SPLITS:
        _ = (records.records
             | f"Select{split.title()}" >> beam.Filter(lambda r, s=split: r[0] == s)
             | f"Payload{split.title()}" >> beam.Values()
             | f"Write{split.title()}" >> beam.io.WriteToTFRecord(
                 tfrecords.shard_prefix(output_dir, domain_class.name, split),
                 num_shards=options.num_shards))
    _ = ((records[_STATS], unique[_STATS])
         | "MergeStats" >> beam.Flatten()
         | "StatsToJson" >> beam.Map(json.dumps, sort_keys=True)
         | "WriteStats" >> beam.io.WriteToText(str(output_dir / _STATS_PREFIX),
                                               file_name_suffix=".jsonl", num_shards=1))


def _keep_first(group):
    """The first of identical sequences (by source); the others are counted as duplicates."""
    _, items = group
    first, *duplicates = sorted(items, key=lambda item: item[0])
    for _ in duplicates:
        yield beam.pvalue.TaggedOutput(_STATS, {"event": "duplicate"})
    yield first


def _summarise(events: list[dict], num_inputs: int) -> dict:
    sequences = [e for e in events if e["event"] == "sequence"]
    return {
        "inputs_read": num_inputs,
        **drop_counts(events),
        "dropped_inputs": sorted(drops(events), key=lambda d: d["source"]),
        "duplicate_sequences": sum(1 for e in events if e["event"] == "duplicate"),
        "records_out": {split: sum(1 for e in sequences if e["split"] == split)
                        for split in tfrecords.SPLITS},
    }


def run_job(domain_class, options, output_dir: Path) -> dict:
    """Run the shared job of ``domain_class`` into ``output_dir``; returns stats.json's content.

    Args:
      domain_class: the domain; it gives ``name``, ``input_suffixes``,
        ``corpus_reader(options)`` and ``vocabulary(options)``.
      options: the domain's prepare_data options (``input``, ``eval_fraction``,
        ``num_shards``, ``beam_args`` and its own).
      output_dir: the stage's in-progress artifact directory.

    Raises:
      seqtutor.corpus.InputNotFoundError: an input path matches nothing (before Beam starts).
      EmptyCorpusError: no input, or no record in a split.
    """
    output_dir = Path(output_dir)
    files = list_input_files(options.input, domain_class.input_suffixes)
    if not files:
        raise EmptyCorpusError("the corpus is empty: give --input files")
    log.debug("prepare_data: %d input files", len(files))
    beam_args = list(options.beam_args)
    beam_options = PipelineOptions(beam_args, **console.beam_worker_options(beam_args))
    with beam.Pipeline(options=beam_options) as pipeline:
        build_pipeline(pipeline, files, output_dir, domain_class, options)

    stats = _summarise(read_events(output_dir, _STATS_PREFIX), len(files))
    with console.quiet():  # TFDS prints the splits it found and a progress bar
        tfrecords.finish_dataset(
            output_dir, stats, domain_class.vocabulary(options),
            f"seqtutor {domain_class.name} corpus",
            f"records out of {len(files)} inputs ({stats['inputs_dropped']} dropped: "
            f"{stats['dropped_by_reason']}): add inputs, or change prepare_data.eval_fraction")
    return stats
