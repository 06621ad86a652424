"""The KFP v2 pipeline: the compiled spec (typed artifacts, one tune task per variant, resources),
bad compile options, and real runs through kfp.local's SubprocessRunner: artifacts passed from
task to task, evaluate's Metrics equal to its metrics.json, and a cache that reuses what is up to
date and never what is not.

With SEQTUTOR_IMAGE_TEST=1 the same run goes through kfp.local's DockerRunner too, one container
per task in the CPU image that scripts/build_image.sh builds (the nearest local stand-in for
Vertex AI and Kubeflow); it is skipped, with the reason, without that variable or a Docker daemon
that can be started. The build takes minutes from a warm cache, longer from a cold one."""

import builtins
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seqtutor import artifacts, config as config_lib, layout
from seqtutor.pipeline import kfp_pipeline, kfp_steps
from tests.conftest import FAST_BEAM_ARGS

SMOKE = "configs/melody_smoke.yaml"
TINY = [("prepare_data.beam_args", FAST_BEAM_ARGS), ("prepare_data.max_builtin_tunes", 12),
        ("pretrain.lstm_units", [16]), ("pretrain.max_steps", 50), ("pretrain.eval_every", 50),
        ("tune.algorithms", ["psi", "dap"]), ("tune.num_steps", 2048),
        ("tune.eval_every", 2048), ("tune.checkpoint_every", 2048), ("tune.eval_episodes", 20),
        ("tune.batch_episodes", 8), ("evaluate.num_samples", 100),
        ("evaluate.models", ["mle", "psi", "dap"])]


def compile_cli(output: Path, *flags: str, config: str = SMOKE):
    return subprocess.run([sys.executable, "-m", "seqtutor.pipeline.cli", "compile", config,
                           "--output", str(output), *flags],
                          capture_output=True, text=True, timeout=300)


def test_compile_writes_typed_artifacts_and_one_tune_task_per_variant(tmp_path):
    output = tmp_path / "pipeline.yaml"
    result = compile_cli(
        output, "--image", "europe-docker.pkg.dev/p/r/seqtutor:0.1.0",
        "--gpu-image", "europe-docker.pkg.dev/p/r/seqtutor-gpu:0.1.0", "--accelerator-type",
        "NVIDIA_L4", "--accelerator-count", "2", "--tune-cpu", "8", "--tune-memory", "32G",
        "--pretrain-accelerator-count", "1", "--parallelism", "3",
        "--set", "sweep={tune.c: [5, 10], seed: [0, 1]}")
    assert result.returncode == 0, result.stderr[-2000:]
    spec = yaml.safe_load(output.read_text())
    executors = spec["deploymentSpec"]["executors"]
    assert sorted(executors) == ["exec-evaluate", "exec-prepare-data", "exec-pretrain",
                                 "exec-tune"]
    tune = executors["exec-tune"]["container"]["resources"]
    assert tune["accelerator"]["resourceType"] == "NVIDIA_L4"
    assert tune["accelerator"]["resourceCount"] == "2"
    assert tune["resourceCpuLimit"] == "8" and tune["resourceMemoryLimit"] == "32G"
    pretrain = executors["exec-pretrain"]["container"]["resources"]["accelerator"]
    assert (pretrain["resourceType"], pretrain["resourceCount"]) == ("NVIDIA_L4", "1")
    assert "resources" not in executors["exec-evaluate"]["container"]
    # The CPU image for the data and the evaluation, the GPU image for the training tasks.
    images = {name: e["container"]["image"].rsplit("/", 1)[1] for name, e in executors.items()}
    assert images == {"exec-prepare-data": "seqtutor:0.1.0", "exec-evaluate": "seqtutor:0.1.0",
                      "exec-pretrain": "seqtutor-gpu:0.1.0", "exec-tune": "seqtutor-gpu:0.1.0"}

    components = spec["components"]
    outputs = {name: {key: value["artifactType"]["schemaTitle"]
                      for key, value in c.get("outputDefinitions", {}).get("artifacts",
                                                                           {}).items()}
               for name, c in components.items()}
    assert outputs["comp-prepare-data"] == {"dataset": "system.Dataset"}
    assert outputs["comp-pretrain"] == {"model": "system.Model"}
    assert outputs["comp-tune"] == {"model": "system.Model", "curves": "system.Metrics"}
    assert outputs["comp-evaluate"] == {"evaluation": "system.Artifact",
                                        "metrics": "system.Metrics", "report": "system.HTML"}
    evaluate_inputs = components["comp-evaluate"]["inputDefinitions"]["artifacts"]
    assert evaluate_inputs["tuned"]["isArtifactList"] is True

    tasks = spec["root"]["dag"]["tasks"]
    loop = next(task for name, task in tasks.items() if name.startswith("for-loop"))
    variants = json.loads(loop["parameterIterator"]["items"]["raw"])
    config = config_lib.load_config(SMOKE, [("sweep", {"tune.c": [5, 10], "seed": [0, 1]})])
    assert variants == config.tune_variants() and len(variants) == 4 * 4
    assert loop["iteratorPolicy"]["parallelismLimit"] == 3
    tasks = {**{n: t for n, t in tasks.items() if not n.startswith("for-loop")},
             **next(c for n, c in components.items() if n.startswith("comp-for-loop"))["dag"][
                 "tasks"]}
    assert sorted(tasks) == ["evaluate", "prepare-data", "pretrain", "tune"]
    assert all(task["cachingOptions"]["enableCache"] for task in tasks.values())
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert json.loads(parameters["config_json"]["defaultValue"])["tune"]["c"] == 10.0
    assert parameters["code_version"]["defaultValue"] == artifacts.code_version()


