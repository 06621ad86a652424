"""The sequence-level agents, DAP and RLOO-KL: their losses by hand, DAP's experience memory,
RLOO's prompts, and their runs through the tune stage (learning, resume, export)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from seqtutor import config as config_lib, domains, layout, sequence_model
from seqtutor.components import tune
from seqtutor.pipeline import runner
from seqtutor.rl import algorithms
from seqtutor.rl.agent import SequenceTutorAgent
from seqtutor.rl.replay import episodes_trajectory
from seqtutor.rl.sequence_agents import DapAgent, ExperienceMemory, RlooKlAgent
from tests.conftest import workdir_with_prior
from tests.conftest import melody_smoke_config as smoke_config, read_curve as curve


# A batch of four episodes of two steps over two tokens, in two prompts of two (RLOO's k = 2).
ACTIONS = [[0, 0], [0, 1], [1, 1], [1, 0]]
REWARDS = [[0.0, 1.0], [0.0, 0.0], [1.5, 0.5], [0.0, 0.0]]  # r_T(x) = 1, 0, 2, 0
POLICY, PRIOR = (0.6, 0.4), (0.75, 0.25)  # the constant networks' p(token)


def constant_network(probabilities) -> tf.keras.Model:
    """A sequence model whose next-token distribution is ``probabilities`` in every state: the
    LSTM's weights are 0 (so its output is 0) and the logits are the output layer's bias."""
    model = sequence_model.build_model(len(probabilities), [3])
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    set_probabilities(model, probabilities)
    return model


def set_probabilities(model, probabilities) -> None:
    model.get_layer("logits").bias.assign(np.log(probabilities).astype(np.float32))


def agent_on_constants(name: str, **options):
    """The agent of ``name`` with c 0.5: prior PRIOR, policy (and target) POLICY."""
    settings = {"c": 0.5, "gamma": 1.0, "rloo_k": 2, "collect_episodes": 4, **options}
    algorithm = algorithms.get(name)
    length = {"episode_length": 2} if algorithm.on_policy else {}
    agent = algorithm.agent_class()(constant_network(PRIOR), algorithm,
                                    config_lib.TuneConfig(**settings), **length)
    networks = [agent.policy_network]
    if isinstance(agent, SequenceTutorAgent):
        networks += [agent.target_network]
    for network in networks:
        set_probabilities(network, POLICY)
    return agent


def batch():
    actions = tf.constant(ACTIONS, tf.int32)
    observations = tf.concat([tf.zeros([4, 1], tf.int32), actions[:, :-1]], axis=1)
    return episodes_trajectory(observations, actions, tf.constant(REWARDS))


def test_dap_loss_by_hand():
    # log pi(x) = -1.021651, -1.427116, -1.832581, -1.427116 (log 0.6 = -0.510826 per 0,
    # log 0.4 = -0.916291 per 1); log p(x) = -0.575364, -1.673976, -2.772589, -1.673976.
    # (log p + r_T / c - log pi)^2 with c = 0.5:
    #   x1: (-0.575364 + 2 + 1.021651)^2 = 2.446287^2 = 5.984321
    #   x2: (-1.673976 + 0 + 1.427116)^2 = (-0.246860)^2 = 0.060940
    #   x3: (-2.772589 + 4 + 1.832581)^2 = 3.059992^2 = 9.363556
    #   x4: as x2 = 0.060940;  mean 3.867439
    loss = agent_on_constants("dap")._loss(batch()).loss
    assert float(loss) == pytest.approx(3.867439, abs=1e-5)


def test_rloo_kl_loss_by_hand():
    # R = r_T - c (log pi - log p), not differentiated:
    #   R1 = 1 - 0.5 (-1.021651 + 0.575364) = 1.223144,  R2 = 0 - 0.5 (0.246860) = -0.123430
    #   R3 = 2 - 0.5 (-1.832581 + 2.772589) = 1.529996,  R4 = -0.123430
    # Leave-one-out baselines within each prompt's pair: b1 = R2, b2 = R1, b3 = R4, b4 = R3,
    # so A = 1.346574, -1.346574, 1.653426, -1.653426; loss -A log pi:
    #   1.375729, -1.921717, 3.030039, -2.359632;  mean 0.031105
    loss = agent_on_constants("rloo_kl")._loss(batch()).loss
    assert float(loss) == pytest.approx(0.031105, abs=1e-5)


def test_rloo_kl_does_not_differentiate_its_kl_penalty():
    # With constant logits b, d log pi(x) / db = n(x) - T pi (n: the token counts, T = 2), so
    # the loss's gradient is -mean_i A_i (n_i - T pi) with A held fixed. sum_i A_i = 0 and
    # sum_i A_i n_i = (2 A1 + A2 + A4, A2 + 2 A3 + A4) = (-0.306852, 0.306852), so the gradient
    # is (0.076713, -0.076713). Differentiating the KL inside R would add to it.
    agent = agent_on_constants("rloo_kl")
    bias = agent.policy_network.get_layer("logits").bias
    with tf.GradientTape() as tape:
        loss = agent._loss(batch()).loss
    np.testing.assert_allclose(tape.gradient(loss, bias).numpy(), [0.076713, -0.076713],
                               atol=1e-5)


def test_every_algorithm_has_its_own_loss_on_one_batch():
    losses = {name: float(agent_on_constants(name)._loss(batch()).loss)
              for name in algorithms.names()}
    assert set(losses) >= {"q", "psi", "g", "rl_only", "dap", "rloo_kl"}
    values = sorted(losses.values())
    assert all(b - a > 1e-4 for a, b in zip(values, values[1:])), losses


def test_sequence_agents_start_at_the_prior_and_refuse_off_policy_entries():
    pretrained = constant_network(PRIOR)
    options = config_lib.TuneConfig(c=0.5)
    agent = DapAgent(pretrained, algorithms.get("dap"), options)
    log_policy, log_prior, _ = agent.sequence_terms(batch().observation, batch().action,
                                                    batch().reward)
    np.testing.assert_allclose(log_policy.numpy(), log_prior.numpy(), atol=1e-6)
    assert not agent.reward_rnn.trainable_variables
    with pytest.raises(ValueError, match="not an on-policy"):
        RlooKlAgent(pretrained, algorithms.get("psi"), options)
    with pytest.raises(ValueError, match="on-policy"):
        SequenceTutorAgent(pretrained, algorithms.get("dap"), options)


def test_experience_memory_keeps_the_best_distinct_sequences():
    memory = ExperienceMemory(size=3, samples=2, length=3)

    def add(actions, scores):
        actions = tf.constant(actions, tf.int32)
        observations = tf.concat([tf.zeros([len(scores), 1], tf.int32), actions[:, :-1]], 1)
        mask = tf.constant([[1.0, 1.0, 0.0]] * len(scores))  # the third step is past the end
        memory.add(observations, actions, mask, tf.constant(scores),
                   tf.constant([-float(s) for s in scores]))

    add([[1, 2, 3], [1, 2, 4], [2, 2, 0], [3, 3, 3]], [5.0, 5.0, 1.0, 7.0])
    # [1, 2, 3] and [1, 2, 4] are one sequence (the step after the end does not count).
    assert int(memory.size.numpy()) == 3
    assert memory.scores.numpy().tolist() == [7.0, 5.0, 1.0]
    assert memory.actions.numpy()[1].tolist() == [1, 2, 3]  # the first copy is kept
    add([[3, 3, 0], [0, 1, 0]], [7.0, 6.0])  # [3, 3] is already there
    assert memory.scores.numpy().tolist() == [7.0, 6.0, 5.0]
    assert memory.log_priors.numpy().tolist() == [-7.0, -6.0, -5.0]
    observations, actions, scores, log_priors = memory.sample()
    assert actions.shape == (2, 3) and set(scores.numpy()) <= {7.0, 6.0, 5.0}
    np.testing.assert_array_equal(log_priors.numpy(), -scores.numpy())


def test_dap_memory_joins_the_loss_with_its_stored_scores():
    agent = agent_on_constants("dap", dap_memory_size=2, dap_memory_samples=2)
    # The first step samples an empty memory: the batch's loss alone, as in
    # test_dap_loss_by_hand; the batch joins the memory after the step.
    assert float(agent._loss(batch()).loss) == pytest.approx(3.867439, abs=1e-5)
    agent.after_step(batch())  # the two best: x3 (r_T 2), x1 (r_T 1)
    assert sorted(agent.memory.scores.numpy().tolist()) == [1.0, 2.0]
    # The batch's four losses and the memory's two (x3: 9.363556, x1: 5.984321), averaged:
    # (4 x 3.867439 + 9.363556 + 5.984321) / 6 = 5.136272
    assert float(agent._loss(batch()).loss) == pytest.approx(5.136272, abs=1e-5)


def test_memory_and_rloo_settings_are_checked():
    with pytest.raises(config_lib.ConfigError, match="must not exceed dap_memory_size"):
        smoke_config(("tune.dap_memory_size", 5), ("tune.dap_memory_samples", 6))
    # A registered copy of RLOO-KL under another name: its agent checks the batch itself.
    options = config_lib.TuneConfig(c=0.5, rloo_k=3, collect_episodes=64, algorithms=["q"])
    with pytest.raises(ValueError, match="multiple of tune.rloo_k"):
        RlooKlAgent(constant_network(PRIOR), algorithms.get("rloo_kl"), options)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, melody_smoke_prior):
    return workdir_with_prior(tmp_path_factory.mktemp("sequence_agents"), melody_smoke_prior)


@pytest.mark.parametrize("name,overrides", [
    ("dap", ()), ("dap", (("tune.dap_memory_size", 50),)), ("rloo_kl", ())])
def test_smoke_tuning_raises_the_task_reward_and_stays_near_the_prior(workdir, name,
                                                                      overrides):
    """On the melody smoke config (131,072 environment steps, 64 gradient steps), each
    sequence-level algorithm raises mean r_T far over the prior's and keeps mean log p(a|s)
    within 0.5 nats of the prior's own (RL-only, in test_tune, ends several nats lower)."""
    config = smoke_config(("tune.algorithms", [name]), *overrides)
    result = runner.run_stage(config, "tune", workdir, variant=name, force=True)
    rows = curve(result.path)
    assert [row["step"] for row in rows] == [0, 65536, 131072]
    # Runs end +25 to +32 over the prior (1,000 episodes per point; CPU kernels are not
    # bit-deterministic); +10 is far above that noise and far below the learning.
    assert rows[-1]["mean_task_reward"] > rows[0]["mean_task_reward"] + 10
    assert rows[-1]["mean_log_prior"] > rows[0]["mean_log_prior"] - 0.5
    summary = json.loads((result.path / layout.TUNE_SUMMARY_FILE).read_text())
    assert summary["train_steps"] == 131072 // (64 * 32)  # one step per batch of 64 episodes
    assert summary["seconds"] > 0 and summary["timed_from_step"] == 0
    assert (result.path / layout.POLICY_DIR / "saved_model.pb").is_file()


