"""The algorithm table: each algorithm's start, and a fifth algorithm that is one entry.

The toy algorithm, Q-learning with the prior's weight in the reward doubled, is registered by
these tests alone and goes through config validation, tuning, evaluation, the report and
generation without an edit of the package.
"""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from seqtutor import config as config_lib, layout, sequence_model
from seqtutor.components import generate
from seqtutor.pipeline import cli, runner
from seqtutor.rl import algorithms, kl_control
from seqtutor.rl.agent import SequenceTutorAgent
from tests.conftest import FAST_BEAM_ARGS, workdir_with_prior

SMOKE = "configs/melody_smoke.yaml"


@pytest.fixture
def doubled_prior_q():
    """Q-learning whose reward carries 2 log p(a|s), registered for one test."""
    toy = algorithms.register(dataclasses.replace(
        algorithms.get("q"), name="q2x", prior_reward_weight=2.0,
        description="Q-learning with a doubled prior weight (a test's toy)"))
    yield toy
    algorithms.unregister("q2x")


@pytest.mark.parametrize("q_init", ["log_prior", "logits"])
@pytest.mark.parametrize("name", ["q", "psi", "g", "rl_only"])
def test_every_algorithm_starts_at_the_prior(name, q_init):
    tf.keras.utils.set_random_seed(0)
    pretrained = sequence_model.build_model(38, [16])
    # Random weights of a visible size, so that p is far from uniform.
    pretrained.set_weights([w + np.random.default_rng(1).normal(0, 0.5, w.shape)
                            for w in pretrained.get_weights()])
    algorithm = algorithms.get(name)
    agent = SequenceTutorAgent(pretrained, algorithm,
                               config_lib.TuneConfig(c=0.5, gamma=0.5, q_init=q_init))
    observations = tf.constant(np.random.default_rng(0).integers(0, 38, (4, 7)), tf.int32)
    log_prior = tf.nn.log_softmax(pretrained(observations))
    values = agent.q_values(agent.q_network, observations)
    policy = tf.nn.softmax(algorithm.policy_logits(values, log_prior))
    np.testing.assert_allclose(policy.numpy(), tf.exp(log_prior).numpy(), atol=1e-5)
    if algorithm.zero_start:  # G(s, .) = v(s): one value for every token
        spread = tf.reduce_max(values, -1) - tf.reduce_min(values, -1)
        np.testing.assert_allclose(spread.numpy(), 0.0, atol=1e-5)
    # The policy the agent samples and saves, one step at a time, starts there too.
    policy = agent.sampling_policy()
    step = tf.constant([3, 14, 0, 37], tf.int32)
    from tf_agents.trajectories import time_step as ts

    time_step = ts.TimeStep(tf.fill([4], ts.StepType.FIRST), tf.zeros([4]), tf.ones([4]), step)
    probs = policy.distribution(time_step, policy.get_initial_state(4)).action.probs_parameter()
    np.testing.assert_allclose(probs.numpy(),
                               tf.nn.softmax(pretrained(step[:, None])[:, 0]).numpy(), atol=1e-5)


def test_the_table_names_each_difference_in_one_place():
    q, psi, g, rl_only = (algorithms.get(n) for n in ("q", "psi", "g", "rl_only"))
    assert [a.prior_reward_weight for a in (q, psi, g, rl_only)] == [1, 1, 0, 0]
    assert [a.needs_prior for a in (q, psi, g, rl_only)] == [False, False, True, False]
    assert [a.greedy_backup for a in (q, psi, g, rl_only)] == [True, False, False, True]
    values = tf.constant([1.0, 2.0, 3.0])
    log_p = tf.math.log(tf.constant([0.2, 0.3, 0.5]))
    assert float(q.next_value(values, log_p)) == 3.0
    assert float(psi.next_value(values, log_p)) == pytest.approx(3.407606, abs=1e-6)
    assert float(g.next_value(values, log_p)) == pytest.approx(2.549690, abs=1e-6)
    assert algorithms.names()[:4] == ("q", "psi", "g", "rl_only")
    with pytest.raises(ValueError, match="already defined"):
        algorithms.register(q)


