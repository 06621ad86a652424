"""The seqtutor command line, run as a user would (a subprocess, the default Beam runner)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMOKE = str(ROOT / "configs" / "melody_smoke.yaml")
# Keep the CLI runs short (one algorithm, few steps): tuning itself is tested in test_tune.py.
FAST_TUNE = ["--set", "tune.num_steps=4096", "--set", "tune.algorithms=[g]",
             "--set", "tune.eval_every=4096", "--set", "tune.eval_episodes=20"]


def seqtutor(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "seqtutor.pipeline.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    result = seqtutor("run", SMOKE, "--workdir", str(workdir), *FAST_TUNE)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


def test_run_smoke_config_end_to_end(smoke_run):
    workdir, result = smoke_run
    for stage in ("prepare_data", "pretrain", "tune/g", "evaluate"):
        assert f"{stage}: done" in result.stderr
    assert f"report: {workdir / 'evaluate' / 'report.html'}" in result.stdout
    stats = json.loads((workdir / "prepare_data" / "stats.json").read_text())
    assert stats["inputs_read"] == 60 and stats["records_out"]["train"] > 0
    metrics = json.loads((workdir / "pretrain" / "metrics.json").read_text())
    assert 0 < metrics["eval_accuracy"] <= 1 and metrics["eval_log_perplexity"] > 0
    assert (workdir / "pretrain" / "model.keras").is_file()
    for stage in ("prepare_data", "pretrain", "tune/g"):
        record = json.loads((workdir / stage / "artifact.json").read_text())
        assert record["stage"] == stage.split("/")[0] and len(record["fingerprint"]) == 64
    with open(workdir / "tune" / "g" / "curves.csv") as handle:
        assert handle.readline().strip() == "step,mean_task_reward,mean_log_prior"


def test_the_console_reads_at_a_glance(smoke_run):
    """Captured (no terminal): the stages' lines and a few progress lines; no line of Beam's
    workers, of TensorFlow's C++ start-up or CUDA probing, and no redrawn bar."""
    workdir, result = smoke_run
    output = result.stdout + result.stderr
    lines = output.splitlines()
    assert len(lines) < 40, output  # the smoke pipeline with one algorithm: about 20
    assert "\r" not in output and "\b" not in output
    for stage in ("prepare_data", "pretrain", "tune/g", "evaluate"):
        assert f"{stage}: running -> {workdir / stage}" in lines
        assert sum(line.startswith(f"{stage}: done in ") for line in lines) == 1
    assert any(line.startswith("pretrain: 400/400 steps (100%)") for line in lines)
    assert any(line.startswith("tune/g: 4,096/4,096 env steps (100%)") for line in lines)
    noise = ("apache_beam", "sdk_worker", "sdk harness", "Worker: ", "data channel",
             "cuInit", "cudart", "CUDA", "absl::InitializeLog", "cpu_feature_guard",
             "Auto-detected splits", "SplitInfo", "Epoch 1/", "Gym has been unmaintained",
             "UserWarning", "Assets written to")
    assert not [line for line in lines if any(word in line for word in noise)], output


def test_second_run_is_cached_and_a_changed_setting_reruns_only_its_stage(smoke_run):
    workdir, _ = smoke_run
    again = seqtutor("run", SMOKE, "--workdir", str(workdir), *FAST_TUNE)
    assert again.returncode == 0, again.stderr[-3000:]
    for stage in ("prepare_data", "pretrain", "tune/g", "evaluate"):
        assert f"{stage}: up to date" in again.stderr
    # A changed tune setting and a second algorithm: both tune, upstream stays cached.
    changed = seqtutor("run", SMOKE, "--workdir", str(workdir), *FAST_TUNE,
                       "--set", "tune.gamma=0.4", "--set", "tune.algorithms=[g, rl_only]")
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "prepare_data: up to date" in changed.stderr
    assert "pretrain: up to date" in changed.stderr
    assert "tune/g: done" in changed.stderr and "tune/rl_only: done" in changed.stderr
    assert "evaluate: done" in changed.stderr
    metrics = json.loads((workdir / "evaluate" / "metrics.json").read_text())
    assert {"g", "rl_only"} <= set(metrics["models"])


def test_tune_one_algorithm_and_reject_an_unknown_one(smoke_run):
    workdir, _ = smoke_run
    result = seqtutor("tune", SMOKE, "--workdir", str(workdir), *FAST_TUNE,
                      "--algorithm", "rl_only")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tune/rl_only: done" in result.stderr and "tune/g" not in result.stderr
    bad = seqtutor("tune", SMOKE, "--workdir", str(workdir), "--algorithm", "dqn")
    assert bad.returncode == 2 and "--algorithm: unknown ['dqn']" in bad.stderr


def test_generate_writes_midi_files(smoke_run, tmp_path):
    workdir, _ = smoke_run
    result = seqtutor("generate", SMOKE, "--workdir", str(workdir), "--model", "g",
                      "--num", "4", "--out", str(tmp_path / "midi"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((tmp_path / "midi").glob("g_*.mid"))) == 4
    bad = seqtutor("generate", SMOKE, "--workdir", str(workdir), "--model", "bach",
                   "--num", "4", "--out", str(tmp_path / "midi"))
    assert bad.returncode == 1 and "unknown model 'bach'" in bad.stderr


def test_unknown_key_fails_before_any_stage_and_names_the_key(tmp_path):
    result = seqtutor("run", SMOKE, "--workdir", str(tmp_path / "w"),
                      "--set", "pretrain.lstm_unit=[8]")
    assert result.returncode == 2
    assert "pretrain.lstm_unit: unknown key" in result.stderr
    assert not (tmp_path / "w").exists()


def test_single_stage_without_its_input_names_the_stage_to_run(tmp_path):
    result = seqtutor("pretrain", SMOKE, "--workdir", str(tmp_path / "w"))
    assert result.returncode == 1
    assert "run `seqtutor prepare-data CONFIG` first" in result.stderr
    result = seqtutor("tune", SMOKE, "--workdir", str(tmp_path / "w"))
    assert result.returncode == 1
    assert "run `seqtutor pretrain CONFIG` first" in result.stderr


def test_missing_input_path_is_a_clear_error(tmp_path):
    result = seqtutor("prepare-data", SMOKE, "--workdir", str(tmp_path / "w"),
                      "--input", str(tmp_path / "nowhere" / "*.mid"), "--builtin-corpus", "none")
    assert result.returncode == 1
    assert "matches no file" in result.stderr and "nowhere" in result.stderr
    assert not (tmp_path / "w" / "prepare_data").exists()


def test_ctrl_c_ends_with_a_line_and_status_130_not_a_traceback(monkeypatch, capsys):
    from seqtutor.pipeline import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_command", interrupted)
    assert cli.main(["run", "melody_smoke"]) == 130
    assert "seqtutor: interrupted" in capsys.readouterr().err
