"""evaluate and generate: metrics.json with the contract's keys, samples, missing models."""

import json

import numpy as np
import pytest

from seqtutor import layout
from seqtutor.components import evaluate, generate, report
from seqtutor.domains.melody import statistics
from seqtutor import artifacts, config as config_lib
from seqtutor.pipeline import runner
from seqtutor.rl.policy import load_sampler
from tests.conftest import FAST_BEAM_ARGS, workdir_with_prior


def small_config(*overrides):
    return config_lib.load_config("configs/melody_smoke.yaml", [
        ("prepare_data.beam_args", FAST_BEAM_ARGS), ("tune.num_steps", 4096),
        ("tune.eval_episodes", 20), ("evaluate.num_samples", 300), *overrides])


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, melody_smoke_prior):
    workdir = workdir_with_prior(tmp_path_factory.mktemp("evaluate"), melody_smoke_prior)
    config = small_config()
    for stage in ("prepare_data", "pretrain"):
        assert runner.run_stage(config, stage, workdir).skipped  # the shared prior fits
    runner.run_stage(config, "tune", workdir, variant="q")  # psi, g, rl_only never tuned
    result = runner.run_stage(config, "evaluate", workdir)
    return workdir, config, result


def test_metrics_have_the_contract_keys_and_missing_models_are_reported(evaluated):
    _, config, result = evaluated
    metrics = json.loads((result.path / layout.METRICS_FILE).read_text())
    assert metrics["domain"] == "melody" and metrics["num_samples"] == 300
    assert sorted(metrics["models"]) == ["data", "mle", "q"]
    assert metrics["missing_models"] == ["psi", "g", "rl_only"]
    for name, row in metrics["models"].items():
        # A model's row also has its KL from the prior, a tuned one its c and KL-regularised
        # reward; the data has no policy.
        extra = (set() if name == "data" else {*report.PRIOR_DISTANCE_KEYS}
                 | ({*report.TUNED_KEYS} if name == "q" else set()))
        assert set(row) == set(statistics.STATISTIC_KEYS) | extra
        assert 0 <= row["notes_not_in_key"] <= 1 and row["mean_log_prior"] < 0
    assert abs(metrics["models"]["mle"][report.KL_KEY]) < 1e-4  # the prior itself
    q = metrics["models"]["q"]
    assert q[report.KL_KEY] > 0
    # Melodies are all 32 steps long: the sequence's KL is 32 steps' worth.
    assert q[report.SEQUENCE_KL_KEY] == pytest.approx(32 * q[report.KL_KEY], rel=1e-5)
    assert q[report.C_KEY] == config.tune.c
    assert q[report.OBJECTIVE_KEY] == pytest.approx(
        q["mean_task_reward"] - config.tune.c * q[report.SEQUENCE_KL_KEY])


def test_the_kl_regularised_reward_is_worked_out_per_sequence():
    # Two episodes: 3 steps with KLs 0.1, 0.2, 0.3 (sum 0.6) and 1 step with 0.4 before its
    # end (the 5.0 after it is not counted): per step (0.1 + 0.2 + 0.3 + 0.4) / 4 = 0.25, per
    # sequence (0.6 + 0.4) / 2 = 0.5; at c = 2 and mean r_T 3: 3 - 2 * 0.5 = 2.
    kl = np.array([[0.1, 0.2, 0.3], [0.4, 5.0, 5.0]])
    mask = np.array([[True, True, True], [True, False, False]])
    closeness = evaluate.closeness_to_prior(kl, mask, 3.0, 2.0)
    assert closeness == pytest.approx({report.KL_KEY: 0.25, report.SEQUENCE_KL_KEY: 0.5,
                                       report.C_KEY: 2.0, report.OBJECTIVE_KEY: 2.0})
    # The MLE has no c of its own: its distance only.
    assert set(evaluate.closeness_to_prior(kl, mask, 3.0, None)) == {
        report.KL_KEY, report.SEQUENCE_KL_KEY}


def test_samples_are_saved_and_recompute_the_statistics(evaluated):
    _, config, result = evaluated
    metrics = json.loads((result.path / layout.METRICS_FILE).read_text())
    tokens = np.load(result.path / "samples" / "q.npz")["tokens"]
    assert tokens.shape == (300, 32) and tokens.min() >= 0 and tokens.max() < 38
    recomputed = statistics.rule_statistics(tokens)
    for key in ("repeated_notes", "notes_in_motif", "mean_task_reward"):
        assert recomputed[key] == pytest.approx(metrics["models"]["q"][key])
    data = np.load(result.path / "samples" / "data.npz")["tokens"]
    assert data.shape[1] == 32


