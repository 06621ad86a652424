"""Artifact directories: fingerprints, ``artifact.json`` and all-or-nothing writes.

A stage writes into ``WORKDIR/.<stage>.partial/`` and renames it to ``WORKDIR/<stage>/`` only
when it succeeds, so a killed stage never leaves a directory that looks complete. A resumable
stage (pretrain, tune) keeps its partial directory across a failure and picks up its checkpoints
on the next run with the same fingerprint; other stages start it afresh.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import importlib.util
import json
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import seqtutor
from seqtutor import layout

_FINGERPRINT_FILE = "fingerprint.txt"
# The subpackages that setup.py maps from the repository's root folders: in an editable install
# they do not lie inside seqtutor/.
_MAPPED_SUBPACKAGES = ("pipeline", "components", "data_prep", "domains")


class MissingArtifactError(FileNotFoundError):
    """A stage's input artifact does not exist; the message names the command to run first."""


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The package version plus a hash of the project's source files.

    Any code change invalidates cached artifacts, even without a version bump.
    """
    folders = {"seqtutor": Path(seqtutor.__file__).resolve().parent}
    for name in _MAPPED_SUBPACKAGES:
        spec = importlib.util.find_spec(f"seqtutor.{name}")
        folders[f"seqtutor.{name}"] = Path(spec.origin).resolve().parent
    sources = {}  # module name -> path: the same in editable and regular installs
    for package, folder in folders.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            sources[".".join((package, *parts))] = path
    digest = hashlib.sha256()
    for module in sorted(sources):
        digest.update(module.encode())
        digest.update(sources[module].read_bytes())
    return f"{seqtutor.__version__}+{digest.hexdigest()[:12]}"


def fingerprint(stage: str, config_section: dict[str, Any],
                input_fingerprints: dict[str, str]) -> str:
    """The identity of a stage's output: its config section, its inputs and the code version."""
    payload = json.dumps({"stage": stage, "config": config_section,
                          "inputs": input_fingerprints, "code": code_version()},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def read_artifact(path: Path) -> dict[str, Any] | None:
    """The artifact.json of a complete artifact directory, or None."""
    try:
        return json.loads((Path(path) / layout.ARTIFACT_FILE).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def require_artifact(path: Path, stage: str, command: str) -> dict[str, Any]:
    """artifact.json of an input, or MissingArtifactError naming the command to run first."""
    record = read_artifact(path)
    if record is None:
        raise MissingArtifactError(
            f"no {stage} artifact at {path}: run `{command}` first")
    return record


@contextlib.contextmanager
def artifact_writer(output: Path, *, stage: str, fingerprint_: str,
                    input_fingerprints: dict[str, str], config_section: dict[str, Any],
                    resumable: bool) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Yield (in-progress directory, summary dict); commit both into ``output`` on success.

    On an exception a resumable stage keeps its in-progress directory (checkpoints) for the next
    run with the same fingerprint; otherwise it is removed. An existing ``output`` is replaced
    only after the new artifact is complete.
    """
    output = Path(output)
    partial = output.parent / f".{output.name}.partial"
    stamp = partial / _FINGERPRINT_FILE
    if partial.exists():
        same = stamp.is_file() and stamp.read_text().strip() == fingerprint_
        if not (resumable and same):
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint_ + "\n")
    summary: dict[str, Any] = {}
    try:
        yield partial, summary
    except BaseException:
        if not resumable:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    stamp.unlink()
    record = {
        "stage": stage,
        "fingerprint": fingerprint_,
        "config": config_section,
        "inputs": input_fingerprints,
        "code_version": code_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "summary": summary,
    }
    (partial / layout.ARTIFACT_FILE).write_text(json.dumps(record, indent=1, default=str) + "\n")
    if output.exists():
        retired = output.parent / f".{output.name}.old-{uuid.uuid4().hex[:8]}"
        output.rename(retired)
        partial.rename(output)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        partial.rename(output)
