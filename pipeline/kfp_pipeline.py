"""The stage graph as a KFP v2 pipeline, for Vertex AI Pipelines or a Kubeflow cluster.

Typed artifacts carry the stages' directories from task to task, so the pipeline graph holds
the lineage: prepare_data writes a ``Dataset``; pretrain reads it and writes the prior, a
``Model``; one tune task per algorithm and sweep point (a ``dsl.ParallelFor``, each task with
its own accelerators) reads the prior and writes a tuned ``Model`` and its curve's ``Metrics``;
evaluate collects every tuned model (``dsl.Collected``) and writes the evaluation directory,
the statistics of every model as ``Metrics`` (Vertex compares runs by them) and the report as
``HTML``. Each component runs the same stage function as the local runner
(``seqtutor.pipeline.kfp_steps``), in the project's image (``Dockerfile``).

The validated config travels as a JSON parameter, and so does the code version: a change of
the code changes every task's cache key, and a task whose inputs were remade gets new input
artifacts, so a cached result never outlives the code or the data it came from.

(No ``from __future__ import annotations`` here: KFP reads the components' annotations as types.)
"""

import dataclasses
import json
import re
from typing import List

from kfp import compiler, dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

# scripts/build_image.sh's default tags: an image built with its defaults compiles with ours.
DEFAULT_IMAGE = "seqtutor:cpu"
DEFAULT_GPU_IMAGE = "seqtutor:gpu"
# Vertex AI collects at most this many outputs of a loop into one list.
MAX_FAN_IN = 100

# An image reference: [registry[:port]/]path[:tag][@digest] (the grammar of Docker's
# distribution/reference, without its length limits).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
IMAGE_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$")


class PipelineSpecError(ValueError):
    """A compile option or the config cannot make a valid pipeline; nothing was written."""


@dataclasses.dataclass(frozen=True)
class Resources:
    """What a task asks its node for (None: the platform's default)."""

    accelerator_type: str | None = None
    accelerator_count: int = 0
    cpu: str | None = None  # a CPU limit, such as "8" or "500m"
    memory: str | None = None  # a memory limit, such as "32G"

    def check(self, task: str) -> None:
        if self.accelerator_count < 0:
            raise PipelineSpecError(f"{task}: the accelerator count must be at least 0, got "
                                    f"{self.accelerator_count}")
        if self.accelerator_count and not self.accelerator_type:
            raise PipelineSpecError(f"{task}: {self.accelerator_count} accelerators of no type")

    def apply(self, task) -> None:
        if self.accelerator_count:
            task.set_accelerator_type(self.accelerator_type).set_accelerator_limit(
                self.accelerator_count)
        if self.cpu:
            task.set_cpu_limit(self.cpu)
        if self.memory:
            task.set_memory_limit(self.memory)


# Lightweight components: each body imports the installed package, so the same code runs in
# the container image and in kfp.local's SubprocessRunner.
def prepare_data(config_json: str, code_version: str, dataset: Output[Dataset]):
    from seqtutor.pipeline.kfp_steps import run_component
    run_component("prepare_data", config_json, code_version, {}, dataset.path)


def pretrain(config_json: str, code_version: str, dataset: Input[Dataset],
             model: Output[Model]):
    from seqtutor.pipeline.kfp_steps import run_component
    run_component("pretrain", config_json, code_version, {"prepare_data": dataset.path},
                  model.path)


def tune(config_json: str, code_version: str, variant: str, prior: Input[Model],
         model: Output[Model], curves: Output[Metrics]):
    from seqtutor.pipeline.kfp_steps import record_metrics, run_component, tune_metrics
    summary = run_component("tune", config_json, code_version, {"pretrain": prior.path},
                            model.path, variant=variant)
    model.metadata["variant"] = variant
    record_metrics(curves, tune_metrics(summary))


def evaluate(config_json: str, code_version: str, dataset: Input[Dataset], prior: Input[Model],
             tuned: Input[List[Model]], evaluation: Output[Artifact], metrics: Output[Metrics],
             report: Output[HTML]):
    import shutil
    from pathlib import Path

    from seqtutor import layout
    from seqtutor.pipeline.kfp_steps import evaluate_metrics, record_metrics, run_component
    run_component("evaluate", config_json, code_version,
                  {"prepare_data": dataset.path, "pretrain": prior.path,
                   "tune": [model.path for model in tuned]}, evaluation.path)
    record_metrics(metrics, evaluate_metrics(evaluation.path))
    shutil.copy(Path(evaluation.path) / layout.REPORT_FILE, report.path)


