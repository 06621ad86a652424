"""Whole-episode experience replay in TF variables: uniform, or proportional prioritized
replay (Schaul et al. 2015), so that sampling never leaves TensorFlow."""

from __future__ import annotations

import tensorflow as tf
from tf_agents.trajectories import time_step as ts, trajectory


class EpisodeReplay(tf.Module):
    """Whole episodes in a ring buffer of TF variables; uniform or proportional sampling.

    Priorities are per episode (mean |TD error| over its steps); a new episode gets the
    largest priority seen so far, so it is sampled at least once (Schaul et al. 2015).
    """

    def __init__(self, capacity_episodes: int, length: int, prioritized: bool = False,
                 alpha: float = 0.6, name: str = "episode_replay"):
        super().__init__(name=name)
        self.capacity = capacity_episodes
        self.prioritized = prioritized
        self.alpha = alpha
        self.observations = tf.Variable(tf.zeros([capacity_episodes, length], tf.int32))
        self.actions = tf.Variable(tf.zeros([capacity_episodes, length], tf.int32))
        self.rewards = tf.Variable(tf.zeros([capacity_episodes, length], tf.float32))
        self.priorities = tf.Variable(tf.zeros([capacity_episodes], tf.float32))
        self.max_priority = tf.Variable(1.0)
        self.size = tf.Variable(0, dtype=tf.int64)
        self.cursor = tf.Variable(0, dtype=tf.int64)

    def add(self, observations, actions, rewards):
        count = tf.shape(actions, out_type=tf.int64)[0]
        slots = (self.cursor + tf.range(count)) % self.capacity
        indices = slots[:, None]
        self.observations.scatter_nd_update(indices, observations)
        self.actions.scatter_nd_update(indices, actions)
        self.rewards.scatter_nd_update(indices, tf.cast(rewards, tf.float32))
        self.priorities.scatter_nd_update(
            indices, tf.fill([count], self.max_priority.read_value()))
        self.cursor.assign((self.cursor + count) % self.capacity)
        self.size.assign(tf.minimum(self.size + count, self.capacity))

    def sample(self, batch_size: int, beta):
        """(indices [B], importance weights [B]); weights are 1 for uniform replay."""
        size = self.size.read_value()
        if not self.prioritized:
            indices = tf.random.uniform([batch_size], 0, size, dtype=tf.int64)
            return indices, tf.ones([batch_size])
        scaled = tf.pow(self.priorities[:size], self.alpha)
        probabilities = scaled / tf.reduce_sum(scaled)
        indices = tf.random.categorical(tf.math.log(probabilities)[None], batch_size,
                                        dtype=tf.int64)[0]
        weights = tf.pow(tf.cast(size, tf.float32) * tf.gather(probabilities, indices), -beta)
        return indices, weights / tf.reduce_max(weights)

    def experience(self, indices) -> trajectory.Trajectory:
        """Episodes as a TF-Agents Trajectory [B, T] (reward: the task reward r_T)."""
        return episodes_trajectory(tf.gather(self.observations, indices),
                                   tf.gather(self.actions, indices),
                                   tf.gather(self.rewards, indices))

    def update_priorities(self, indices, td_abs):
        if self.prioritized:
            priority = td_abs + 1e-6
            self.priorities.scatter_nd_update(indices[:, None], priority)
            self.max_priority.assign(tf.maximum(self.max_priority, tf.reduce_max(priority)))


def episodes_trajectory(observations, actions, rewards) -> trajectory.Trajectory:
    """Whole episodes [B, T] as a TF-Agents Trajectory: the first step FIRST, the last one
    terminal (discount 0), the reward the task reward r_T of each step."""
    mid = tf.fill(tf.shape(actions), ts.StepType.MID)
    last = tf.concat([tf.zeros_like(actions[:, 1:]), tf.ones_like(actions[:, :1])], axis=1)
    discount = 1.0 - tf.cast(last, tf.float32)
    next_type = tf.where(last > 0, ts.StepType.LAST, ts.StepType.MID)
    step_type = tf.concat([tf.fill(tf.shape(actions[:, :1]), ts.StepType.FIRST), mid[:, 1:]],
                          axis=1)
    return trajectory.Trajectory(step_type, observations, actions, (), next_type,
                                 tf.cast(rewards, tf.float32), discount)
