"""The melody Beam job: MIDI files and ABC tunes to TFRecord shards of encoded melodies.

Graph::

    corpus items -> Reshuffle -> ExtractMelodies (parse, split, quantise, extract, transpose,
    fold, encode; drops counted per reason) -> de-duplicate identical melodies -> split by a hash
    of the source -> cut into fixed-length pieces -> WriteToTFRecord (train, eval)
                                                  \\-> stats events -> one JSON-lines file

The driver (:func:`run_job`) lists the inputs before any Beam work (a missing path fails early),
then turns the stats events into stats.json. Only pipeline options choose the runner, so the
same code runs on the DirectRunner, Dataflow, Flink or Spark.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from seqtutor import console, tfrecords
from seqtutor.corpus import (DroppedInput, EmptyCorpusError, drop_counts, drops, read_events,
                             split_of)
from seqtutor.domains.melody import encoding, sources as melody_sources

log = logging.getLogger(__name__)

_STATS = "stats"
_COUNTER_NAMESPACE = "seqtutor.prepare_data"
_STATS_PREFIX = "stats-events"


class ExtractMelodiesFn(beam.DoFn):
    """Corpus item -> (source, melody index, tokens, content digest); drops go to stats."""

    def __init__(self, options: melody_sources.ExtractionOptions):
        self._options = options

    def process(self, item: melody_sources.CorpusItem):
        try:
            sequence, digest = melody_sources.read_item_note_sequence(item)
            melodies = melody_sources.extract_melodies(sequence, self._options)
        except DroppedInput as error:
            beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, f"dropped_{error.reason}").inc()
            yield beam.pvalue.TaggedOutput(_STATS, {
                "event": "dropped", "source": item.source, "reason": error.reason,
                "detail": str(error)[:200]})
            return
        beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, "inputs_used").inc()
        for index, tokens in enumerate(melodies):
            yield item.source, index, tokens, digest


def _content_key(melody) -> str:
    return hashlib.sha1(np.asarray(melody[2], dtype=np.int8).tobytes()).hexdigest()


class KeepFirstFn(beam.DoFn):
    """Of identical melodies keep the one with the smallest (source, index): deterministic."""

    def process(self, keyed):
        _, melodies = keyed
        melodies = sorted(melodies, key=lambda m: (m[0], m[1]))
        for duplicate in melodies[1:]:
            beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, "duplicate_melodies").inc()
            yield beam.pvalue.TaggedOutput(_STATS, {
                "event": "duplicate", "source": duplicate[0], "kept": melodies[0][0]})
        yield melodies[0]


class ToRecordsFn(beam.DoFn):
    """Melody -> (split, serialised Example) per piece, and one stats event per melody."""

    def __init__(self, sequence_length: int, eval_fraction: float):
        self._length = sequence_length
        self._eval_fraction = eval_fraction

    def process(self, melody):
        source, index, tokens, digest = melody
        split = split_of(digest, self._eval_fraction)
        pieces = 0
        for start, piece in melody_sources.cut_into_pieces(tokens, self._length):
            pieces += 1
            yield split, tfrecords.serialize_example(piece, f"{source}@{index}", start)
        beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, f"records_{split}").inc(pieces)
        yield beam.pvalue.TaggedOutput(_STATS, {
            "event": "melody", "split": split, "steps": int(len(tokens)), "records": pieces})


def build_pipeline(pipeline: beam.Pipeline, items: list[melody_sources.CorpusItem],
                   output_dir: Path, config) -> None:
    """Add the job's transforms to ``pipeline``, writing into ``output_dir``."""
    options = melody_sources.ExtractionOptions(
        min_bars=config.min_bars, min_unique_pitches=config.min_unique_pitches,
        gap_bars=config.gap_bars, melody_track=config.melody_track)
    extracted = (
        pipeline
        | "ListInputs" >> beam.Create(items)
        # Break fusion so that parsing, the costly part, spreads over every worker.
        | "Spread" >> beam.Reshuffle()
        | "ExtractMelodies" >> beam.ParDo(ExtractMelodiesFn(options)).with_outputs(
            _STATS, main="melodies"))
    unique = (
        extracted.melodies
        | "KeyByContent" >> beam.Map(lambda m: (_content_key(m), m))
        | "GroupIdentical" >> beam.GroupByKey()
        | "KeepFirst" >> beam.ParDo(KeepFirstFn()).with_outputs(_STATS, main="melodies"))
    records = unique.melodies | "ToRecords" >> beam.ParDo(
        ToRecordsFn(config.sequence_length, config.eval_fraction)).with_outputs(
            _STATS, main="records")
    for split in tfrecords.SPLITS:
        _ = (records.records
             | f"Select{split.title()}" >> beam.Filter(lambda r, s=split: r[0] == s)
             | f"Payload{split.title()}" >> beam.Values()
             | f"Write{split.title()}" >> beam.io.WriteToTFRecord(
                 tfrecords.shard_prefix(output_dir, "melody", split),
                 num_shards=config.num_shards))
    _ = ((extracted[_STATS], unique[_STATS], records[_STATS])
         | "MergeStats" >> beam.Flatten()
         | "StatsToJson" >> beam.Map(json.dumps, sort_keys=True)
         | "WriteStats" >> beam.io.WriteToText(str(output_dir / _STATS_PREFIX),
                                               file_name_suffix=".jsonl", num_shards=1))


