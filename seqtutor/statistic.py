"""How a statistic reads: its label, its unit and which way is better.

A domain declares one :class:`Statistic` per key it reports (``Domain.statistic_info``); the
report shows a fraction as a percentage, ranks the models of a row by ``better`` and labels the
row. metrics.json keeps the raw numbers whatever the unit.
"""

from __future__ import annotations

from dataclasses import dataclass

# Units: a fraction is shown as a percentage, a value as a plain decimal, a count as an integer.
FRACTION, VALUE, COUNT = "fraction", "value", "count"
# Which way a statistic is better; None: not ranked.
HIGHER, LOWER, ZERO = "higher", "lower", "zero"
UNITS = (FRACTION, VALUE, COUNT)
DIRECTIONS = (HIGHER, LOWER, ZERO, None)


@dataclass(frozen=True)
class Statistic:
    """One statistic as a reader sees it: its row label, unit and which way is better."""

    label: str
    unit: str = VALUE
    better: str | None = None

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"statistic {self.label!r}: unit {self.unit!r} is not one of {UNITS}")
        if self.better not in DIRECTIONS:
            raise ValueError(f"statistic {self.label!r}: better {self.better!r} is not one of "
                             f"{DIRECTIONS}")


def ranking_key(value: float, better: str) -> float:
    """``value`` as a number to minimise in direction ``better``: -value for higher, value for
    lower, its magnitude for zero (the report's ranking and a benchmark's targets share it)."""
    return {HIGHER: -value, LOWER: value, ZERO: abs(value)}[better]


# The two statistics every domain reports (the evaluate stage computes them for any domain).
COMMON: dict[str, Statistic] = {
    "mean_log_prior": Statistic("mean log p(a|s)", VALUE, HIGHER),
    "mean_task_reward": Statistic("mean r_T", VALUE, HIGHER),
}


def undeclared(key: str) -> Statistic:
    """A key no domain declared: a plain value, labelled by its name, not ranked."""
    return COMMON.get(key, Statistic(key.replace("_", " ")))
