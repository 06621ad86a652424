"""Configs: every file in configs/ loads; bad keys and values are errors that name the key."""

from pathlib import Path

import pytest

from seqtutor import config as config_lib

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_file_loads(path):
    config = config_lib.load_config(path)
    assert config.name == path.stem


def test_melody_config_has_the_papers_pretraining_settings():
    config = config_lib.load_config(Path("configs/melody.yaml"))
    assert config.pretrain.lstm_units == [100]
    assert config.pretrain.batch_size == 128
    assert config.pretrain.clip_norm == 5.0 and config.pretrain.l2 == 2.5e-5


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
    with pytest.raises(config_lib.ConfigError, match="does not exist"):
        config_lib.load_config(tmp_path / "nope.yaml")
