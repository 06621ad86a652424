"""The stage graph and the local runner (caching by fingerprint, single-stage reruns)."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from seqtutor import artifacts, console, layout, plugins, sweep
from seqtutor.config import EVALUATE_READS, Config

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage: ``<module>.run(config, inputs, output) -> summary dict``."""

    name: str
    inputs: tuple[str, ...]
    module: str
    # The config keys the stage reads (dotted for one value of another section): its
    # fingerprint covers these and nothing else, so an edit elsewhere does not rerun it.
    reads: tuple[str, ...]
    resumable: bool = False  # keeps checkpoints in its partial directory across a failure
    # A stage with variants (tune: one per algorithm and sweep point) writes one artifact per
    # variant into <name>/<variant>/; ``variant_key`` is the config list that names them.
    variant_key: str | None = None
    # Inputs used when present (evaluate reads whichever tuned models exist).
    optional_inputs: tuple[str, ...] = ()
    # Keys of the stage's config section that a finished artifact can be continued to larger
    # values of, as a TF Estimator continues to a larger ``max_steps``: when nothing else
    # changed, the stage is called with ``previous=<the finished artifact>``.
    extendable_keys: tuple[str, ...] = ()
    # Whether the stage is called with ``previous=<its finished artifact>`` whenever one exists,
    # to keep what still holds of it (evaluate: the rows whose model and settings are unchanged).
    keeps_from_previous: bool = False

    @property
    def command(self) -> str:
        return f"seqtutor {self.name.replace('_', '-')} CONFIG"

    def variants(self, config: Config) -> list[str | None]:
        if self.variant_key is None:
            return [None]
        return config.tune_variants()

    def variant_config(self, config: Config, variant: str | None) -> Config:
        """The config a variant runs with: at its sweep point, if it names one, with its
        algorithm's ``tune.per_algorithm`` entry applied.

        Raises:
          ValueError: the variant is not one of the config's (an algorithm at a point that
            is not in its sweep).
        """
        if variant is None:
            return config
        for point in config.points():
            if sweep.variant(sweep.algorithm_of(variant), point) == variant:
                return config.at(point).for_algorithm(sweep.algorithm_of(variant))
        raise ValueError(f"{self.name}: {variant!r} is not a variant of this config "
                         f"(variants: {', '.join(config.tune_variants())})")

    def output(self, workdir: Path, variant: str | None) -> Path:
        return layout.stage_dir(workdir, self.name, variant)

    def section(self, config: Config, variant: str | None) -> dict[str, Any]:
        """The config values the stage reads (its fingerprint input)."""
        section = {key: config.value(key) for key in self.reads}
        if variant is not None:
            # Other variants' names and settings do not change this one's output (its own
            # settings are applied: variant_config).
            section[self.name].pop(self.variant_key)
            section[self.name].pop("per_algorithm", None)
            section["variant"] = variant
        if self.variant_key == "algorithms":
            section["algorithm"] = plugins.describe_algorithm(sweep.algorithm_of(variant))
        # A domain outside the package: its code, which the code version does not cover.
        domain_code = plugins.outside_code(plugins.domain_class(config.domain))
        if domain_code:
            section["domain_code"] = domain_code
        return section

    def function(self):
        return importlib.import_module(self.module).run