def list_items(config) -> list[melody_sources.CorpusItem]:
    """Every corpus item the config names, user files first; raises on a missing path."""
    items = [melody_sources.CorpusItem("midi", path, path)
             for path in melody_sources.list_midi_files(config.input)]
    if config.builtin_corpus == "music21_folk":
        items += melody_sources.list_music21_folk_tunes(config.builtin_collections,
                                                        config.max_builtin_tunes)
    return items


def _summarise(events: list[dict], num_inputs: int, sequence_length: int) -> dict:
    melodies = [e for e in events if e["event"] == "melody"]
    length_histogram = collections.Counter((e["steps"] // 16) * 16 for e in melodies)
    records = {split: sum(e["records"] for e in melodies if e["split"] == split)
               for split in tfrecords.SPLITS}
    return {
        "inputs_read": num_inputs,
        **drop_counts(events),
        "dropped_inputs": sorted(drops(events), key=lambda d: d["source"]),
        "duplicate_melodies": sum(1 for e in events if e["event"] == "duplicate"),
        "melodies_written": len(melodies),
        "melodies_per_split": dict(collections.Counter(e["split"] for e in melodies)),
        "melodies_too_short_for_a_record": sum(1 for e in melodies if e["records"] == 0),
        "records_out": records,
        "sequence_length": sequence_length,
        "melody_steps_histogram": {str(k): v for k, v in sorted(length_histogram.items())},
        "token_steps_out": {s: n * sequence_length for s, n in records.items()},
    }


def run_job(config, output_dir: Path, beam_args: list[str] | None = None) -> dict:
    """Run the melody Beam job into ``output_dir`` and return its stats.json content.

    Args:
      config: a MelodyDataConfig.
      output_dir: an empty directory (the stage's in-progress artifact directory).
      beam_args: pipeline options; defaults to ``config.beam_args``.

    Raises:
      seqtutor.corpus.InputNotFoundError: an input path matches nothing (before Beam starts).
      EmptyCorpusError: no input, or no record out of either split.
    """
    items = list_items(config)
    if not items:
        raise EmptyCorpusError("the corpus is empty: give --input files or a built-in corpus")
    log.debug("prepare_data: %d inputs", len(items))
    beam_args = list(config.beam_args if beam_args is None else beam_args)
    options = PipelineOptions(beam_args, **console.beam_worker_options(beam_args))
    with beam.Pipeline(options=options) as pipeline:
        build_pipeline(pipeline, items, output_dir, config)

    stats = _summarise(read_events(output_dir, _STATS_PREFIX), len(items),
                       config.sequence_length)
    with console.quiet():  # TFDS prints the splits it found and a progress bar
        tfrecords.finish_dataset(
            output_dir, stats, encoding.vocabulary(config.sequence_length),
            "Monophonic melodies in the Sequence Tutor encoding (38 tokens, 16th-note "
            "steps, C major / A minor, MIDI 48..83).",
            f"records out of {len(items)} inputs ({stats['inputs_dropped']} dropped: "
            f"{stats['dropped_by_reason']}, {stats['melodies_written']} melodies of which "
            f"{stats['melodies_too_short_for_a_record']} shorter than {config.sequence_length} "
            "steps): add inputs, or change prepare_data.eval_fraction / sequence_length")
    return stats
