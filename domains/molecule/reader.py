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

from seqtutor.corpus import (READ_ERRORS, CorpusSequence, DroppedInput, InputNotFoundError,
                             hash_fraction, list_input_files, open_input)
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


class UnreadableFileError(DroppedInput):
    """A .gz file that cannot be read to its end (not gzip, cut short, damaged): the whole
    lines read before the error are kept."""

    reason = "unreadable_file"


class DisallowedTokenError(DroppedInput):
    reason = "disallowed_token"


class SmilesFile(NamedTuple):
    """One input file as the reader needs it, checked in the driver.

    Attributes:
      source: the path.
      column: the SMILES column of a CSV file (its header is skipped); None: the first
        whitespace-separated field of each line.
      lines: data lines in the file (the header excluded; those before a read error).
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


def read_error(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _checked_file(path: str, smiles_column: str) -> SmilesFile:
    """``path`` as a SmilesFile: its SMILES column and its data lines, those before a read
    error if one stops its reading (the reader then counts the file as dropped, unreadable)."""
    column, lines = None, 0
    try:
        if is_csv(path):
            column = csv_column_index(path, smiles_column)
        with open_input(path) as handle:
            for _ in handle:
                lines += 1
    except READ_ERRORS as error:
        log.warning("prepare_data: %s cannot be read to its end (%s); the lines before the "
                    "error are read", path, read_error(error))
    return SmilesFile(path, column, max(lines - int(column is not None), 0))


def list_inputs(config) -> list[SmilesFile]:
    """Every SMILES file the prepare_data config names, user files first, checked.

    Raises:
      InputNotFoundError: an input path matches nothing.
      ValueError: a CSV input lacks the SMILES column.
    """
    paths = list_input_files(config.input, SMILES_EXTENSIONS)
    if config.builtin_corpus == "moses":
        paths.append(moses_train_file())
    files = [_checked_file(path, config.smiles_column) for path in paths]
    total = sum(file.lines for file in files)
    log.info("prepare_data: %d SMILES files, %d lines", len(files), total)
    if config.sample_size is not None and total > config.sample_size:
        files = [file._replace(keep=config.sample_size / total) for file in files]
    return files


def _line_batches(file: SmilesFile):
    """(path, column, lines, None) for batches of the data lines of ``file`` that the sample
    keeps (plain tuples: Beam encodes them fast), then (path, column, [], error) when the file
    cannot be read to its end."""
    batch, error = [], None
    try:
        with open_input(file.source) as handle:
            if file.column is not None:
                next(handle, None)
            for line in handle:
                line = line.rstrip("\r\n")
                # Salted: the split hashes the (mostly identical) canonical SMILES.
                if file.keep >= 1.0 or hash_fraction("sample:" + line) < file.keep:
                    batch.append(line)
                    if len(batch) == LINES_PER_BATCH:
                        yield file.source, file.column, batch, None
                        batch = []
    except READ_ERRORS as read_failure:
        error = read_error(read_failure)
    if batch:
        yield file.source, file.column, batch, None
    if error is not None:
        yield file.source, file.column, [], error


class ParseSmilesFn(beam.DoFn):
    """(path, column, lines, error) -> the file's drop when ``error`` says why it cannot be
    read to its end, then for each line the canonical SMILES as a CorpusSequence, or a drop with
    its reason."""

    def __init__(self, max_tokens: int, allowed_tokens: list[str] | None):
        self._max_tokens = max_tokens
        self._allowed = set(allowed_tokens) if allowed_tokens else None

    def process(self, element):
        source, column, lines, error = element
        if error is not None:
            yield source, UnreadableFileError(error)
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
