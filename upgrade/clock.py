"""Clocks, injected into the runner and the emulator; the engine never reads one.

* :class:`VirtualClock` jumps straight to the next thing that is due: a
  three-hour simulated upgrade takes well under a second, the same way
  every time.
* :class:`RealClock` is wall time scaled by ``speed`` (``--speed 600``: one
  real second is ten simulated minutes), anchored so that a run which is
  killed and resumed later sees the time that passed meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """Simulated seconds since the run's origin."""

    def now(self) -> float:
        """The current time."""
        ...

    async def sleep_until(self, at: float) -> None:
        """Return once ``now() >= at``."""
        ...

    def to_json(self) -> str:
        """What :func:`clock_from_json` needs to continue this clock later."""
        ...


class VirtualClock:
    """Time moves only when something waits for it."""

    kind = "virtual"

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def advance_to(self, at: float) -> None:
        """Jump forward (never back)."""
        self._now = max(self._now, at)

    async def sleep_until(self, at: float) -> None:
        """Jump to ``at`` at once."""
        self.advance_to(at)

    def to_json(self) -> str:
        """The clock as JSON."""
        return json.dumps({"kind": self.kind, "now": self._now})


@dataclass
class RealClock:
    """Wall time times ``speed``, from an anchor: ``base + (wall - base_wall) * speed``."""

    speed: float
    base: float
    base_wall: float
    kind = "real"

    @classmethod
    def starting_at(cls, now: float, speed: float) -> RealClock:
        """A clock that reads ``now`` at this instant."""
        return cls(speed, now, time.time())

    def now(self) -> float:
        """The current scaled time."""
        return self.base + (time.time() - self.base_wall) * self.speed

    async def sleep_until(self, at: float) -> None:
        """Sleep the real time that ``at`` is away."""
        delay = (at - self.now()) / self.speed
        if delay > 0:
            await asyncio.sleep(delay)

    def to_json(self) -> str:
        """The clock's anchor as JSON."""
        return json.dumps({"kind": self.kind, "speed": self.speed, "base": self.base,
                           "base_wall": self.base_wall})


def clock_from_json(text: str) -> VirtualClock | RealClock:
    """The clock :meth:`Clock.to_json` saved; a real clock goes on counting."""
    data = json.loads(text)
    if data["kind"] == "real":
        return RealClock(data["speed"], data["base"], data["base_wall"])
    return VirtualClock(data["now"])
