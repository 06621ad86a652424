"""Artifact directories: fingerprints, ``artifact.json`` and all-or-nothing writes.

A stage writes into ``WORKDIR/.<stage>.partial/`` and renames it to ``WORKDIR/<stage>/`` only
when it succeeds, so a killed stage never leaves a directory that looks complete. A resumable
stage (pretrain, tune) keeps its partial directory across a failure and picks up its checkpoints
on the next run with the same config and inputs, also after a code change (as Keras and TF-Agents
checkpoints resume; the artifact records the code versions it was trained with), which a stage
run on its own sees: ``seqtutor run`` after a code change reruns the stages upstream, whose new
fingerprints are new inputs. Other stages start their partial directory afresh.

One process at a time writes an artifact: :func:`claim` holds ``WORKDIR/.<stage>.lock`` (the
operating system's file lock, released when the process ends, however it ends), so a second
process that reaches the same artifact (a second shell, another worker of a sweep) is told so
instead of writing into the same partial directory.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import seqtutor
from seqtutor import layout

log = logging.getLogger(__name__)
_FINGERPRINT_FILE = "fingerprint.txt"  # in a partial directory: what it is a partial run of
# The subpackages that setup.py maps from the repository's root folders: in an editable install
# they do not lie inside seqtutor/.
_MAPPED_SUBPACKAGES = ("pipeline", "components", "data_prep", "domains")


class MissingArtifactError(FileNotFoundError):
    """A stage's input artifact does not exist; the message names the command to run first."""


class DamagedArtifactError(ValueError):
    """A file of a finished artifact cannot be read (damaged, cut short); the message names it."""


def damaged(path: Path, error: Exception) -> DamagedArtifactError:
    """The error for ``path``, a file of an artifact that ``error`` stopped reading."""
    detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return DamagedArtifactError(
        f"{path} cannot be read ({type(error).__name__}{': ' + detail if detail else ''}): it "
        "is damaged or cut short; make it again by rerunning the stage that wrote it")


class ArtifactBusyError(RuntimeError):
    """Another process is writing the artifact; the message names it and that process."""


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


def _read_stamp(stamp: Path) -> dict[str, Any] | None:
    """What a partial directory is a run of (None: it has no readable stamp)."""
    try:
        text = stamp.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        stamp_data = json.loads(text)
    except json.JSONDecodeError:
        return {"fingerprint": text}  # an older stamp: the fingerprint alone
    if not isinstance(stamp_data, dict) or not isinstance(stamp_data.get("fingerprint"), str):
        return None
    trained_with = stamp_data.get("trained_with")
    if not (isinstance(trained_with, list) and all(isinstance(v, str) for v in trained_with)):
        stamp_data.pop("trained_with", None)  # then it resumes only on its own fingerprint
    return stamp_data


def _same_run(previous: dict[str, Any] | None, identity: dict[str, Any]) -> bool:
    """Whether a partial run can be resumed: the same fingerprint, or the same config section
    and inputs under another code version (its checkpoints restore or fail loudly)."""
    if previous is None:
        return False
    if previous["fingerprint"] == identity["fingerprint"]:
        return True
    if "trained_with" not in previous:  # an older stamp: the fingerprint alone
        return False
    return same_config_and_inputs(previous, identity["config"], identity["inputs"])


def resumes(output: Path, fingerprint_: str, config_section: dict[str, Any],
            input_fingerprints: dict[str, str]) -> bool:
    """Whether ``output`` has a partial run that a run of this identity would resume."""
    stamp = _read_stamp(partial_dir(output) / _FINGERPRINT_FILE)
    return _same_run(stamp, {"fingerprint": fingerprint_, "config": config_section,
                             "inputs": input_fingerprints})


def same_config_and_inputs(record: dict[str, Any], config_section: dict[str, Any],
                           input_fingerprints: dict[str, str]) -> bool:
    """Whether an artifact record (or a partial run's stamp) has these config keys and inputs,
    whatever code version made it."""
    return all(json.dumps(record.get(key), sort_keys=True, default=str)
               == json.dumps(value, sort_keys=True, default=str)
               for key, value in (("config", config_section), ("inputs", input_fingerprints)))


