"""The math of Sequence Tutor's KL-control algorithms (Jaques et al. 2017, Eq. 3-5, 13-15).

Q, Psi and G learning differ only in the per-step reward, the value of the next state in the TD
target, and the policy's logits. Those three pieces are pure functions here, each tested on its
own; the agent (``components/tune_agent.py``) calls them.

Shapes: ``q`` and ``log_prior`` are [..., V] over the vocabulary; rewards are [...].
"""

from __future__ import annotations

import tensorflow as tf

ALGORITHMS = ("q", "psi", "g", "rl_only")
# Algorithms whose per-step reward carries the prior's log-probability (spec/tuning.md).
_LOG_PRIOR_IN_REWARD = {"q": True, "psi": True, "g": False, "rl_only": False}


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")
    return algorithm


def kl_control_reward(r_task, log_prior_taken, c: float, algorithm: str):
    """Per-step reward: r_T / c + log p(a|s) for Q and Psi; r_T / c for G and RL-only."""
    reward = r_task / c
    if _LOG_PRIOR_IN_REWARD[check_algorithm(algorithm)]:
        reward = reward + log_prior_taken
    return reward


def max_value(q):
    """max_a Q(s, a): the next-state value of Q-learning and RL-only."""
    return tf.reduce_max(q, axis=-1)


def soft_value(psi):
    """logsumexp_a Psi(s, a): the next-state value of generalised Psi-learning (Eq. 14)."""
    return tf.reduce_logsumexp(psi, axis=-1)


def prior_weighted_value(g, log_prior):
    """log sum_a p(a|s) exp(G(s, a)): the next-state value of G-learning (Eq. 15)."""
    return tf.reduce_logsumexp(g + log_prior, axis=-1)


def next_state_value(target_values, next_log_prior, algorithm: str):
    """The value of the next state under the target network, per algorithm."""
    check_algorithm(algorithm)
    if algorithm == "psi":
        return soft_value(target_values)
    if algorithm == "g":
        return prior_weighted_value(target_values, next_log_prior)
    return max_value(target_values)


def target_policy(target_values, log_prior, algorithm: str):
    """Probabilities [..., V] of the policy whose value the backup estimates: greedy for Q and
    RL-only (their next-state value is a max), softmax(Psi) for Psi, p exp(G) for G."""
    if check_algorithm(algorithm) in ("q", "rl_only"):
        return tf.one_hot(tf.argmax(target_values, axis=-1), tf.shape(target_values)[-1],
                          dtype=target_values.dtype)
    return tf.nn.softmax(policy_logits(target_values, log_prior, algorithm))


def policy_logits(values, log_prior, algorithm: str):
    """Logits of the policy: softmax(Q) / softmax(Psi), or log p(a|s) + G(s, a) for G."""
    check_algorithm(algorithm)
    return values + log_prior if algorithm == "g" else values


def td_targets(reward, next_value, discount, gamma: float):
    """y_t = r_t + gamma * discount_t * V(s_{t+1}); discount_t is 0 at an episode's last step."""
    return reward + gamma * discount * next_value


def episode_mask(actions, end_token: int | None):
    """[B, T] float: 1 for the steps of each episode (up to and including its first
    ``end_token``), 0 after it; all ones for fixed-length episodes (``end_token`` None)."""
    if end_token is None:
        return tf.ones_like(actions, dtype=tf.float32)
    is_end = tf.cast(tf.equal(actions, end_token), tf.float32)
    ended_before = tf.cumsum(is_end, axis=1, exclusive=True)
    return tf.cast(tf.equal(ended_before, 0.0), tf.float32)


def check_n_step(n_step: int | None) -> int | None:
    if n_step is not None and n_step < 1:
        raise ValueError(f"n_step must be at least 1 or None, got {n_step}")
    return n_step


EXPLORATIONS = ("epsilon_greedy", "boltzmann", "epsilon_boltzmann")


def check_exploration(exploration: str) -> str:
    if exploration not in EXPLORATIONS:
        raise ValueError(f"unknown exploration {exploration!r}; choose from "
                         f"{', '.join(EXPLORATIONS)}")
    return exploration


def uses_epsilon(exploration: str) -> bool:
    """Whether the collect policy mixes in uniform tokens with probability epsilon."""
    return check_exploration(exploration) != "boltzmann"


