"""Domain knowledge (vocabulary, encoding, task reward, statistics), one module per domain.

A domain object offers ``name``, ``num_tokens``, ``priming_tokens(rng, count)`` and
``task_reward(compositions [B, T]) -> [B, T]``; a new domain is a new module plus an entry in
``_DOMAINS``.
"""

from pipeline import _legacy_keras  # noqa: F401  (must run before TensorFlow is imported)


def _melody(reward_config):
    from domains.melody.domain import MelodyDomain
    return MelodyDomain(reward_config)


_DOMAINS = {"melody": _melody}


def get_domain(name: str, reward_config):
    """The domain object for ``name`` with its reward options."""
    if name not in _DOMAINS:
        raise ValueError(f"unknown domain {name!r}; known: {', '.join(_DOMAINS)}")
    return _DOMAINS[name](reward_config)
