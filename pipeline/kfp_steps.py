"""What a KFP component of the pipeline runs: one stage between artifact paths.

A KFP task receives its input artifacts as local paths (on Vertex AI, GCS FUSE paths) and
writes its output artifact at a path of its own. :func:`run_component` lays the inputs out as
the local runner's workdir would hold them (links in a temporary folder: ``prepare_data/``,
``pretrain/``, ``tune/<variant>/``), runs the stage with the local runner, so fingerprints,
resume and error messages are the same, and copies the stage's directory to the output path.

No kfp import here: the components import this module inside a running task, where importing
kfp's compiler would be circular.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from pathlib import Path

from seqtutor import artifacts, layout
from seqtutor.pipeline import runner


class CodeVersionMismatch(RuntimeError):
    """The image runs another version of the code than the pipeline was compiled with."""


# Beam runners that run inside the task's own container.
LOCAL_RUNNERS = ("DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner",
                 "PrismRunner", "FnApiRunner")


def beam_runner(beam_args: list[str]) -> str | None:
    """The runner that Beam pipeline options name (None: Beam's default, a local one)."""
    for i, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(beam_args):
            return beam_args[i + 1]
    return None


def check_local_beam(config) -> None:
    """A pipeline task's prepare_data writes into the task's own folder, which remote Beam
    workers cannot reach: refuse a remote runner with a message that says what to do."""
    runner_name = beam_runner(list(getattr(config.prepare_data, "beam_args", [])))
    if runner_name is not None and runner_name.rsplit(".", 1)[-1] not in LOCAL_RUNNERS:
        raise ValueError(
            f"prepare_data.beam_args names the runner {runner_name}: in a pipeline task the Beam "
            f"job runs in the task's container ({', '.join(LOCAL_RUNNERS)}). Prepare a corpus "
            "on a remote runner with `seqtutor prepare-data` outside the pipeline.")


def _variant_of(path: Path) -> str:
    """The tune variant an artifact directory holds (its artifact.json names it)."""
    record = artifacts.read_artifact(path)
    if record is None or "variant" not in record.get("config", {}):
        raise artifacts.MissingArtifactError(f"{path} is not a finished tune artifact")
    return record["config"]["variant"]


def lay_out(workdir: Path, inputs: dict[str, str | list[str]]) -> None:
    """Link each input artifact where the local runner looks for it in ``workdir``."""
    for source, paths in inputs.items():
        if isinstance(paths, str):
            (workdir / source).symlink_to(Path(paths).resolve(), target_is_directory=True)
            continue
        (workdir / source).mkdir()
        for path in paths:
            path = Path(path).resolve()
            (workdir / source / _variant_of(path)).symlink_to(path, target_is_directory=True)


def run_component(stage_name: str, config_json: str, code_version: str,
                  inputs: dict[str, str | list[str]], output_path: str,
                  variant: str | None = None) -> dict:
    """Run ``stage_name`` (its ``variant``) on the input artifacts at their paths and write its
    directory at ``output_path``; returns the stage's summary.

    Raises:
      CodeVersionMismatch: the installed code is not the code the pipeline was compiled with
        (an image tag that moved): rebuild the image or compile again.
    """
    from seqtutor.config import config_from_dict

    installed = artifacts.code_version()
    if code_version != installed:
        raise CodeVersionMismatch(
            f"the pipeline was compiled for seqtutor {code_version}, this image runs "
            f"{installed}: compile the pipeline with this image's code (or push the image "
            "built from the code you compiled)")
    config = config_from_dict(json.loads(config_json))
    runner.check_sweep(config)
    if stage_name == "prepare_data":
        check_local_beam(config)
    with tempfile.TemporaryDirectory(prefix="seqtutor-") as folder:
        workdir = Path(folder)
        lay_out(workdir, inputs)
        result = runner.run_stage(config, stage_name, workdir, variant=variant)
        shutil.copytree(result.path, output_path, dirs_exist_ok=True)
    return result.summary


def record_metrics(artifact, values: dict[str, float]) -> None:
    """Log ``values`` on a KFP Metrics artifact and write them as JSON at its path: a Metrics
    artifact is otherwise metadata alone, and a cache that checks its outputs' files (such as
    kfp.local's) would never reuse the task."""
    for key, value in values.items():
        artifact.log_metric(key, value)
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")


def metric_name(*parts: str) -> str:
    """A Metrics key from a model's and a statistic's names: letters, digits and _ only."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", ".".join(parts)).strip("_")


def _finite_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def tune_metrics(summary: dict) -> dict[str, float]:
    """A tune task's Metrics: the first and last curve points and the steps it took."""
    return {key: float(value) for key, value in summary.items() if _finite_number(value)}


def evaluate_metrics(evaluation_dir: str) -> dict[str, float]:
    """The evaluate task's Metrics: every model's statistics, ``<model>_<statistic>``, from
    the metrics.json it wrote."""
    metrics = json.loads((Path(evaluation_dir) / layout.METRICS_FILE).read_text())
    values = {}
    for model, statistics in metrics["models"].items():
        for key, value in statistics.items():
            if _finite_number(value):
                values[metric_name(model, key)] = float(value)
    return values
