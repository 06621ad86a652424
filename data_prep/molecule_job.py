"""The molecule Beam job: SMILES files (and the built-in MOSES corpus) to TFRecord shards.

Graph::

    each input file -> ReadFromText (header skipped for CSV) -> [hash sample] -> ParseSmiles
    (column, RDKit parse + canonicalise, length cap, allowed tokens; drops counted per reason)
    -> de-duplicate canonical SMILES -> split by a hash of the canonical SMILES
    -> CorpusSummary (tokens, shortest/longest training length, longest carbon run: one global
       combine) -> encode with the summary's vocabulary as a side input -> WriteToTFRecord
                                                  \\-> stats events -> one JSON-lines file

The driver (:func:`run_job`) lists and checks the inputs before any Beam work (a missing path
fails early) and writes stats.json and vocab.json after it. Only pipeline options choose the
runner, so the same code runs on the DirectRunner, Dataflow, Flink or Spark.
"""

from __future__ import annotations

import collections
import csv
import gzip
import importlib.util
import json
import logging
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from seqtutor import console, tfrecords
from seqtutor.corpus import (EmptyCorpusError, InputNotFoundError, drop_counts, drops,
                             hash_fraction, list_input_files, read_events, split_of)
from seqtutor.domains.molecule import chemistry, tokens as smiles_tokens

log = logging.getLogger(__name__)

_STATS = "stats"
_STATS_PREFIX = "stats-events"
_SUMMARY_PREFIX = "corpus-summary"
SMILES_EXTENSIONS = (".smi", ".smiles", ".csv", ".csv.gz", ".smi.gz", ".txt")
MOSES_TRAIN = "dataset/data/train.csv.gz"


def moses_train_file() -> str:
    """The MOSES training set shipped in the ``molsets`` wheel (read, never imported)."""
    spec = importlib.util.find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        raise InputNotFoundError(
            "the built-in corpus 'moses' needs the molsets wheel: pip install --no-deps "
            "molsets==0.3.1 (or give --input files and --builtin-corpus none)")
    path = Path(list(spec.submodule_search_locations)[0]) / MOSES_TRAIN
    if not path.is_file():
        raise InputNotFoundError(f"the molsets package has no {MOSES_TRAIN} ({path})")
    return str(path)


def list_smiles_files(patterns) -> list[str]:
    """Expand directories (recursively) and globs into a sorted list of SMILES files.

    Raises:
      InputNotFoundError: a pattern matches nothing, naming the pattern.
    """
    return list_input_files(patterns, SMILES_EXTENSIONS)


def _open_text(path: str):
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path)


def is_csv(path: str) -> bool:
    return path.lower().endswith((".csv", ".csv.gz"))


def csv_column_index(path: str, column: str) -> int:
    """The index of ``column`` in a CSV file's header; raises ValueError naming the file."""
    with _open_text(path) as handle:
        header = next(csv.reader([handle.readline()]), [])
    if column not in header:
        raise ValueError(f"{path}: no column {column!r} in the header {header[:10]} "
                         "(set prepare_data.smiles_column)")
    return header.index(column)


def count_lines(path: str, skip_header: bool) -> int:
    with _open_text(path) as handle:
        return sum(1 for _ in handle) - int(skip_header)


class ParseSmilesFn(beam.DoFn):
    """One line -> canonical SMILES, or a counted drop with its reason."""

    def __init__(self, source: str, column: int | None, max_tokens: int,
                 allowed_tokens: list[str] | None):
        self._source = source
        self._column = column
        self._max_tokens = max_tokens
        self._allowed = set(allowed_tokens) if allowed_tokens else None

    def _drop(self, reason: str, line: str):
        beam.metrics.Metrics.counter("seqtutor.prepare_data", f"dropped_{reason}").inc()
        return beam.pvalue.TaggedOutput(_STATS, {
            "event": "dropped", "source": self._source, "reason": reason, "detail": line[:120]})

    def process(self, line: str):
        if self._column is None:
            fields = line.split()
            text = fields[0] if fields else ""
        else:
            row = next(csv.reader([line]), [])
            text = row[self._column].strip() if len(row) > self._column else ""
        if not text:
            yield self._drop("empty_line", line)
            return
        smiles = chemistry.canonical(text)
        if smiles is None:
            yield self._drop("invalid_smiles", text)
            return
        tokens = smiles_tokens.tokenize(smiles)
        if len(tokens) > self._max_tokens:
            yield self._drop("too_long", smiles)
            return
        if self._allowed is not None and not set(tokens) <= self._allowed:
            yield self._drop("disallowed_token", smiles)
            return
        yield smiles