@pytest.mark.parametrize("flags,message", [
    (["--image", "Seqtutor Image"], "--image: 'Seqtutor Image' is not an image reference"),
    (["--gpu-image", "seqtutor:"], "--gpu-image: 'seqtutor:' is not an image reference"),
    (["--accelerator-count", "-1"], "at least 0"),
    (["--set", "sweep={tune.c: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, "
      "18, 19, 20, 21, 22, 23, 24, 25, 26]}"], "at most 100"),
])
def test_bad_compile_options_are_errors_before_anything_is_written(tmp_path, flags, message):
    output = tmp_path / "pipeline.yaml"
    result = compile_cli(output, *flags)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not output.exists()


@pytest.mark.parametrize("options,cpu,gpu", [
    ({}, "seqtutor:cpu", "seqtutor:gpu"),  # scripts/build_image.sh's default tags
    ({"image": "r.example/seqtutor:1"}, "r.example/seqtutor:1", "r.example/seqtutor:1"),
    ({"gpu_image": "r.example/seqtutor-gpu:1"}, "seqtutor:cpu", "r.example/seqtutor-gpu:1"),
])
def test_default_images(tmp_path, options, cpu, gpu):
    output = tmp_path / "pipeline.yaml"
    kfp_pipeline.compile_pipeline(config_lib.load_config(SMOKE), str(output), **options)
    executors = yaml.safe_load(output.read_text())["deploymentSpec"]["executors"]
    images = {name: executor["container"]["image"] for name, executor in executors.items()}
    assert images == {"exec-prepare-data": cpu, "exec-evaluate": cpu, "exec-pretrain": gpu,
                      "exec-tune": gpu}


def test_image_references():
    good = ["seqtutor", "seqtutor:latest", "localhost:5000/seqtutor:0.1.0",
            "europe-docker.pkg.dev/p/r/seqtutor@sha256:" + "a" * 64]
    bad = ["", "Seqtutor", "seqtutor:", "seq tutor", "seqtutor@sha256:abc", "/seqtutor"]
    assert all(kfp_pipeline.IMAGE_REFERENCE.match(reference) for reference in good)
    assert not any(kfp_pipeline.IMAGE_REFERENCE.match(reference) for reference in bad)


def run_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.name.startswith("seqtutor-")),
                  key=lambda p: p.name)


def ran(run: Path) -> set[str]:
    """The tasks that ran (not served from the cache) in one local pipeline run: each one that
    ran left its executor output in its folder (tune's inside each loop iteration's)."""
    return {path.parent.name for path in run.rglob("executor_output.json")}


def init_subprocess_runner(root: Path) -> None:
    """kfp.local's settings are global: set again before each use (the Docker run sets its
    own)."""
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
               enable_caching=True)


def keeping_print(pipeline_func):
    """``pipeline_func`` that leaves builtins.print as it found it. kfp.local indents a task's
    output by swapping builtins.print and putting it back after; two loop iterations run at
    once in threads and can put back each other's indenting print, which then stays for every
    later test in this process."""
    def run(*args, **kwargs):
        print_before = builtins.print
        try:
            return pipeline_func(*args, **kwargs)
        finally:
            builtins.print = print_before
    return run


