"""The KFP v2 pipeline: the compiled spec, and a real run through kfp.local's SubprocessRunner."""

import json
import subprocess
import sys

import yaml

from seqtutor import config as config_lib
from seqtutor.pipeline import kfp_pipeline
from tests.conftest import FAST_BEAM_ARGS, workdir_with_prior

SMOKE = "configs/melody_smoke.yaml"


def test_compile_cli_writes_a_spec_with_four_components_and_a_gpu_for_tune(tmp_path):
    output = tmp_path / "pipeline.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "seqtutor.pipeline.cli", "compile", SMOKE, "--output", str(output),
         "--image", "europe-docker.pkg.dev/p/r/seqtutor:0.1.0", "--accelerator-type",
         "NVIDIA_L4", "--accelerator-count", "2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    spec = yaml.safe_load(output.read_text())
    executors = spec["deploymentSpec"]["executors"]
    assert sorted(executors) == ["exec-evaluate", "exec-prepare-data", "exec-pretrain",
                                 "exec-tune"]
    accelerator = executors["exec-tune"]["container"]["resources"]["accelerator"]
    assert accelerator["resourceType"] == "NVIDIA_L4" and accelerator["resourceCount"] == "2"
    assert "resources" not in executors["exec-pretrain"]["container"]
    assert all(e["container"]["image"].endswith("seqtutor:0.1.0") for e in executors.values())
    tasks = spec["root"]["dag"]["tasks"]
    assert all(task["cachingOptions"]["enableCache"] for task in tasks.values())
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    config = json.loads(parameters["config_json"]["defaultValue"])
    assert config["tune"]["c"] == 10.0  # the config's values are the pipeline's parameters


def test_pipeline_runs_end_to_end_with_kfp_local(tmp_path, melody_smoke_prior):
    """Every component runs in kfp.local's subprocesses on a shared workdir. prepare_data and
    pretrain find the session's smoke prior up to date (the local runner's fingerprints hold
    inside the components, so an unchanged stage is not redone); tune and evaluate run. The
    prepare_data and pretrain bodies run end to end in test_cli.py."""
    from kfp import local

    config = config_lib.load_config(SMOKE, [
        ("prepare_data.beam_args", FAST_BEAM_ARGS), ("tune.algorithms", ["psi"]),
        ("tune.num_steps", 4096), ("tune.eval_every", 4096), ("tune.eval_episodes", 20),
        ("evaluate.num_samples", 200)])
    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(tmp_path / "kfp_root"))
    workdir = workdir_with_prior(tmp_path / "work", melody_smoke_prior)
    cached = {stage: (workdir / stage / "artifact.json").read_text()
              for stage in ("prepare_data", "pretrain")}
    pipeline_func = kfp_pipeline.build_pipeline(config, workdir=str(workdir),
                                                accelerator_count=0)
    task = pipeline_func()
    assert task.output == str(workdir)
    metrics = json.loads((workdir / "evaluate" / "metrics.json").read_text())
    assert sorted(metrics["models"]) == ["data", "mle", "psi"]
    for stage, record in cached.items():
        assert (workdir / stage / "artifact.json").read_text() == record, stage
    tuned = json.loads((workdir / "tune" / "psi" / "artifact.json").read_text())
    assert tuned["inputs"]["pretrain"] == json.loads(cached["pretrain"])["fingerprint"]
    assert (workdir / "evaluate" / "artifact.json").is_file()