STAGES: tuple[Stage, ...] = (
    Stage("prepare_data", (), "seqtutor.components.prepare_data",
          reads=("domain", "seed", "prepare_data")),
    Stage("pretrain", ("prepare_data",), "seqtutor.components.pretrain",
          reads=("domain", "seed", "pretrain"), resumable=True, extendable_keys=("max_steps",)),
    Stage("tune", ("pretrain",), "seqtutor.components.tune",
          reads=("domain", "seed", "tune", "reward"), resumable=True,
          variant_key="algorithms", extendable_keys=("num_steps",)),
    Stage("evaluate", ("prepare_data", "pretrain"), "seqtutor.components.evaluate",
          reads=EVALUATE_READS,
          optional_inputs=("tune",), keeps_from_previous=True),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


class StageError(RuntimeError):
    """A stage failed; the message names it. Earlier artifacts are left as they were."""


def failure_text(error: Exception) -> str:
    """``Type: message`` of a stage's failure. A TensorFlow op error is cut to its own message
    (the graph's call stack before it says nothing to a user), the first of several root
    errors; a damaged TFRecord shard says how to make the dataset again."""
    text = str(error)
    if text.startswith("Graph execution error"):
        lines = [line for line in text.splitlines() if line.strip()]
        roots = [line.strip() for line in lines if line.strip().startswith("(0) ")]
        own = [line for line in lines if not line.startswith(
            (" ", "\t", "Graph execution error", "Detected at node"))]
        text = roots[0] if roots else own[-1] if own else text
    tensorflow = sys.modules.get("tensorflow")  # not imported: not a TensorFlow error
    if (tensorflow is not None and isinstance(error, tensorflow.errors.DataLossError)
            and "record" in text):
        text += (" (a TFRecord shard of the dataset is damaged or cut short: make it again with "
                 "`seqtutor prepare-data CONFIG`)")
    return f"{type(error).__name__}: {text}"


@dataclasses.dataclass
class StageResult:
    name: str
    path: Path
    skipped: bool
    seconds: float
    summary: dict[str, Any]
    busy: str | None = None  # why it was skipped: another process is writing it


def summary_text(name: str, summary: dict[str, Any]) -> str:
    """The figures of a stage's summary worth a glance, for its "done" line."""
    def count(key: str, noun: str) -> list[str]:
        return [f"{summary[key]:,} {noun}"] if isinstance(summary.get(key), int) else []

    parts: list[str] = []
    if name == "prepare_data":
        parts += count("inputs_read", "inputs")
        if summary.get("inputs_dropped"):
            parts += count("inputs_dropped", "dropped")
        parts += count("sequences_written", "sequences")
        records = summary.get("records_out") or {}
        if records:
            parts.append(" + ".join(f"{n:,} {split}" for split, n in records.items())
                         + " records")
    elif name == "pretrain":
        parts += count("steps", "steps")
        if "eval_accuracy" in summary:
            parts.append(f"eval accuracy {summary['eval_accuracy']:.3f}")
        if "eval_log_perplexity" in summary:
            parts.append(f"log perplexity {summary['eval_log_perplexity']:.3f}")
    elif name == "tune":
        parts += count("env_steps", "env steps")
        if "final_mean_task_reward" in summary:
            parts.append(f"r_T {summary.get('initial_mean_task_reward', float('nan')):.2f} -> "
                         f"{summary['final_mean_task_reward']:.2f}")
    elif name == "evaluate":
        models = [name for name in summary.get("models", []) if name != "data"]
        if models:
            parts.append(f"{len(models)} model{'s' if len(models) > 1 else ''}"
                         + (" and the data" if "data" in summary["models"] else ""))
        if summary.get("kept_rows"):
            parts.append(f"{summary['kept_rows']} kept from the last evaluation")
        if summary.get("missing_models"):
            parts.append(f"missing {console.name_list(summary['missing_models'])}")
    return ", ".join(parts)


def stage(name: str) -> Stage:
    for candidate in STAGES:
        if candidate.name == name:
            return candidate
    raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")


def default_workdir(config: Config) -> Path:
    return Path("runs") / (config.name or "default")


def _input_fingerprint(config: Config, source: Stage, workdir: Path,
                       required: bool = True) -> str:
    """The fingerprint of an input stage's artifact (of all its variants, joined); an optional
    input counts only the variants that exist."""
    prints = []
    for variant in source.variants(config):
        path = source.output(workdir, variant)
        if required:
            record = artifacts.require_artifact(path, source.name, source.command)
        else:
            record = artifacts.read_artifact(path) or {"fingerprint": f"missing:{variant}"}
        prints.append(record["fingerprint"])
    return "+".join(prints)


def _extends(spec: Stage, existing: dict[str, Any], section: dict[str, Any],
             input_fingerprints: dict[str, str]) -> bool:
    """Whether ``section`` only raises ``spec.extendable_keys`` of the ``existing`` artifact's."""
    old = existing.get("config", {})
    if not spec.extendable_keys or existing.get("inputs") != input_fingerprints:
        return False
    old_values, new_values = dict(old.get(spec.name, {})), dict(section.get(spec.name, {}))
    for key in spec.extendable_keys:
        if not (isinstance(old_values.get(key), int) and isinstance(new_values.get(key), int)
                and new_values[key] > old_values[key]):
            return False
        del old_values[key], new_values[key]
    return old_values == new_values and {**old, spec.name: None} == {**section, spec.name: None}


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What one stage (variant) would be run with, and the identity of what it would write."""

    spec: Stage
    config: Config  # at the variant's sweep point, with its per_algorithm settings
    inputs: dict[str, Path]
    input_fingerprints: dict[str, str]
    section: dict[str, Any]
    fingerprint: str
    output: Path
    label: str


def _plan(config: Config, name: str, workdir: Path, variant: str | None) -> _Plan:
    """Raises artifacts.MissingArtifactError when an input artifact is missing."""
    spec = stage(name)
    if (variant is None) != (spec.variant_key is None):
        raise ValueError(f"stage {name} {'needs' if variant is None else 'takes no'} variant")
    config = spec.variant_config(config, variant)
    workdir = Path(workdir)
    inputs = {source: layout.stage_dir(workdir, source)
              for source in spec.inputs + spec.optional_inputs}
    input_fingerprints = {source: _input_fingerprint(config, stage(source), workdir)
                          for source in spec.inputs}
    input_fingerprints.update({
        source: _input_fingerprint(config, stage(source), workdir, required=False)
        for source in spec.optional_inputs})
    section = spec.section(config, variant)
    return _Plan(spec, config, inputs, input_fingerprints, section,
                 artifacts.fingerprint(name, section, input_fingerprints),
                 spec.output(workdir, variant),
                 name if variant is None else f"{name}/{variant}")


def run_stage(config: Config, name: str, workdir: Path, *, force: bool = False,
              variant: str | None = None, extend: bool = True,
              keep_finished: bool = False) -> StageResult:
    """Run one stage (one variant of it) unless an artifact with the same fingerprint exists.

    ``force`` reruns it even then. With ``extend``, a finished artifact whose config differs only
    by larger ``extendable_keys`` is continued instead of trained again from scratch, and a
    stage that ``keeps_from_previous`` keeps what still holds of its finished artifact. With
    ``keep_finished``, a finished artifact of the same config keys and inputs is kept even when
    another code version made it (a long sweep run across code changes), ``force`` or not.

    Raises:
      artifacts.MissingArtifactError: an input artifact is missing (names the command to run).
      artifacts.ArtifactBusyError: another process is writing the same artifact.
      StageError: the stage itself failed.
    """
    plan = _plan(config, name, workdir, variant)
    output, label = plan.output, plan.label
    # Whether it is up to date is read under the claim: another process may just have finished
    # it.
    with artifacts.claim(output):
        existing = artifacts.read_artifact(output)
        if not force and existing is not None and existing.get("fingerprint") == plan.fingerprint:
            log.info("%s: up to date (%s)", label, output)
            return StageResult(label, output, True, 0.0, existing.get("summary", {}))
        if (keep_finished and existing is not None and artifacts.same_config_and_inputs(
                existing, plan.section, plan.input_fingerprints)):
            log.info("%s: finished, kept (%s, code %s)", label, output,
                     existing.get("code_version", "unknown"))
            return StageResult(label, output, True, 0.0, existing.get("summary", {}))

        log.info("%s: running -> %s", label, output)
        started = time.perf_counter()
        kwargs = {} if variant is None else {"variant": variant}
        if extend and existing is not None and (
                plan.spec.keeps_from_previous
                or _extends(plan.spec, existing, plan.section, plan.input_fingerprints)):
            kwargs["previous"] = output
        try:
            with artifacts.artifact_writer(output, stage=name, fingerprint_=plan.fingerprint,
                                           input_fingerprints=plan.input_fingerprints,
                                           config_section=plan.section,
                                           resumable=plan.spec.resumable) as (partial, summary):
                summary.update(
                    plan.spec.function()(plan.config, plan.inputs, partial, **kwargs) or {})
        except (artifacts.MissingArtifactError, KeyboardInterrupt):
            raise
        except Exception as error:
            raise StageError(f"stage {label} failed: {failure_text(error)}") from error
        seconds = time.perf_counter() - started
        details = summary_text(name, summary)
        log.info("%s: done in %s%s", label, console.format_seconds(seconds),
                 f" ({details})" if details else "")
        return StageResult(label, output, False, seconds, summary)


def run_variants(config: Config, name: str, workdir: Path, **options) -> list[StageResult]:
    """Run every variant of a stage in order (``options`` as for :func:`run_stage`).

    A variant that another process is writing is skipped, with ``busy`` saying why, and the
    skipped ones are named at the end: several processes started on one sweep (one per GPU,
    or per core) share its points, each taking the next one no other holds. A stage without
    variants raises ArtifactBusyError as run_stage does.
    """
    spec = stage(name)
    if spec.variant_key is None:
        return [run_stage(config, name, workdir, **options)]
    results = []
    for variant in spec.variants(config):
        try:
            results.append(run_stage(config, name, workdir, variant=variant, **options))
        except artifacts.ArtifactBusyError as error:
            log.info("%s/%s: skipped, another process is running it", name, variant)
            results.append(StageResult(f"{name}/{variant}", spec.output(workdir, variant),
                                       True, 0.0, {}, busy=str(error)))
    busy = [result.name for result in results if result.busy]
    if busy:
        log.warning("%s: %d of %d skipped as other processes are running them (%s); a rerun "
                    "takes up any they leave unfinished", name, len(busy), len(results),
                    ", ".join(busy))
    return results


@dataclasses.dataclass(frozen=True)
class ArtifactStatus:
    """Where one artifact stands: ``state`` is one of STATES, ``detail`` says more."""

    name: str
    state: str
    detail: str = ""


STATES = ("done", "done by other code", "out of date", "running", "stopped", "to do",
          "waiting for input")
_FINISHED = ("done", "done by other code")


def _checkpoint_step(partial: Path) -> int | None:
    """The environment step of a partial tune run's last checkpoint (tune numbers its
    checkpoints by the step: ``ckpt-<step>``)."""
    try:
        text = (partial / layout.CHECKPOINT_DIR / "checkpoint").read_text()
    except OSError:
        return None
    match = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', text, re.MULTILINE)
    return int(match.group(1)) if match else None


def artifact_status(config: Config, name: str, workdir: Path,
                    variant: str | None = None) -> ArtifactStatus:
    """Where one stage (variant) stands in ``workdir`` against the input artifacts there, as a
    single-stage command sees it; read without writing anything."""
    label = name if variant is None else f"{name}/{variant}"
    try:
        plan = _plan(config, name, workdir, variant)
    except artifacts.MissingArtifactError:
        missing = [source for source in stage(name).inputs
                   if artifacts.read_artifact(layout.stage_dir(workdir, source)) is None]
        return ArtifactStatus(label, "waiting for input", ", ".join(missing))
    output = plan.output
    partial = artifacts.partial_dir(output)
    step = _checkpoint_step(partial) if variant is not None else None
    progress = "" if step is None else (
        f"checkpoint at step {step:,} of {plan.config.tune.num_steps:,}")
    writer = artifacts.holder(output)
    if writer is not None:
        return ArtifactStatus(label, "running",
                              "; ".join(part for part in (writer, progress) if part))
    existing = artifacts.read_artifact(output)
    if existing is not None and existing.get("fingerprint") == plan.fingerprint:
        return ArtifactStatus(label, "done")
    if existing is not None and artifacts.same_config_and_inputs(
            existing, plan.section, plan.input_fingerprints):
        kept = "; seqtutor tune --keep-finished keeps it" if variant is not None else ""
        return ArtifactStatus(label, "done by other code",
                              f"code {existing.get('code_version', 'unknown')}{kept}")
    if plan.spec.resumable and artifacts.resumes(output, plan.fingerprint, plan.section,
                                                 plan.input_fingerprints):
        return ArtifactStatus(label, "stopped", progress or "a partial run to resume")
    return ArtifactStatus(label, "to do" if existing is None else "out of date")


def status(config: Config, workdir: Path,
           max_points: int = sweep.MAX_POINTS) -> list[ArtifactStatus]:
    """Where every stage and every tune point of ``config`` stands in ``workdir``. A stage
    whose input is not finished under this config waits for it (``seqtutor run`` remakes the
    input first); after a code change ``seqtutor run`` remakes every stage, while the
    single-stage commands keep what is done by other code (docs/stages.md)."""
    check_sweep(config, max_points)
    rows, stages = [], {}
    for spec in STAGES:
        for variant in spec.variants(config):
            row = artifact_status(config, spec.name, workdir, variant)
            unfinished = [
                f"{source} {stages[source].state}" if stages[source].state != "waiting for input"
                else f"{source}, which waits for {stages[source].detail}"
                for source in spec.inputs if stages[source].state not in _FINISHED]
            if unfinished and row.state not in ("running", "waiting for input"):
                row = ArtifactStatus(row.name, "waiting for input", "; ".join(unfinished))
            rows.append(row)
        if spec.variant_key is None:
            stages[spec.name] = rows[-1]
    return rows


def check_sweep(config: Config, max_points: int = sweep.MAX_POINTS) -> None:
    """Validate every point of the config's sweep (at most ``max_points``) before any work;
    raises ConfigError naming the point."""
    for point in config.points(max_points):
        config.at(point)  # validates the point's per-algorithm settings too (TuneConfig)


def run_pipeline(config: Config, workdir: Path, *, only: list[str] = (),
                 from_stage: str | None = None, force: bool = False,
                 max_points: int = sweep.MAX_POINTS) -> list[StageResult]:
    """Run the stages in order with caching.

    Raises ArtifactBusyError, after the stage's other variants, when another process is writing
    a variant of a stage: a later stage would read an incomplete set.

    Args:
      only: run just these stages (forced); the others are neither run nor checked.
      from_stage: force this stage and every later one.
      force: rerun every stage from scratch (no finished artifact is continued).
      max_points: the most points the config's sweep may have (ConfigError before any work).
    """
    for name in list(only) + ([from_stage] if from_stage else []):
        stage(name)  # fail on an unknown name before any work
    check_sweep(config, max_points)
    results = []
    forcing = force
    for spec in STAGES:
        if only and spec.name not in only:
            continue
        if from_stage == spec.name:
            forcing = True
        results += run_variants(config, spec.name, workdir,
                                force=forcing or spec.name in only, extend=not force)
        busy = [result.name for result in results if result.busy]
        if busy:  # the later stages would read an incomplete sweep
            raise artifacts.ArtifactBusyError(
                f"{len(busy)} {spec.name} output{'s are' if len(busy) > 1 else ' is'} being "
                f"written by other processes ({', '.join(busy)}): run again when they finish "
                "(`seqtutor status CONFIG` shows them)")
    return results
