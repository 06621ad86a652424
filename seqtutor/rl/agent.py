"""Sequence Tutor on TF-Agents: the agent, its policies, whole-episode replay and collection.

- :class:`SequenceTutorAgent` is a ``TFAgent``: ``_loss`` computes the TD loss of Q, Psi, G or
  RL-only on whole episodes (one unroll per network, :func:`kl_control.episode_td_targets`),
  ``_train`` applies the gradients and the Polyak target update.
- :class:`SequencePolicy` is a ``TFPolicy`` over the model's step-wise LSTM: a categorical
  distribution with the algorithm's logits (softmax over Q or Psi; p(a|s) exp(G) for G). The
  collect policy wraps it in TF-Agents' ``GreedyPolicy`` + ``EpsilonGreedyPolicy``, or samples
  it (Boltzmann exploration); either way the stored action is the one taken.
- :class:`EpisodeReplay` stores whole episodes in TF variables (uniform, or proportional
  prioritized replay, Schaul et al. 2015), so sampling never leaves TensorFlow.
- :func:`collect_episodes` is the driver: it plays a batch of episodes in parallel inside one
  graph; only the task reward leaves TensorFlow, once per batch of finished episodes.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.agents import tf_agent
from tf_agents.policies import epsilon_greedy_policy, greedy_policy, tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import policy_step, time_step as ts, trajectory

from seqtutor.rl import kl_control
from seqtutor import sequence_model

keras = tf.keras

Diagnostics = collections.namedtuple("Diagnostics", ["td_loss", "mean_value", "td_abs"])


def specs(vocab_size: int):
    """(time_step_spec, action_spec): the observation is the previous token."""
    token = tensor_spec.BoundedTensorSpec((), tf.int32, 0, vocab_size - 1, name="token")
    return ts.time_step_spec(token), token


def with_state_value(model: keras.Model, detach: bool = False,
                     hidden_units: Sequence[int] = ()) -> keras.Model:
    """``model`` (sharing its layers) plus a state-value head v(s) on the last hidden layer,
    zero at the start: outputs (logits [B, T, V], v [B, T, 1]). With ``detach`` the head reads
    the hidden layer without sending gradients into it: fitting v(s) then cannot reshape the
    features the policy's logits are read from. ``hidden_units`` puts ReLU layers between the
    hidden layer and v(s) (none: v is linear in the features)."""
    hidden = model.get_layer("logits").input
    if detach:
        hidden = keras.layers.Lambda(tf.stop_gradient, name="detach_value")(hidden)
    for i, units in enumerate(hidden_units):
        hidden = keras.layers.Dense(units, activation="relu", name=f"state_value_hidden_{i}",
                                    dtype="float32")(hidden)
    value = keras.layers.Dense(1, kernel_initializer="zeros", name="state_value",
                               dtype="float32")(hidden)
    return keras.Model(model.input, [model.output, value], name=f"{model.name}_with_value")


def clone(model: keras.Model, trainable: bool = True) -> keras.Model:
    """A copy of a sequence model with the same weights (built, ready to run)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.trainable = trainable
    return copy


