"""The molecule pipeline on the smoke config: data, prior, Psi tuning, evaluation."""

import csv
import json

import numpy as np
import pytest

from seqtutor import layout
from seqtutor.components import evaluate, generate
from seqtutor.components.report import PRIOR_DISTANCE_KEYS, TUNED_KEYS
from seqtutor.domains.molecule import reward
from seqtutor import config as config_lib
from seqtutor.pipeline import runner
from tests.conftest import FAST_BEAM_ARGS


@pytest.fixture(scope="module")
def molecule_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("molecule")
    config = config_lib.load_config("configs/molecule_smoke.yaml", [
        ("prepare_data.beam_args", FAST_BEAM_ARGS), ("evaluate.num_samples", 2000)])
    runner.run_pipeline(config, workdir)
    metrics = json.loads((workdir / "evaluate" / layout.METRICS_FILE).read_text())
    return workdir, config, metrics


def test_tuning_raises_validity_and_task_reward_over_the_prior(molecule_run):
    _, _, metrics = molecule_run
    mle, psi = metrics["models"]["mle"], metrics["models"]["psi"]
    assert psi["valid"] > mle["valid"] + 0.02, (mle["valid"], psi["valid"])
    assert psi["mean_task_reward"] > mle["mean_task_reward"] + 0.5


def test_metrics_have_the_contract_keys_and_a_data_row(molecule_run):
    workdir, _, metrics = molecule_run
    assert metrics["domain"] == "molecule" and metrics["num_samples"] == 2000
    assert sorted(metrics["models"]) == ["data", "mle", "psi"]
    for name, row in metrics["models"].items():
        # A model's row also has its KL from the prior, a tuned one its c and KL-regularised
        # reward; the data has no policy.
        extra = (set() if name == "data" else {*PRIOR_DISTANCE_KEYS}
                 | ({*TUNED_KEYS} if name == "psi" else set()))
        assert set(row) == set(reward.STATISTIC_KEYS) | extra, name
        assert 0 <= row["valid"] <= 1 and row["mean_log_prior"] < 0
    data = metrics["models"]["data"]
    # The eval split: valid, unique, and (split by hash) never in the training set.
    assert data["valid"] == 1.0 and data["novelty"] == 1.0 and data["unique_at_1k"] == 1.0
    assert -2 < data["mean_log_prior"] < 0
    assert 0 < data["int_div1"] < 1 and 0 < data["mean_qed"] < 1
    assert metrics["outcomes"]["mle"]["valid"] == metrics["models"]["mle"]["valid"]


def test_samples_are_smi_files_and_the_report_draws_molecules(molecule_run):
    workdir, _, metrics = molecule_run
    eval_molecules = json.loads((workdir / "prepare_data" / "stats.json").read_text())[
        "records_out"]["eval"]
    for name, count in (("mle", 2000), ("psi", 2000), ("data", min(2000, eval_molecules))):
        lines = (workdir / "evaluate" / "samples" / f"{name}.smi").read_text().splitlines()
        assert len(lines) == count, name
    from seqtutor.domains.molecule import chemistry
    psi = (workdir / "evaluate" / "samples" / "psi.smi").read_text().splitlines()
    valid = np.mean([chemistry.parse(s) is not None for s in psi])
    # Cut-by-the-cap strings may parse, so the file's parse rate bounds `valid` from above.
    assert valid >= metrics["models"]["psi"]["valid"] - 1e-9
    html = (workdir / "evaluate" / "report.html").read_text()
    assert html.count("alt='molecules of") == 3 and "paper Psi" in html


def test_a_rerun_of_the_evaluation_keeps_its_unchanged_rows(molecule_run, tmp_path):
    workdir, config, metrics = molecule_run
    inputs = {stage: workdir / stage for stage in ("prepare_data", "pretrain", "tune")}
    summary = evaluate.run(config, inputs, tmp_path, previous=workdir / "evaluate")
    assert summary["kept_rows"] == 3  # mle, psi and the data: nothing sampled or scored
    assert json.loads((tmp_path / layout.METRICS_FILE).read_text()) == metrics
    for name in ("mle", "psi", "data"):
        assert ((tmp_path / "samples" / f"{name}.smi").read_text()
                == (workdir / "evaluate" / "samples" / f"{name}.smi").read_text())
    assert (tmp_path / "report.html").read_text().count("alt='molecules of") == 3


def test_generate_writes_a_smiles_file(molecule_run, tmp_path):
    workdir, config, _ = molecule_run
    paths = generate.generate(config, workdir, "psi", 50, tmp_path)
    assert [p.name for p in paths] == ["psi.smi"]
    assert len(paths[0].read_text().splitlines()) == 50


def test_tuned_episodes_end_at_eos_and_the_curves_are_written(molecule_run):
    workdir, _, metrics = molecule_run
    with open(workdir / "tune" / "psi" / "curves.csv") as handle:
        rows = list(csv.DictReader(handle))
    # The molecule domain adds the fraction of valid molecules to every point.
    assert list(rows[0]) == ["step", "mean_task_reward", "mean_log_prior", "valid"]
    assert len(rows) >= 3 and all(0 <= float(row["valid"]) <= 1 for row in rows)
    summary = json.loads((workdir / "tune" / "psi" / "tune.json").read_text())
    assert summary["initial_valid"] == float(rows[0]["valid"])
    assert summary["final_valid"] == float(rows[-1]["valid"])
    assert metrics["outcomes"]["psi"]["cut_by_episode_cap"] < 0.5



def test_tuning_and_evaluation_close_their_rdkit_scoring_processes(molecule_run, tmp_path,
                                                                   monkeypatch):
    # Left to the garbage collector, the scorer's process pool raised at interpreter exit
    # (the tuner's tf.functions keep the domain alive until then): each stage closes it.
    from seqtutor.components import tune
    from seqtutor.domains.molecule import chemistry

    closed_pools = []
    close = chemistry.MoleculeScorer.close

    def recording_close(scorer):
        closed_pools.append(scorer._pool is not None)
        close(scorer)

    monkeypatch.setattr(chemistry.MoleculeScorer, "close", recording_close)
    workdir, _, _ = molecule_run
    # Two workers and more molecules than a chunk (500): the scorer starts a process pool.
    config = config_lib.load_config("configs/molecule_smoke.yaml", [
        ("reward.workers", 2), ("evaluate.num_samples", 1200), ("evaluate.models", ["mle"]),
        ("tune.num_steps", 30000), ("tune.collect_episodes", 600), ("tune.eval_episodes", 600),
        ("tune.eval_every", 30000), ("tune.checkpoint_every", 30000),
        ("tune.replay_ratio", 1.0)])  # few gradient steps: the pools are what is tested
    inputs = {stage: workdir / stage for stage in ("prepare_data", "pretrain", "tune")}
    (tmp_path / "tune").mkdir()
    tune.run(config, {"pretrain": workdir / "pretrain"}, tmp_path / "tune", "psi")
    assert closed_pools == [True]
    evaluate.run(config, inputs, tmp_path / "evaluate")
    assert closed_pools == [True, True]
