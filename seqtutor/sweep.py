"""Sweeps: a grid of tune settings and seeds, every point tuned into an artifact of its own.

A config's ``sweep`` section maps keys to lists of values; the grid is their product::

    sweep:
      tune.c: [0.1, 0.25, 0.5]
      seed: [0, 1, 2]

A key is ``seed`` or a ``tune.`` key other than ``tune.algorithms`` and ``tune.episode_length``
(which evaluate reads too): only tuning varies, so prepare_data and pretrain run once, with the
config's own seed. A point's name holds the validated values (``1`` of a float key is ``1.0``),
its tune keys in sorted order and the seed last, so that writing the grid differently does not
rename its points. Every (algorithm, point) is a
variant of the tune stage, ``<algorithm>@<key>=<value>,...`` (``psi@c=0.25,seed=1``), with its
own directory and fingerprint: an unchanged point is reused and a new value tunes only the new
points. Without a sweep the variants are the algorithms' names, as before.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from typing import Any

MAX_POINTS = 100  # the default limit on a sweep's grid (seqtutor run --max-points)
_SEPARATOR = "@"
NOT_SWEPT = ("algorithms", "episode_length")  # tune keys a sweep may not vary
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.+\-]+$")  # no separator of a variant's name


class SweepError(ValueError):
    """A sweep that names a key tune does not read, repeats a value, is empty or too large."""


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of the grid: (dotted key, value) pairs in the sweep's key order."""

    values: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """``c=0.25,seed=1``: the keys without ``tune.``, the values as JSON."""
        return ",".join(f"{short_key(key)}={_text(value)}" for key, value in self.values)

    def overrides(self) -> list[tuple[str, Any]]:
        return list(self.values)


def short_key(key: str) -> str:
    return key.removeprefix("tune.")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check_key(key: str, tune_fields) -> None:
    """Raise SweepError unless ``key`` is ``seed`` or a tune key other than the algorithms."""
    field = key.removeprefix("tune.")
    if key == "seed" or (key.startswith("tune.") and field in tune_fields
                         and field not in NOT_SWEPT):
        return
    raise SweepError(
        f"sweep.{key}: not a key the tune stage alone reads per point; sweep seed or a tune key "
        f"other than {' and '.join('tune.' + k for k in NOT_SWEPT)} (tune keys: "
        f"{', '.join(sorted(tune_fields))})")


def check_values(key: str, values: Any) -> None:
    """Raise SweepError unless ``values`` is a non-empty list of distinct plain values."""
    if not isinstance(values, list) or not values:
        raise SweepError(f"sweep.{key}: expected a non-empty list of values, got {values!r}")
    seen = set()
    for value in values:
        if isinstance(value, (dict, list)):
            raise SweepError(f"sweep.{key}: {value!r} is not a plain value")
        text = json.dumps(value)
        if text in seen:
            raise SweepError(f"sweep.{key}: the value {value!r} is given twice")
        seen.add(text)
        if not _SAFE_VALUE.match(_text(value)):
            raise SweepError(f"sweep.{key}: {value!r} cannot name a directory (letters, "
                             "digits and . _ + - only)")


def grid(sweep: dict[str, list[Any]], max_points: int = MAX_POINTS) -> list[Point]:
    """Every point of the grid (one empty point without a sweep).

    Raises:
      SweepError: the grid holds more than ``max_points`` points.
    """
    keys = sorted(sweep, key=lambda key: (key == "seed", key))
    size = 1
    for key in keys:
        size *= len(sweep[key])
    if size > max_points:
        raise SweepError(f"sweep: {size} points ({' x '.join(str(len(sweep[k])) for k in keys)})"
                         f" is more than --max-points {max_points}")
    return [Point(tuple(zip(keys, values)))
            for values in itertools.product(*(sweep[key] for key in keys))]


def without_seed(point: Point) -> Point:
    return Point(tuple((key, value) for key, value in point.values if key != "seed"))


def seed_groups(algorithms, points: list[Point]) -> dict[str, list[str]]:
    """Tuned models that differ only by their seed: the group's name (the variant without the
    seed, ``psi@c=0.25``) -> its members. Empty unless the sweep has a ``seed`` key."""
    if not any(key == "seed" for point in points for key, _ in point.values):
        return {}
    groups: dict[str, list[str]] = {}
    for algorithm in algorithms:
        for point in points:
            groups.setdefault(variant(algorithm, without_seed(point)), []).append(
                variant(algorithm, point))
    return groups


def variant(algorithm: str, point: Point) -> str:
    """The tune variant of ``algorithm`` at ``point``: its directory name and model name."""
    return f"{algorithm}{_SEPARATOR}{point.name}" if point.values else algorithm


def algorithm_of(variant_name: str) -> str:
    """``psi@c=0.25,seed=1`` -> ``psi``."""
    return variant_name.split(_SEPARATOR, 1)[0]


def point_of(variant_name: str) -> str:
    """``psi@c=0.25,seed=1`` -> ``c=0.25,seed=1`` (empty for a variant of no sweep)."""
    return variant_name.partition(_SEPARATOR)[2]
