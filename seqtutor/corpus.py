"""What a domain's corpus reader yields, and the corpus listing and splitting of the Beam job.

Inputs are listed in the driver, before any Beam work, so that a missing path fails at once; the
train/eval split is a hash of each sequence's group (its source's content, or the sequence
itself), so it does not depend on where files lie. A path with a scheme (``gs://``, ``s3://``)
is listed and read through Beam's FileSystems, so that a job on Dataflow reads its inputs where
they lie; a local path through the local file system.
"""

from __future__ import annotations

import collections
import glob
import gzip
import hashlib
import io
import json
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple


class InputNotFoundError(FileNotFoundError):
    """A user-given input path or glob matches no file."""


class EmptyCorpusError(ValueError):
    """No input at all, or no record out of the inputs."""


class DroppedInput(Exception):
    """An input (a file, a tune, a line) that yields no record; ``reason`` names why. A domain
    subclasses it once per reason; the Beam job counts each reason in stats.json."""

    reason = "dropped"


class CorpusSequence(NamedTuple):
    """One sequence out of a domain's corpus reader.

    Attributes:
      source: where it came from (a path, ``path@index``, the canonical SMILES); the records
        carry it, and of identical sequences the one with the smallest source is kept (a
        trailing ``@N`` compared as a number).
      tokens: the sequence, a list of token ids (Python ints) or of token strings that the
        domain's ``encode`` maps through the vocabulary built from the corpus.
      group: what the train/eval split hashes, so that every sequence of one group lands in
        one split (the melodies of one file share its digest); None: the tokens themselves.
    """

    source: str
    tokens: list[Any]
    group: str | None = None


def sequence_key(tokens: Sequence[Any]) -> str:
    """Identical token sequences, and only those, share this key."""
    return "\x1f".join(str(token) for token in tokens)


def is_remote(path: str) -> bool:
    """Whether ``path`` names a file system by its scheme (``gs://bucket/x``), as Beam reads it."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.get_scheme(path) is not None


def list_input_files(patterns: Sequence[str], suffixes: Sequence[str]) -> list[str]:
    """Expand directories (searched recursively for names ending in ``suffixes``, any case) and
    globs (every file they match) into a sorted list of absolute paths. A pattern with a scheme
    is matched by Beam's FileSystems: a glob as that file system matches it (``**`` crosses
    ``/``), and one ending in ``/``, or a plain name that is no file, as a directory.

    Raises:
      InputNotFoundError: a pattern matches nothing, naming the pattern.
    """
    files: set[str] = set()
    for pattern in patterns:
        if is_remote(pattern):
            matches = _match_remote(pattern, suffixes)
        elif (path := Path(pattern).expanduser()).is_dir():
            matches = [os.path.abspath(p) for p in path.rglob("*")
                       if p.is_file() and p.name.lower().endswith(tuple(suffixes))]
        else:
            matches = [os.path.abspath(m)
                       for m in glob.glob(os.path.expanduser(pattern), recursive=True)
                       if os.path.isfile(m)]
        if not matches:
            raise InputNotFoundError(f"input {pattern!r} matches no file")
        files.update(matches)
    return sorted(files)


def _match_remote(pattern: str, suffixes: Sequence[str]) -> list[str]:
    from apache_beam.io.filesystem import BeamIOError
    from apache_beam.io.filesystems import FileSystems

    def match(glob_pattern: str) -> list[str]:
        try:
            [result] = FileSystems.match([glob_pattern])
        except (BeamIOError, ValueError) as error:  # no such bucket, no file system for it
            raise InputNotFoundError(f"input {pattern!r}: {error}") from None
        return [metadata.path for metadata in result.metadata_list]

    def in_directory(directory: str) -> list[str]:
        return [path for path in match(directory + "**")
                if path.lower().endswith(tuple(suffixes))]

    if pattern.endswith("/"):
        return in_directory(pattern)
    # An object store has no directories: a plain name that is no object is read as one.
    return match(pattern) or ([] if any(c in pattern for c in "*?[")
                              else in_directory(pattern + "/"))


# What reading a damaged .gz input raises: not gzip, cut short, a bad checksum or deflate
# stream. Any other OSError (no permission, a network error a runner retries) fails the job.
READ_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def open_input(path: str) -> io.TextIOBase:
    """An input file as UTF-8 text, local or remote, gunzipped when its name ends in .gz. A byte
    that is not UTF-8 reads as U+FFFD, so it spoils its line (which its reader then drops and
    counts), not the file."""
    if not is_remote(path):
        if path.endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return io.TextIOWrapper(gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw,
                            encoding="utf-8", errors="replace")


def hash_fraction(text: str) -> float:
    """A stable number in [0, 1) per string (for splitting and sampling)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0 ** 64


def split_of(key: str, eval_fraction: float) -> str:
    """Deterministic train/eval assignment from a source's content digest or canonical form:
    every record of one source lands in the same split."""
    return "eval" if hash_fraction(key) < eval_fraction else "train"


def read_events(output_dir: str | Path, prefix: str, suffix: str = ".jsonl") -> list[dict]:
    """The JSON lines a Beam job wrote to ``output_dir/<prefix>*<suffix>`` (its stats events);
    the files are removed once read."""
    events = []
    for path in sorted(Path(output_dir).glob(f"{prefix}*{suffix}")):
        events += [json.loads(line) for line in path.read_text().splitlines() if line]
        path.unlink()
    return events


def drops(events: list[dict]) -> list[dict]:
    """Each ``dropped`` event as {source, reason, detail}."""
    return [{"source": e["source"], "reason": e["reason"], "detail": e["detail"]}
            for e in events if e["event"] == "dropped"]


def drop_counts(events: list[dict]) -> dict:
    """stats.json's ``inputs_dropped`` and ``dropped_by_reason`` of a job's events."""
    reasons = collections.Counter(drop["reason"] for drop in drops(events))
    return {"inputs_dropped": sum(reasons.values()),
            "dropped_by_reason": dict(sorted(reasons.items()))}