def test_a_registered_algorithm_has_its_own_targets(doubled_prior_q):
    # The two-step example of test_kl_control: actions 1 then 2, r_T = (1, 2), c = 0.5,
    # log p(a_0|s_0) = log 0.25, max_a Q^-(s_1, a) = 3. Step 0:
    #   q:   2 + 1 * log 0.25 + 0.5 * 3 = 2.113706
    #   q2x: 2 + 2 * log 0.25 + 0.5 * 3 = 0.727411
    # Step 1 (terminal), r = 4 + w log 0.5: q 3.306853, q2x 2.613706.
    args = (tf.constant([[1.0, 2.0]]), tf.constant([[1, 2]]),
            tf.math.log(tf.constant([[[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]])),
            tf.constant([[[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]]), 0.5, 0.5)
    toy, _ = kl_control.episode_td_targets(*args, doubled_prior_q)
    q, _ = kl_control.episode_td_targets(*args, algorithms.get("q"))
    np.testing.assert_allclose(toy.numpy()[0], [0.727411, 2.613706], atol=1e-6)
    np.testing.assert_allclose(q.numpy()[0], [2.113706, 3.306853], atol=1e-6)


def test_config_validation_reads_the_table(doubled_prior_q, capsys):
    config = config_lib.load_config(SMOKE, ["tune.algorithms=[q2x]",
                                            "evaluate.models=[mle, q2x]"])
    assert config.tune.algorithms == ["q2x"]
    with pytest.raises(config_lib.ConfigError, match=r"tune\.algorithms: .*unknown \['q3x'\]"):
        config_lib.load_config(SMOKE, ["tune.algorithms=[q3x]"])
    algorithms.register(dataclasses.replace(doubled_prior_q, name="q2x_logits",
                                            starts=("logits",)))
    try:
        with pytest.raises(config_lib.ConfigError,
                           match="q_init: log_prior is not a start of algorithm q2x_logits"):
            config_lib.load_config(SMOKE, ["tune.algorithms=[q2x_logits]",
                                           "tune.q_init=log_prior"])
        # `seqtutor tune --algorithm` validates its choice the same way, before any stage.
        assert cli.main(["tune", SMOKE, "--algorithm", "q2x_logits", "--workdir",
                         "/nonexistent", "--set", "tune.q_init=log_prior"]) == 2
        assert "is not a start of algorithm q2x_logits" in capsys.readouterr().err
    finally:
        algorithms.unregister("q2x_logits")
    with pytest.raises(ValueError, match="already defined"):
        algorithms.register(dataclasses.replace(doubled_prior_q, name="data"))


def test_a_changed_algorithm_entry_changes_the_tune_fingerprint(doubled_prior_q):
    config = config_lib.load_config(SMOKE, ["tune.algorithms=[q2x]"])
    tune_stage = runner.stage("tune")
    before = tune_stage.section(config, "q2x")
    assert before["algorithm"]["prior_reward_weight"] == 2.0
    assert before["algorithm"]["next_value"] == "seqtutor.rl.algorithms.max_value"
    algorithms.unregister("q2x")
    algorithms.register(dataclasses.replace(doubled_prior_q, prior_reward_weight=3.0))
    assert tune_stage.section(config, "q2x") != before


def test_a_registered_algorithm_is_tuned_evaluated_reported_and_generated(
        doubled_prior_q, tmp_path, melody_smoke_prior):
    workdir = workdir_with_prior(tmp_path / "work", melody_smoke_prior)
    config = config_lib.load_config(SMOKE, [
        ("prepare_data.beam_args", FAST_BEAM_ARGS), ("tune.algorithms", ["q2x"]),
        ("tune.num_steps", 4096), ("tune.eval_every", 4096), ("tune.eval_episodes", 50),
        ("evaluate.models", ["mle", "q2x"]), ("evaluate.num_samples", 200)])
    results = runner.run_pipeline(config, workdir)
    assert [r.name for r in results] == ["prepare_data", "pretrain", "tune/q2x", "evaluate"]
    tuned = layout.tuned_dir(workdir / "tune", "q2x")
    assert json.loads((tuned / layout.TUNE_SUMMARY_FILE).read_text())["train_steps"] > 0
    metrics = json.loads((workdir / "evaluate" / layout.METRICS_FILE).read_text())
    assert sorted(metrics["models"]) == ["data", "mle", "q2x"]
    report = (workdir / "evaluate" / layout.REPORT_FILE).read_text()
    assert "<th>q2x</th>" in report and "<h3>q2x</h3>" in report
    paths = generate.generate(config, workdir, "q2x", 3, tmp_path / "out")
    assert len(paths) == 3 and all(p.suffix == ".mid" for p in paths)