def test_rloo_plays_each_prompt_k_times_in_a_row():
    config = smoke_config(("tune.algorithms", ["rloo_kl"]), ("tune.rloo_k", 4))
    tuner = tune.Tuner(sequence_model.build_model(38, [8]),
                       domains.get_domain("melody", config.reward), config.tune, "rloo_kl", 0)
    first = tuner.first_tokens().numpy()
    assert first.shape == (64,)
    np.testing.assert_array_equal(first.reshape(16, 4), np.repeat(first[::4, None], 4, 1))
    assert len(set(first[::4].tolist())) > 1


def test_rloo_k_must_divide_the_batch():
    with pytest.raises(config_lib.ConfigError, match="multiple of rloo_k"):
        smoke_config(("tune.algorithms", ["rloo_kl"]), ("tune.rloo_k", 5))


def test_killed_dap_run_resumes_with_its_memory(workdir, monkeypatch):
    config = smoke_config(("tune.algorithms", ["dap"]), ("tune.dap_memory_size", 20),
                          ("tune.num_steps", 8192), ("tune.eval_every", 4096),
                          ("tune.checkpoint_every", 4096), ("tune.eval_episodes", 50))
    original_step = tune.Tuner.step
    memories = []

    def killed_after_checkpoint(self):
        if int(self.env_steps.numpy()) >= 6144:
            raise KeyboardInterrupt("simulated kill")
        return original_step(self)

    monkeypatch.setattr(tune.Tuner, "step", killed_after_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        runner.run_stage(config, "tune", workdir, variant="dap", force=True)

    def recording_step(self):
        memories.append((int(self.env_steps.numpy()), int(self.agent.memory.size.numpy())))
        return original_step(self)

    monkeypatch.setattr(tune.Tuner, "step", recording_step)
    result = runner.run_stage(config, "tune", workdir, variant="dap")
    assert memories[0] == (4096, 20)  # the checkpoint's step and its full memory
    assert [row["step"] for row in curve(result.path)] == [0, 4096, 8192]
    summary = json.loads((result.path / layout.TUNE_SUMMARY_FILE).read_text())
    assert summary["train_steps"] == 4 and summary["timed_from_step"] == 4096


def test_algorithm_table_marks_the_on_policy_entries():
    on_policy = [name for name in algorithms.names() if algorithms.get(name).on_policy]
    assert on_policy == ["dap", "rloo_kl"]
    with pytest.raises(ValueError, match="needs next_value"):
        algorithms.Algorithm("no_target")


@pytest.mark.parametrize("name", ["dap", "rloo_kl"])
def test_generate_writes_samples_of_a_sequence_level_model(tmp_path, melody_smoke_prior, name):
    from seqtutor.components import generate

    workdir = workdir_with_prior(tmp_path / "work", melody_smoke_prior)
    config = smoke_config(("tune.algorithms", [name]), ("tune.num_steps", 2048),
                          ("tune.eval_every", 2048), ("tune.eval_episodes", 20))
    runner.run_stage(config, "tune", workdir, variant=name)
    paths = generate.generate(config, workdir, name, 3, tmp_path / "out")
    assert len(paths) >= 3 and all(path.stat().st_size > 0 for path in paths)
