"""Sequence Tutor's agent on TF-Agents: Q, Psi, G and RL-only trained on whole episodes.

:class:`SequenceTutorAgent` is a ``TFAgent``: ``_loss`` computes the TD loss on whole episodes
(one unroll per network, :func:`kl_control.episode_td_targets`) and has no side effects;
``_train`` applies the gradients and the Polyak target update. What differs between the
algorithms comes from their entry in the algorithm table (``seqtutor.rl.algorithms``).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.policies import epsilon_greedy_policy, policy_saver

from seqtutor import sequence_model
from seqtutor.rl import algorithms, kl_control
from seqtutor.rl.policy import SequencePolicy, specs

keras = tf.keras

Diagnostics = collections.namedtuple("Diagnostics", ["td_loss", "mean_value", "td_abs"])


def learning_rate(options):
    """Adam's rate: a float when it is constant (``lr_decay_rate`` 1), which keeps checkpoints
    written before the schedule existed restorable (a schedule adds an optimizer variable)."""
    if options.lr_decay_rate == 1.0:
        return options.learning_rate
    return sequence_model.learning_rate_schedule(options)


def make_optimizer(options) -> keras.optimizers.Optimizer:
    """Adam at the tune options' rate, with loss scaling under mixed_float16 (float16
    gradients underflow without it)."""
    optimizer = keras.optimizers.Adam(learning_rate(options))
    if sequence_model.precision_policy(options.mixed_precision) == "mixed_float16":
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer


def is_loss_scaled(optimizer) -> bool:
    return isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)


def loss_gradients(loss_fn, optimizer, variables, clip_norm: float | None):
    """(loss_fn()'s LossInfo, the gradients of its loss for ``variables``): loss-scaled under
    mixed_float16 (the optimizer then skips a step whose gradients are not finite) and clipped
    to the global norm ``clip_norm``."""
    scaling = is_loss_scaled(optimizer)
    with tf.GradientTape() as tape:
        loss_info = loss_fn()
        loss = optimizer.get_scaled_loss(loss_info.loss) if scaling else loss_info.loss
    gradients = tape.gradient(loss, variables)
    if scaling:
        gradients = optimizer.get_unscaled_gradients(gradients)
    if clip_norm:
        gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
    return loss_info, gradients


def in_precision(pretrained: keras.Model, options) -> keras.Model:
    """The pretrained model under the tune options' dtype policy: the networks compute in 16
    bits where it says so, their weights stay float32."""
    precision = sequence_model.precision_policy(options.mixed_precision)
    if precision == "float32":
        return pretrained
    return sequence_model.with_dtype_policy(pretrained, precision)


class PolicyExport:
    """The sampling policy of a tuned agent and its export; the agent has ``policy_network``,
    ``reward_rnn`` and ``algorithm``."""

    # Episodes of one prompt (priming token) per collection; the tuner repeats each prompt this
    # often (RLOO-KL: k).
    episodes_per_prompt = 1

    def sampling_policy(self, temperature: float = 1.0,
                        precision: str | None = None) -> SequencePolicy:
        """The policy used for generation: the algorithm's logits from the policy network (and
        the prior, for G). With ``precision``, over copies of the networks (current weights)
        under that dtype policy: the saved policy is float32 whatever the tuning precision."""
        network, prior = self.policy_network, self.reward_rnn
        if precision is not None:
            network, prior = (sequence_model.with_dtype_policy(model, precision)
                              for model in (network, prior))
        return SequencePolicy(network, prior, self.algorithm, temperature,
                              name="sampling_policy")

    def save_policy(self, path) -> None:
        """Export the sampling policy with TF-Agents' PolicySaver, in float32 whatever the
        tuning precision (any batch size)."""
        policy_saver.PolicySaver(self.sampling_policy(precision="float32"),
                                 batch_size=None).save(str(path))


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


def zero_logits(model: keras.Model) -> None:
    """Set the output layer of a sequence model to 0: its outputs start at 0 for every token."""
    for weight in model.get_layer("logits").weights:
        weight.assign(tf.zeros_like(weight))


def clone(model: keras.Model, trainable: bool = True) -> keras.Model:
    """A copy of a sequence model with the same weights (built, ready to run)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.trainable = trainable
    return copy