def run_tiny_pipeline(**options):
    """Build the tiny pipeline (no accelerators) and run it once under the runner that
    kfp.local was set to; the pipeline function (print kept, as above)."""
    config = config_lib.load_config(SMOKE, TINY)
    pipeline_func = keeping_print(kfp_pipeline.build_pipeline(
        config, tune_resources=kfp_pipeline.Resources(), **options))
    pipeline_func()
    return pipeline_func


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The tiny pipeline run once through kfp.local with caching on: (pipeline function,
    pipeline root)."""
    root = tmp_path_factory.mktemp("kfp_root")
    init_subprocess_runner(root)
    return run_tiny_pipeline(), root


IMAGE = "seqtutor:cpu"


@pytest.fixture(scope="module")
def docker_run(tmp_path_factory):
    """The tiny pipeline run once through kfp.local's DockerRunner in the CPU image, built (or
    brought up to date from the build cache) first: (pipeline function, pipeline root)."""
    if os.environ.get("SEQTUTOR_IMAGE_TEST") != "1":
        pytest.skip("the image test is opt-in: SEQTUTOR_IMAGE_TEST=1 (builds the CPU image)")
    pytest.importorskip("docker", reason="kfp.local's DockerRunner needs the docker package")
    from kfp import local

    build = subprocess.run(["scripts/build_image.sh", "--variant", "cpu", "--tag", IMAGE],
                           capture_output=True, text=True, timeout=3600)
    if build.returncode == 3:
        pytest.skip(build.stderr.strip())
    assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
    root = tmp_path_factory.mktemp("kfp_docker_root")
    local.init(runner=local.DockerRunner(), pipeline_root=str(root), enable_caching=False)
    return run_tiny_pipeline(image=IMAGE), root


@pytest.mark.parametrize("runner", ["local_run", "docker_run"])
def test_artifacts_pass_from_task_to_task_and_evaluate_reports_the_metrics(runner, request):
    _, root = request.getfixturevalue(runner)
    (run,) = run_dirs(root)
    dataset = run / "prepare-data" / "dataset"
    prior = run / "pretrain" / "model"
    assert (dataset / layout.VOCAB_FILE).is_file() and (prior / layout.MODEL_FILE).is_file()
    tuned = sorted(run.glob("for-loop-*/tune/model"))
    assert len(tuned) == 2  # one task per algorithm
    assert {json.loads((p / "artifact.json").read_text())["config"]["variant"]
            for p in tuned} == {"psi", "dap"}
    for model in tuned:  # each tune task read the prior that pretrain wrote
        record = json.loads((model / "artifact.json").read_text())
        assert record["inputs"]["pretrain"] == json.loads(
            (prior / "artifact.json").read_text())["fingerprint"]
    evaluation = run / "evaluate" / "evaluation"
    metrics = json.loads((evaluation / layout.METRICS_FILE).read_text())
    assert sorted(metrics["models"]) == ["dap", "data", "mle", "psi"]
    executor = json.loads((run / "evaluate" / "executor_output.json").read_text())
    logged = executor["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert logged == kfp_steps.evaluate_metrics(str(evaluation))
    assert logged["psi_mean_task_reward"] == metrics["models"]["psi"]["mean_task_reward"]
    assert (run / "evaluate" / "report").read_text().startswith("<!DOCTYPE html>")


def test_the_cache_reuses_what_is_up_to_date_and_reruns_what_follows_a_rerun(local_run):
    pipeline_func, root = local_run
    init_subprocess_runner(root)
    cache = root / ".kfp_cache"

    def tasks_run(**parameters) -> set[str]:
        before = set(run_dirs(root))
        pipeline_func(**parameters)
        return {task for run in set(run_dirs(root)) - before for task in ran(run)}

    assert tasks_run() == set()  # nothing changed: every task comes from the cache

    # Another code version: no task may be served from the cache (the first one runs and
    # refuses the image's code).
    before = set(run_dirs(root))
    with pytest.raises(RuntimeError):
        pipeline_func(code_version="0.0.0")
    (failed,) = set(run_dirs(root)) - before
    assert (failed / "prepare-data").is_dir()

    # pretrain reruns (its cache entry is gone): every task after it reruns too, since its
    # input artifact is a new one, while prepare_data stays cached.
    for entry in cache.glob("*.json"):
        if "/pretrain/model" in entry.read_text():
            entry.unlink()
    assert tasks_run() == {"pretrain", "tune", "evaluate"}


@pytest.mark.parametrize("args,refused", [
    ([], False), (["--runner=DirectRunner", "--direct_num_workers=2"], False),
    (["--runner", "apache_beam.runners.portability.fn_api_runner.FnApiRunner"], False),
    (["--runner=DataflowRunner", "--project=p"], True), (["--runner", "FlinkRunner"], True)])
def test_a_pipeline_task_runs_its_beam_job_locally(args, refused):
    config = config_lib.load_config(SMOKE, [("prepare_data.beam_args", args)])
    if refused:
        with pytest.raises(ValueError, match="outside the pipeline"):
            kfp_steps.check_local_beam(config)
    else:
        kfp_steps.check_local_beam(config)
