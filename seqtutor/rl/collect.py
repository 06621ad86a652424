"""The collection driver: a batch of episodes played in parallel inside one graph (only the
task reward leaves TensorFlow, once per batch of finished episodes), and the exploration
schedule."""

from __future__ import annotations

import tensorflow as tf
from tf_agents.policies import tf_policy
from tf_agents.trajectories import time_step as ts


def collect_episodes(policy: tf_policy.TFPolicy, first_tokens, length: int):
    """Play one episode per priming token with ``policy``, all in parallel (call inside a
    tf.function; the loop is an explicit tf.while_loop, so no AutoGraph is needed). Returns
    (observations [B, T], actions [B, T]); observation t is the input token at step t (the
    priming token, then the previous action)."""
    batch = tf.shape(first_tokens)[0]

    def play_step(t, current, state, observations, actions):
        time_step = ts.TimeStep(tf.fill([batch], ts.StepType.MID), tf.zeros([batch]),
                                tf.ones([batch]), current)
        step = policy.action(time_step, state)
        return (t + 1, step.action, step.state, observations.write(t, current),
                actions.write(t, step.action))

    _, _, _, observations, actions = tf.while_loop(
        lambda t, *_: t < length, play_step,
        (tf.constant(0), tf.cast(first_tokens, tf.int32), policy.get_initial_state(batch),
         tf.TensorArray(tf.int32, size=length), tf.TensorArray(tf.int32, size=length)))
    return tf.transpose(observations.stack()), tf.transpose(actions.stack())


def epsilon_schedule(env_steps, start: float, final: float, anneal_steps: int) -> float:
    """Linear anneal from ``start`` to ``final`` over ``anneal_steps`` environment steps."""
    if anneal_steps <= 0:
        return final
    fraction = min(1.0, env_steps / anneal_steps)
    return float(start + fraction * (final - start))
