"""Partial (in-progress) artifact directories: what is resumed, what is discarded, and why;
and the claim that keeps a second process out of an artifact being written."""

import json
import logging
import os
import signal
import subprocess
import sys

import pytest

from seqtutor import artifacts, config as config_lib
from seqtutor.pipeline import cli, runner

CONFIG = {"pretrain": {"max_steps": 12000}}
INPUTS = {"prepare_data": "data-fingerprint"}


def _killed_run(output, fingerprint, config=CONFIG):
    """A resumable stage killed after writing a checkpoint."""
    with pytest.raises(KeyboardInterrupt):
        with artifacts.artifact_writer(output, stage="pretrain", fingerprint_=fingerprint,
                                       input_fingerprints=INPUTS, config_section=config,
                                       resumable=True) as (partial, _):
            (partial / "checkpoint").write_text("step 6500")
            raise KeyboardInterrupt("simulated kill")


def _rerun(output, fingerprint, config=CONFIG):
    """The same stage run again; returns what it found in its partial directory."""
    with artifacts.artifact_writer(output, stage="pretrain", fingerprint_=fingerprint,
                                   input_fingerprints=INPUTS, config_section=config,
                                   resumable=True) as (partial, _):
        checkpoint = partial / "checkpoint"
        return checkpoint.read_text() if checkpoint.exists() else None


def test_a_killed_run_resumes_after_a_code_change(tmp_path, monkeypatch, caplog):
    # A bug fix elsewhere in the package changes every fingerprint; hours of checkpoints of the
    # same config and inputs are still resumed, and the artifact says which code trained it.
    output = tmp_path / "pretrain"
    monkeypatch.setattr(artifacts, "code_version", lambda: "0.1+old")
    _killed_run(output, "fingerprint-under-old-code")
    monkeypatch.setattr(artifacts, "code_version", lambda: "0.1+new")
    with caplog.at_level(logging.WARNING, logger=artifacts.__name__):
        assert _rerun(output, "fingerprint-under-new-code") == "step 6500"
    assert "resuming the partial run" in caplog.text and "0.1+old" in caplog.text
    record = artifacts.read_artifact(output)
    assert record["code_version"] == "0.1+new"
    assert record["resumed_from_code_versions"] == ["0.1+old"]


def test_the_code_versions_survive_a_second_kill(tmp_path, monkeypatch):
    output = tmp_path / "pretrain"
    monkeypatch.setattr(artifacts, "code_version", lambda: "0.1+old")
    _killed_run(output, "fingerprint-under-old-code")
    monkeypatch.setattr(artifacts, "code_version", lambda: "0.1+new")
    _killed_run(output, "fingerprint-under-new-code")  # resumed, then killed again
    assert _rerun(output, "fingerprint-under-new-code") == "step 6500"
    assert artifacts.read_artifact(output)["resumed_from_code_versions"] == ["0.1+old"]


@pytest.mark.parametrize("stamp", [b"\xff\xfe not text", b"[1, 2]", b'{"fingerprint": 3}',
                                   b'{"fingerprint": "b", "trained_with": null}'])
def test_a_broken_stamp_discards_the_partial_run_without_failing(tmp_path, stamp, caplog):
    output = tmp_path / "pretrain"
    _killed_run(output, "a")
    (tmp_path / ".pretrain.partial" / "fingerprint.txt").write_bytes(stamp)
    with caplog.at_level(logging.WARNING, logger=artifacts.__name__):
        assert _rerun(output, "a") is None
    assert "discarding the partial run" in caplog.text
    assert artifacts.read_artifact(output)["fingerprint"] == "a"


def test_a_killed_run_of_the_same_fingerprint_resumes_without_a_note(tmp_path, caplog):
    output = tmp_path / "pretrain"
    _killed_run(output, "same")
    with caplog.at_level(logging.WARNING, logger=artifacts.__name__):
        assert _rerun(output, "same") == "step 6500"
    assert not caplog.text
    assert "resumed_from_code_versions" not in artifacts.read_artifact(output)


def test_a_partial_run_of_another_config_is_discarded_with_a_warning(tmp_path, caplog):
    output = tmp_path / "pretrain"
    _killed_run(output, "a")
    with caplog.at_level(logging.WARNING, logger=artifacts.__name__):
        assert _rerun(output, "b", config={"pretrain": {"max_steps": 6000}}) is None
    assert "discarding the partial run" in caplog.text and "config or inputs differ" in caplog.text


