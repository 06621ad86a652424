"""Names to objects for the two extension points: domains and algorithms.

A **domain** named in a config's ``domain:`` key is found, in this order:

1. in the registry (``seqtutor.domains.DOMAINS``: the built-ins, plus ``register_domain``);
2. as an import path ``package.module:ClassName``;
3. as an entry point of the group ``seqtutor.domains`` with that name (a package that declares
   ``entry_points={"seqtutor.domains": ["digits = mypackage.digits:DigitsDomain"]}``).

An **algorithm** named in ``tune.algorithms`` is found in the algorithm table
(``seqtutor.rl.algorithms.ALGORITHMS``, plus its ``register``) or as an entry point of the group
``seqtutor.algorithms`` whose object is an ``Algorithm``.

The registries live in their own layers; this module reaches them by module name, as entry
points do, so that the foundation (the config loader) imports nothing above it.
"""

from __future__ import annotations

import importlib
import importlib.metadata

DOMAIN_REGISTRY = "seqtutor.domains"          # its DOMAINS: name -> class or "module:Class"
ALGORITHM_TABLE = "seqtutor.rl.algorithms"    # its ALGORITHMS: name -> Algorithm
DOMAIN_GROUP = "seqtutor.domains"
ALGORITHM_GROUP = "seqtutor.algorithms"


class PluginNotFoundError(ValueError):
    """A domain or algorithm name that resolves to nothing; the message says what was tried."""


def load_object(path: str):
    """``package.module:attribute`` to the object; raises PluginNotFoundError."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise PluginNotFoundError(f"{path!r} is not an import path of the form module:Name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise PluginNotFoundError(f"cannot import {module_name!r}: {error}") from error
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise PluginNotFoundError(f"module {module_name!r} has no {attribute!r}") from None


def _entry_point(group: str, name: str):
    for entry in importlib.metadata.entry_points(group=group):
        if entry.name == name:
            return entry.load()
    return None


def domain_class(name: str) -> type:
    """The domain class that ``name`` (a registered name, an import path or an entry point)
    stands for.

    Raises:
      PluginNotFoundError: the message names the key and every way that was tried.
    """
    registry = importlib.import_module(DOMAIN_REGISTRY).DOMAINS
    try:
        found = registry.get(name)
        if found is None and ":" in name:
            found = load_object(name)
        if found is None:
            found = _entry_point(DOMAIN_GROUP, name)
        if isinstance(found, str):
            found = load_object(found)
    except PluginNotFoundError as error:
        raise PluginNotFoundError(f"domain: {name!r}: {error}") from None
    if found is None:
        raise PluginNotFoundError(
            f"domain: unknown domain {name!r}: not a registered domain ({', '.join(registry)}), "
            f"not an import path module:Class, and no {DOMAIN_GROUP!r} entry point has that "
            "name")
    if not isinstance(found, type):
        raise PluginNotFoundError(f"domain: {name!r} resolves to {found!r}, not a class")
    return found


def algorithm_table() -> dict:
    """The algorithm table, the entry points of ``seqtutor.algorithms`` registered into it."""
    module = importlib.import_module(ALGORITHM_TABLE)
    for entry in importlib.metadata.entry_points(group=ALGORITHM_GROUP):
        if entry.name not in module.ALGORITHMS:
            module.register(entry.load())
    return module.ALGORITHMS


def algorithm(name: str):
    """The algorithm table's entry for ``name``; raises PluginNotFoundError naming the known
    ones."""
    table = algorithm_table()
    if name not in table:
        raise PluginNotFoundError(f"unknown algorithm {name!r}; choose from {', '.join(table)}")
    return table[name]
