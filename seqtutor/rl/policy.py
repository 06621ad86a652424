"""The tuned model's policy: a TF-Agents ``TFPolicy`` over the step-wise LSTM, and the batched
sampler of a saved model (evaluate, generate).

The policy is a categorical distribution over the next token with the algorithm's logits
(softmax over Q or Psi; p(a|s) exp(G) for G: the algorithm table says which). The collect
policy wraps it in TF-Agents' ``GreedyPolicy`` + ``EpsilonGreedyPolicy``, samples it (Boltzmann
exploration) or mixes in uniform tokens (epsilon-Boltzmann); either way the stored action is
the one taken.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.policies import tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import policy_step, time_step as ts

from seqtutor import artifacts, layout, sequence_model, sweep, tfrecords
from seqtutor.config import MLE_MODEL
from seqtutor.rl import algorithms

keras = tf.keras


def specs(vocab_size: int):
    """(time_step_spec, action_spec): the observation is the previous token."""
    token = tensor_spec.BoundedTensorSpec((), tf.int32, 0, vocab_size - 1, name="token")
    return ts.time_step_spec(token), token


class SequencePolicy(tf_policy.TFPolicy):
    """Samples the next token from the algorithm's policy, one step at a time.

    ``network`` is the sequence model whose outputs are the values; the state holds its LSTM
    state and, where the algorithm's policy reads the prior (G), the prior's.
    """

    def __init__(self, network: keras.Model, prior: keras.Model,
                 algorithm: algorithms.Algorithm, temperature: float = 1.0, epsilon=None,
                 name: str | None = None):
        self._algorithm = algorithm
        # With epsilon (a float or a callable returning one), a uniform token with probability
        # epsilon, else a policy sample: TF-Agents' EpsilonGreedyPolicy always wraps its policy
        # in a GreedyPolicy, and greedy decoding from one start token (BOS) plays the same
        # episode every time.
        self._epsilon = epsilon
        self._network = sequence_model.StepModel(network)
        self._prior = sequence_model.StepModel(prior) if algorithm.needs_prior else None
        self._temperature = temperature
        state_spec = self._state_spec(self._network)
        if self._prior is not None:
            state_spec += self._state_spec(self._prior)
        time_step_spec, action_spec = specs(self._network.vocab_size)
        super().__init__(time_step_spec, action_spec, policy_state_spec=state_spec,
                         automatic_state_reset=False, name=name)

    @staticmethod
    def _state_spec(step_model) -> tuple:
        spec = ()
        for layer in step_model.lstms:
            spec += (tf.TensorSpec((layer.units,), tf.float32),) * 2
        return spec

    def _variables(self):
        variables = list(self._network.model.variables)
        if self._prior is not None:
            variables += list(self._prior.model.variables)
        return variables

    def _distribution(self, time_step, policy_state):
        n = 2 * len(self._network.lstms)
        values, state = self._network.step(time_step.observation, policy_state[:n])
        log_prior = None
        if self._prior is not None:
            prior_logits, prior_state = self._prior.step(time_step.observation, policy_state[n:])
            log_prior = tf.nn.log_softmax(prior_logits)
            state = state + prior_state
        logits = self._algorithm.policy_logits(values, log_prior) / self._temperature
        if self._epsilon is None:
            distribution = tfp.distributions.Categorical(logits=logits, dtype=tf.int32)
        else:
            epsilon = self._epsilon() if callable(self._epsilon) else self._epsilon
            probs = (1.0 - epsilon) * tf.nn.softmax(logits) + epsilon / self._network.vocab_size
            distribution = tfp.distributions.Categorical(probs=probs, dtype=tf.int32)
        return policy_step.PolicyStep(distribution, state, ())


def load_sampler(pretrain_dir: str | Path, tune_dir: str | Path | None,
                 model: str) -> sequence_model.PolicySampler | None:
    """The batched sampler of ``model``: ``mle`` (softmax of the pretrained logits) or an
    algorithm's tuned policy (as :class:`SequencePolicy`, scored under the prior); None when
    that algorithm has not been tuned.

    Raises:
      plugins.PluginNotFoundError: ``model`` is neither mle nor an algorithm.
    """
    vocab = tfrecords.read_vocab(pretrain_dir)
    prior = sequence_model.load_model(pretrain_dir, vocab)
    if model == MLE_MODEL:
        return sequence_model.PolicySampler(prior)
    algorithm = algorithms.get(sweep.algorithm_of(model))
    tuned = None if tune_dir is None else layout.tuned_dir(tune_dir, model)
    if tuned is None or artifacts.read_artifact(tuned) is None:  # none, or a damaged record
        return None
    return sequence_model.PolicySampler(sequence_model.load_model(tuned, vocab), prior,
                                        prior_weight=algorithm.policy_prior_weight)
