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

import dataclasses
import hashlib
import importlib
import importlib.metadata
import inspect
import sys

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
            algorithm = entry.load()
            if getattr(algorithm, "name", None) != entry.name:
                raise PluginNotFoundError(
                    f"the {ALGORITHM_GROUP!r} entry point {entry.name!r} loads "
                    f"{algorithm!r}, not an Algorithm of that name")
            module.register(algorithm)
    return module.ALGORITHMS


def algorithm(name: str):
    """The algorithm table's entry for ``name``; raises PluginNotFoundError naming the known
    ones."""
    table = algorithm_table()
    if name not in table:
        raise PluginNotFoundError(f"unknown algorithm {name!r}; choose from {', '.join(table)}")
    return table[name]


def outside_code(obj) -> str | None:
    """A digest of the source file that defines ``obj`` when it lives outside the seqtutor
    package (a user's domain or algorithm), which the package's code version does not cover;
    None for the package's own code."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    if module is None or module.__name__.split(".")[0] == "seqtutor":
        return None
    try:
        source = inspect.getsourcefile(module)
    except TypeError:  # a built-in module
        return None
    if not source:
        return None
    with open(source, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:12]


def describe_algorithm(name: str) -> dict:
    """The algorithm table's entry for ``name`` as JSON values (functions by their qualified
    names, plus the digest of code outside the package): part of a tune stage's fingerprint,
    so that a changed entry is tuned again."""
    described = {}
    for field in dataclasses.fields(algorithm(name)):
        value = getattr(algorithm(name), field.name)
        if callable(value):
            code = outside_code(value)
            value = f"{value.__module__}.{value.__qualname__}" + (f"@{code}" if code else "")
        described[field.name] = list(value) if isinstance(value, tuple) else value
    return described
