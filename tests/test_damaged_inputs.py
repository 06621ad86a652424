"""Damaged artifacts and bad arguments: a clear error naming the file or the argument, or a
warned skip, before any work where it can be; never a traceback or a silently wrong result."""

import json
import logging

import pytest

from seqtutor import artifacts, config as config_lib, layout, sequence_model, tfrecords
from seqtutor.components import generate, report
from seqtutor.pipeline import cli, runner

SWEEP = [("sweep", {"tune.c": [1.0, 2.0], "seed": [0]})]


@pytest.mark.parametrize("record", [b"[]", b"{}", b'{"fingerprint": 3}', b'{"finger',
                                    b"\xfc\xfd not utf-8"])
def test_a_damaged_record_is_no_artifact_and_an_input_names_it(tmp_path, record):
    (tmp_path / layout.ARTIFACT_FILE).write_bytes(record)
    assert artifacts.read_artifact(tmp_path) is None  # its stage makes it again
    with pytest.raises(artifacts.MissingArtifactError,
                       match=r"pretrain artifact at .* is damaged .*`seqtutor pretrain CONFIG` "
                             r"again"):
        artifacts.require_artifact(tmp_path, "pretrain", "seqtutor pretrain CONFIG")


def test_a_record_with_a_fingerprint_is_read(tmp_path):
    (tmp_path / layout.ARTIFACT_FILE).write_text('{"fingerprint": "abc"}')
    assert artifacts.read_artifact(tmp_path) == {"fingerprint": "abc"}


def test_a_damaged_model_or_vocabulary_names_its_file(tmp_path):
    (tmp_path / layout.MODEL_FILE).write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(artifacts.DamagedArtifactError,
                       match=rf"{tmp_path / layout.MODEL_FILE} cannot be read .*rerunning"):
        sequence_model.load_model(tmp_path)
    for garbage in (b"not json", b"\xfc\xfd", b"[1, 2]"):
        (tmp_path / layout.VOCAB_FILE).write_bytes(garbage)
        with pytest.raises(artifacts.DamagedArtifactError,
                           match=rf"{tmp_path / layout.VOCAB_FILE} cannot be read"):
            tfrecords.read_vocab(tmp_path)


def test_a_tensorflow_failure_is_cut_to_its_own_message():
    import tensorflow as tf

    error = tf.errors.DataLossError(None, None, (
        "Graph execution error:\n\nDetected at node IteratorGetNext defined at (most recent "
        'call last):\n  File "train.py", line 13, in <module>\n\n  File "train.py", line 10, '
        "in f\n\ntruncated record at 2244\n\t [[{{node IteratorGetNext}}]] [Op:__inference_f]"))
    assert runner.failure_text(error) == (
        "DataLossError: truncated record at 2244 (a TFRecord shard of the dataset is damaged "
        "or cut short: make it again with `seqtutor prepare-data CONFIG`)")
    assert runner.failure_text(ValueError("bad\nvalue")) == "ValueError: bad\nvalue"
    # Several root errors: the first is the cause; a damaged checkpoint is no dataset's fault.
    error = tf.errors.DataLossError(None, None, (
        "Graph execution error:\n\nDetected at node RestoreV2 defined at (most recent call "
        'last):\n  File "tune.py", line 274, in run\n\n2 root error(s) found.\n  (0) '
        "DATA_LOSS: Unable to read checkpoint ckpt-2 (checksum mismatch)\n\t [[{{node "
        "RestoreV2}}]]\n  (1) DATA_LOSS: Unable to read checkpoint\n0 successful operations."
        "\n0 derived errors ignored. [Op:__inference_restore]"))
    assert runner.failure_text(error) == (
        "DataLossError: (0) DATA_LOSS: Unable to read checkpoint ckpt-2 (checksum mismatch)")