def behaviour_probabilities(policy_probs, actions, exploration: str, epsilon):
    """mu(a_t | s_t) [B, T] of the collect policy for the actions taken, given the policy's
    probabilities [B, T, V]: epsilon-greedy (a uniform token with probability epsilon, else the
    policy's most likely one), Boltzmann (a policy sample) or epsilon-Boltzmann (a uniform token
    with probability epsilon, else a policy sample)."""
    taken = tf.gather(policy_probs, actions, batch_dims=2)
    if not uses_epsilon(exploration):
        return taken
    uniform = epsilon / tf.cast(tf.shape(policy_probs)[-1], policy_probs.dtype)
    if exploration == "epsilon_greedy":
        greedy = tf.cast(tf.equal(tf.argmax(policy_probs, axis=-1, output_type=actions.dtype),
                                  actions), policy_probs.dtype)
        return (1.0 - epsilon) * greedy + uniform
    return (1.0 - epsilon) * taken + uniform


def retrace_traces(policy_probs, actions, exploration: str, epsilon):
    """Retrace's trace c_t = min(1, pi(a_t|s_t) / mu(a_t|s_t)) [B, T] (Munos et al. 2016):
    about 1 for the actions the policy itself would take, near 0 for an exploratory token the
    policy would not have chosen, where a multi-step target must stop following the episode."""
    taken = tf.gather(policy_probs, actions, batch_dims=2)
    mu = behaviour_probabilities(policy_probs, actions, exploration, epsilon)
    return tf.minimum(1.0, taken / tf.maximum(mu, 1e-12))


def _shift_left(x):
    """x[:, t + 1] at step t, 0 at the last step ([B, T])."""
    return tf.concat([x[:, 1:], tf.zeros_like(x[:, :1])], axis=1)


def episode_td_targets(r_task, actions, log_prior, target_values, c: float, gamma: float,
                       algorithm: str, step_mask=None, n_step: int | None = 1,
                       traces=None):
    """TD targets for whole episodes from one pass of each network.

    With ``n_step`` n > 1 the target bootstraps n steps ahead: the next state's value
    V^-(s') is corrected by what the replayed episode then earned, the (n-1)-step target of
    (s', a') less the target network's Q^-(s', a'). Since V^-(s') - Q^-(s', a') is added
    back, the correction vanishes wherever Q^- already predicts the return, so this is the
    one-step target's fixed point for any behaviour policy: for Psi and G, where
    V(s') - Q(s', a') = -log pi(a'|s') (+ log p(a'|s') for G), it is path consistency
    (Nachum et al. 2017). The terminal reward then reaches every step of an episode without
    waiting for a value function to carry it back, one step per update.

    Args:
      r_task: [B, T] task reward of each step.
      actions: [B, T] int actions taken.
      log_prior: [B, T, V] log p(.|s_t) of the Reward RNN at every state of the episode.
      target_values: [B, T, V] the target network's values at every state s_t.
      c, gamma, algorithm: see spec/tuning.md.
      step_mask: [B, T] 1 inside the episode (:func:`episode_mask`); None: every step. An
        episode's last step (its last 1) is terminal.
      n_step: steps before bootstrapping: 1 (the paper), n, or None for the whole episode
        (the return to its end: no bootstrapping).
      traces: [B, T] weights c_t of the correction that step t's action brings to the target
        of step t - 1 (:func:`retrace_traces`); None: 1 everywhere. Where c_t is 0 the target
        of step t - 1 is the one-step target: what followed an off-policy action is not the
        policy's return.

    Returns:
      (targets [B, T], rewards [B, T]). The value of s_{t+1} is read from step t+1 of the
      same pass (the network's state after input a_t).
    """
    check_n_step(n_step)
    log_prior_taken = tf.gather(log_prior, actions, batch_dims=2)
    reward = kl_control_reward(r_task, log_prior_taken, c, algorithm)
    next_value = _shift_left(next_state_value(target_values, log_prior, algorithm))
    if step_mask is None:
        step_mask = tf.ones_like(reward)
    # discount_t = 1 while step t + 1 is still inside the episode: 0 at the terminal step.
    discount = _shift_left(step_mask)
    one_step = td_targets(reward, next_value, discount, gamma)
    horizon = actions.shape[1] if n_step is None else min(n_step, actions.shape[1])
    taken_target = tf.gather(target_values, actions, batch_dims=2)
    if traces is None:
        traces = tf.ones_like(reward)
    targets = one_step
    for _ in range(horizon - 1):  # targets: m-step -> (m + 1)-step
        targets = one_step + gamma * discount * _shift_left(traces * (targets - taken_target))
    return targets, reward
