"""Option types shared by the commands: numbers that are finite, positive and bounded."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # click 8.4 makes ParamType generic; 8.1 (also supported) cannot subscript it
    _FloatParam = click.ParamType[float]
else:
    _FloatParam = click.ParamType

#: the largest --speed accepted: a million simulated seconds per real second
#: (a three-hour upgrade in a hundredth of a second; beyond that, use the virtual clock)
MAX_SPEED = 1_000_000.0
#: the smallest --speed accepted: one simulated second per 1000 real seconds
MIN_SPEED = 0.001


class BoundedFloat(_FloatParam):
    """A finite float within ``[low, high]``: ``nan``, ``inf`` and ``1e308`` are refused.

    click's ``FloatRange`` lets ``nan`` through (every comparison with it is false) and
    has no upper bound unless given one; the value here reaches clocks, sleeps and JSON,
    none of which takes a non-finite number.
    """

    name = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        """``value`` as a float, or a usage error (exit 2) saying what is accepted."""
        if isinstance(value, float) and math.isfinite(value) and self.low <= value <= self.high:
            return value
        try:
            number = float(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a number; {self._accepts()}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; {self._accepts()}", param, ctx)
        if not self.low <= number <= self.high:
            self.fail(f"{value} is out of range; {self._accepts()}", param, ctx)
        return number

    def _accepts(self) -> str:
        return f"give a number from {plain(self.low)} to {plain(self.high)}"

    def __repr__(self) -> str:
        return f"BoundedFloat({self.low!r}, {self.high!r})"


def plain(number: float) -> str:
    """``number`` as people write it: ``1,000,000`` rather than ``1e+06``."""
    return f"{number:,.0f}" if number.is_integer() else f"{number:g}"


#: ``--speed`` of run, resume and emulate
SPEED = BoundedFloat(MIN_SPEED, MAX_SPEED)
