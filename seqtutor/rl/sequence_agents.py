"""Sequence-level KL-regularised fine-tuning as TF-Agents agents: REINVENT's DAP and REINFORCE
leave-one-out with a KL penalty (RLOO, as TRL tunes language models).

Both are on-policy: each gradient step uses the batch of whole episodes that the policy itself
has just played (``Tuner`` collects it; there is no replay), and scores each sequence x by

- its task reward r_T(x), the sum of the domain's per-step rewards over the episode;
- log pi(x) = sum_t log pi(a_t|s_t) under the policy being tuned;
- log p(x) = sum_t log p(a_t|s_t) under the frozen prior (the Reward RNN).

For undiscounted episodes both aim at the distribution KL-control aims at,
pi*(x) proportional to p(x) exp(r_T(x) / c):

- DAP (Olivecrona et al. 2017; REINVENT 4's default) regresses log pi(x) on the augmented
  likelihood log p(x) + sigma r_T(x): loss (log p(x) + r_T(x) / c - log pi(x))^2, sigma = 1 / c.
  Optionally it replays REINVENT's experience memory, the best sequences so far.
- RLOO-KL (Ahmadian et al. 2024; TRL's RLOOTrainer) follows the policy gradient of
  E[r_T(x) - c log(pi(x) / p(x))], with the mean reward of the other k - 1 samples of the same
  prompt as each sample's baseline; beta = c.
"""

from __future__ import annotations

import collections

import tensorflow as tf
from tf_agents.agents import tf_agent

from seqtutor import sequence_model
from seqtutor.rl import algorithms, kl_control
from seqtutor.rl.agent import PolicyExport, clone, in_precision, loss_gradients, make_optimizer
from seqtutor.rl.policy import SequencePolicy, specs

keras = tf.keras

# mean_value: the mean of r_T(x) / c + log p(x) - log pi(x), the batch's estimate of the soft
# value of the start state that KL-control's values estimate (the tuner's NaN guard reads it).
SequenceDiagnostics = collections.namedtuple(
    "SequenceDiagnostics", ["mean_value", "mean_log_policy", "mean_log_prior", "mean_score"])


