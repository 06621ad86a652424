"""Sweeps: a grid of tune settings and seeds, each point its own tune artifact, reused when
unchanged; a bad sweep is an error before any work."""

import json
import os

import pytest

from seqtutor import artifacts, config as config_lib, layout
from seqtutor.components import evaluate
from seqtutor.pipeline import cli, runner
from tests.conftest import FAST_BEAM_ARGS, workdir_with_prior

SMOKE = "configs/melody_smoke.yaml"
TINY_TUNE = [("prepare_data.beam_args", FAST_BEAM_ARGS), ("tune.algorithms", ["psi"]),
             ("tune.num_steps", 1024), ("tune.eval_every", 1024), ("tune.eval_episodes", 10),
             ("tune.checkpoint_every", 1024), ("evaluate.num_samples", 100),
             ("evaluate.models", ["mle", "psi"])]


def sweep_config(sweep: dict):
    return config_lib.load_config(SMOKE, TINY_TUNE + [("sweep", sweep)])


def set_args(sweep: dict) -> list[str]:
    """The command line's --set arguments of sweep_config(sweep), less the Beam options."""
    values = [f"{key}={json.dumps(value)}" for key, value in TINY_TUNE
              if not key.startswith("prepare_data.")] + [f"sweep={json.dumps(sweep)}"]
    return [arg for value in values for arg in ("--set", value)]


def test_every_point_is_a_variant_named_by_its_values():
    config = config_lib.load_config(SMOKE, [("tune.algorithms", ["q", "psi"]),
                                            ("sweep", {"tune.c": [0.5, 1], "seed": [0, 1]})])
    # The validated values (1 of a float key is 1.0), tune keys sorted and the seed last.
    assert config.tune_variants() == [
        "q@c=0.5,seed=0", "q@c=0.5,seed=1", "q@c=1.0,seed=0", "q@c=1.0,seed=1",
        "psi@c=0.5,seed=0", "psi@c=0.5,seed=1", "psi@c=1.0,seed=0", "psi@c=1.0,seed=1"]
    reordered = config_lib.load_config(SMOKE, [("tune.algorithms", ["q", "psi"]),
                                               ("sweep", {"seed": [0, 1], "tune.c": [0.5, 1.0]})])
    assert reordered.tune_variants() == config.tune_variants()
    point = config.points()[3]
    at = config.at(point)
    assert (at.tune.c, at.seed, at.sweep) == (1.0, 1, {})
    plain = config_lib.load_config(SMOKE)
    assert (config.tune.c, config.seed) == (plain.tune.c, plain.seed)  # itself unchanged
    assert runner.stage("tune").variant_config(config, "psi@c=1.0,seed=1") == at
    # A name that is not one of the config's variants is an error, not the base config.
    with pytest.raises(ValueError, match="'psi@c=3.0,seed=1' is not a variant"):
        runner.stage("tune").variant_config(config, "psi@c=3.0,seed=1")
    # Without a sweep the variants are the algorithms, as before.
    assert config_lib.load_config(SMOKE).tune_variants() == ["q", "psi", "g", "rl_only"]
    assert evaluate.model_names(config)[:3] == ["mle", "q@c=0.5,seed=0", "q@c=0.5,seed=1"]


