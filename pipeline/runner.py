"""The stage graph and the local runner (caching by fingerprint, single-stage reruns)."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from pathlib import Path
from typing import Any

from pipeline import artifacts
from pipeline.config import Config

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage: ``<module>.run(config, inputs, output) -> summary dict``."""

    name: str
    inputs: tuple[str, ...]
    module: str
    resumable: bool = False  # keeps checkpoints in its partial directory across a failure

    @property
    def command(self) -> str:
        return f"seqtutor {self.name.replace('_', '-')} CONFIG"

    def function(self):
        return importlib.import_module(self.module).run


STAGES: tuple[Stage, ...] = (
    Stage("prepare_data", (), "components.prepare_data"),
    Stage("pretrain", ("prepare_data",), "components.pretrain", resumable=True),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


class StageError(RuntimeError):
    """A stage failed; the message names it. Earlier artifacts are left as they were."""


@dataclasses.dataclass
class StageResult:
    name: str
    path: Path
    skipped: bool
    seconds: float
    summary: dict[str, Any]


def stage(name: str) -> Stage:
    for candidate in STAGES:
        if candidate.name == name:
            return candidate
    raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")


def default_workdir(config: Config) -> Path:
    return Path("runs") / (config.name or "default")


def run_stage(config: Config, name: str, workdir: Path, *, force: bool = False) -> StageResult:
    """Run one stage unless an artifact with the same fingerprint exists (or ``force``).

    Raises:
      artifacts.MissingArtifactError: an input artifact is missing (names the command to run).
      StageError: the stage itself failed.
    """
    spec = stage(name)
    workdir = Path(workdir)
    inputs = {source: workdir / source for source in spec.inputs}
    input_fingerprints = {
        source: artifacts.require_artifact(path, source, stage(source).command)["fingerprint"]
        for source, path in inputs.items()}
    section = config.section(name)
    fingerprint = artifacts.fingerprint(name, section, input_fingerprints)
    output = workdir / name
    existing = artifacts.read_artifact(output)
    if not force and existing is not None and existing.get("fingerprint") == fingerprint:
        log.info("[%s] up to date, skipped (%s)", name, output)
        return StageResult(name, output, True, 0.0, existing.get("summary", {}))

    log.info("[%s] running -> %s", name, output)
    started = time.perf_counter()
    try:
        with artifacts.artifact_writer(output, stage=name, fingerprint_=fingerprint,
                                       input_fingerprints=input_fingerprints,
                                       config_section=section,
                                       resumable=spec.resumable) as (partial, summary):
            summary.update(spec.function()(config, inputs, partial) or {})
    except (artifacts.MissingArtifactError, KeyboardInterrupt):
        raise
    except Exception as error:
        raise StageError(f"stage {name} failed: {type(error).__name__}: {error}") from error
    seconds = time.perf_counter() - started
    log.info("[%s] done in %.1f s", name, seconds)
    return StageResult(name, output, False, seconds, summary)


def run_pipeline(config: Config, workdir: Path, *, only: list[str] = (),
                 from_stage: str | None = None, force: bool = False) -> list[StageResult]:
    """Run the stages in order with caching.

    Args:
      only: run just these stages (forced); the others are neither run nor checked.
      from_stage: force this stage and every later one.
      force: rerun every stage.
    """
    for name in list(only) + ([from_stage] if from_stage else []):
        stage(name)  # fail on an unknown name before any work
    results = []
    forcing = force
    for spec in STAGES:
        if only and spec.name not in only:
            continue
        if from_stage == spec.name:
            forcing = True
        results.append(run_stage(config, spec.name, workdir,
                                 force=forcing or spec.name in only))
    return results
