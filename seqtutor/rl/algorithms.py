"""The algorithm table: one entry per KL-regularised algorithm the tuner knows.

Q-learning with log prior (Jaques et al. 2017, Eq. 3-5), generalised Psi-learning (Eq. 13-14),
G-learning (Eq. 15) and the RL-only baseline are off-policy: they share one agent
(``seqtutor.rl.agent``), the replay, the collection and the samplers, and differ in exactly the
fields of :class:`Algorithm`: how much of log p(a|s) is in the per-step reward, the value of the
next state in the TD target, how the policy's logits come from the values and the prior, and
how the values start. REINVENT's DAP and REINFORCE leave-one-out with a KL penalty are
on-policy and sequence-level: each is an agent of its own (``seqtutor.rl.sequence_agents``),
named by the entry's ``agent`` field, trained on the batch of whole episodes it has just played.
For undiscounted episodes (gamma 1), all but RL-only aim at the same policy,
pi* proportional to p(x) exp(r_T(x) / c).

Config validation, the tuner, the evaluation, generation and the report all read this table,
so a new algorithm is one :func:`register` call (or an entry point of the group
``seqtutor.algorithms``)::

    register(dataclasses.replace(get("q"), name="q2x", prior_reward_weight=2.0))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from seqtutor import plugins

# TensorFlow is imported where a method computes, not here: config validation reads the table,
# and loading a config (or `seqtutor --help`) should not wait for TensorFlow.

Q_INITS = ("logits", "log_prior")
KL_CONTROL_AGENT = "seqtutor.rl.agent:SequenceTutorAgent"


def max_value(values, log_prior):
    """max_a Q(s', a): Q-learning's and RL-only's next-state value."""
    from seqtutor.rl import kl_control
    return kl_control.max_value(values)


def soft_value(values, log_prior):
    """logsumexp_a Psi(s', a): Psi-learning's next-state value (Eq. 14)."""
    from seqtutor.rl import kl_control
    return kl_control.soft_value(values)


def prior_weighted_value(values, log_prior):
    """log sum_a p(a|s') exp(G(s', a)): G-learning's next-state value (Eq. 15)."""
    from seqtutor.rl import kl_control
    return kl_control.prior_weighted_value(values, log_prior)


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """One KL-control algorithm.

    Attributes:
      name: the name in configs (``tune.algorithms``), artifacts (``tune/<name>/``) and metrics.
      prior_reward_weight: w in the per-step reward r_t = r_T / c + w log p(a_t|s_t).
      next_value: (target values [..., V], log p [..., V]) -> V(s') [...], the value of the
        next state under the target network.
      policy_prior_weight: k in the policy's logits = values + k log p(a|s); 0 samples
        softmax(values), 1 samples p(a|s) exp(values). Where k is not 0 the policy needs the
        prior at every step (sampling runs both networks).
      greedy_backup: the next-state value is a max, so the backup follows the greedy policy
        (Retrace's target policy is then greedy, else the policy itself).
      zero_start: the values add to k log p, so they start at 0 (the policy then starts at the
        prior) instead of at the pretrained logits.
      starts: the ``tune.q_init`` values it allows.
      description: one line for docs and errors.
      agent: the import path ``module:Class`` of its TF-Agents agent. The value-based fields
        above are read by the KL-control agent; an on-policy agent reads only
        ``policy_prior_weight`` (its policy is the softmax of its logits: 0).
      on_policy: the agent trains once on each batch of episodes its collect policy has just
        played (no replay) instead of on replayed episodes.
    """

    name: str
    prior_reward_weight: float = 0.0
    next_value: Callable | None = None
    policy_prior_weight: float = 0.0
    greedy_backup: bool = False
    zero_start: bool = False
    starts: tuple[str, ...] = Q_INITS
    description: str = ""
    agent: str = KL_CONTROL_AGENT
    on_policy: bool = False

    def __post_init__(self):
        unknown = set(self.starts) - set(Q_INITS)
        if not self.starts or unknown:
            raise ValueError(f"algorithm {self.name!r}: starts must be a non-empty subset of "
                             f"{Q_INITS}, got {self.starts}")
        if self.next_value is None and not self.on_policy:
            raise ValueError(f"algorithm {self.name!r}: an off-policy algorithm needs next_value")

    def agent_class(self) -> type:
        """The TF-Agents agent class that trains this algorithm."""
        return plugins.load_object(self.agent)

    @property
    def needs_prior(self) -> bool:
        """Whether the policy's logits read the prior (sampling then runs both networks)."""
        return self.policy_prior_weight != 0

    def reward(self, r_task, log_prior_taken, c: float):
        """Per-step reward: r_T / c + w log p(a|s)."""
        reward = r_task / c
        if self.prior_reward_weight:
            reward = reward + self.prior_reward_weight * log_prior_taken
        return reward

    def policy_logits(self, values, log_prior):
        """Logits of the policy: softmax(Q) or softmax(Psi); log p(a|s) + G(s, a) for G."""
        import tensorflow as tf

        if not self.policy_prior_weight:
            return values
        return values + self.policy_prior_weight * tf.cast(log_prior, values.dtype)

    def target_policy(self, target_values, log_prior):
        """Probabilities [..., V] of the policy whose value the backup estimates: greedy where
        the next-state value is a max, else the policy itself."""
        import tensorflow as tf

        if self.greedy_backup:
            return tf.one_hot(tf.argmax(target_values, axis=-1), tf.shape(target_values)[-1],
                              dtype=target_values.dtype)
        return tf.nn.softmax(self.policy_logits(target_values, log_prior))


Q = Algorithm("q", prior_reward_weight=1.0, next_value=max_value, policy_prior_weight=0.0,
              greedy_backup=True,
              description="Q-learning with log prior augmentation (Eq. 3-5)")
PSI = Algorithm("psi", prior_reward_weight=1.0, next_value=soft_value, policy_prior_weight=0.0,
                greedy_backup=False, description="generalised Psi-learning (Eq. 13-14)")
G = Algorithm("g", prior_reward_weight=0.0, next_value=prior_weighted_value,
              policy_prior_weight=1.0, greedy_backup=False, zero_start=True,
              description="G-learning (Eq. 15)")
RL_ONLY = Algorithm("rl_only", prior_reward_weight=0.0, next_value=max_value,
                    policy_prior_weight=0.0, greedy_backup=True,
                    description="Q-learning on the task reward alone (the baseline)")

DAP = Algorithm("dap", agent="seqtutor.rl.sequence_agents:DapAgent", on_policy=True,
                description="REINVENT's DAP: (log p(x) + r_T(x) / c - log pi(x))^2 "
                "on whole sequences (sigma = 1 / c)")
RLOO_KL = Algorithm("rloo_kl", agent="seqtutor.rl.sequence_agents:RlooKlAgent", on_policy=True,
                    description="REINFORCE leave-one-out on r_T(x) - c log(pi(x) / p(x)) "
                    "(TRL's RLOO, beta = c)")

# Names of the other rows of evaluate's metrics and report.
RESERVED_NAMES = ("mle", "data")

# The table, in the order the report shows the algorithms (and the tuner salts its seeds).
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (Q, PSI, G, RL_ONLY, DAP, RLOO_KL)}


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm`` to the table (a name already there is an error)."""
    if not isinstance(algorithm, Algorithm):
        raise TypeError(f"not an Algorithm: {algorithm!r}")
    if algorithm.name in ALGORITHMS or algorithm.name in RESERVED_NAMES:
        raise ValueError(f"algorithm {algorithm.name!r} is already defined")
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def unregister(name: str) -> None:
    """Remove a registered algorithm (for tests)."""
    ALGORITHMS.pop(name, None)


def get(name: str) -> Algorithm:
    """The table's entry for ``name`` (entry points included); raises
    plugins.PluginNotFoundError (a ValueError) naming the known ones."""
    return plugins.algorithm(name)


def names() -> tuple[str, ...]:
    """Every algorithm's name, in the table's order."""
    return tuple(plugins.algorithm_table())
