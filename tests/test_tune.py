"""tune: a short run learns; the Reward RNN is frozen; replay and exploration; resume; bad input."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from seqtutor import layout
from seqtutor import domains
from seqtutor import sequence_model
from seqtutor.components import tune
from seqtutor.rl import algorithms
from seqtutor.rl.agent import SequenceTutorAgent
from seqtutor.rl.collect import epsilon_schedule
from seqtutor.rl.replay import EpisodeReplay
from seqtutor import artifacts, config as config_lib
from seqtutor.pipeline import runner
from tests.conftest import FAST_BEAM_ARGS, workdir_with_prior
from tests.conftest import melody_smoke_config as smoke_config, read_curve as curve

SMOKE = "configs/melody_smoke.yaml"


def make_agent(pretrained, algorithm="psi", **options):
    """An agent with the paper's melody settings (c 0.5, gamma 0.5, Adam at 1e-3) and
    ``options`` (tune config keys)."""
    settings = {"c": 0.5, "gamma": 0.5, "learning_rate": 1e-3, **options}
    return SequenceTutorAgent(pretrained, algorithms.get(algorithm),
                              config_lib.TuneConfig(**settings))


def precision_option(precision: str):
    """The tune.mixed_precision value of a Keras dtype policy name."""
    return False if precision == "float32" else precision


@pytest.fixture(scope="module")
def pretrained_workdir(tmp_path_factory, melody_smoke_prior):
    return workdir_with_prior(tmp_path_factory.mktemp("tune"), melody_smoke_prior)


@pytest.fixture(scope="module")
def smoke_tuned(pretrained_workdir):
    """Every algorithm tuned on the smoke config (131,072 environment steps each) with batches
    of 32 episodes: their curves, by algorithm. The config's 16 learn too, but on some smoke
    priors (CPU pretraining is not bit-deterministic) Psi ended below its own midpoint, within
    the evaluation's noise of the prior; at 32, Q and Psi ended +25 to +37 over the prior in 12
    of 12 runs (2 priors x 3 seeds, 2026-12-04)."""
    config = smoke_config(("tune.batch_episodes", 32))
    curves = {}
    for algorithm in ("q", "psi", "g", "rl_only"):
        result = runner.run_stage(config, "tune", pretrained_workdir, variant=algorithm)
        curves[algorithm] = curve(result.path)
        assert [row["step"] for row in curves[algorithm]] == [0, 65536, 131072]
        assert (result.path / "model.keras").is_file()
        assert (result.path / layout.POLICY_DIR / "saved_model.pb").is_file()
    return curves


def test_smoke_tuning_raises_task_reward_and_kl_control_stays_above_rl_only(smoke_tuned):
    """Q and Psi raise mean r_T over the pretrained policy; Q, Psi and G keep mean log p(a|s)
    under the Reward RNN above RL-only's, which drifts away from the data (the paper's
    Figure 2), and G, whose policy carries log p exactly, stays nearest the prior."""
    curves = smoke_tuned
    # Every algorithm's step 0 samples the prior p(a|s) (Q and Psi start at log p, G at 0):
    # their four evaluations together, 4,000 episodes, estimate its r_T to about +-1.5.
    prior_reward = np.mean([rows[0]["mean_task_reward"] for rows in curves.values()])
    prior_log_p = np.mean([rows[0]["mean_log_prior"] for rows in curves.values()])
    rl_only = curves["rl_only"][-1]
    for algorithm in ("q", "psi"):
        # +5: the runs measured ended +25 to +37 over the prior (one evaluation of 1,000
        # episodes: about +-3); an untuned policy does not rise at all.
        assert curves[algorithm][-1]["mean_task_reward"] > prior_reward + 5, algorithm
    for algorithm in ("q", "psi", "g"):
        assert curves[algorithm][-1]["mean_log_prior"] > rl_only["mean_log_prior"] + 1, algorithm
    # G's smoke gain in r_T (-1 to +8 over 14 runs at c = 10, either batch) is within one
    # evaluation's noise, so it is not asserted; its policy stays within 0.2 nats per token of
    # the prior's log p (it moved 0.1 at most).
    assert abs(curves["g"][-1]["mean_log_prior"] - prior_log_p) < 0.2


def test_saved_policy_loads_and_samples(pretrained_workdir, smoke_tuned):
    from tf_agents.trajectories import time_step as ts

    policy = tf.saved_model.load(str(pretrained_workdir / "tune" / "g" / layout.POLICY_DIR))
    state = policy.get_initial_state(3)
    step = ts.TimeStep(tf.fill([3], 1), tf.zeros([3]), tf.ones([3]),
                       tf.constant([14, 0, 37], tf.int32))
    action = policy.action(step, state).action.numpy()
    assert action.shape == (3,) and action.min() >= 0 and action.max() < 38


def test_reward_rnn_is_frozen_and_target_follows_by_polyak():
    pretrained = sequence_model.build_model(38, [16])
    config = smoke_config(("tune.num_steps", 4096))
    tuner = tune.Tuner(pretrained, domains.get_domain("melody", config.reward), config.tune,
                       "psi", seed=0)
    before = [w.copy() for w in pretrained.get_weights()]
    for _ in range(3):
        tuner.collect()
        tuner.train()
    assert int(tuner.agent.train_step_counter.numpy()) > 0
    for frozen, original in zip(tuner.agent.reward_rnn.get_weights(), before):
        np.testing.assert_array_equal(frozen, original)
    q_moved = [np.abs(q - o).max()
               for q, o in zip(tuner.agent.policy_network.get_weights(), before)]
    target_moved = [np.abs(t - o).max()
                    for t, o in zip(tuner.agent.target_network.get_weights(), before)]
    assert max(q_moved) > 0 and 0 < max(target_moved) < max(q_moved)
    assert not tuner.agent.reward_rnn.trainable_variables


def test_stored_actions_are_the_ones_taken_and_rewarded():
    pretrained = sequence_model.build_model(38, [16])
    config = smoke_config(("tune.epsilon_start", 1.0), ("tune.exploration_steps", 10 ** 6))
    domain = domains.get_domain("melody", config.reward)
    tuner = tune.Tuner(pretrained, domain, config.tune, "q", seed=0)
    tuner.collect()  # epsilon = 1: every action is random, not the greedy one
    size = int(tuner.replay.size.numpy())
    actions = tuner.replay.actions.numpy()[:size]
    observations = tuner.replay.observations.numpy()[:size]
    np.testing.assert_array_equal(observations[:, 1:], actions[:, :-1])
    greedy = np.argmax(tuner.agent.policy_network(observations).numpy(), axis=-1)
    assert np.mean(greedy == actions) < 0.2
    np.testing.assert_allclose(tuner.replay.rewards.numpy()[:size], domain.task_reward(actions))
    # Random exploration reaches every token, 37 included (the reference never drew 37).
    assert set(np.unique(actions)) == set(range(38))


def test_prioritized_replay_samples_by_priority_with_importance_weights():
    replay = EpisodeReplay(4, 3, prioritized=True, alpha=1.0)
    replay.add(tf.zeros([4, 3], tf.int32), tf.zeros([4, 3], tf.int32), tf.zeros([4, 3]))
    replay.priorities.assign([1.0, 0.0, 0.0, 3.0])
    indices, weights = replay.sample(4000, beta=1.0)
    counts = np.bincount(indices.numpy(), minlength=4)
    assert counts[1] == counts[2] == 0
    assert counts[3] / counts[0] == pytest.approx(3.0, rel=0.15)
    # w_i = (N P(i))^-beta normalised by the largest: 1 for P = 1/4, 1/3 for P = 3/4.
    by_index = dict(zip(indices.numpy().tolist(), weights.numpy().tolist()))
    assert by_index[0] == pytest.approx(1.0) and by_index[3] == pytest.approx(1 / 3)
    replay.update_priorities(tf.constant([1], tf.int64), tf.constant([5.0]))
    assert float(replay.max_priority.numpy()) == pytest.approx(5.0, rel=1e-5)


def test_uniform_replay_and_epsilon_anneal():
    replay = EpisodeReplay(8, 2)
    replay.add(tf.ones([3, 2], tf.int32), tf.ones([3, 2], tf.int32), tf.ones([3, 2]))
    indices, weights = replay.sample(100, beta=0.4)
    assert set(indices.numpy()) <= {0, 1, 2} and np.all(weights.numpy() == 1)
    experience = replay.experience(indices[:2])
    np.testing.assert_array_equal(experience.discount.numpy(), [[1, 0], [1, 0]])
    assert epsilon_schedule(0, 1.0, 0.01, 100) == 1.0
    assert epsilon_schedule(50, 1.0, 0.01, 100) == pytest.approx(0.505)
    assert epsilon_schedule(500, 1.0, 0.01, 100) == pytest.approx(0.01)


def test_killed_tuning_resumes_from_its_last_checkpoint(pretrained_workdir, monkeypatch):
    config = smoke_config(("tune.num_steps", 8192), ("tune.eval_every", 4096),
                          ("tune.checkpoint_every", 4096), ("tune.exploration_steps", 4096))
    original_collect = tune.Tuner.collect
    starts = []

    def killed_after_checkpoint(self):
        if int(self.env_steps.numpy()) >= 6144:
            raise KeyboardInterrupt("simulated kill")
        original_collect(self)

    monkeypatch.setattr(tune.Tuner, "collect", killed_after_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        runner.run_stage(config, "tune", pretrained_workdir, variant="psi")
    partial = pretrained_workdir / "tune" / ".psi.partial"
    assert (partial / layout.CHECKPOINT_DIR / "checkpoint").is_file()
    # `seqtutor status` reads where it stopped from the checkpoint the rerun resumes.
    assert runner.artifact_status(config, "tune", pretrained_workdir, "psi") == \
        runner.ArtifactStatus("tune/psi", "stopped", "checkpoint at step 4,096 of 8,192")
    # A partial run of other settings is not resumed (artifact_writer discards it).
    other = smoke_config(*[(key, value) for key, value in (
        ("tune.num_steps", 8192), ("tune.eval_every", 4096), ("tune.checkpoint_every", 4096),
        ("tune.exploration_steps", 4096), ("tune.c", 2.0))])
    assert runner.artifact_status(other, "tune", pretrained_workdir, "psi").state in (
        "to do", "out of date")

    def recording_collect(self):
        starts.append(int(self.env_steps.numpy()))
        original_collect(self)

    monkeypatch.setattr(tune.Tuner, "collect", recording_collect)
    result = runner.run_stage(config, "tune", pretrained_workdir, variant="psi")
    assert starts[0] == 4096  # continued from the checkpoint, not from 0
    assert [row["step"] for row in curve(result.path)] == [0, 4096, 8192]
    summary = json.loads((result.path / "tune.json").read_text())
    assert summary["env_steps"] == 8192
    # Trained transitions still match replay_ratio x env steps across the kill.
    options = config.tune
    assert summary["train_steps"] == int(
        8192 * options.replay_ratio // (options.batch_episodes * 32))


def test_finished_tuning_is_continued_when_only_num_steps_grows(pretrained_workdir, tmp_path,
                                                                monkeypatch):
    def config(num_steps):
        return smoke_config(("tune.num_steps", num_steps), ("tune.eval_every", 4096))

    # Its own workdir: the other tests' tune artifacts must not be continued.
    workdir = workdir_with_prior(tmp_path, pretrained_workdir)
    first = runner.run_stage(config(4096), "tune", workdir, variant="q")
    first_curve = curve(first.path)
    original_collect = tune.Tuner.collect
    starts = []

    def recording_collect(self):
        starts.append(int(self.env_steps.numpy()))
        original_collect(self)

    monkeypatch.setattr(tune.Tuner, "collect", recording_collect)
    result = runner.run_stage(config(8192), "tune", workdir, variant="q")
    assert starts[0] == 4096  # from the finished run's checkpoint, replay included
    assert curve(result.path)[:2] == first_curve
    assert [row["step"] for row in curve(result.path)] == [0, 4096, 8192]
    summary = json.loads((result.path / "tune.json").read_text())
    options = config(8192).tune
    assert summary["train_steps"] == int(
        8192 * options.replay_ratio // (options.batch_episodes * 32))
    # The artifact is the one a fresh 8,192-step run writes: same fingerprint, up to date.
    assert runner.run_stage(config(8192), "tune", workdir, variant="q").skipped


def test_curves_resumed_with_a_new_field_keep_their_earlier_points(tmp_path):
    path = tmp_path / "curves.csv"
    path.write_text("step,mean_task_reward,mean_log_prior\n0,1.5,-0.5\n100,2.0,-0.6\n"
                    "200,2.5,-0.7\n")
    # Resumed at step 100 by a domain with a curve field the file does not have yet.
    curves = tune.CurveWriter(path, 100, tmp_path / "logs", ("valid",))
    curves.add(200, {"mean_task_reward": 3.0, "mean_log_prior": -0.65, "valid": 0.9})
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["0", "100", "200"]
    assert rows[1] == {"step": "100", "mean_task_reward": "2.0", "mean_log_prior": "-0.6",
                       "valid": ""}
    assert float(rows[2]["valid"]) == 0.9 and float(rows[2]["mean_task_reward"]) == 3.0


def test_curves_of_a_run_restarted_from_step_0_have_one_step_0_point(tmp_path):
    # A run killed before its first checkpoint left its step-0 point; the restart writes it again.
    path = tmp_path / "curves.csv"
    path.write_text("step,mean_task_reward,mean_log_prior\n0,1.5,-0.5\n")
    curves = tune.CurveWriter(path, 0, tmp_path / "logs")
    curves.add(0, {"mean_task_reward": 1.5, "mean_log_prior": -0.5})
    with path.open() as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["0"]


def test_non_finite_loss_stops_with_a_clear_message(pretrained_workdir, monkeypatch):
    from seqtutor.domains.melody.domain import MelodyDomain

    monkeypatch.setattr(MelodyDomain, "task_reward",
                        lambda self, tokens: np.full(tokens.shape, np.nan, np.float32))
    config = smoke_config(("tune.num_steps", 4096))
    with pytest.raises(runner.StageError, match="stage tune/g failed.*not finite"):
        runner.run_stage(config, "tune", pretrained_workdir, variant="g")
    # The failure leaves the earlier stages' artifacts as they were.
    assert artifacts.read_artifact(pretrained_workdir / "pretrain")["stage"] == "pretrain"


def test_missing_pretrain_artifact_names_the_stage(tmp_path):
    with pytest.raises(artifacts.MissingArtifactError, match="seqtutor pretrain"):
        runner.run_stage(smoke_config(), "tune", tmp_path, variant="q")


@pytest.mark.parametrize("override,key", [
    ("tune.algorithms=[q, dqn]", "tune.algorithms"),
    ("tune.c=0", "tune.c"),
    ("tune.gamma=1.5", "tune.gamma"),
    ("tune.off_policy_correction=tree_backup", "tune.off_policy_correction"),
])
def test_bad_tuning_settings_are_config_errors(override, key):
    with pytest.raises(config_lib.ConfigError, match=key.replace(".", r"\.")):
        config_lib.load_config(SMOKE, [override])


def test_boltzmann_exploration_samples_the_policy_and_trains():
    pretrained = sequence_model.build_model(38, [16])
    config = smoke_config(("tune.exploration", "boltzmann"))
    tuner = tune.Tuner(pretrained, domains.get_domain("melody", config.reward), config.tune,
                       "g", seed=0)
    assert tuner.agent.collect_policy is tuner.agent.policy  # sampling, no epsilon wrapper
    tuner.collect()
    loss, _ = tuner.train()
    assert np.isfinite(loss) and int(tuner.replay.size.numpy()) == 64


def test_retrace_traces_follow_the_policy_against_the_collect_policy():
    pretrained = sequence_model.build_model(38, [16])
    config = smoke_config(("tune.n_step", None), ("tune.off_policy_correction", "retrace"),
                          ("tune.epsilon_start", 1.0), ("tune.exploration_steps", 10 ** 6))
    tuner = tune.Tuner(pretrained, domains.get_domain("melody", config.reward), config.tune,
                       "psi", seed=0)
    tuner.collect()  # epsilon 1: every token uniform, mu = 1/38
    size = int(tuner.replay.size.numpy())
    observations = tuner.replay.observations[:size]
    actions = tuner.replay.actions[:size]
    values = tuner.agent.q_values(tuner.agent.target_network, observations)
    log_prior = tf.nn.log_softmax(tuner.agent.reward_rnn(observations))
    traces = tuner.agent._traces(values, log_prior, actions).numpy()
    pi = tf.gather(tf.nn.softmax(values), actions, batch_dims=2).numpy()
    np.testing.assert_allclose(traces, np.minimum(1.0, 38 * pi), rtol=1e-5)
    assert 0.0 < traces.mean() < 1.0
    loss, _ = tuner.train()
    assert np.isfinite(loss)
    one_step = tune.Tuner(pretrained, domains.get_domain("melody", config.reward),
                          config.tune.model_copy(update={"n_step": 1}), "psi", seed=0)
    assert one_step.agent._traces(values, log_prior, actions) is None


def test_priming_tokens_cover_all_38_classes():
    """The reference never drew token 37 as the priming token; we draw all 38 uniformly."""
    domain = domains.get_domain("melody", smoke_config().reward)
    first = domain.priming_tokens(np.random.default_rng(0), 20000)
    counts = np.bincount(first, minlength=38)
    assert len(counts) == 38 and counts.min() > 400 and counts[37] > 400


def test_prior_kl_weight_adds_the_policys_kl_from_the_prior_to_the_loss():
    pretrained = sequence_model.build_model(38, [16])
    config = smoke_config()
    domain = domains.get_domain("melody", config.reward)
    tuner = tune.Tuner(pretrained, domain, config.tune, "psi", seed=0)
    tuner.collect()
    experience = tuner.replay.experience(tf.range(8, dtype=tf.int64))

    def loss(weight):
        agent = make_agent(pretrained, clip_norm=None, prior_kl_weight=weight)
        agent.policy_network.set_weights(tuner.agent.policy_network.get_weights())
        return agent, float(agent._loss(experience).loss)

    base, plain = loss(0.0)
    assert loss(2.0)[1] == pytest.approx(plain)  # the policy is the prior: KL 0
    perturbed = [w + np.random.default_rng(0).normal(0, 0.3, w.shape).astype(np.float32)
                 for w in pretrained.get_weights()]
    tuner.agent.policy_network.set_weights(perturbed)
    base, plain = loss(0.0)
    _, anchored = loss(2.0)
    log_pi = tf.nn.log_softmax(base.policy_network(experience.observation))
    log_p = tf.nn.log_softmax(pretrained(experience.observation))
    kl = tf.reduce_mean(tf.reduce_sum(tf.exp(log_pi) * (log_pi - log_p), axis=-1)).numpy()
    assert kl > 0.01
    assert anchored - plain == pytest.approx(2.0 * kl, rel=1e-4)


@pytest.mark.parametrize("option", ["detach_value_head=true", "value_head_units=[8]"])
def test_value_head_options_need_the_log_prior_start(option):
    with pytest.raises(config_lib.ConfigError, match="needs q_init: log_prior"):
        config_lib.load_config(SMOKE, [f"tune.{option}"])  # the smoke config's q_init: logits


@pytest.mark.parametrize("units", [(), (8, 4)])
def test_the_value_head_starts_at_zero_and_the_target_as_a_copy(units):
    pretrained = sequence_model.build_model(38, [16])
    agent = make_agent(pretrained, clip_norm=None, q_init="log_prior", value_head_units=units)
    observations = tf.constant(np.random.default_rng(0).integers(0, 38, (4, 6)), tf.int32)
    assert len([l for l in agent.q_network.layers if l.name.startswith("state_value")]) == \
        len(units) + 1
    _, value = agent.q_network(observations)
    np.testing.assert_array_equal(value.numpy(), 0.0)
    for q_weight, target_weight in zip(agent.q_network.weights, agent.target_network.weights):
        np.testing.assert_array_equal(q_weight.numpy(), target_weight.numpy())
    np.testing.assert_allclose(  # Q starts as log p(a|s)
        agent.q_values(agent.q_network, observations).numpy(),
        tf.nn.log_softmax(pretrained(observations)).numpy(), atol=1e-5)


@pytest.mark.parametrize("detach,units", [(False, ()), (True, ()), (True, (8,))])
def test_a_detached_value_head_trains_v_without_moving_the_policy(detach, units):
    pretrained = sequence_model.build_model(38, [16])
    agent = make_agent(pretrained, clip_norm=None, q_init="log_prior",
                       detach_value_head=detach, value_head_units=units)
    observations = tf.constant(np.random.default_rng(0).integers(0, 38, (4, 6)), tf.int32)
    head_kernel = agent.q_network.get_layer("state_value").kernel
    head_kernel.assign(tf.fill(head_kernel.shape, 0.1))  # zero at the start: no gradient below
    with tf.GradientTape() as tape:
        _, value = agent.q_network(observations)
        loss = tf.reduce_sum(tf.square(value - 1.0))  # a value error only
    gradients = dict(zip([v.name for v in agent.q_network.trainable_variables],
                         tape.gradient(loss, agent.q_network.trainable_variables)))
    head = {name: g for name, g in gradients.items() if "state_value" in name}
    trunk = [g for name, g in gradients.items() if "state_value" not in name]
    assert head and all(float(tf.reduce_max(tf.abs(g))) > 0 for g in head.values())
    trunk_moved = any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in trunk)
    assert trunk_moved != detach


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_tuning_starts_at_the_float32_values_and_saves_float32(
        tmp_path, melody_smoke_prior, policy):
    pretrained = sequence_model.build_model(38, [32, 32])
    observations = tf.constant(np.random.default_rng(0).integers(0, 38, (8, 12)), tf.int32)

    def agent(precision):
        return make_agent(pretrained, clip_norm=5.0, q_init="log_prior",
                          mixed_precision=precision_option(precision))

    full, mixed = agent("float32"), agent(policy)
    assert mixed.policy_network.get_layer("lstm_1").compute_dtype == policy.split("_")[1]
    assert all(v.dtype == tf.float32 for v in mixed.q_network.variables)
    q_full = full.q_values(full.q_network, observations).numpy()
    q_mixed = mixed.q_values(mixed.q_network, observations)
    assert q_mixed.dtype == tf.float32
    np.testing.assert_allclose(q_mixed.numpy(), q_full, atol=0.05)
    # Step-wise (collection, sampling) as well: float32 state between 16-bit steps.
    step = sequence_model.StepModel(mixed.policy_network)
    logits, state = step.step(observations[:, 0], step.zero_state(8))
    assert all(s.dtype == tf.float32 for s in state)
    np.testing.assert_allclose(logits.numpy(), pretrained(observations[:, :1]).numpy()[:, 0],
                               atol=0.05)

    config = smoke_config(("tune.mixed_precision", policy), ("tune.num_steps", 8192),
                          ("tune.eval_every", 8192))
    result = runner.run_stage(config, "tune", workdir_with_prior(tmp_path, melody_smoke_prior),
                              variant="psi")
    rows = curve(result.path)
    assert rows[-1]["step"] == 8192 and np.isfinite(rows[-1]["mean_task_reward"])
    assert json.loads((result.path / "tune.json").read_text())["train_steps"] > 0
    saved = sequence_model.load_model(result.path)
    assert {layer.compute_dtype for layer in saved.layers if layer.weights} == {"float32"}
    loaded = tf.saved_model.load(str(result.path / layout.POLICY_DIR))
    assert loaded.get_initial_state(2)[0].dtype == tf.float32


def test_learning_rate_decays_with_the_gradient_steps():
    pretrained = sequence_model.build_model(38, [16])
    config = smoke_config(("tune.learning_rate", 0.01), ("tune.lr_decay_rate", 0.5),
                          ("tune.lr_decay_steps", 1), ("tune.min_learning_rate", 0.004))
    tuner = tune.Tuner(pretrained, domains.get_domain("melody", config.reward), config.tune,
                       "psi", seed=0)

    tuner.collect()
    tuner.train()
    steps = int(tuner.agent.train_step_counter.numpy())
    assert steps >= 3
    # The rate Adam applied at its last gradient step (the schedule at step steps - 1).
    applied = float(tuner.agent.optimizer.learning_rate)
    assert applied == pytest.approx(max(0.01 * 0.5 ** (steps - 1), 0.004))
    assert applied < 0.01
    constant = smoke_config(("tune.learning_rate", 0.01))
    assert float(sequence_model.learning_rate_schedule(constant.tune)(10**6)) == pytest.approx(0.01)


def test_value_learning_rate_gives_the_value_head_an_adam_of_its_own(tmp_path):
    pretrained = sequence_model.build_model(38, [16])
    rng = np.random.default_rng(0)
    replay = EpisodeReplay(8, 6)
    tokens = tf.constant(rng.integers(0, 38, (8, 6)), tf.int32)
    replay.add(tokens, tokens, tf.constant(rng.normal(size=(8, 6)), tf.float32))
    experience = replay.experience(tf.range(8, dtype=tf.int64))

    def first_step(value_learning_rate):
        """(whether in the value head, largest change) of each trainable variable."""
        tf.keras.utils.set_random_seed(0)  # the same value-head initialisation for both
        agent = make_agent(pretrained, clip_norm=None, q_init="log_prior",
                           detach_value_head=True, value_head_units=(8,),
                           value_learning_rate=value_learning_rate)
        head = {variable.ref() for variable in agent.value_head_variables()}
        assert len(head) == 4  # the hidden layer's and v's kernels and biases
        kernel = agent.q_network.get_layer("state_value").kernel
        kernel.assign(tf.fill(kernel.shape, 0.1))  # zero at the start: no gradient below
        variables = agent.q_network.trainable_variables
        before = [variable.numpy() for variable in variables]
        agent.train(experience)
        return [(variable.ref() in head, np.abs(variable.numpy() - old).max())
                for variable, old in zip(variables, before)]

    shared, own = first_step(None), first_step(1e-2)
    for (in_head, shared_change), (_, own_change) in zip(shared, own):
        assert shared_change > 0
        # Adam's first step moves each weight by about its rate: 10x in the head, the same
        # elsewhere.
        expected = 10 * shared_change if in_head else shared_change
        assert own_change == pytest.approx(expected, rel=0.02)

    # In float16 a step whose loss scale overflowed moves neither the policy nor the head.
    agent = make_agent(pretrained, clip_norm=5.0, q_init="log_prior", value_head_units=(8,),
                       value_learning_rate=1e-2, mixed_precision="mixed_float16")
    agent.optimizer._loss_scale._current_loss_scale.assign(1e38)  # overflows
    before = [variable.numpy() for variable in agent.q_network.trainable_variables]
    agent.train(experience)
    for variable, old in zip(agent.q_network.trainable_variables, before):
        np.testing.assert_array_equal(variable.numpy(), old)
    assert int(agent.value_optimizer.iterations.numpy()) == 1  # counted, as the policy's

    # The value head's optimizer is checkpointed with the rest (and restores).
    config = config_lib.load_config(SMOKE, [
        ("prepare_data.beam_args", FAST_BEAM_ARGS), ("tune.algorithms", ["psi"]),
        ("tune.q_init", "log_prior"), ("tune.value_learning_rate", 0.01)])
    domain = domains.get_domain("melody", config.reward)
    tuner = tune.Tuner(pretrained, domain, config.tune, "psi", seed=0)
    tuner.collect()
    tuner.train()
    steps = int(tuner.agent.value_optimizer.iterations.numpy())
    assert steps == int(tuner.agent.train_step_counter.numpy()) > 0
    saved = tuner.checkpoint.save(str(tmp_path / "ckpt"))
    restored = tune.Tuner(pretrained, domain, config.tune, "psi", seed=0)
    restored.checkpoint.restore(saved).assert_existing_objects_matched()
    assert int(restored.agent.value_optimizer.iterations.numpy()) == steps
    with pytest.raises(config_lib.ConfigError, match="needs q_init: log_prior"):
        config_lib.load_config(SMOKE, ["tune.value_learning_rate=0.01"])


def test_a_checkpoint_written_before_the_rename_restores():
    """tests/data/checkpoint_before_rename was written by the tuner of commit b5462e9, whose
    agent named the Q model ``q_model`` and its target ``target_model`` (psi, q_init
    log_prior with a value head). The checkpoint's keys (q_network, target_network) name the
    same models now, so a tuning run written then resumes."""
    source = Path(__file__).parent / "data" / "checkpoint_before_rename"
    config = smoke_config("tune.algorithms=[psi]", "tune.q_init=log_prior",
                          "tune.value_head_units=[4]", "tune.replay_capacity=512",
                          "tune.collect_episodes=8", "tune.batch_episodes=4")
    tf.keras.utils.set_random_seed(1)  # other weights than the saved ones
    tuner = tune.Tuner(sequence_model.build_model(38, [8]),
                       domains.get_domain("melody", config.reward), config.tune, "psi", seed=0)
    status = tuner.checkpoint.restore(tf.train.latest_checkpoint(str(source)))
    status.assert_existing_objects_matched()  # as tune.run restores (Adam's slots come later)
    expected = np.load(source / "expected.npz")
    for network, key in ((tuner.agent.q_network, "q"), (tuner.agent.target_network, "target")):
        weights = np.concatenate([w.ravel() for w in network.get_weights()])
        np.testing.assert_array_equal(weights, expected[key])
    assert int(tuner.env_steps.numpy()) == int(expected["env_steps"]) == 256
    assert int(tuner.agent.train_step_counter.numpy()) == int(expected["train_steps"])
    assert int(tuner.agent.optimizer.iterations.numpy()) == int(expected["train_steps"])
    tuner.collect()  # and it goes on, every saved value (Adam's slots too) now restored
    assert tuner.train() is not None
    status.assert_consumed()