@pytest.mark.parametrize("sweep, message", [
    ({"pretrain.max_steps": [10]}, "sweep.pretrain.max_steps: not a key the tune stage alone"),
    ({"reward.octave": [1.0]}, "sweep.reward.octave: not a key the tune stage alone reads"),
    ({"tune.episode_length": [16]}, "sweep.tune.episode_length: not a key"),
    ({"tune.algorithms": ["q"]}, "sweep.tune.algorithms: not a key"),
    ({"tune.cc": [1.0]}, "sweep.tune.cc: not a key"),
    ({"tune.c": []}, "sweep.tune.c: expected a non-empty list"),
    ({"tune.c": 0.5}, "sweep.tune.c: Input should be a valid list"),
    ({"tune.c": [0.5, 0.5]}, "the value 0.5 is given twice"),
    ({"tune.c": [1, 1.0]}, "1.0 and 1 are the same value"),
    ({"tune.c": [0.5, -1]}, r"sweep.tune.c: the value -1: tune.c: Input should be greater than 0"),
    ({"seed": [0, "x"]}, "sweep.seed: the value 'x'"),
    ({"tune.exploration": ["a/b"]}, "cannot name a directory"),
])
def test_a_bad_sweep_is_a_config_error_naming_the_key(sweep, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        sweep_config(sweep)


def per_algorithm_config(entries: dict, sweep: dict | None = None):
    return config_lib.load_config(SMOKE, TINY_TUNE + [
        ("tune.algorithms", ["psi", "dap"]), ("tune.per_algorithm", entries),
        ("sweep", sweep if sweep is not None else {"tune.c": [0.5, 1.0], "seed": [0]})])


def test_per_algorithm_settings_apply_to_their_algorithm_alone():
    config = per_algorithm_config({"dap": {"collect_episodes": 8, "learning_rate": 1e-4}})
    tune = runner.stage("tune")
    dap = tune.variant_config(config, "dap@c=0.5,seed=0")
    psi = tune.variant_config(config, "psi@c=0.5,seed=0")
    assert (dap.tune.c, dap.tune.collect_episodes, dap.tune.learning_rate) == (0.5, 8, 1e-4)
    base = config_lib.load_config(SMOKE, TINY_TUNE)
    assert (psi.tune.collect_episodes, psi.tune.learning_rate) == (
        base.tune.collect_episodes, base.tune.learning_rate)

    def section(config, variant):
        return tune.section(tune.variant_config(config, variant), variant)

    # psi's fingerprint input does not see dap's entry, whatever it holds; dap's is the run
    # that the same settings made for every algorithm would give it.
    other = per_algorithm_config({"dap": {"collect_episodes": 16}})
    plain = per_algorithm_config({})
    assert section(config, "psi@c=1.0,seed=0") == section(other, "psi@c=1.0,seed=0") == (
        section(plain, "psi@c=1.0,seed=0"))
    assert section(config, "dap@c=1.0,seed=0") != section(other, "dap@c=1.0,seed=0")
    everyone = config_lib.load_config(SMOKE, TINY_TUNE + [
        ("tune.algorithms", ["psi", "dap"]), ("tune.collect_episodes", 8),
        ("tune.learning_rate", 1e-4), ("sweep", {"tune.c": [0.5, 1.0], "seed": [0]})])
    assert section(config, "dap@c=1.0,seed=0") == section(everyone, "dap@c=1.0,seed=0")


def test_a_per_algorithm_setting_reaches_the_run_and_retunes_that_algorithm_alone(
        tmp_path, melody_smoke_prior):
    workdir = workdir_with_prior(tmp_path / "work", melody_smoke_prior)

    def tune(entries):
        return [runner.run_stage(per_algorithm_config(entries, {}), "tune", workdir, variant=v)
                for v in ("psi", "dap")]

    assert not any(result.skipped for result in tune({"dap": {"collect_episodes": 8}}))
    dap = layout.tuned_dir(workdir / "tune", "dap")
    # 1,024 environment steps in batches of 8 episodes of 32 steps: 4 gradient steps.
    assert json.loads((dap / layout.TUNE_SUMMARY_FILE).read_text())["train_steps"] == 4
    recorded = json.loads((dap / "artifact.json").read_text())["config"]["tune"]
    assert recorded["collect_episodes"] == 8 and "per_algorithm" not in recorded
    again = tune({"dap": {"collect_episodes": 16}})
    assert [r.name for r in again if not r.skipped] == ["tune/dap"]
    assert json.loads((dap / layout.TUNE_SUMMARY_FILE).read_text())["train_steps"] == 2


@pytest.mark.parametrize("entries, sweep, message", [
    ({"dapp": {"learning_rate": 1e-4}}, None, "per_algorithm: unknown algorithm 'dapp'"),
    ({"dap": {"c": 2.0}}, None, r"per_algorithm.dap: \['c'\] are shared by every algorithm"),
    ({"dap": {"episode_length": 16}}, None, r"\['episode_length'\] are shared"),
    ({"dap": {"learning_rat": 1e-4}}, None, r"\['learning_rat'\] are not tune keys"),
    ({"dap": {}}, None, "per_algorithm.dap: an empty entry"),
    ({"dap": {"collect_episodes": 0}}, None,
     "per_algorithm.dap: collect_episodes: Input should be greater than or equal to 1"),
    ({"rloo_kl": {"rloo_k": 3}}, None, r"per_algorithm.rloo_kl: .*multiple of rloo_k \(3\)"),
    ({"dap": {"learning_rate": 1e-4}}, {"tune.learning_rate": [1e-3, 1e-4]},
     "sweep.tune.learning_rate: tune.per_algorithm.dap sets it too"),
])
def test_bad_per_algorithm_settings_are_config_errors(entries, sweep, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        per_algorithm_config(entries, sweep)


def test_a_grid_beyond_max_points_fails_before_any_work(tmp_path, capsys):
    workdir = tmp_path / "work"
    status = cli.main(["run", SMOKE, "--workdir", str(workdir), "--max-points", "3",
                       "--set", "sweep={tune.c: [0.5, 1.0], seed: [0, 1]}"])
    assert status == 2
    assert "sweep: 4 points (2 x 2) is more than --max-points 3" in capsys.readouterr().err
    assert not workdir.exists()
    # A point that only fails as a whole (each value alone is valid) fails before any work too.
    config = config_lib.load_config(SMOKE, TINY_TUNE + [
        ("tune.q_init", "log_prior"),
        ("sweep", {"tune.q_init": ["log_prior", "logits"],
                   "tune.detach_value_head": [False, True]})])
    with pytest.raises(config_lib.ConfigError,
                       match="sweep point detach_value_head=true,q_init=logits: .*needs q_init"):
        runner.run_pipeline(config, workdir)
    assert not workdir.exists()


def test_a_sweep_tunes_each_point_once_and_a_new_value_only_its_points(
        tmp_path, melody_smoke_prior, monkeypatch, capsys):
    workdir = workdir_with_prior(tmp_path / "work", melody_smoke_prior)
    config = sweep_config({"tune.c": [0.5, 1.0], "seed": [0, 1]})
    first = runner.run_pipeline(config, workdir, only=["tune"])
    assert [r.name for r in first] == ["tune/psi@c=0.5,seed=0", "tune/psi@c=0.5,seed=1",
                                       "tune/psi@c=1.0,seed=0", "tune/psi@c=1.0,seed=1"]
    for name in config.tune_variants():
        record = json.loads((layout.tuned_dir(workdir / "tune", name) / "artifact.json")
                            .read_text())
        at = runner.stage("tune").variant_config(config, name)
        assert record["config"]["tune"]["c"] == at.tune.c and record["config"]["seed"] == at.seed
    # The seed changes what is learned: two seeds at one c are two different runs.
    curves = [(layout.tuned_dir(workdir / "tune", f"psi@c=0.5,seed={seed}") / "curves.csv")
              .read_text() for seed in (0, 1)]
    assert curves[0] != curves[1]

    again = [runner.run_stage(config, "tune", workdir, variant=v) for v in config.tune_variants()]
    assert all(result.skipped for result in again)
    # A second process on the sweep (here a claim this test holds) leaves the point it is
    # writing to it, and says so.
    held = runner.stage("tune").output(workdir, "psi@c=1.0,seed=0")
    with artifacts.claim(held):
        shared = {result.name: result for result in runner.run_variants(config, "tune", workdir)}
        rows = {row.name: row for row in runner.status(config, workdir)}
        capsys.readouterr()
        assert cli.main(["tune", SMOKE, "--workdir", str(workdir), "--keep-finished",
                         *set_args({"tune.c": [0.5, 1.0], "seed": [0, 1]})]) == 0
        assert "tune: 1 of 4 skipped as other processes are running them" in (
            capsys.readouterr().err)
        # `seqtutor run` tunes the free points, then stops rather than evaluate without it.
        with pytest.raises(artifacts.ArtifactBusyError, match=r"1 tune output is being written"
                                                              r" by other processes \(tune/psi"):
            runner.run_pipeline(config, workdir)
        assert not (workdir / "evaluate").exists()
    assert all(result.skipped for result in shared.values())
    assert [name for name, result in shared.items() if result.busy] == ["tune/psi@c=1.0,seed=0"]
    assert "being written by another process (pid" in shared["tune/psi@c=1.0,seed=0"].busy
    assert rows["tune/psi@c=1.0,seed=0"].state == "running"
    assert f"pid {os.getpid()} on " in rows["tune/psi@c=1.0,seed=0"].detail
    assert [rows[name].state for name in ("prepare_data", "pretrain", "evaluate")] == [
        "done", "done", "to do"]
    assert sorted(row.state for name, row in rows.items() if name.startswith("tune/")) == [
        "done", "done", "done", "running"]
    # Under a new pretrain setting the points wait for the prior `seqtutor run` would remake.
    retrained = config_lib.load_config(SMOKE, TINY_TUNE + [
        ("sweep", {"tune.c": [0.5, 1.0], "seed": [0, 1]}), ("pretrain.max_steps", 10**6)])
    rows = {row.name: row for row in runner.status(retrained, workdir)}
    assert rows["pretrain"].state == "out of date"
    assert {rows[f"tune/{v}"].detail for v in config.tune_variants()} == {"pretrain out of date"}

    wider = sweep_config({"tune.c": [0.5, 1.0, 2.0], "seed": [0, 1]})
    results = [runner.run_stage(wider, "tune", workdir, variant=v)
               for v in wider.tune_variants()]
    assert [r.name for r in results if not r.skipped] == ["tune/psi@c=2.0,seed=0",
                                                          "tune/psi@c=2.0,seed=1"]

    # Widened again after an upgrade (other code: every fingerprint differs): `seqtutor tune
    # --keep-finished` keeps the six finished points and tunes only the new value's two.
    monkeypatch.setattr(artifacts, "code_version", lambda: "0.0+upgraded")
    widest_sweep = {"tune.c": [0.5, 1.0, 2.0, 4.0], "seed": [0, 1]}
    sets = set_args(widest_sweep)
    assert cli.main(["tune", SMOKE, "--workdir", str(workdir), "--keep-finished",
                     *sets]) == 0
    made_by = {name: json.loads((layout.tuned_dir(workdir / "tune", name) / "artifact.json")
                                .read_text())["code_version"]
               for name in sweep_config(widest_sweep).tune_variants()}
    assert sorted(name for name, code in made_by.items() if code == "0.0+upgraded") == [
        "psi@c=4.0,seed=0", "psi@c=4.0,seed=1"]
    assert cli.main(["status", SMOKE, "--workdir", str(workdir),
                     *sets,
                     # the prior's Beam options: they are prepare_data settings
                     "--set", f"prepare_data.beam_args={json.dumps(FAST_BEAM_ARGS)}"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[1:] for line in table if line.startswith("tune/psi@c=4.0")] == [
        ["done"], ["done"]]
    assert table[-1] == "tune: 8 points: 2 done, 6 done by other code"

    result = runner.run_stage(wider, "evaluate", workdir)
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert sorted(metrics["models"]) == sorted(["data", "mle", *wider.tune_variants()])
    assert metrics["missing_models"] == []
    groups = metrics["seed_groups"]
    assert sorted(groups) == ["psi@c=0.5", "psi@c=1.0", "psi@c=2.0"]
    assert groups["psi@c=2.0"]["models"] == ["psi@c=2.0,seed=0", "psi@c=2.0,seed=1"]
    assert all(group["sd"]["mean_task_reward"] is not None for group in groups.values())
    report_text = (result.path / layout.REPORT_FILE).read_text()
    assert "alt='frontier'" in report_text and "class='sd'" in report_text
    frontier = (result.path / layout.FRONTIER_FILE).read_text().splitlines()
    assert [line.split(",")[0] for line in frontier[1:]] == ["data", "mle", "psi@c=0.5",
                                                             "psi@c=1.0", "psi@c=2.0"]
    # The frontier's other axis: the MLE model is the prior (KL 0); a tuned policy has moved.
    assert abs(metrics["models"]["mle"]["kl_per_token"]) < 1e-4
    assert all(metrics["models"][name]["kl_per_token"] > 0 for name in wider.tune_variants())

    # The widest sweep's evaluation samples and scores its two new points, and one row whose
    # samples file went missing, and keeps the other rows; those are the rows a run from
    # scratch computes.
    widest = sweep_config(widest_sweep)
    (result.path / layout.SAMPLES_DIR / "psi@c=1.0,seed=1.npz").unlink()
    grown = runner.run_stage(widest, "evaluate", workdir)
    assert grown.summary["kept_rows"] == 7  # data, mle and 5 of the 6 tuned points
    kept = json.loads((grown.path / "metrics.json").read_text())
    assert {name: kept["models"][name] for name in metrics["models"]} == metrics["models"]
    assert cli.main(["evaluate", SMOKE, "--workdir", str(workdir), "--rescore",
                     *sets]) == 0
    scratch = workdir / "evaluate"
    assert json.loads((scratch / "artifact.json").read_text())["summary"]["kept_rows"] == 0
    assert json.loads((scratch / "metrics.json").read_text()) == kept
    assert sorted(p.name for p in (scratch / layout.SAMPLES_DIR).iterdir()) == sorted(
        f"{name}.npz" for name in kept["models"])
    # A model made again under the same settings (a rerun of `seqtutor tune`) is a new model.
    retuned = layout.tuned_dir(workdir / "tune", "psi@c=2.0,seed=0") / "artifact.json"
    record = json.loads(retuned.read_text())
    retuned.write_text(json.dumps({**record, "created": "2031-01-01T00:00:00+00:00"}))
    rerun = runner.run_stage(widest, "evaluate", workdir, force=True)  # `seqtutor evaluate`
    assert rerun.summary["kept_rows"] == 9
    # Another evaluation setting: every row is scored again.
    resampled = config_lib.load_config(
        SMOKE, TINY_TUNE + [("sweep", widest_sweep), ("evaluate.temperature", 0.9)])
    assert runner.run_stage(resampled, "evaluate", workdir).summary["kept_rows"] == 0
