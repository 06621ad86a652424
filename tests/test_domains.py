"""A domain anyone can add: the toy digits domain of tests/toy_domain.py, found by import path
or entry point, runs the whole pipeline; a name that resolves to nothing is a clear error."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqtutor import config as config_lib, domains, layout, plugins, tfrecords
from seqtutor.components import generate
from seqtutor.components.report import PRIOR_DISTANCE_KEYS, TUNED_KEYS
from seqtutor.pipeline import runner
from tests.conftest import FAST_BEAM_ARGS
from tests.toy_domain import DigitsDomain

ROOT = Path(__file__).resolve().parent.parent
TOY = "tests.toy_domain:DigitsDomain"


def seqtutor(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "seqtutor.pipeline.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900)


def digits_corpus(folder: Path) -> Path:
    """300 lines of 16 digits, a third of them counting up, plus two bad lines."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(300):
        if i % 3 == 0:
            start = int(rng.integers(0, 10))
            lines.append("".join(str((start + k) % 10) for k in range(16)))
        else:
            lines.append("".join(map(str, rng.integers(0, 10, 16))))
    lines += ["12a4567890123456", "1234"]
    folder.mkdir(parents=True)
    (folder / "digits.txt").write_text("\n".join(lines) + "\n")
    return folder


def toy_config(path: Path, corpus: Path, domain: str = TOY) -> Path:
    config = {
        "domain": domain,
        "prepare_data": {"input": [str(corpus)], "beam_args": FAST_BEAM_ARGS},
        "pretrain": {"lstm_units": [16], "batch_size": 16, "learning_rate": 0.01,
                     "max_steps": 40, "eval_every": 20, "shuffle_buffer": 200},
        "tune": {"c": 1.0, "num_steps": 1024, "exploration_steps": 512,
                 "collect_episodes": 32, "batch_episodes": 8, "replay_capacity": 2000,
                 "eval_every": 1024, "eval_episodes": 50, "checkpoint_every": 1024,
                 "episode_length": 8},
        "evaluate": {"num_samples": 200},
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def test_a_domain_named_by_import_path_runs_the_whole_pipeline(tmp_path):
    config = toy_config(tmp_path / "digits.yaml", digits_corpus(tmp_path / "corpus"))
    workdir = tmp_path / "work"
    run = seqtutor("run", str(config), "--workdir", str(workdir))
    assert run.returncode == 0, run.stderr[-3000:]
    stats = json.loads((workdir / "prepare_data" / layout.STATS_FILE).read_text())
    assert stats["dropped_by_reason"] == {"not_digits": 1, "too_short": 1}
    # 300 lines of 16 digits: 600 records of 8. The counting-up ones repeat: each is fixed by
    # its first digit, so 200 of them hold at most 10 distinct records (190 duplicates).
    assert stats["duplicate_sequences"] >= 190
    assert sum(stats["records_out"].values()) == 600 - stats["duplicate_sequences"]
    assert tfrecords.read_vocab(workdir / "prepare_data")["domain"] == "digits"
    # The config names no algorithms: every one of the table is tuned and evaluated, the
    # off-policy and the sequence-level ones alike.
    everyone = ("q", "psi", "g", "rl_only", "dap", "rloo_kl")
    for algorithm in everyone:
        assert layout.is_complete(layout.tuned_dir(workdir / "tune", algorithm))
    metrics = json.loads((workdir / "evaluate" / layout.METRICS_FILE).read_text())
    assert metrics["domain"] == TOY
    assert sorted(metrics["models"]) == sorted(["data", "mle", *everyone])
    assert set(metrics["models"]["q"]) == {*DigitsDomain.statistic_keys,
                                           *PRIOR_DISTANCE_KEYS, *TUNED_KEYS}
    # Random digits go up one in 1 step of 10; the few distinct counting-up records add some.
    assert 0.1 < metrics["models"]["data"]["ascending_steps"] < 0.25
    report = (workdir / "evaluate" / layout.REPORT_FILE).read_text()
    assert "Digit frequencies" in report and "<pre>" in report
    paths = generate.generate(config_lib.load_config(config), workdir, "psi", 5, tmp_path / "out")
    assert len(paths[0].read_text().split()) == 5


@pytest.mark.parametrize("domain, tried", [
    ("protein", "not a registered domain (melody, molecule"),
    ("nowhere.module:Nothing", "cannot import 'nowhere.module'"),
    ("tests.toy_domain:Missing", "has no 'Missing'"),
])
def test_a_domain_that_does_not_resolve_fails_before_any_stage(tmp_path, domain, tried):
    config = toy_config(tmp_path / "bad.yaml", tmp_path, domain)
    run = seqtutor("run", str(config), "--workdir", str(tmp_path / "work"))
    assert run.returncode == 2
    assert "domain: " in run.stderr and repr(domain) in run.stderr and tried in run.stderr
    assert not (tmp_path / "work").exists()


def test_a_domain_is_found_by_its_entry_point(tmp_path, monkeypatch):
    # An installed package that declares the domain: a dist-info folder on sys.path.
    info = tmp_path / "toy_digits-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-digits\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[seqtutor.domains]\ndigits = {TOY}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert plugins.domain_class("digits") is DigitsDomain
    config = config_lib.config_from_dict({"domain": "digits",
                                          "prepare_data": {"sequence_length": 12}})
    assert config.prepare_data.sequence_length == 12
    with pytest.raises(config_lib.ConfigError, match="prepare_data.max_tokens: unknown key"):
        config_lib.config_from_dict({"domain": "digits", "prepare_data": {"max_tokens": 3}})


def test_a_registered_domain_is_found_by_name(monkeypatch):
    monkeypatch.setitem(domains.DOMAINS, "digits", TOY)
    domain = domains.get_domain("digits", DigitsDomain.reward_config(ascending=2.0))
    # 0 1 2 5 6: three ascending steps, 2 each.
    assert domain.task_reward(np.array([[0, 1, 2, 5, 6]])).tolist() == [[0, 2, 2, 0, 2]]
    with pytest.raises(ValueError, match="already registered"):
        domains.register_domain("digits", DigitsDomain)


def test_a_domain_outside_the_package_has_its_code_in_the_fingerprint(tmp_path):
    toy = config_lib.config_from_dict({"domain": TOY})
    melody = config_lib.config_from_dict({"domain": "melody"})
    source = (ROOT / "tests" / "toy_domain.py").read_bytes()
    prepare = runner.stage("prepare_data")
    assert prepare.section(toy, None)["domain_code"] == hashlib.sha256(source).hexdigest()[:12]
    assert "domain_code" not in prepare.section(melody, None)  # the code version covers it