class SequencePolicy(tf_policy.TFPolicy):
    """Samples the next token from the algorithm's policy, one step at a time.

    The state holds the value network's LSTM state and, for G, the prior's.
    """

    def __init__(self, values: keras.Model, prior: keras.Model, algorithm: str,
                 temperature: float = 1.0, epsilon=None, name: str | None = None):
        self._algorithm = kl_control.check_algorithm(algorithm)
        # With epsilon (a float or a callable returning one), a uniform token with probability
        # epsilon, else a policy sample: TF-Agents' EpsilonGreedyPolicy always wraps its policy
        # in a GreedyPolicy, and greedy decoding from one start token (BOS) plays the same
        # episode every time.
        self._epsilon = epsilon
        self._values = sequence_model.StepModel(values)
        self._prior = sequence_model.StepModel(prior) if algorithm == "g" else None
        self._temperature = temperature
        state_spec = self._state_spec(self._values)
        if self._prior is not None:
            state_spec += self._state_spec(self._prior)
        time_step_spec, action_spec = specs(self._values.vocab_size)
        super().__init__(time_step_spec, action_spec, policy_state_spec=state_spec,
                         automatic_state_reset=False, name=name)

    @staticmethod
    def _state_spec(step_model) -> tuple:
        spec = ()
        for layer in step_model.lstms:
            spec += (tf.TensorSpec((layer.units,), tf.float32),) * 2
        return spec

    def _variables(self):
        variables = list(self._values.model.variables)
        if self._prior is not None:
            variables += list(self._prior.model.variables)
        return variables

    def _distribution(self, time_step, policy_state):
        n = 2 * len(self._values.lstms)
        values, value_state = self._values.step(time_step.observation, policy_state[:n])
        log_prior, state = 0.0, value_state
        if self._prior is not None:
            prior_logits, prior_state = self._prior.step(time_step.observation, policy_state[n:])
            log_prior = tf.nn.log_softmax(prior_logits)
            state = value_state + prior_state
        logits = kl_control.policy_logits(values, log_prior, self._algorithm) / self._temperature
        if self._epsilon is None:
            distribution = tfp.distributions.Categorical(logits=logits, dtype=tf.int32)
        else:
            epsilon = self._epsilon() if callable(self._epsilon) else self._epsilon
            probs = (1.0 - epsilon) * tf.nn.softmax(logits) + epsilon / self._values.vocab_size
            distribution = tfp.distributions.Categorical(probs=probs, dtype=tf.int32)
        return policy_step.PolicyStep(distribution, state, ())


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
        actions = tf.gather(self.actions, indices)
        mid = tf.fill(tf.shape(actions), ts.StepType.MID)
        last = tf.concat([tf.zeros_like(actions[:, 1:]), tf.ones_like(actions[:, :1])], axis=1)
        discount = 1.0 - tf.cast(last, tf.float32)  # the last step is terminal
        next_type = tf.where(last > 0, ts.StepType.LAST, ts.StepType.MID)
        step_type = tf.concat([tf.fill(tf.shape(actions[:, :1]), ts.StepType.FIRST),
                               mid[:, 1:]], axis=1)
        return trajectory.Trajectory(step_type, tf.gather(self.observations, indices), actions,
                                     (), next_type, tf.gather(self.rewards, indices), discount)

    def update_priorities(self, indices, td_abs):
        if self.prioritized:
            priority = td_abs + 1e-6
            self.priorities.scatter_nd_update(indices[:, None], priority)
            self.max_priority.assign(tf.maximum(self.max_priority, tf.reduce_max(priority)))


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


