"""Configs: every file in configs/ loads; bad keys and values are errors that name the key; a
config can extend another; the configs are built in (by name, from anywhere, once installed)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seqtutor import artifacts, config as config_lib
from seqtutor.pipeline import runner

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_file_loads(path):
    config = config_lib.load_config(path)
    assert config.name == path.stem


def test_melody_config_has_the_papers_pretraining_settings():
    config = config_lib.load_config(Path("configs/melody.yaml"))
    assert config.pretrain.lstm_units == [100]
    assert config.pretrain.batch_size == 128
    assert config.pretrain.clip_norm == 5.0 and config.pretrain.l2 == 2.5e-5


# configs/molecule_psi.yaml's tune and evaluate sections as they were written out in full before
# it extended molecule.yaml (its other sections were molecule.yaml's, key for key).
MOLECULE_PSI_TUNING = """
tune:
  algorithms: [psi, rl_only]
  c: 2.85
  gamma: 1.0
  eta: 0.01
  learning_rate: 0.0001
  value_learning_rate: 0.003
  clip_norm: 5.0
  q_init: log_prior
  n_step: null
  off_policy_correction: retrace
  detach_value_head: true
  value_head_units: [256]
  episode_length: null
  exploration: epsilon_boltzmann
  epsilon_start: 0.01
  epsilon_final: 0.01
  exploration_steps: 0
  num_steps: 8000000
  collect_episodes: 512
  batch_episodes: 512
  replay_ratio: 8.0
  replay_capacity: 250000
  replay: prioritized
  priority_alpha: 0.6
  priority_beta_start: 0.4
  eval_every: 250000
  eval_episodes: 1000
  checkpoint_every: 250000
  mixed_precision: mixed_bfloat16
evaluate:
  num_samples: 100000
  models: [mle, psi, rl_only]
  temperature: 1.0
  batch_size: 10000