def test_generate_writes_midi_at_80_qpm_with_pitch_token_plus_46(evaluated, tmp_path):
    import note_seq

    workdir, config, _ = evaluated
    paths = generate.generate(config, workdir, "q", 3, tmp_path / "out")
    assert len(paths) == 3 and all(p.suffix == ".mid" for p in paths)
    sequence = note_seq.midi_file_to_note_sequence(str(paths[0]))
    assert sequence.tempos[0].qpm == pytest.approx(80.0)
    assert all(48 <= note.pitch <= 83 for note in sequence.notes)


def test_generate_bad_requests(evaluated, tmp_path):
    workdir, config, _ = evaluated
    with pytest.raises(ValueError, match="unknown model 'bach'"):
        generate.generate(config, workdir, "bach", 3, tmp_path)
    with pytest.raises(ValueError, match="positive"):
        generate.generate(config, workdir, "mle", 0, tmp_path)
    with pytest.raises(artifacts.MissingArtifactError, match="--algorithm psi"):
        generate.generate(config, workdir, "psi", 3, tmp_path)
    # A tuned model whose record is damaged is not tuned, for generate as for evaluate.
    (tmp_path / "tune" / "q").mkdir(parents=True)
    (tmp_path / "tune" / "q" / layout.ARTIFACT_FILE).write_text("{}")
    assert load_sampler(workdir / "pretrain", tmp_path / "tune", "q") is None
    assert load_sampler(workdir / "pretrain", workdir / "tune", "q") is not None


def test_bad_evaluate_settings_are_config_errors():
    with pytest.raises(config_lib.ConfigError, match=r"evaluate\.num_samples"):
        small_config(("evaluate.num_samples", 0))
    with pytest.raises(config_lib.ConfigError, match=r"evaluate\.models"):
        small_config(("evaluate.models", ["mle", "bach"]))


@pytest.mark.parametrize("damage", ["none", "truncated_shown", "empty_shown", "keys_not_a_dict",
                                    "missing_samples_file", "damaged_samples_file",
                                    "an_older_version_made_it"])
def test_the_last_evaluations_rows_are_kept_only_when_whole(tmp_path, damage, caplog):
    class Domain:  # what kept_rows reads of a domain
        details_key, sample_suffix = "details", ".npz"

    previous = tmp_path / "evaluate"
    (previous / layout.SAMPLES_DIR).mkdir(parents=True)
    (previous / layout.ARTIFACT_FILE).write_text("{}")
    keys = {"mle": "k1", "psi@c=1.0,seed=0": "k2", "data": "k3"}
    (previous / layout.METRICS_FILE).write_text(json.dumps({
        "models": {name: {"valid": 0.5} for name in keys},
        "details": {name: {} for name in keys}}))
    np.savez_compressed(previous / layout.SHOWN_SAMPLES_FILE,
                        **{name: np.arange(6).reshape(2, 3) for name in keys})
    for name in keys:
        np.savez_compressed(previous / layout.SAMPLES_DIR / f"{name}.npz", tokens=np.zeros(2))
    recorded = {name: evaluate.row_key(key, previous / layout.SAMPLES_DIR / f"{name}.npz")
                for name, key in {**keys, "data": "old"}.items()}
    (previous / layout.SCORE_KEYS_FILE).write_text(json.dumps(recorded))
    shown = previous / layout.SHOWN_SAMPLES_FILE
    if damage == "truncated_shown":
        shown.write_bytes(shown.read_bytes()[:40])
    elif damage == "empty_shown":
        shown.write_bytes(b"")
    elif damage == "keys_not_a_dict":
        (previous / layout.SCORE_KEYS_FILE).write_text("[1, 2]")
    elif damage == "missing_samples_file":
        (previous / layout.SAMPLES_DIR / "mle.npz").unlink()
    elif damage == "damaged_samples_file":  # cut short: still a file, no longer the one written
        psi_samples = previous / layout.SAMPLES_DIR / "psi@c=1.0,seed=0.npz"
        psi_samples.write_bytes(psi_samples.read_bytes()[:100])
    elif damage == "an_older_version_made_it":
        (previous / layout.SCORE_KEYS_FILE).unlink()

    kept = evaluate.kept_rows(previous, keys, Domain())
    expected = {"none": ["mle", "psi@c=1.0,seed=0"], "missing_samples_file": ["psi@c=1.0,seed=0"],
                "damaged_samples_file": ["mle"]}
    # The data row's key changed: it is scored again. Damage: every row is scored again.
    assert sorted(kept) == expected.get(damage, [])
    if damage in expected:
        stats, details, samples = kept[expected[damage][-1]]
        assert stats == {"valid": 0.5} and details == {} and samples.shape == (2, 3)
    elif damage == "an_older_version_made_it":  # expected, not damage: no warning
        assert "WARNING" not in caplog.text
    else:
        assert "scoring every model again" in caplog.text
    assert evaluate.kept_rows(None, keys, Domain()) == {}