class SequenceTutorAgent(tf_agent.TFAgent):
    """Q-learning with log prior (Eq. 3-5), generalised Psi-learning (Eq. 13-14), G-learning
    (Eq. 15) and RL-only, trained on whole episodes.

    The Q-network, the target network and the Reward RNN all start from the pretrained model;
    the Reward RNN is never trained (not even its optimizer slots exist). ``learning_rate``
    is Adam's: a float or a Keras schedule over gradient steps; ``value_learning_rate`` (with
    ``q_init`` "log_prior") gives the value head's layers an Adam of their own at that rate.
    """

    def __init__(self, pretrained: keras.Model, algorithm: str, *, c: float, gamma: float,
                 eta: float, learning_rate, clip_norm: float | None,
                 exploration: str = "epsilon_greedy", epsilon=0.1,
                 end_token: int | None = None, q_init: str = "logits", n_step: int | None = 1,
                 off_policy_correction: str = "none", prior_kl_weight: float = 0.0,
                 detach_value_head: bool = False, value_head_units: Sequence[int] = (),
                 value_learning_rate: float | None = None, precision: str = "float32",
                 train_step_counter: tf.Variable | None = None):
        if c <= 0:
            raise ValueError(f"c must be positive, got {c}")
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self.algorithm = kl_control.check_algorithm(algorithm)
        self.n_step = kl_control.check_n_step(n_step)
        if off_policy_correction not in ("none", "retrace"):
            raise ValueError("off_policy_correction must be 'none' or 'retrace', got "
                             f"{off_policy_correction!r}")
        kl_control.check_exploration(exploration)
        self.off_policy_correction = off_policy_correction
        self.prior_kl_weight = prior_kl_weight
        self.exploration, self._epsilon = exploration, epsilon
        self.c, self.gamma, self.eta = c, gamma, eta
        self.end_token = end_token  # episodes end at this action (None: fixed length)
        if precision != "float32":  # the networks compute in 16 bits, their weights stay float32
            pretrained = sequence_model.with_dtype_policy(pretrained, precision)
        self.q_network = clone(pretrained)
        self.target_network = clone(pretrained, trainable=False)
        self.reward_rnn = clone(pretrained, trainable=False)
        # q_init "logits": Q starts as the pretrained logits (the paper, the reference code).
        # "log_prior": Q(s, a) = log_softmax(logits) + v(s) with v = 0 at the start, so Q
        # starts as log p(a|s) and the soft state value at 0, its value without task reward;
        # from logits, V(s) starts at logsumexp(logits) (about +8 for SMILES), which makes
        # continuing look better than any terminal reward when gamma is near 1. The policy
        # (softmax over Q, or p exp(G)) does not depend on v(s), so the saved sequence model
        # (the logits) is the whole policy either way.
        if q_init not in ("logits", "log_prior"):
            raise ValueError(f"q_init must be 'logits' or 'log_prior', got {q_init!r}")
        if q_init == "log_prior" and algorithm == "g":
            raise ValueError("q_init 'log_prior' is not defined for G (its policy p exp(G) "
                             "would start at p^2)")
        self.q_init = q_init
        if q_init == "log_prior":
            self.q_model = with_state_value(self.q_network, detach_value_head, value_head_units)
            self.target_model = with_state_value(self.target_network, detach_value_head,
                                                 value_head_units)
            self.target_model.trainable = False
            # The target starts as a copy, value head included (its hidden layers are random).
            self.target_model.set_weights(self.q_model.get_weights())
        else:
            self.q_model, self.target_model = self.q_network, self.target_network
        self.optimizer = keras.optimizers.Adam(learning_rate)
        if precision == "mixed_float16":  # float16 gradients underflow without loss scaling
            self.optimizer = keras.mixed_precision.LossScaleOptimizer(self.optimizer)
        # With value_learning_rate, the value head's layers have an Adam of their own.
        self.value_optimizer = None
        if value_learning_rate is not None:
            if q_init != "log_prior":
                raise ValueError("value_learning_rate needs q_init 'log_prior' (the value head "
                                 "exists only there)")
            self.value_optimizer = keras.optimizers.Adam(value_learning_rate)
            # Its slots exist before the first step, which may skip it (see _train).
            self.value_optimizer.build(self.value_head_variables())
        self._clip_norm = clip_norm
        policy = SequencePolicy(self.q_network, self.reward_rnn, algorithm, name="policy")
        if exploration == "boltzmann":
            collect_policy = policy
        elif exploration == "epsilon_boltzmann":
            collect_policy = SequencePolicy(self.q_network, self.reward_rnn, algorithm,
                                            epsilon=epsilon, name="collect_policy")
        else:
            # (EpsilonGreedyPolicy wraps its policy in a GreedyPolicy itself.)
            collect_policy = epsilon_greedy_policy.EpsilonGreedyPolicy(policy, epsilon=epsilon)
        time_step_spec, action_spec = specs(sequence_model.vocab_size_of(pretrained))
        if train_step_counter is None:
            # Never TF-Agents' default, the process-wide global step: several agents tuned in
            # one process would share (and skip) each other's steps.
            train_step_counter = tf.Variable(0, dtype=tf.int64, name="train_step")
        super().__init__(time_step_spec, action_spec, policy, collect_policy,
                         train_sequence_length=None,
                         train_step_counter=train_step_counter)

    def value_head_variables(self) -> list[tf.Variable]:
        """The trainable variables of the state-value head (empty without one)."""
        return [variable for layer in self.q_model.layers
                if layer.name.startswith("state_value") for variable in layer.trainable_variables]

    def _initialize(self):
        return tf.no_op()

    def _loss(self, experience, weights=None, training=False):
        """Mean (importance-weighted) squared TD error over whole episodes; no side effects."""
        observations, actions = experience.observation, experience.action
        values = self.q_values(self.q_model, observations, training)              # Q(s_t, .)
        target_values = self.q_values(self.target_model, observations, False)    # Q^-(s_t, .)
        log_prior = tf.nn.log_softmax(self.reward_rnn(observations, training=False))
        mask = kl_control.episode_mask(actions, self.end_token)
        targets, _ = kl_control.episode_td_targets(
            experience.reward, actions, log_prior, target_values, self.c, self.gamma,
            self.algorithm, mask, self.n_step, self._traces(target_values, log_prior, actions))
        targets = tf.stop_gradient(targets)
        taken = tf.gather(values, actions, batch_dims=2)
        td_error = (targets - taken) * mask  # no error after an episode's end
        steps = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        per_episode = tf.reduce_sum(tf.square(td_error), axis=1) / steps
        if weights is not None:
            per_episode = per_episode * weights
        td_loss = loss = tf.reduce_mean(per_episode)
        if self.prior_kl_weight:
            # KL(pi || p) at every visited state, over the whole vocabulary: the TD loss
            # trains only the taken action's value, which leaves the other tokens' logits free
            # to drift.
            log_pi = tf.nn.log_softmax(kl_control.policy_logits(values, log_prior, self.algorithm))
            kl = tf.reduce_sum(tf.exp(log_pi) * (log_pi - log_prior), axis=-1)
            loss += self.prior_kl_weight * tf.reduce_sum(kl * mask) / tf.reduce_sum(steps)
        extra = Diagnostics(td_loss, tf.reduce_sum(taken * mask) / tf.reduce_sum(steps),
                            tf.reduce_sum(tf.abs(td_error), 1) / steps)
        return tf_agent.LossInfo(loss, extra)

    def _traces(self, target_values, log_prior, actions):
        """Retrace's traces for multi-step targets, or None (follow every episode to its end).

        The collect policy that played a replayed episode is estimated by the target network's
        policy with today's epsilon: the traces then mainly cut the exploratory tokens, which
        the replay does not record."""
        if self.off_policy_correction == "none" or self.n_step == 1:
            return None
        probs = kl_control.target_policy(target_values, log_prior, self.algorithm)
        epsilon = self._epsilon() if callable(self._epsilon) else self._epsilon
        return tf.stop_gradient(kl_control.retrace_traces(
            probs, actions, self.exploration, tf.cast(epsilon, probs.dtype)))

    def q_values(self, network: keras.Model, observations, training: bool = False):
        """Q(s_t, .) [B, T, V] of the Q-network or the target network."""
        if self.q_init == "logits":
            return network(observations, training=training)
        logits, value = network(observations, training=training)
        return tf.nn.log_softmax(logits) + value

    def _train(self, experience, weights=None):
        scaling = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            loss_info = self._loss(experience, weights, training=True)
            loss = self.optimizer.get_scaled_loss(loss_info.loss) if scaling else loss_info.loss
        variables = self.q_model.trainable_variables
        gradients = tape.gradient(loss, variables)
        if scaling:  # (the optimizer skips a step whose gradients are not finite)
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        if self._clip_norm:
            gradients, _ = tf.clip_by_global_norm(gradients, self._clip_norm)
        pairs = list(zip(gradients, variables))
        if self.value_optimizer is None:
            self.optimizer.apply_gradients(pairs)
        else:
            head = {variable.ref() for variable in self.value_head_variables()}
            self.optimizer.apply_gradients([p for p in pairs if p[1].ref() not in head])
            value_pairs = [p for p in pairs if p[1].ref() in head]
            if scaling:  # a step skipped, as the LossScaleOptimizer skips it, on overflow
                finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g))
                                        for g, _ in value_pairs])
                tf.cond(finite, lambda: self.value_optimizer.apply_gradients(value_pairs),
                        lambda: self.value_optimizer.iterations.assign_add(1))
            else:
                self.value_optimizer.apply_gradients(value_pairs)
        self._update_target()
        self.train_step_counter.assign_add(1)
        return loss_info

    def _update_target(self):
        """Polyak averaging: theta^- <- (1 - eta) theta^- + eta theta."""
        for target, source in zip(self.target_model.weights, self.q_model.weights):
            target.assign((1.0 - self.eta) * target + self.eta * source)

    def sampling_policy(self, temperature: float = 1.0,
                        precision: str | None = None) -> SequencePolicy:
        """The policy used for generation: softmax over Q or Psi; p(a|s) exp(G) for G. With
        ``precision``, over copies of the networks (current weights) under that dtype policy:
        the saved policy is float32 whatever the tuning precision."""
        values, prior = self.q_network, self.reward_rnn
        if precision is not None:
            values, prior = (sequence_model.with_dtype_policy(network, precision)
                             for network in (values, prior))
        return SequencePolicy(values, prior, self.algorithm, temperature,
                              name="sampling_policy")


def epsilon_schedule(env_steps, start: float, final: float, anneal_steps: int) -> float:
    """Linear anneal from ``start`` to ``final`` over ``anneal_steps`` environment steps."""
    if anneal_steps <= 0:
        return final
    fraction = min(1.0, env_steps / anneal_steps)
    return float(start + fraction * (final - start))


def log_prior_of(reward_rnn: keras.Model, observations, actions):
    """log p(a_t | s_t) under the Reward RNN for whole episodes [B, T] (one pass)."""
    log_prior = tf.nn.log_softmax(reward_rnn(observations, training=False))
    return tf.gather(log_prior, tf.cast(actions, tf.int32), batch_dims=2)


def numpy_seed(seed: int, *salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, *salt])