"""


def test_molecule_psi_overlay_is_the_config_it_replaced():
    base = config_lib.load_config(ROOT / "configs" / "molecule.yaml").model_dump(mode="json")
    expected = config_lib.config_from_dict(
        {**base, **yaml.safe_load(MOLECULE_PSI_TUNING), "name": "molecule_psi"})
    assert config_lib.load_config(ROOT / "configs" / "molecule_psi.yaml") == expected
    assert "extends" in yaml.safe_load((ROOT / "configs" / "molecule_psi.yaml").read_text())


def _stage_fingerprints(config) -> dict[str, str]:
    """The fingerprints the runner gives prepare_data, pretrain and tune/psi (no stage runs)."""
    prints = {}
    for name, variant, inputs in (("prepare_data", None, ()), ("pretrain", None, ("prepare_data",)),
                                  ("tune", "psi", ("pretrain",))):
        section = runner.stage(name).section(config, variant)
        prints[name] = artifacts.fingerprint(name, section, {i: prints[i] for i in inputs})
    return prints


@pytest.mark.parametrize("name", ["molecule_psi", "molecule_sweep"])
def test_a_molecule_overlay_shares_the_molecule_configs_data_and_prior_fingerprints(name):
    base = _stage_fingerprints(config_lib.load_config("molecule"))
    overlay = _stage_fingerprints(config_lib.load_config(name))
    assert overlay["prepare_data"] == base["prepare_data"]
    assert overlay["pretrain"] == base["pretrain"]
    assert overlay["tune"] != base["tune"]


def test_the_molecule_sweep_keeps_the_molecule_configs_tuning_budget_around_its_c():
    base = config_lib.load_config("molecule")
    swept = config_lib.load_config("molecule_sweep")
    assert swept.tune.num_steps == base.tune.num_steps
    values = swept.sweep["tune.c"]
    assert len(values) >= 3 and min(values) < base.tune.c < max(values)
    assert base.tune.c in values and len(swept.sweep["seed"]) >= 2
    assert {"psi", "rl_only"} <= set(swept.tune.algorithms)
    # The sequence-level algorithms at REINVENT's batch of 64, the rest at molecule.yaml's 512.
    tune = runner.stage("tune")
    for algorithm, batch in (("psi", 512), ("q", 512), ("dap", 64), ("rloo_kl", 64)):
        variant = f"{algorithm}@c=2.85,seed=0"
        assert tune.variant_config(swept, variant).tune.collect_episodes == batch, algorithm


def test_molecule_psi_config_shares_the_molecule_configs_data_prior_and_reward():
    # Equal sections give equal fingerprints, so both configs share a workdir's prepared data and
    # prior; only the tuning (and which models are evaluated) differs.
    base = config_lib.load_config(Path("configs/molecule.yaml"))
    psi = config_lib.load_config(Path("configs/molecule_psi.yaml"))
    for section in ("prepare_data", "pretrain", "reward"):
        assert getattr(psi, section) == getattr(base, section), section
    assert psi.seed == base.seed
    assert (psi.tune.c, psi.tune.batch_episodes, psi.tune.replay) == (2.85, 512, "prioritized")
    assert psi.tune.n_step is None and psi.tune.value_learning_rate is not None


def test_unknown_key_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("prepare_data:\n  sequence_lenght: 32\n")
    with pytest.raises(config_lib.ConfigError, match=r"prepare_data\.sequence_lenght: unknown"):
        config_lib.load_config(path)


def test_bad_value_is_an_error_naming_the_key():
    with pytest.raises(config_lib.ConfigError, match=r"pretrain\.batch_size"):
        config_lib.config_from_dict({"pretrain": {"batch_size": 0}})
    with pytest.raises(config_lib.ConfigError, match=r"prepare_data\.builtin_corpus"):
        config_lib.config_from_dict({"prepare_data": {"builtin_corpus": "bach"}})
    with pytest.raises(config_lib.ConfigError, match=r"builtin_collections"):
        config_lib.config_from_dict({"prepare_data": {"builtin_collections": ["josquin"]}})


def test_melody_reward_weights_name_terms_of_r_t():
    config = config_lib.config_from_dict({"reward": {"weights": {"tonic": 4, "extrema": 2.5}}})
    assert config.reward.weights == {"tonic": 4.0, "extrema": 2.5}
    with pytest.raises(config_lib.ConfigError, match=r"reward\.weights.*unknown reward terms "
                       r"\['tonik'\]"):
        config_lib.config_from_dict({"reward": {"weights": {"tonik": 4}}})
    with pytest.raises(config_lib.ConfigError, match=r"reward\.weights.*finite"):
        config_lib.config_from_dict({"reward": {"weights": {"tonic": float("inf")}}})


def test_set_overrides_one_value_parsed_as_yaml():
    config = config_lib.config_from_dict(
        {}, ["pretrain.lstm_units=[256, 256]", "prepare_data.eval_fraction=0.2"])
    assert config.pretrain.lstm_units == [256, 256]
    assert config.prepare_data.eval_fraction == 0.2


def test_set_unknown_key_and_malformed_override_are_errors():
    with pytest.raises(config_lib.ConfigError, match=r"pretrain\.nope: unknown key"):
        config_lib.config_from_dict({}, ["pretrain.nope=1"])
    with pytest.raises(config_lib.ConfigError, match="expected key.sub=value"):
        config_lib.config_from_dict({}, ["pretrain.batch_size"])
    with pytest.raises(config_lib.ConfigError, match="is not a section"):
        config_lib.config_from_dict({"seed": 1}, ["seed.x=1"])


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(config_lib.ConfigError, match="nope.yaml': no such file"):
        config_lib.load_config(tmp_path / "nope.yaml")


def test_the_builtin_configs_are_the_files_in_configs():
    assert config_lib.builtin_configs() == tuple(path.stem for path in CONFIGS)
    assert {"melody", "melody_smoke", "molecule", "molecule_psi", "molecule_smoke"} <= set(
        config_lib.builtin_configs())


@pytest.mark.parametrize("name", ["melody", "molecule_psi.yaml"])
def test_a_builtin_name_loads_from_any_directory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stem = name.removesuffix(".yaml")
    config = config_lib.load_config(name, ["seed=3"])
    assert config == config_lib.load_config(ROOT / "configs" / f"{stem}.yaml", ["seed=3"])
    assert config.name == stem
    assert runner.default_workdir(config) == Path("runs") / stem


def test_an_existing_file_wins_over_a_builtin_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("melody.yaml").write_text("seed: 7\n")
    assert config_lib.load_config("melody.yaml").seed == 7
    assert config_lib.load_config("melody").seed == 0  # no file named melody: the built-in


def test_an_unknown_name_is_an_error_that_lists_the_builtin_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.load_config("melodie")
    assert "'melodie': no such file, and no built-in config of that name" in str(error.value)
    assert ", ".join(config_lib.builtin_configs()) in str(error.value)


def test_the_cli_reports_an_unknown_config_without_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqtutor.pipeline.cli", "run", "melodie"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "seqtutor: error: config 'melodie': no such file" in result.stderr
    assert "molecule_smoke" in result.stderr and "Traceback" not in result.stderr


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_extends_deep_merges_the_overlay_onto_its_base(tmp_path):
    _write(tmp_path / "base", "base.yaml",
           "name: base_run\nseed: 5\npretrain:\n  lstm_units: [64, 64]\n  batch_size: 32\n"
           "tune:\n  algorithms: [q, psi]\n  gamma: 0.9\n")
    overlay = _write(tmp_path, "over.yaml",
                     "extends: base/base.yaml\npretrain:\n  lstm_units: [16]\n"
                     "tune:\n  algorithms: [g]\n")
    config = config_lib.load_config(overlay, ["pretrain.batch_size=8"])
    assert config.name == "over"  # the run name is never inherited
    assert config.seed == 5
    assert config.pretrain.lstm_units == [16]  # a list replaces
    assert config.pretrain.batch_size == 8  # --set applies after the merge
    assert (config.tune.algorithms, config.tune.gamma) == (["g"], 0.9)  # sections merge by key


def test_extends_a_chain_and_a_builtin_name(tmp_path):
    _write(tmp_path, "a.yaml", "extends: melody_smoke\npretrain:\n  max_steps: 10\n")
    b = _write(tmp_path, "b.yaml", "extends: a.yaml\nseed: 2\n")
    config = config_lib.load_config(b)
    smoke = config_lib.load_config("melody_smoke")
    assert (config.seed, config.pretrain.max_steps) == (2, 10)
    assert config.pretrain.lstm_units == smoke.pretrain.lstm_units
    assert config.prepare_data == smoke.prepare_data


def test_an_unknown_key_in_an_overlay_is_rejected(tmp_path):
    _write(tmp_path, "base.yaml", "pretrain:\n  batch_size: 32\n")
    overlay = _write(tmp_path, "over.yaml", "extends: base.yaml\npretrain:\n  bach_size: 8\n")
    with pytest.raises(config_lib.ConfigError, match=r"pretrain\.bach_size: unknown key"):
        config_lib.load_config(overlay)


def test_an_extends_cycle_is_an_error_naming_the_files(tmp_path):
    a = _write(tmp_path, "a.yaml", "extends: b.yaml\n")
    _write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(config_lib.ConfigError,
                       match=r"cycle: .*a\.yaml extends .*b\.yaml extends .*a\.yaml"):
        config_lib.load_config(a)
    itself = _write(tmp_path, "self.yaml", "extends: self.yaml\n")
    with pytest.raises(config_lib.ConfigError, match="cycle"):
        config_lib.load_config(itself)


def test_a_missing_base_is_an_error_naming_both_files(tmp_path):
    overlay = _write(tmp_path, "over.yaml", "extends: gone.yaml\n")
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.load_config(overlay)
    message = str(error.value)
    assert "over.yaml: extends: 'gone.yaml': no such file" in message
    assert str(tmp_path / "gone.yaml") in message and "molecule_psi" in message
    with pytest.raises(config_lib.ConfigError, match="extends: expected a config"):
        config_lib.load_config(_write(tmp_path, "bad.yaml", "extends: [a.yaml]\n"))


def test_an_installed_package_carries_the_configs(tmp_path):
    # What a plain `pip install .` installs (a copy of the tree, as the Dockerfile has): the one
    # import package seqtutor, with the built-in configs as seqtutor/configs/*.yaml.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("seqtutor", "pipeline", "components", "data_prep", "domains", "configs"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True, timeout=600)
    assert {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")} <= {
        "seqtutor", "bin"}
    installed = sorted((target / "seqtutor" / "configs").glob("*.yaml"))
    assert [p.name for p in installed] == [p.name for p in CONFIGS]
    assert all(p.read_text() == (ROOT / "configs" / p.name).read_text() for p in installed)
    code = ("from seqtutor import config; c = config.load_config('molecule_psi'); "
            "print(config.resolve_config('molecule_psi'), c.name, c.tune.n_step)")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, check=True, text=True,
                         capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(target)}).stdout.split()
    assert out == [str(target / "seqtutor" / "configs" / "molecule_psi.yaml"),
                   "molecule_psi", "None"]
