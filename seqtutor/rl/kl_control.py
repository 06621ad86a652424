"""The math of Sequence Tutor's KL-control algorithms (Jaques et al. 2017, Eq. 3-5, 13-15).

Q, Psi and G learning differ only in the per-step reward, the value of the next state in the TD
target, and the policy's logits: the algorithm table (``seqtutor.rl.algorithms``) says which, from
the pure functions here, each tested on its own.

Shapes: ``q`` and ``log_prior`` are [..., V] over the vocabulary; rewards are [...].
"""

from __future__ import annotations

import tensorflow as tf

def max_value(q):
    """max_a Q(s, a): the next-state value of Q-learning and RL-only."""
    return tf.reduce_max(q, axis=-1)


def soft_value(psi):
    """logsumexp_a Psi(s, a): the next-state value of generalised Psi-learning (Eq. 14)."""
    return tf.reduce_logsumexp(psi, axis=-1)


def prior_weighted_value(g, log_prior):
    """log sum_a p(a|s) exp(G(s, a)): the next-state value of G-learning (Eq. 15)."""
    return tf.reduce_logsumexp(g + log_prior, axis=-1)


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


EXPLORATIONS = ("epsilon_greedy", "boltzmann", "epsilon_boltzmann")


def uses_epsilon(exploration: str) -> bool:
    """Whether the collect policy mixes in uniform tokens with probability epsilon."""
    if exploration not in EXPLORATIONS:
        raise ValueError(f"unknown exploration {exploration!r}; choose from "
                         f"{', '.join(EXPLORATIONS)}")
    return exploration != "boltzmann"


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
                       algorithm, step_mask=None, n_step: int | None = 1,
                       traces=None):
    """TD targets for whole episodes from one pass of each network.

    With ``n_step`` n > 1 the target looks n steps ahead along the replayed episode:

        y_t = r_t + gamma * d_t * (V^-(s') + c' * (y'_{t+1} - Q^-(s', a'))),

    where y'_{t+1} is the (n-1)-step target of the next step and c' its trace (1 without
    Retrace). This is not TF-Agents' plain n-step return (which sums the rewards and
    bootstraps once, n steps on), and ``n_step=None`` is not "no bootstrapping": every step
    adds the correction V^-(s') - Q^-(s', a'), which vanishes only where the replayed action is
    the one the backup assumes. What it is depends on the algorithm:

    - Psi and G: V(s') - Q(s', a') = -log pi(a'|s') (+ log p(a'|s') for G), so y_t is the soft
      return with its entropy (or KL) terms. Soft values satisfy this path consistency for
      every action sequence (Nachum et al. 2017), so any behaviour policy leaves the one-step
      fixed point unchanged.
    - Q and RL-only: V = max_a Q, and the correction is the advantage of the greedy action over
      the replayed one: Q(lambda) with off-policy corrections (Harutyunyan et al. 2016). It
      converges only while the behaviour policy stays close to the greedy one; early
      epsilon-greedy episodes (epsilon near 1) are far from it. Retrace's traces
      c' = min(1, pi/mu) (``traces``, :func:`retrace_traces`) cut the target at an off-policy
      action and make it safe for any behaviour policy (Munos et al. 2016).

    Either way the terminal reward reaches every step of an episode at once instead of one
    step per update.

    Args:
      r_task: [B, T] task reward of each step.
      actions: [B, T] int actions taken.
      log_prior: [B, T, V] log p(.|s_t) of the Reward RNN at every state of the episode.
      target_values: [B, T, V] the target network's values at every state s_t.
      c, gamma: the prior's weight and the discount.
      algorithm: the algorithm table's entry (``seqtutor.rl.algorithms``).
      step_mask: [B, T] 1 inside the episode (:func:`episode_mask`); None: every step. An
        episode's last step (its last 1) is terminal.
      n_step: steps the target looks ahead: 1 (the paper), n, or None for the whole episode
        (corrected at every step as above).
      traces: [B, T] weights c_t of the correction that step t's action brings to the target
        of step t - 1 (:func:`retrace_traces`); None: 1 everywhere. Where c_t is 0 the target
        of step t - 1 is the one-step target: what followed an off-policy action is not the
        policy's return.

    Returns:
      (targets [B, T], rewards [B, T]). The value of s_{t+1} is read from step t+1 of the
      same pass (the network's state after input a_t).
    """
    if n_step is not None and n_step < 1:
        raise ValueError(f"n_step must be at least 1 or None, got {n_step}")
    log_prior_taken = tf.gather(log_prior, actions, batch_dims=2)
    reward = algorithm.reward(r_task, log_prior_taken, c)
    next_value = _shift_left(algorithm.next_value(target_values, log_prior))
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