class SequenceTutorAgent(PolicyExport, tf_agent.TFAgent):
    """Q-learning with log prior (Eq. 3-5), generalised Psi-learning (Eq. 13-14), G-learning
    (Eq. 15), RL-only, or any other entry of the algorithm table, trained on whole episodes.

    Networks: ``policy_network`` (the sequence model whose outputs are the values; saved as the
    tuned model), ``q_network`` (Q(s, .): the policy network, plus a state value v(s) with
    ``q_init`` log_prior), its Polyak copy ``target_network``, and ``reward_rnn``, the frozen
    prior (not even optimizer slots exist for it). All start from the pretrained model.

    Args:
      pretrained: the MLE sequence model.
      algorithm: the algorithm table's entry (``seqtutor.rl.algorithms``).
      options: the tune options (``seqtutor.config.TuneConfig``), already validated.
      epsilon: the collect policy's epsilon: a float or a callable returning one.
      end_token: episodes end at this action (None: fixed length).
      train_step_counter: the gradient-step counter (default: a new variable).
    """

    def __init__(self, pretrained: keras.Model, algorithm: algorithms.Algorithm, options, *,
                 epsilon=0.1, end_token: int | None = None,
                 train_step_counter: tf.Variable | None = None):
        self.algorithm, self.options = algorithm, options
        self.end_token = end_token
        self._epsilon = epsilon
        if algorithm.on_policy:
            raise ValueError(f"algorithm {algorithm.name!r} is on-policy: its agent is "
                             f"{algorithm.agent}")
        pretrained = in_precision(pretrained, options)
        self.policy_network = clone(pretrained)
        target_policy_network = clone(pretrained, trainable=False)
        self.reward_rnn = clone(pretrained, trainable=False)
        if algorithm.zero_start:
            # Values that add to log p (G) start at 0, so the policy p exp(G) starts at p.
            for network in (self.policy_network, target_policy_network):
                zero_logits(network)
        # q_init "logits": Q starts as the pretrained logits (the paper, the reference code).
        # "log_prior": Q(s, a) = log_softmax(logits) + v(s) with v = 0 at the start, so Q
        # starts as log p(a|s) and the soft state value at 0, its value without task reward;
        # from logits, V(s) starts at logsumexp(logits) (about +8 for SMILES), which makes
        # continuing look better than any terminal reward when gamma is near 1. The policy
        # does not depend on v(s), so the saved policy network is the whole policy either way.
        if options.q_init == "log_prior":
            self.q_network = with_state_value(self.policy_network, options.detach_value_head,
                                              options.value_head_units)
            self.target_network = with_state_value(target_policy_network,
                                                   options.detach_value_head,
                                                   options.value_head_units)
            self.target_network.trainable = False
            # The target starts as a copy, value head included (its hidden layers are random).
            self.target_network.set_weights(self.q_network.get_weights())
        else:
            self.q_network, self.target_network = self.policy_network, target_policy_network
        self.optimizer = make_optimizer(options)
        # With value_learning_rate, the value head's layers have an Adam of their own.
        self.value_optimizer = None
        if options.value_learning_rate is not None:
            self.value_optimizer = keras.optimizers.Adam(options.value_learning_rate)
            # Its slots exist before the first step, which may skip it (see _train).
            self.value_optimizer.build(self.value_head_variables())
        policy = SequencePolicy(self.policy_network, self.reward_rnn, algorithm, name="policy")
        if options.exploration == "boltzmann":
            collect_policy = policy
        elif options.exploration == "epsilon_boltzmann":
            collect_policy = SequencePolicy(self.policy_network, self.reward_rnn, algorithm,
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

    def checkpoint_objects(self) -> dict:
        """What a checkpoint of the tuner holds of this agent (beside the replay and counters)."""
        objects = {"q_network": self.q_network, "target_network": self.target_network,
                   "optimizer": self.optimizer}
        if self.value_optimizer is not None:  # so a checkpoint written without it restores
            objects["value_optimizer"] = self.value_optimizer
        return objects

    def value_head_variables(self) -> list[tf.Variable]:
        """The trainable variables of the state-value head (empty without one)."""
        return [variable for layer in self.q_network.layers
                if layer.name.startswith("state_value") for variable in layer.trainable_variables]

    def _initialize(self):
        return tf.no_op()

    def _loss(self, experience, weights=None, training=False):
        """Mean (importance-weighted) squared TD error over whole episodes; no side effects."""
        observations, actions = experience.observation, experience.action
        options = self.options
        values = self.q_values(self.q_network, observations, training)            # Q(s_t, .)
        target_values = self.q_values(self.target_network, observations, False)  # Q^-(s_t, .)
        log_prior = tf.nn.log_softmax(self.reward_rnn(observations, training=False))
        mask = kl_control.episode_mask(actions, self.end_token)
        targets, _ = kl_control.episode_td_targets(
            experience.reward, actions, log_prior, target_values, options.c, options.gamma,
            self.algorithm, mask, options.n_step,
            self._traces(target_values, log_prior, actions))
        targets = tf.stop_gradient(targets)
        taken = tf.gather(values, actions, batch_dims=2)
        td_error = (targets - taken) * mask  # no error after an episode's end
        steps = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        per_episode = tf.reduce_sum(tf.square(td_error), axis=1) / steps
        if weights is not None:
            per_episode = per_episode * weights
        td_loss = loss = tf.reduce_mean(per_episode)
        if options.prior_kl_weight:
            # KL(pi || p) at every visited state, over the whole vocabulary: the TD loss
            # trains only the taken action's value, which leaves the other tokens' logits free
            # to drift.
            log_pi = tf.nn.log_softmax(self.algorithm.policy_logits(values, log_prior))
            kl = tf.reduce_sum(tf.exp(log_pi) * (log_pi - log_prior), axis=-1)
            loss += options.prior_kl_weight * tf.reduce_sum(kl * mask) / tf.reduce_sum(steps)
        extra = Diagnostics(td_loss, tf.reduce_sum(taken * mask) / tf.reduce_sum(steps),
                            tf.reduce_sum(tf.abs(td_error), 1) / steps)
        return tf_agent.LossInfo(loss, extra)

    def _traces(self, target_values, log_prior, actions):
        """Retrace's traces for multi-step targets, or None (follow every episode to its end).

        The collect policy that played a replayed episode is estimated by the target network's
        policy with today's epsilon: the traces then mainly cut the exploratory tokens, which
        the replay does not record."""
        if self.options.off_policy_correction == "none" or self.options.n_step == 1:
            return None
        probs = self.algorithm.target_policy(target_values, log_prior)
        epsilon = self._epsilon() if callable(self._epsilon) else self._epsilon
        return tf.stop_gradient(kl_control.retrace_traces(
            probs, actions, self.options.exploration, tf.cast(epsilon, probs.dtype)))

    def q_values(self, network: keras.Model, observations, training: bool = False):
        """Q(s_t, .) [B, T, V] of the Q-network or the target network."""
        if self.options.q_init == "logits":
            return network(observations, training=training)
        logits, value = network(observations, training=training)
        return tf.nn.log_softmax(logits) + value

    def _train(self, experience, weights=None):
        scaling = is_loss_scaled(self.optimizer)
        variables = self.q_network.trainable_variables
        loss_info, gradients = loss_gradients(
            lambda: self._loss(experience, weights, training=True), self.optimizer, variables,
            self.options.clip_norm)
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
        eta = self.options.eta
        for target, source in zip(self.target_network.weights, self.q_network.weights):
            target.assign((1.0 - eta) * target + eta * source)