def test_tune_seeds_stay_within_numpys_bound():
    import tensorflow as tf

    from seqtutor.components import tune
    from seqtutor.rl import algorithms

    assert tune.tune_seed(3, "psi") == 30 + algorithms.names().index("psi")  # unchanged
    for name in algorithms.names():
        seed = tune.tune_seed(2**32 - 1, name)
        assert 0 <= seed < 2**32
        tf.keras.utils.set_random_seed(seed)


def test_a_damaged_curve_is_left_out_of_the_report_with_a_warning(tmp_path, caplog):
    for model, text in (("psi", "step,mean_task_reward,mean_log_prior\n0,1.5,-0.5\n10,2,-0.6\n"),
                        ("q", "step,mean_task_reward,mean_log_prior\n0,abc,-0.5\n"),
                        ("g", "step,mean_task_reward\n0,1\n"), ("dap", "step,mean_task_reward,"
                                                               "mean_log_prior\n0,1\n")):
        (tmp_path / model).mkdir()
        (tmp_path / model / layout.CURVES_FILE).write_text(text)
    with caplog.at_level(logging.WARNING):
        curves = report.read_curves(tmp_path, ["psi", "q", "g", "dap", "rl_only"])
    assert curves == {"psi": [{"step": 0.0, "mean_task_reward": 1.5, "mean_log_prior": -0.5},
                              {"step": 10.0, "mean_task_reward": 2.0,
                               "mean_log_prior": -0.6}]}
    for model in ("q", "g", "dap"):
        assert f"{model}'s curve left out: {tmp_path / model / layout.CURVES_FILE}" in caplog.text
    assert report.curves_png(curves).startswith("data:image/png")


@pytest.mark.parametrize("model,overrides,message", [
    ("psi@c=abc,seed=0", SWEEP, r"no such point \(its points: c=1.0,seed=0, c=2.0,seed=0, as "
                                r"in psi@c=1.0,seed=0\)"),
    ("psi@c=1.0", SWEEP, "no such point"),
    ("psi@c=1.0,seed=0", [], r"no such point \(name it 'psi'\)"),
    ("mle@c=1.0,seed=0", SWEEP, r"no such point \(name it 'mle'\)"),
])
def test_generate_refuses_a_point_the_config_does_not_have(tmp_path, model, overrides, message):
    config = config_lib.load_config("configs/melody_smoke.yaml", overrides)
    with pytest.raises(ValueError, match=message):
        generate.generate(config, tmp_path / "work", model, 3, tmp_path / "out")
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def test_generate_into_a_file_is_an_error_before_any_work(tmp_path, capsys):
    (tmp_path / "out.smi").write_text("kept\n")
    assert cli.main(["generate", "melody_smoke", "--workdir", str(tmp_path / "work"),
                     "--model", "mle", "--num", "3", "--out", str(tmp_path / "out.smi")]) == 1
    assert "is a file; name a directory" in capsys.readouterr().err
    assert (tmp_path / "out.smi").read_text() == "kept\n"


@pytest.mark.parametrize("override,key", [(("tune.c", float("inf")), r"tune\.c"),
                                          (("reward.weights", {"tonic": float("nan")}),
                                           r"reward\.weights"),
                                          (("seed", -1), "seed"), (("seed", 2**32), "seed")])
def test_numbers_that_no_stage_can_use_are_config_errors(override, key):
    with pytest.raises(config_lib.ConfigError, match=key):
        config_lib.load_config("configs/melody_smoke.yaml", [override])


def test_a_config_file_that_is_not_text_is_a_config_error(tmp_path, capsys):
    (tmp_path / "bytes.yaml").write_bytes(b"\xfc\xfd\x00 random")
    assert cli.main(["status", str(tmp_path / "bytes.yaml")]) == 2
    error = capsys.readouterr().err
    assert "bytes.yaml: not a YAML text file (not UTF-8" in error and "Traceback" not in error


def test_max_points_below_one_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["status", "melody_smoke", "--max-points", "0"])
    assert exit_.value.code == 2
    assert "--max-points: must be at least 1, got 0" in capsys.readouterr().err
