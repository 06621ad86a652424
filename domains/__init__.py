"""Domain knowledge (vocabulary, encoding, task reward, statistics), one module per domain.

A domain object offers:

- ``name``, ``num_tokens``, ``end_token`` (None: fixed-length episodes), ``statistic_keys``,
  ``details_key`` and ``sample_suffix``;
- ``episode_length(configured)``, ``priming_tokens(rng, count)`` (the input before the first
  action), ``step_mask(actions)`` (the steps inside each episode), ``task_reward(actions [B, T])
  -> [B, T]``;
- for evaluation: ``evaluate(actions, log_prior) -> (statistics, details)``,
  ``data_episodes(records, length, limit)``, ``write_samples(stem, actions)`` and
  ``samples_html(name, actions)``;
- for the tuning curves: ``curve_fields`` and ``curve_point(actions) -> dict`` (the mean r_T
  per episode, plus the domain's own figures such as the molecules' validity);
- ``close()`` (and ``with domain:``), which releases what it holds (the molecule domain's RDKit
  scoring processes): the :class:`Domain` base class gives the protocol and the defaults.

A new domain is a new module plus an entry in ``_DOMAINS`` (and its config class in
``pipeline/config.py``).
"""



class Domain:
    """Base of every domain: a context manager whose ``close`` releases the domain's resources
    (none unless a domain overrides it), and the default tuning-curve statistics."""

    # The statistics of each tuning-curve point that the domain adds to the mean r_T.
    curve_fields: tuple[str, ...] = ()

    def curve_point(self, actions) -> dict[str, float]:
        """Statistics of episodes sampled from the policy: ``mean_task_reward`` (r_T summed
        over each episode, averaged) and the ``curve_fields``."""
        return {"mean_task_reward": float(self.task_reward(actions).sum(axis=1).mean())}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _melody(reward_config, vocab, data_dir):
    from seqtutor.domains.melody.domain import MelodyDomain
    return MelodyDomain(reward_config, vocab, data_dir)


def _molecule(reward_config, vocab, data_dir):
    from seqtutor.domains.molecule.domain import MoleculeDomain
    if vocab is None:
        raise ValueError("the molecule domain needs the dataset's vocabulary (vocab.json)")
    return MoleculeDomain(reward_config, vocab, data_dir)


_DOMAINS = {"melody": _melody, "molecule": _molecule}


def get_domain(name: str, reward_config, vocab: dict | None = None, data_dir=None):
    """The domain object for ``name`` with its reward options, the dataset's vocabulary and
    (for statistics against the training data, such as novelty) the dataset directory."""
    if name not in _DOMAINS:
        raise ValueError(f"unknown domain {name!r}; known: {', '.join(_DOMAINS)}")
    return _DOMAINS[name](reward_config, vocab, data_dir)
