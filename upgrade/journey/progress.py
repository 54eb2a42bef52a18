"""Where a journey stands, replayed from its journal (pure: records in, a value out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from upgrade.compat.path import State
from upgrade.journey.route import JourneyStep, gate_block, state_from_json


@dataclass(frozen=True, slots=True)
class Progress:
    """The journey's steps, which are done, and the state the site is in."""

    steps: tuple[JourneyStep, ...]
    start: State
    done: frozenset[int]
    #: the last record about each step, by step number
    last: dict[int, dict[str, Any]]

    @property
    def next_index(self) -> int | None:
        """The index of the first step not done, or None when every step is."""
        return next((i for i, s in enumerate(self.steps) if s.n not in self.done), None)

    @property
    def at(self) -> State:
        """The versions running now: after the last step done (steps are done in order)."""
        index = self.next_index
        if index is None:
            return self.steps[-1].after if self.steps else self.start
        return self.steps[index].before

    @property
    def finished(self) -> bool:
        """True when every step is done."""
        return self.next_index is None

    def waiting_for(self) -> dict[str, str] | None:
        """What the next gate waits for (``{"pks": "1.2.5"}``), or None at a hop or the end."""
        index = self.next_index
        if index is None or self.steps[index].is_hop:
            return None
        step = self.steps[index]
        return {step.kind: str(step.new)}

    def block(self) -> tuple[JourneyStep, ...]:
        """The gates from the next step up to the next NSX-T hop."""
        index = self.next_index
        return () if index is None else gate_block(self.steps, index)


def progress_of(records: list[dict[str, Any]]) -> Progress | None:
    """Replay a journey's records; None before it started."""
    started = next((r for r in records if r["type"] == "started"), None)
    if started is None:
        return None
    steps = tuple(JourneyStep.from_json(s) for s in started["steps"])
    done: set[int] = set()
    last: dict[int, dict[str, Any]] = {}
    for record in records:
        n = record.get("n")
        if not isinstance(n, int):
            continue
        last[n] = record
        if record["type"] == "confirmed" or (record["type"] == "step_ended"
                                              and record.get("code") == 0):
            done.add(n)
    return Progress(steps, state_from_json(started["from"]), frozenset(done), last)
