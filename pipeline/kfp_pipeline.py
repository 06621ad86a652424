"""The stage graph as a KFP v2 pipeline, for Vertex AI Pipelines or a Kubeflow cluster.

One component per stage, each running in the project's container image (``Dockerfile``) and
calling the same stage functions as the local runner, on a shared workdir (on Vertex AI, a GCS
FUSE path such as ``/gcs/my-bucket/runs/melody``). The validated config travels as a JSON
pipeline parameter. KFP's caching is on, and the local runner's fingerprints skip unchanged
stages as well. The tune component asks for a GPU.

(No ``from __future__ import annotations`` here: KFP reads the components' annotations as types.)
"""


import json

from kfp import compiler, dsl

DEFAULT_IMAGE = "seqtutor:latest"


# Lightweight components: each body imports the installed package, so the same code runs in
# the container image and in kfp.local's SubprocessRunner. (The stage runner lives outside this
# module: importing kfp's compiler inside a running component is a circular import.)
def prepare_data(config_json: str, workdir: str) -> str:
    from seqtutor.pipeline.runner import execute_stage
    return execute_stage("prepare_data", config_json, workdir)


def pretrain(config_json: str, workdir: str) -> str:
    from seqtutor.pipeline.runner import execute_stage
    return execute_stage("pretrain", config_json, workdir)


def tune(config_json: str, workdir: str) -> str:
    from seqtutor.pipeline.runner import execute_stage
    return execute_stage("tune", config_json, workdir)


def evaluate(config_json: str, workdir: str) -> str:
    from seqtutor.pipeline.runner import execute_stage
    return execute_stage("evaluate", config_json, workdir)


def build_pipeline(config, *, image: str = DEFAULT_IMAGE, workdir: str = "/tmp/seqtutor",
                   accelerator_type: str = "NVIDIA_TESLA_T4", accelerator_count: int = 1):
    """The KFP pipeline function for ``config`` (its values are the parameters' defaults)."""
    components = {func.__name__: dsl.component(func, base_image=image)
                  for func in (prepare_data, pretrain, tune, evaluate)}
    config_json = json.dumps(config.model_dump(mode="json"), sort_keys=True)

    @dsl.pipeline(name=f"seqtutor-{config.name or 'run'}".replace("_", "-"),
                  description="Sequence Tutor: prepare_data -> pretrain -> tune -> evaluate")
    def seqtutor_pipeline(config_json: str = config_json, workdir: str = workdir) -> str:
        prepared = components["prepare_data"](config_json=config_json, workdir=workdir)
        pretrained = components["pretrain"](config_json=config_json,
                                            workdir=prepared.output)
        tuned = components["tune"](config_json=config_json, workdir=pretrained.output)
        if accelerator_count > 0:
            tuned.set_accelerator_type(accelerator_type).set_accelerator_limit(
                accelerator_count)
        evaluated = components["evaluate"](config_json=config_json, workdir=tuned.output)
        for task in (prepared, pretrained, tuned, evaluated):
            task.set_caching_options(True)
        return evaluated.output

    return seqtutor_pipeline


def compile_pipeline(config, output: str, **options) -> str:
    """Write the KFP v2 pipeline spec (YAML) of ``config`` to ``output``."""
    compiler.Compiler().compile(build_pipeline(config, **options), package_path=str(output))
    return str(output)