class SequenceLevelAgent(PolicyExport, tf_agent.TFAgent):
    """An on-policy agent trained on whole sequences; subclasses give the per-sequence loss.

    Networks: ``policy_network`` (the sequence model whose softmax is the policy; saved as the
    tuned model) and ``reward_rnn``, the frozen prior. Both start from the pretrained model, so
    the policy starts at the prior. The collect policy is the policy itself: ``tune``'s
    exploration options belong to the replayed algorithms.

    Args:
      pretrained: the MLE sequence model.
      algorithm: the algorithm table's entry (``seqtutor.rl.algorithms``), on-policy.
      options: the tune options (``seqtutor.config.TuneConfig``), already validated.
      end_token: episodes end at this action (None: fixed length).
      episode_length: steps per episode (the experience memory's width).
      train_step_counter: the gradient-step counter (default: a new variable).
    """

    def __init__(self, pretrained: keras.Model, algorithm: algorithms.Algorithm, options, *,
                 end_token: int | None = None, episode_length: int | None = None,
                 train_step_counter: tf.Variable | None = None):
        if not algorithm.on_policy or algorithm.needs_prior:
            raise ValueError(f"algorithm {algorithm.name!r} is not an on-policy algorithm whose "
                             "policy is the softmax of its logits")
        self.algorithm, self.options = algorithm, options
        self.end_token = end_token
        self.episode_length = episode_length
        pretrained = in_precision(pretrained, options)
        self.policy_network = clone(pretrained)
        self.reward_rnn = clone(pretrained, trainable=False)
        self.optimizer = make_optimizer(options)
        policy = SequencePolicy(self.policy_network, self.reward_rnn, algorithm, name="policy")
        time_step_spec, action_spec = specs(sequence_model.vocab_size_of(pretrained))
        if train_step_counter is None:  # never the process-wide global step (see agent.py)
            train_step_counter = tf.Variable(0, dtype=tf.int64, name="train_step")
        super().__init__(time_step_spec, action_spec, policy, policy,
                         train_sequence_length=None, train_step_counter=train_step_counter)

    def checkpoint_objects(self) -> dict:
        """What a checkpoint of the tuner holds of this agent (beside the counters)."""
        return {"policy_network": self.policy_network, "optimizer": self.optimizer}

    def _initialize(self):
        return tf.no_op()

    def log_policy(self, observations, actions, training: bool = False):
        """log pi(x) [B] under the policy being tuned, summed over each episode's steps.

        Always without dropout (``training`` is accepted for TF-Agents' signature): the
        episodes were sampled without it, and the losses compare log pi with log p of the same
        sequences."""
        mask = kl_control.episode_mask(actions, self.end_token)
        logits = tf.cast(self.policy_network(observations, training=False), tf.float32)
        log_policy = tf.gather(tf.nn.log_softmax(logits), actions, batch_dims=2)
        return tf.reduce_sum(log_policy * mask, axis=1)

    def prior_and_score(self, observations, actions, rewards):
        """(log p(x), r_T(x)), each [B]: the prior's log-likelihood and the task reward, summed
        over each episode's steps."""
        mask = kl_control.episode_mask(actions, self.end_token)
        log_prior = sequence_model.log_prior_of(self.reward_rnn, observations, actions)
        return (tf.reduce_sum(tf.cast(log_prior, tf.float32) * mask, axis=1),
                tf.reduce_sum(tf.cast(rewards, tf.float32) * mask, axis=1))

    def sequence_terms(self, observations, actions, rewards, training: bool = False):
        """(log pi(x), log p(x), r_T(x)), each [B], summed over each episode's steps."""
        return (self.log_policy(observations, actions, training),
                *self.prior_and_score(observations, actions, rewards))

    def sequence_loss(self, log_policy, log_prior, score):
        """The loss of each sequence [B] (the batch's loss is their mean)."""
        raise NotImplementedError

    def extra_losses(self, training: bool):
        """Losses [N] of sequences beside the batch's, averaged with them (DAP's memory)."""
        return tf.zeros([0])

    def _loss(self, experience, weights=None, training=False):
        """Mean per-sequence loss over the batch of whole episodes; no side effects."""
        log_policy, log_prior, score = self.sequence_terms(
            experience.observation, experience.action, experience.reward, training)
        per_sequence = self.sequence_loss(log_policy, log_prior, score)
        if weights is not None:
            per_sequence = per_sequence * weights
        loss = tf.reduce_mean(tf.concat([per_sequence, self.extra_losses(training)], axis=0))
        value = score / self.options.c + log_prior - log_policy
        extra = SequenceDiagnostics(*(tf.reduce_mean(tf.stop_gradient(x))
                                      for x in (value, log_policy, log_prior, score)))
        return tf_agent.LossInfo(loss, extra)

    def _train(self, experience, weights=None):
        variables = self.policy_network.trainable_variables
        loss_info, gradients = loss_gradients(
            lambda: self._loss(experience, weights, training=True), self.optimizer, variables,
            self.options.clip_norm)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self.after_step(experience)
        self.train_step_counter.assign_add(1)
        return loss_info

    def after_step(self, experience) -> None:
        """Side effects of a training step beside its gradients (DAP's memory)."""


class ExperienceMemory(tf.Module):
    """REINVENT's experience ("inception") memory: the ``size`` highest-scoring distinct
    sequences seen so far, each with its task reward and log-likelihood under the prior, as
    stored when it was played (REINVENT does not rescore either). ``sample`` draws up to
    ``samples`` of them, uniformly and without replacement. REINVENT keeps valid SMILES only;
    here the ranking by r_T does that, as an invalid molecule scores below a valid one."""

    def __init__(self, size: int, samples: int, length: int, name: str = "experience_memory"):
        super().__init__(name=name)
        self.capacity, self.samples = size, samples
        self.observations = tf.Variable(tf.zeros([size, length], tf.int32))
        self.actions = tf.Variable(tf.zeros([size, length], tf.int32))
        self.masks = tf.Variable(tf.zeros([size, length], tf.float32))  # 1 inside the episode
        self.scores = tf.Variable(tf.zeros([size], tf.float32))
        self.log_priors = tf.Variable(tf.zeros([size], tf.float32))
        self.size = tf.Variable(0, dtype=tf.int32)

    def add(self, observations, actions, mask, scores, log_priors):
        """Keep the best distinct sequences of the memory and the batch (the memory's copy
        of a sequence seen again; ties keep the earlier one)."""
        size = self.size.read_value()
        observations = tf.concat([self.observations[:size], observations], axis=0)
        actions = tf.concat([self.actions[:size], actions], axis=0)
        scores = tf.concat([self.scores[:size], tf.cast(scores, tf.float32)], axis=0)
        log_priors = tf.concat([self.log_priors[:size], log_priors], axis=0)
        mask = tf.concat([self.masks[:size], tf.cast(mask, tf.float32)], axis=0)
        # A sequence is its priming token and the tokens of its episode; steps after the end
        # token are not part of it.
        tokens = tf.where(mask > 0, actions, -1)
        keys = tf.strings.reduce_join(
            tf.strings.as_string(tf.concat([observations[:, :1], tokens], axis=1)),
            axis=1, separator=",")
        unique, index = tf.unique(keys)
        first = tf.math.unsorted_segment_min(tf.range(tf.shape(keys)[0]), index,
                                             tf.shape(unique)[0])
        # Sorted by score, then by position: the earlier copy of equal scores first.
        kept = tf.gather(first, tf.argsort(tf.gather(-scores, first), stable=True))
        kept = kept[:self.capacity]
        count = tf.shape(kept)[0]
        slots = tf.range(count)[:, None]
        self.observations.scatter_nd_update(slots, tf.gather(observations, kept))
        self.actions.scatter_nd_update(slots, tf.gather(actions, kept))
        self.masks.scatter_nd_update(slots, tf.gather(mask, kept))
        self.scores.scatter_nd_update(slots, tf.gather(scores, kept))
        self.log_priors.scatter_nd_update(slots, tf.gather(log_priors, kept))
        self.size.assign(count)

    def sample(self):
        """(observations, actions, scores, log_priors) of up to ``samples`` entries."""
        size = self.size.read_value()
        chosen = tf.random.shuffle(tf.range(size))[:tf.minimum(self.samples, size)]
        return (tf.gather(self.observations, chosen), tf.gather(self.actions, chosen),
                tf.gather(self.scores, chosen), tf.gather(self.log_priors, chosen))