class CorpusSummaryFn(beam.CombineFn):
    """(split, SMILES) -> token set, counts, shortest/longest training length, carbon run."""

    def create_accumulator(self):
        return {"tokens": set(), "count": collections.Counter(), "min_length": None,
                "max_length": 0, "max_carbon_run": 0}

    def add_input(self, acc, element):
        split, smiles = element
        tokens = smiles_tokens.tokenize(smiles)
        acc["tokens"].update(tokens)
        acc["count"][split] += 1
        acc["max_length"] = max(acc["max_length"], len(tokens))
        if split == "train":
            acc["min_length"] = len(tokens) if acc["min_length"] is None else min(
                acc["min_length"], len(tokens))
            acc["max_carbon_run"] = max(acc["max_carbon_run"],
                                        smiles_tokens.longest_carbon_run(tokens))
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for acc in accumulators:
            merged["tokens"] |= acc["tokens"]
            merged["count"] += acc["count"]
            merged["max_length"] = max(merged["max_length"], acc["max_length"])
            merged["max_carbon_run"] = max(merged["max_carbon_run"], acc["max_carbon_run"])
            if acc["min_length"] is not None:
                merged["min_length"] = acc["min_length"] if merged["min_length"] is None \
                    else min(merged["min_length"], acc["min_length"])
        return merged

    def extract_output(self, acc):
        return {"tokens": sorted(acc["tokens"]), "count": dict(acc["count"]),
                "min_length": acc["min_length"] or 0, "max_length": acc["max_length"],
                "max_carbon_run": acc["max_carbon_run"]}


def vocabulary_of(summary: dict, episode_length_cap: int) -> dict:
    return smiles_tokens.vocabulary(
        summary["tokens"], min_length=summary["min_length"], max_length=summary["max_length"],
        max_carbon_run=summary["max_carbon_run"], episode_length_cap=episode_length_cap)


def _encode(element, summary, episode_length_cap):
    split, smiles = element
    codec = smiles_tokens.Codec(vocabulary_of(summary, episode_length_cap))
    return split, tfrecords.serialize_example(codec.encode(smiles), smiles, 0)


def _read_file(pipeline, index: int, path: str, config, total_lines: int):
    column = csv_column_index(path, config.smiles_column) if is_csv(path) else None
    label = f"File{index}"
    lines = pipeline | f"Read{label}" >> beam.io.ReadFromText(
        path, skip_header_lines=1 if column is not None else 0)
    if config.sample_size is not None and total_lines > config.sample_size:
        fraction = config.sample_size / total_lines
        lines = lines | f"Sample{label}" >> beam.Filter(
            # Salted: the split hashes the (mostly identical) canonical SMILES.
            lambda line, f=fraction: hash_fraction("sample:" + line) < f)
    return lines | f"Parse{label}" >> beam.ParDo(ParseSmilesFn(
        path, column, config.max_tokens, config.allowed_tokens)).with_outputs(
            _STATS, main="smiles")


def build_pipeline(pipeline: beam.Pipeline, files: list[str], output_dir: Path, config,
                   total_lines: int) -> None:
    """Add the job's transforms to ``pipeline``, writing into ``output_dir``."""
    parsed = [_read_file(pipeline, i, path, config, total_lines) for i, path in enumerate(files)]
    counted = (
        [p.smiles for p in parsed]
        | "MergeFiles" >> beam.Flatten()
        | "CountCopies" >> beam.combiners.Count.PerElement())
    duplicates = (
        counted
        | "Duplicates" >> beam.FlatMap(lambda kv: [{"event": "duplicates", "count": kv[1] - 1}]
                                       if kv[1] > 1 else []))
    molecules = (
        counted
        | "Unique" >> beam.Keys()
        | "Split" >> beam.Map(lambda s, f=config.eval_fraction: (split_of(s, f), s)))
    summary = molecules | "CorpusSummary" >> beam.CombineGlobally(CorpusSummaryFn())
    _ = (summary
         | "SummaryToJson" >> beam.Map(json.dumps, sort_keys=True)
         | "WriteSummary" >> beam.io.WriteToText(str(output_dir / _SUMMARY_PREFIX),
                                                 file_name_suffix=".json", num_shards=1))
    records = molecules | "Encode" >> beam.Map(
        _encode, beam.pvalue.AsSingleton(summary), config.episode_length_cap)
    for split in tfrecords.SPLITS:
        _ = (records
             | f"Select{split.title()}" >> beam.Filter(lambda r, s=split: r[0] == s)
             | f"Payload{split.title()}" >> beam.Values()
             | f"Write{split.title()}" >> beam.io.WriteToTFRecord(
                 tfrecords.shard_prefix(output_dir, "molecule", split),
                 num_shards=config.num_shards))
    _ = ([p[_STATS] for p in parsed] + [duplicates]
         | "MergeStats" >> beam.Flatten()
         | "StatsToJson" >> beam.Map(json.dumps, sort_keys=True)
         | "WriteStats" >> beam.io.WriteToText(str(output_dir / _STATS_PREFIX),
                                               file_name_suffix=".jsonl", num_shards=1))


