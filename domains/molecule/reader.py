"""The molecule corpus reader: SMILES files (and the built-in MOSES corpus) to canonical SMILES
token sequences (docs/molecule.md section 1).

Reading::

    each input file -> batches of its lines (CSV header skipped; a hash sample of them with
    sample_size) -> Reshuffle (parsing, the costly part, spreads over every worker; a batch
    crosses it as one element) -> ParseSmiles (column, RDKit parse + canonicalise, length cap,
    allowed tokens; drops counted by reason)

The files are listed and checked in the driver before Beam starts: a missing path, or a CSV
file without the SMILES column, fails at once.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
from pathlib import Path
from typing import NamedTuple

import apache_beam as beam

from seqtutor.corpus import (CorpusSequence, DroppedInput, InputNotFoundError, hash_fraction,
                             list_input_files, open_input)
from seqtutor.domains.molecule import chemistry, tokens as smiles_tokens

log = logging.getLogger(__name__)

SMILES_EXTENSIONS = (".smi", ".smiles", ".csv", ".csv.gz", ".smi.gz", ".txt")
LINES_PER_BATCH = 1000
MOSES_TRAIN = "dataset/data/train.csv.gz"


class EmptyLineError(DroppedInput):
    reason = "empty_line"


class InvalidSmilesError(DroppedInput):
    reason = "invalid_smiles"


class TooLongError(DroppedInput):
    reason = "too_long"


class DisallowedTokenError(DroppedInput):
    reason = "disallowed_token"


class SmilesFile(NamedTuple):
    """One input file as the reader needs it, checked in the driver.

    Attributes:
      source: the path.
      column: the SMILES column of a CSV file (its header is skipped); None: the first
        whitespace-separated field of each line.
      lines: data lines in the file (the header excluded).
      keep: the fraction of lines the sample keeps (1.0: all), chosen by a hash of the line.
    """

    source: str
    column: int | None
    lines: int
    keep: float = 1.0


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


def is_csv(path: str) -> bool:
    return path.lower().endswith((".csv", ".csv.gz"))


def csv_column_index(path: str, column: str) -> int:
    """The index of ``column`` in a CSV file's header; raises ValueError naming the file."""
    with open_input(path) as handle:
        header = next(csv.reader([handle.readline()]), [])
    if column not in header:
        raise ValueError(f"{path}: no column {column!r} in the header {header[:10]} "
                         "(set prepare_data.smiles_column)")
    return header.index(column)


def count_lines(path: str, skip_header: bool) -> int:
    with open_input(path) as handle:
        return sum(1 for _ in handle) - int(skip_header)


def list_inputs(config) -> list[SmilesFile]:
    """Every SMILES file the prepare_data config names, user files first, checked.

    Raises:
      InputNotFoundError: an input path matches nothing.
      ValueError: a CSV input lacks the SMILES column.
    """
    paths = list_input_files(config.input, SMILES_EXTENSIONS)
    if config.builtin_corpus == "moses":
        paths.append(moses_train_file())
    files = []
    for path in paths:
        column = csv_column_index(path, config.smiles_column) if is_csv(path) else None
        files.append(SmilesFile(path, column, count_lines(path, column is not None)))
    total = sum(file.lines for file in files)
    log.info("prepare_data: %d SMILES files, %d lines", len(files), total)
    if config.sample_size is not None and total > config.sample_size:
        files = [file._replace(keep=config.sample_size / total) for file in files]
    return files


def _line_batches(file: SmilesFile):
    """(path, column, lines) for batches of the data lines of ``file`` that the sample keeps
    (plain tuples: Beam encodes them fast)."""
    batch = []
    with open_input(file.source) as handle:
        if file.column is not None:
            next(handle, None)
        for line in handle:
            line = line.rstrip("\r\n")
            # Salted: the split hashes the (mostly identical) canonical SMILES.
            if file.keep >= 1.0 or hash_fraction("sample:" + line) < file.keep:
                batch.append(line)
                if len(batch) == LINES_PER_BATCH:
                    yield file.source, file.column, batch
                    batch = []
    if batch:
        yield file.source, file.column, batch


class ParseSmilesFn(beam.DoFn):
    """(path, column, lines) -> for each line the canonical SMILES as a CorpusSequence, or a
    drop with its reason."""

    def __init__(self, max_tokens: int, allowed_tokens: list[str] | None):
        self._max_tokens = max_tokens
        self._allowed = set(allowed_tokens) if allowed_tokens else None

    def process(self, element):
        source, column, lines = element
        for line in lines:
            try:
                yield self._parse(column, line)
            except DroppedInput as error:
                yield source, error

    def _parse(self, column: int | None, line: str) -> CorpusSequence:
        if column is None:
            fields = line.split()
            text = fields[0] if fields else ""
        else:
            row = next(csv.reader([line]), [])
            text = row[column].strip() if len(row) > column else ""
        if not text:
            raise EmptyLineError(line[:120])
        smiles = chemistry.canonical(text)
        if smiles is None:
            raise InvalidSmilesError(text[:120])
        tokens = smiles_tokens.tokenize(smiles)
        if len(tokens) > self._max_tokens:
            raise TooLongError(smiles[:120])
        if self._allowed is not None and not set(tokens) <= self._allowed:
            raise DisallowedTokenError(smiles[:120])
        # The canonical SMILES names the record (novelty compares against it) and decides the
        # split.
        return CorpusSequence(smiles, tokens, smiles)


class ReadSmiles(beam.PTransform):
    """SmilesFile inputs -> canonical SMILES token sequences (and counted drops)."""

    def __init__(self, config):
        super().__init__()
        self._config = config

    def expand(self, files):
        return (files
                | "LineBatches" >> beam.FlatMap(_line_batches)
                | "SpreadLines" >> beam.Reshuffle()
                | "Parse" >> beam.ParDo(ParseSmilesFn(self._config.max_tokens,
                                                      self._config.allowed_tokens)))