def build_pipeline(config, *, image: str | None = None, gpu_image: str | None = None,
                   tune_resources: Resources = Resources("NVIDIA_TESLA_T4", 1),
                   pretrain_resources: Resources = Resources(),
                   parallelism: int = 0, code_version: str | None = None):
    """The KFP pipeline function for ``config`` (its values are the parameters' defaults).

    ``image`` (default: the build script's cpu tag) runs prepare_data and evaluate;
    ``gpu_image`` runs pretrain and the tune tasks, the ones that train on an accelerator (the
    Dockerfile's two variants); its default is ``image`` when that is named, else the build
    script's gpu tag.

    Raises:
      PipelineSpecError: ``image`` or ``gpu_image`` is not an image reference, a resource is
        invalid, or the config has more tune variants than Vertex collects into one list.
    """
    from seqtutor import artifacts
    from seqtutor.pipeline import runner

    if gpu_image is None:
        gpu_image = DEFAULT_GPU_IMAGE if image is None else image
    image = DEFAULT_IMAGE if image is None else image
    for flag, reference in (("--image", image), ("--gpu-image", gpu_image)):
        if not IMAGE_REFERENCE.match(reference):
            raise PipelineSpecError(f"{flag}: {reference!r} is not an image reference ([registry/]"
                                    "path[:tag][@sha256:digest], path in lower case)")
    tune_resources.check("tune")
    pretrain_resources.check("pretrain")
    if parallelism < 0:
        raise PipelineSpecError(f"parallelism must be at least 0 (0: no limit), got "
                                f"{parallelism}")
    runner.check_sweep(config)
    variants = config.tune_variants()
    if len(variants) > MAX_FAN_IN:
        raise PipelineSpecError(
            f"{len(variants)} tune tasks (algorithms x sweep points): Vertex AI collects at "
            f"most {MAX_FAN_IN} into evaluate's list; tune fewer algorithms or points")
    # The image has kfp already (a dependency of the package): no pip install at task start.
    components = {func.__name__: dsl.component(func, base_image=base_image,
                                               install_kfp_package=False)
                  for func, base_image in ((prepare_data, image), (pretrain, gpu_image),
                                           (tune, gpu_image), (evaluate, image))}
    config_json = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    code_version = code_version or artifacts.code_version()

    @dsl.pipeline(name=f"seqtutor-{config.name or 'run'}".replace("_", "-"),
                  description="Sequence Tutor: prepare_data -> pretrain -> tune (one task per "
                              "algorithm and sweep point) -> evaluate")
    def seqtutor_pipeline(config_json: str = config_json, code_version: str = code_version):
        common = {"config_json": config_json, "code_version": code_version}
        prepared = components["prepare_data"](**common).set_display_name("prepare_data")
        pretrained = components["pretrain"](
            **common, dataset=prepared.outputs["dataset"]).set_display_name("pretrain")
        pretrain_resources.apply(pretrained)
        with dsl.ParallelFor(variants, parallelism=parallelism, name="tune-variants") as variant:
            tuned = components["tune"](**common, variant=variant,
                                       prior=pretrained.outputs["model"])
            tuned.set_display_name("tune")
            tune_resources.apply(tuned)
        evaluated = components["evaluate"](
            **common, dataset=prepared.outputs["dataset"], prior=pretrained.outputs["model"],
            tuned=dsl.Collected(tuned.outputs["model"])).set_display_name("evaluate")
        for task in (prepared, pretrained, tuned, evaluated):
            task.set_caching_options(True)

    return seqtutor_pipeline


def compile_pipeline(config, output: str, **options) -> str:
    """Write the KFP v2 pipeline spec (YAML) of ``config`` to ``output``; nothing is written
    when an option is invalid (PipelineSpecError)."""
    pipeline_func = build_pipeline(config, **options)
    compiler.Compiler().compile(pipeline_func, package_path=str(output))
    return str(output)