def list_inputs(config) -> list[str]:
    """Every SMILES file the config names, user files first; raises on a missing path."""
    files = list_smiles_files(config.input)
    if config.builtin_corpus == "moses":
        files.append(moses_train_file())
    return files


def _summarise(events: list[dict], files: list[str], lines_read: int, summary: dict) -> dict:
    written = summary.get("count", {})
    return {
        "inputs_read": len(files),
        "input_files": files,
        "lines_read": lines_read,
        **drop_counts(events),
        # The first 100 drops with their reason, for a look; the counts above are exact.
        "dropped_examples": sorted(drops(events),
                                   key=lambda d: (d["reason"], d["detail"]))[:100],
        "duplicate_molecules": sum(e["count"] for e in events if e["event"] == "duplicates"),
        "molecules_written": sum(written.values()),
        "records_out": {split: int(written.get(split, 0)) for split in tfrecords.SPLITS},
        "distinct_tokens": len(summary.get("tokens", [])),
        "min_length": summary.get("min_length"),
        "max_length": summary.get("max_length"),
        "max_carbon_run": summary.get("max_carbon_run"),
    }


def run_job(config, output_dir: Path, beam_args: list[str] | None = None) -> dict:
    """Run the molecule Beam job into ``output_dir`` and return its stats.json content.

    Args:
      config: a MoleculeDataConfig.
      output_dir: an empty directory (the stage's in-progress artifact directory).
      beam_args: pipeline options; defaults to ``config.beam_args``.

    Raises:
      InputNotFoundError: an input path matches nothing (before Beam starts).
      ValueError: a CSV input lacks the SMILES column (before Beam starts).
      EmptyCorpusError: no input, or no molecule out of either split.
    """
    files = list_inputs(config)
    if not files:
        raise EmptyCorpusError("the corpus is empty: give --input files or a built-in corpus")
    for path in files:
        if is_csv(path):
            csv_column_index(path, config.smiles_column)
    # Lines per file: the sample keeps about sample_size of them, chosen by a hash of the line.
    lines_read = sum(count_lines(path, is_csv(path)) for path in files)
    log.info("prepare_data: %d SMILES files, %d lines", len(files), lines_read)
    beam_args = list(config.beam_args if beam_args is None else beam_args)
    options = PipelineOptions(beam_args, **console.beam_worker_options(beam_args))
    with beam.Pipeline(options=options) as pipeline:
        build_pipeline(pipeline, files, output_dir, config, lines_read)

    events = read_events(output_dir, _STATS_PREFIX)
    summaries = read_events(output_dir, _SUMMARY_PREFIX, ".json")
    summary = summaries[0] if summaries else {}
    stats = _summarise(events, files, lines_read, summary)
    with console.quiet():  # TFDS prints the splits it found and a progress bar
        tfrecords.finish_dataset(
            output_dir, stats, vocabulary_of(summary, config.episode_length_cap),
            "SMILES molecules as token ids ([BOS, tokens, EOS]; vocab.json maps ids to tokens), "
            "canonicalised by RDKit, de-duplicated, split by a hash of the SMILES.",
            f"molecules out of {lines_read} lines in {len(files)} files "
            f"({stats['inputs_dropped']} dropped: {stats['dropped_by_reason']}): add inputs, or "
            "change prepare_data.eval_fraction")
    return stats
