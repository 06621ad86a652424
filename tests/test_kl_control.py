"""TD targets and policies of Q, Psi, G and RL-only on a tiny hand-computed example."""

import numpy as np
import pytest
import tensorflow as tf

from seqtutor.rl import algorithms, kl_control

Q, PSI, G, RL_ONLY = (algorithms.get(name) for name in ("q", "psi", "g", "rl_only"))

# One episode of two steps over three tokens. Actions: token 1, then token 2.
ACTIONS = tf.constant([[1, 2]])
R_TASK = tf.constant([[1.0, 2.0]])
LOG_PRIOR = tf.math.log(tf.constant([[[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]]))
TARGET = tf.constant([[[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]])  # Q^-(s_0, .), Q^-(s_1, .)
C, GAMMA = 0.5, 0.5

# Step 0: r_T / c = 2; log p(a_0 = 1 | s_0) = log 0.25 = -1.386294.
#   Q:      2 - 1.386294 + 0.5 * max(1, 2, 3)              = 2.113706
#   Psi:    2 - 1.386294 + 0.5 * logsumexp(1, 2, 3)        = 0.613706 + 0.5 * 3.407606
#   G:      2 + 0.5 * log(.2 e + .3 e^2 + .5 e^3)           = 2 + 0.5 * 2.549690
#   RL-only: 2 + 0.5 * 3                                    = 3.5
# Step 1 is terminal: y = r. Q and Psi: 4 + log 0.5 = 3.306853; G and RL-only: 4.
EXPECTED = {
    "q": [2.0 + np.log(0.25) + 0.5 * 3.0, 4.0 + np.log(0.5)],
    "psi": [2.0 + np.log(0.25) + 0.5 * np.log(np.exp(1) + np.exp(2) + np.exp(3)),
            4.0 + np.log(0.5)],
    "g": [2.0 + 0.5 * np.log(0.2 * np.e + 0.3 * np.e ** 2 + 0.5 * np.e ** 3), 4.0],
    "rl_only": [2.0 + 0.5 * 3.0, 4.0],
}


@pytest.mark.parametrize("algorithm", ["q", "psi", "g", "rl_only"])
def test_td_targets_match_hand_computed_values(algorithm):
    targets, _ = kl_control.episode_td_targets(R_TASK, ACTIONS, LOG_PRIOR, TARGET, C, GAMMA,
                                               algorithms.get(algorithm))
    np.testing.assert_allclose(targets.numpy()[0], EXPECTED[algorithm], rtol=1e-6)


def test_the_four_algorithms_give_different_targets():
    firsts = {round(v[0], 4) for v in EXPECTED.values()}
    assert len(firsts) == 4
    assert EXPECTED["q"][0] == pytest.approx(2.113706, abs=1e-6)
    assert EXPECTED["psi"][0] == pytest.approx(2.317509, abs=1e-6)
    assert EXPECTED["g"][0] == pytest.approx(3.274845, abs=1e-6)


def test_value_functions():
    q = tf.constant([1.0, 2.0, 3.0])
    assert float(kl_control.max_value(q)) == 3.0
    assert float(kl_control.soft_value(q)) == pytest.approx(3.407606, abs=1e-6)
    uniform = tf.math.log(tf.fill([3], 1 / 3))
    # With a uniform prior, G's value is the soft value minus log 3.
    assert float(kl_control.prior_weighted_value(q, uniform)) == pytest.approx(
        3.407606 - np.log(3), abs=1e-6)


def test_rewards_and_policy_logits():
    log_p = tf.constant(-1.5)
    assert float(Q.reward(tf.constant(1.0), log_p, 0.5)) == 0.5
    assert float(G.reward(tf.constant(1.0), log_p, 0.5)) == 2.0
    values = tf.constant([0.0, 1.0])
    prior = tf.math.log(tf.constant([0.9, 0.1]))
    np.testing.assert_allclose(PSI.policy_logits(values, prior), [0.0, 1.0])
    # G: pi proportional to p(a|s) exp(G(s, a)).
    np.testing.assert_allclose(G.policy_logits(values, prior),
                               np.log([0.9, 0.1]) + [0.0, 1.0], rtol=1e-6)


def test_unknown_algorithm_is_an_error():
    with pytest.raises(ValueError, match="unknown algorithm 'dqn'"):
        algorithms.get("dqn")


def test_episode_mask_ends_each_episode_at_its_first_end_token():
    from seqtutor.domains.molecule import reward

    actions = tf.constant([[5, 2, 7, 2], [5, 5, 5, 5], [2, 0, 0, 0]])
    mask = kl_control.episode_mask(actions, end_token=2).numpy()
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    np.testing.assert_array_equal(mask.astype(bool), reward.episode_mask(actions.numpy(), 2))
    assert kl_control.episode_mask(actions, None).numpy().min() == 1


def test_td_target_is_terminal_at_the_end_token():
    # Three steps over three tokens; the episode ends at step 1 (token 2 = the end token):
    # step 0 bootstraps from step 1, step 1 is terminal, step 2 lies after the end.
    actions = tf.constant([[1, 2, 1]])
    r_task = tf.constant([[0.0, 3.0, 0.0]])
    log_prior = tf.math.log(tf.fill([1, 3, 3], 1.0 / 3.0))
    target = tf.constant([[[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [9.0, 9.0, 9.0]]])
    mask = kl_control.episode_mask(actions, end_token=2)
    targets, _ = kl_control.episode_td_targets(r_task, actions, log_prior, target, 1.0, 0.5,
                                               RL_ONLY, mask)
    assert targets.numpy()[0, :2] == pytest.approx([0.5 * 3.0, 3.0])


# Two-step targets of the example above: step 0 bootstraps from what step 1 earned (its
# terminal target R_1) corrected by V^-(s_1) - Q^-(s_1, a_1 = 2), with Q^-(s_1, 2) = 3.
EXPECTED_TWO_STEP = {
    "q": 2.0 + np.log(0.25) + 0.5 * (4.0 + np.log(0.5) + 3.0 - 3.0),
    "psi": 2.0 + np.log(0.25) + 0.5 * (4.0 + np.log(0.5) + 3.407606 - 3.0),
    "g": 2.0 + 0.5 * (4.0 + 2.549690 - 3.0),
    "rl_only": 2.0 + 0.5 * (4.0 + 3.0 - 3.0),
}


@pytest.mark.parametrize("algorithm", ["q", "psi", "g", "rl_only"])
@pytest.mark.parametrize("n_step", [2, 5, None])
def test_multi_step_targets_match_hand_computed_values(algorithm, n_step):
    targets, _ = kl_control.episode_td_targets(R_TASK, ACTIONS, LOG_PRIOR, TARGET, C, GAMMA,
                                               algorithms.get(algorithm), n_step=n_step)
    np.testing.assert_allclose(targets.numpy()[0],
                               [EXPECTED_TWO_STEP[algorithm], EXPECTED[algorithm][1]],
                               rtol=1e-6)


def test_whole_episode_psi_target_is_the_return_less_the_policys_log_probabilities():
    # Path consistency: y_t = sum_k gamma^(k-t) (r_k / c + log p(a_k|s_k))
    #                         - sum_{k>t} gamma^(k-t) log pi^-(a_k|s_k), up to the episode end.
    rng = np.random.default_rng(0)
    batch, steps, vocab, end = 3, 6, 4, 3
    actions = rng.integers(0, vocab - 1, size=(batch, steps))
    actions[0, 2] = end  # episode 0 ends at step 2; the others run to the cap
    r_task = rng.normal(size=(batch, steps)).astype(np.float32)
    log_prior = tf.nn.log_softmax(rng.normal(size=(batch, steps, vocab)).astype(np.float32))
    target = rng.normal(size=(batch, steps, vocab)).astype(np.float32)
    c, gamma = 2.0, 0.9
    mask = kl_control.episode_mask(tf.constant(actions), end)
    targets, _ = kl_control.episode_td_targets(
        tf.constant(r_task), tf.constant(actions), log_prior, tf.constant(target), c, gamma,
        PSI, mask, n_step=None)
    log_pi = tf.nn.log_softmax(target).numpy()
    log_p = log_prior.numpy()
    for b in range(batch):
        last = int(mask.numpy()[b].sum()) - 1
        for t in range(last + 1):
            expected = sum(gamma ** (k - t) * (r_task[b, k] / c + log_p[b, k, actions[b, k]])
                           for k in range(t, last + 1))
            expected -= sum(gamma ** (k - t) * log_pi[b, k, actions[b, k]]
                            for k in range(t + 1, last + 1))
            assert targets.numpy()[b, t] == pytest.approx(expected, abs=1e-4)


def test_n_step_targets_equal_one_step_targets_where_the_target_network_is_exact():
    # If Q^- of every action taken equals its one-step target, the corrections vanish.
    actions = tf.constant([[0, 1, 1]])
    r_task = tf.constant([[0.0, 0.0, 2.0]])
    log_prior = tf.math.log(tf.fill([1, 3, 2], 0.5))
    values = np.zeros((1, 3, 2), np.float32)
    for _ in range(10):  # a fixed point of the one-step targets (three steps: exact)
        one_step, _ = kl_control.episode_td_targets(r_task, actions, log_prior,
                                                    tf.constant(values), 1.0, 0.9, Q)
        values[0, np.arange(3), actions.numpy()[0]] = one_step.numpy()[0]
    one_step, _ = kl_control.episode_td_targets(r_task, actions, log_prior, tf.constant(values),
                                                1.0, 0.9, Q)
    whole, _ = kl_control.episode_td_targets(r_task, actions, log_prior, tf.constant(values),
                                             1.0, 0.9, Q, n_step=None)
    np.testing.assert_allclose(whole.numpy(), one_step.numpy(), rtol=1e-6)


def test_n_step_below_one_is_an_error():
    with pytest.raises(ValueError, match="n_step must be at least 1"):
        kl_control.episode_td_targets(R_TASK, ACTIONS, LOG_PRIOR, TARGET, C, GAMMA, PSI,
                                      n_step=0)


# Two states over three tokens for the behaviour policies: pi(.|s_0), pi(.|s_1).
POLICY_PROBS = tf.constant([[[0.7, 0.3, 0.0], [0.1, 0.1, 0.8]]])


@pytest.mark.parametrize("exploration, expected", [
    # Actions: token 2 (pi 0, not greedy) at s_0, token 2 (pi 0.8, greedy) at s_1; eps 0.3.
    ("boltzmann", [0.0, 0.8]),
    ("epsilon_boltzmann", [0.1, 0.7 * 0.8 + 0.1]),
    ("epsilon_greedy", [0.1, 0.7 + 0.1]),
])
def test_behaviour_probabilities_of_each_exploration(exploration, expected):
    mu = kl_control.behaviour_probabilities(POLICY_PROBS, ACTIONS * 0 + 2, exploration, 0.3)
    np.testing.assert_allclose(mu.numpy()[0], expected, rtol=1e-6)


def test_retrace_traces_cut_exploratory_tokens_only():
    actions = tf.constant([[2, 2]])  # s_0: a token the policy never takes; s_1: its favourite
    traces = kl_control.retrace_traces(POLICY_PROBS, actions, "epsilon_boltzmann", 0.3)
    np.testing.assert_allclose(traces.numpy()[0], [0.0, 1.0], atol=1e-6)
    on_policy = kl_control.retrace_traces(POLICY_PROBS, tf.constant([[0, 2]]), "boltzmann", 0.0)
    np.testing.assert_allclose(on_policy.numpy()[0], [1.0, 1.0])
    with pytest.raises(ValueError, match="unknown exploration"):
        kl_control.retrace_traces(POLICY_PROBS, actions, "greedy", 0.3)


def test_a_zero_trace_turns_the_multi_step_target_into_the_one_step_target_there():
    rng = np.random.default_rng(3)
    r_task = tf.constant(rng.normal(size=(2, 5)), tf.float32)
    actions = tf.constant(rng.integers(0, 4, size=(2, 5)), tf.int32)
    log_prior = tf.nn.log_softmax(tf.constant(rng.normal(size=(2, 5, 4)), tf.float32))
    values = tf.constant(rng.normal(size=(2, 5, 4)), tf.float32)
    args = (r_task, actions, log_prior, values, 2.0, 0.9, PSI)
    one_step, _ = kl_control.episode_td_targets(*args)
    whole, _ = kl_control.episode_td_targets(*args, n_step=None)
    ones, _ = kl_control.episode_td_targets(*args, n_step=None, traces=tf.ones_like(r_task))
    np.testing.assert_allclose(ones.numpy(), whole.numpy(), rtol=1e-6)
    zeros, _ = kl_control.episode_td_targets(*args, n_step=None, traces=tf.zeros_like(r_task))
    np.testing.assert_allclose(zeros.numpy(), one_step.numpy(), rtol=1e-6)
    # Step 3's token off-policy (trace 0): step 2 takes the one-step target, steps 0 and 1
    # follow the episode up to s_3 (3- and 2-step targets), steps 3 and 4 are unaffected.
    traces = tf.constant([[1.0, 1.0, 1.0, 0.0, 1.0]] * 2)
    cut, _ = kl_control.episode_td_targets(*args, n_step=None, traces=traces)
    np.testing.assert_allclose(cut.numpy()[:, 2], one_step.numpy()[:, 2], rtol=1e-6)
    np.testing.assert_allclose(cut.numpy()[:, 3:], whole.numpy()[:, 3:], rtol=1e-6)
    three_step, _ = kl_control.episode_td_targets(*args, n_step=3)
    np.testing.assert_allclose(cut.numpy()[:, 0], three_step.numpy()[:, 0], rtol=1e-6)
    two_step, _ = kl_control.episode_td_targets(*args, n_step=2)
    np.testing.assert_allclose(cut.numpy()[:, 1], two_step.numpy()[:, 1], rtol=1e-6)


def test_the_target_policy_is_greedy_for_q_and_the_softmax_for_psi_and_g():
    values = tf.constant([[[2.0, 1.0, 0.0]]])
    log_prior = tf.math.log(tf.constant([[[0.2, 0.3, 0.5]]]))
    for algorithm in ("q", "rl_only"):
        np.testing.assert_array_equal(
            algorithms.get(algorithm).target_policy(values, log_prior).numpy(), [[[1.0, 0.0, 0.0]]])
    np.testing.assert_allclose(PSI.target_policy(values, log_prior).numpy(),
                               tf.nn.softmax(values).numpy(), rtol=1e-6)
    np.testing.assert_allclose(G.target_policy(values, log_prior).numpy(),
                               tf.nn.softmax(values + log_prior).numpy(), rtol=1e-6)
    # Q-learning's traces under epsilon-greedy: 1 on the greedy token, 0 off it.
    probs = Q.target_policy(values, log_prior)
    traces = kl_control.retrace_traces(probs, tf.constant([[0]]), "epsilon_greedy", 0.1)
    assert traces.numpy()[0, 0] == pytest.approx(1.0)
    traces = kl_control.retrace_traces(probs, tf.constant([[2]]), "epsilon_greedy", 0.1)
    assert traces.numpy()[0, 0] == 0.0