def test_an_older_stamp_resumes_only_on_its_own_fingerprint(tmp_path, caplog):
    # Stamps written before the config was recorded hold the fingerprint alone.
    output = tmp_path / "pretrain"
    _killed_run(output, "a")
    stamp = tmp_path / ".pretrain.partial" / "fingerprint.txt"
    assert json.loads(stamp.read_text())["fingerprint"] == "a"
    stamp.write_text("a\n")
    (tmp_path / ".pretrain.partial" / "checkpoint").write_text("step 6500")
    assert _rerun(tmp_path / "pretrain", "a") == "step 6500"

    _killed_run(output, "a")
    stamp.write_text("a\n")
    with caplog.at_level(logging.WARNING, logger=artifacts.__name__):
        assert _rerun(output, "b") is None
    assert "does not record its config" in caplog.text


def test_a_claimed_artifact_is_busy_until_its_holder_lets_go(tmp_path):
    output = tmp_path / "tune" / "psi@c=1.0,seed=0"
    with artifacts.claim(output):
        # A second claim (its own open file, as another process has) is refused.
        with pytest.raises(artifacts.ArtifactBusyError, match=rf"pid {os.getpid()} on "):
            with artifacts.claim(output):
                pass
    with pytest.raises(RuntimeError, match="failed inside"):
        with artifacts.claim(output):
            raise RuntimeError("failed inside")
    with artifacts.claim(output):  # free again after both ways out
        pass
    assert not output.exists()  # only its lock file, beside it
    assert [p.name for p in output.parent.iterdir()] == [".psi@c=1.0,seed=0.lock"]


def test_a_look_at_who_holds_a_claim_never_turns_a_writer_away(tmp_path):
    import fcntl
    import threading

    output = tmp_path / "evaluate"
    with artifacts.claim(output):
        pass
    # A look (`seqtutor status`) holds the lock shared for an instant; the writer retries.
    look = open(tmp_path / ".evaluate.lock")
    fcntl.flock(look, fcntl.LOCK_SH)
    threading.Timer(0.08, lambda: fcntl.flock(look, fcntl.LOCK_UN)).start()
    with artifacts.claim(output):
        assert artifacts.holder(output).startswith(f"pid {os.getpid()} on ")
    look.close()
    assert artifacts.holder(output) is None


def test_a_process_that_dies_holding_a_claim_releases_it(tmp_path):
    output = tmp_path / "pretrain"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from seqtutor import artifacts\n"
         f"with artifacts.claim({str(output)!r}):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(artifacts.ArtifactBusyError, match=rf"pid {holder.pid} on "):
            with artifacts.claim(output):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with artifacts.claim(output):  # no stale lock: the operating system released it
        pass


def test_a_stage_another_process_is_writing_is_a_clear_error_before_any_work(
        tmp_path, capsys):
    config = config_lib.load_config("configs/melody_smoke.yaml")
    workdir = tmp_path / "work"
    with artifacts.claim(workdir / "prepare_data"):
        with pytest.raises(artifacts.ArtifactBusyError, match="being written by another"):
            runner.run_stage(config, "prepare_data", workdir)
        assert cli.main(["prepare-data", "melody_smoke", "--workdir", str(workdir)]) == 1
    error = capsys.readouterr().err
    assert f"prepare_data is being written by another process (pid {os.getpid()}" in error
    assert "Traceback" not in error
    assert sorted(p.name for p in workdir.iterdir()) == [".prepare_data.lock"]


def test_status_of_an_empty_workdir_says_what_waits_and_writes_nothing(tmp_path, capsys):
    workdir = tmp_path / "work"
    assert cli.main(["status", "melody_smoke", "--workdir", str(workdir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["prepare_data  to do",
                         "pretrain      waiting for input (prepare_data)",
                         "tune/q        waiting for input (pretrain)"]
    assert lines[-1] == "tune: 4 points: 4 waiting for input"
    assert not workdir.exists()


def test_status_into_a_closed_pipe_ends_without_a_traceback(tmp_path):
    # `seqtutor status ... | head -1`: the reader has gone before the table is written.
    process = subprocess.Popen([sys.executable, "-m", "seqtutor.pipeline.cli", "status",
                                "melody_smoke", "--workdir", str(tmp_path / "work")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    error = process.stderr.read()
    assert process.wait() == 1
    assert "Traceback" not in error and "BrokenPipeError" not in error