def read_artifact(path: Path) -> dict[str, Any] | None:
    """The artifact.json of a complete artifact directory, or None: none there, or a damaged one
    (not a JSON object with a fingerprint), which the stage then makes again as if missing."""
    try:
        record = json.loads((Path(path) / layout.ARTIFACT_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):  # missing; not UTF-8 or JSON
        return None
    if not isinstance(record, dict) or not isinstance(record.get("fingerprint"), str):
        return None
    return record


def record_digest(path: Path) -> str | None:
    """A digest of a complete artifact's whole record, its creation time included: unlike its
    fingerprint, it changes whenever the artifact is made again (a retrained model of
    unchanged settings). None without a record."""
    try:
        return hashlib.sha256((Path(path) / layout.ARTIFACT_FILE).read_bytes()).hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        return None


def require_artifact(path: Path, stage: str, command: str) -> dict[str, Any]:
    """artifact.json of an input, or MissingArtifactError naming the command to run first."""
    record = read_artifact(path)
    if record is None:
        if (Path(path) / layout.ARTIFACT_FILE).exists():
            raise MissingArtifactError(
                f"the {stage} artifact at {path} is damaged (its {layout.ARTIFACT_FILE} is no "
                f"record): run `{command}` again")
        raise MissingArtifactError(
            f"no {stage} artifact at {path}: run `{command}` first")
    return record


def partial_dir(output: Path) -> Path:
    """Where ``output`` is written until it is complete."""
    output = Path(output)
    return output.parent / f".{output.name}.partial"


def _lock_path(output: Path) -> Path:
    output = Path(output)
    return output.parent / f".{output.name}.lock"


def holder(output: Path) -> str | None:
    """Who is writing ``output`` now (process id, host and start time), or None."""
    try:
        lock = open(_lock_path(output))
    except OSError:
        return None  # never claimed (or not readable): no writer to name
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return lock.read().strip() or "a process that has not yet said which"
        except OSError:
            return None
        fcntl.flock(lock, fcntl.LOCK_UN)
    return None


def _lock_soon(lock, tries: int = 5, wait: float = 0.05) -> None:
    """Take the exclusive lock, trying a few times: a look at who holds it (:func:`holder`, as
    ``seqtutor status`` takes) holds it for an instant. Raises BlockingIOError while a writer
    holds it."""
    for attempt in range(tries):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == tries - 1:
                raise
            time.sleep(wait)


@contextlib.contextmanager
def claim(output: Path) -> Iterator[None]:
    """Hold ``output``'s lock (``.<name>.lock`` beside it) for the block.

    Raises:
      ArtifactBusyError: another process holds it (the message says which, as it wrote
        itself into the lock file: process id, host and since when it holds the lock).
    """
    output = Path(output)
    lock_path = _lock_path(output)
    lock, named = None, True
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        # The file stays: removing a lock file races with a process that has just opened it.
        lock = open(lock_path, "a+")
    except OSError:
        try:  # another user's lock file: it locks as well when read-only, unnamed
            lock, named = open(lock_path), False
        except OSError as error:  # a read-only workdir: nothing can be written to race over
            log.debug("no lock for %s: %s", output, error)
    if lock is None:
        yield
        return
    with lock:
        try:
            _lock_soon(lock)
            locked = True
        except BlockingIOError:
            lock.seek(0)
            who = lock.read().strip() or "a process that has not yet said which"
            raise ArtifactBusyError(f"{output} is being written by another process "
                                    f"({who})") from None
        except OSError as error:  # a file system without locks
            log.warning("%s: written without a lock (%s): run one process at a time on it",
                        output, error)
            locked = False
        if not locked:
            yield
            return
        if named:
            since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            lock.truncate(0)
            lock.write(f"pid {os.getpid()} on {socket.gethostname()} since {since}\n")
            lock.flush()
        try:
            yield
        finally:
            if named:
                lock.truncate(0)  # no holder named while none holds it
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def artifact_writer(output: Path, *, stage: str, fingerprint_: str,
                    input_fingerprints: dict[str, str], config_section: dict[str, Any],
                    resumable: bool) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Yield (in-progress directory, summary dict); commit both into ``output`` on success.

    On an exception a resumable stage keeps its in-progress directory (checkpoints) for the next
    run with the same config section and inputs (see the module docstring); otherwise, and for a
    partial run of another config, it is removed. An existing ``output`` is replaced
    only after the new artifact is complete.
    """
    output = Path(output)
    partial = partial_dir(output)
    stamp = partial / _FINGERPRINT_FILE
    current_code = code_version()
    identity = {"fingerprint": fingerprint_, "config": config_section,
                "inputs": input_fingerprints}
    earlier_code = []  # the code versions of the partial run this one resumes
    if partial.exists():
        previous = _read_stamp(stamp)
        if resumable and _same_run(previous, identity):
            earlier_code = [version for version in previous.get("trained_with", [])
                            if version != current_code]
            if previous["fingerprint"] != fingerprint_:  # the same run under other code
                log.warning("%s: resuming the partial run in %s, started by code %s (now %s)",
                            stage, partial, ", ".join(earlier_code), current_code)
        else:
            if resumable:
                log.warning("%s: discarding the partial run in %s: %s", stage, partial,
                            "its config or inputs differ" if previous and "trained_with" in
                            previous else "it does not record its config and inputs")
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({**identity, "trained_with": earlier_code + [current_code]},
                                default=str) + "\n")
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
        "code_version": current_code,
        **({"resumed_from_code_versions": earlier_code} if earlier_code else {}),
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