class DapAgent(SequenceLevelAgent):
    """REINVENT's DAP: loss (log p(x) + r_T(x) / c - log pi(x))^2 per sequence, so that log pi
    moves to the augmented likelihood log p + sigma r_T with sigma = 1 / c. With
    ``tune.dap_memory_size``, the ``tune.dap_memory_samples`` sequences drawn from the memory of
    the best ones so far join each batch's loss (their log pi under the current policy, their
    stored r_T and log p); the batch joins the memory after the step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.memory = None
        if self.options.dap_memory_size:
            if self.episode_length is None:
                raise ValueError("DAP's experience memory needs the episode length")
            self.memory = ExperienceMemory(self.options.dap_memory_size,
                                           self.options.dap_memory_samples, self.episode_length)

    def checkpoint_objects(self) -> dict:
        objects = super().checkpoint_objects()
        if self.memory is not None:
            objects["experience_memory"] = self.memory
        return objects

    def sequence_loss(self, log_policy, log_prior, score):
        augmented = log_prior + score / self.options.c
        return tf.square(augmented - log_policy)

    def extra_losses(self, training: bool):
        if self.memory is None:
            return tf.zeros([0])
        def sampled_losses():
            observations, actions, scores, log_priors = self.memory.sample()
            log_policy = self.log_policy(observations, actions, training)
            return self.sequence_loss(log_policy, log_priors, scores)

        # An empty memory (the first step) adds no loss, and no empty batch goes through the
        # network.
        return tf.cond(self.memory.size > 0, sampled_losses, lambda: tf.zeros([0]))

    def after_step(self, experience) -> None:
        # As REINVENT: the memory is sampled as it was before the batch, which joins it after
        # the step (on the first step there is nothing to sample).
        if self.memory is None:
            return
        observations, actions = experience.observation, experience.action
        mask = kl_control.episode_mask(actions, self.end_token)
        log_prior, score = self.prior_and_score(observations, actions, experience.reward)
        self.memory.add(observations, actions, mask, score, log_prior)


class RlooKlAgent(SequenceLevelAgent):
    """REINFORCE with a leave-one-out baseline on the KL-penalised reward
    R(x) = r_T(x) - c (log pi(x) - log p(x)) (not differentiated): loss -(R_i - b_i) log pi(x_i),
    b_i the mean R of the other k - 1 samples of the same prompt. A batch holds
    ``tune.collect_episodes / tune.rloo_k`` prompts, each ``tune.rloo_k`` times in a row."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.episodes_per_prompt = self.options.rloo_k
        if self.options.collect_episodes % self.options.rloo_k:
            raise ValueError(f"tune.collect_episodes ({self.options.collect_episodes}) must be a "
                             f"multiple of tune.rloo_k ({self.options.rloo_k})")

    def sequence_loss(self, log_policy, log_prior, score):
        k = self.episodes_per_prompt
        reward = tf.stop_gradient(score - self.options.c * (log_policy - log_prior))
        grouped = tf.reshape(reward, [-1, k])
        baseline = (tf.reduce_sum(grouped, axis=1, keepdims=True) - grouped) / (k - 1)
        advantage = tf.reshape(grouped - baseline, [-1])
        return -advantage * log_policy
