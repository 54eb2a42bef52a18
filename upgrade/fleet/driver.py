"""The engine with its outstanding actions: what a site workflow drives (pure, no I/O).

The site workflow, a recovery from the site journal (``fleet resume``) and ``fleet status`` of
a terminated site all feed events to a :class:`Driver`: the engine, plus every start, poll
and timer it asked for and has had no answer to yet, keyed so that the event answering an
action finds it.  Feeding the same events in the same order gives the same engine and the
same outstanding actions, which is what lets a new run start where a dead one stopped.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from upgrade.core.engine import snapshot
from upgrade.core.engine.core import Engine
from upgrade.core.engine.messages import (
    Action,
    Event,
    Notice,
    Poll,
    Polled,
    PollFailed,
    Start,
    Started,
    StartFailed,
    TimerFired,
    Wake,
    decode,
    encode,
)
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Inventory
from upgrade.core.plan import Plan


def action_key(action: Action) -> str:
    """The key of an outstanding start, poll or timer."""
    if isinstance(action, Start):
        return f"start|{action.op.value}|{action.unit}"
    if isinstance(action, Poll):
        return f"poll|{action.op.value}|{action.unit}"
    assert isinstance(action, Wake)
    return f"wake|{action.token}"


def answered_key(event: Event) -> str | None:
    """The key of the action ``event`` answers (None: it answers none)."""
    if isinstance(event, Started | StartFailed):
        return f"start|{event.op.value}|{event.unit}"
    if isinstance(event, Polled | PollFailed):
        return f"poll|{event.op.value}|{event.unit}"
    if isinstance(event, TimerFired):
        return f"wake|{event.token}"
    return None


class Driver:
    """An engine and the actions it waits on; events fed in order, time never backwards."""

    def __init__(self, engine: Engine, outstanding: dict[str, Action] | None = None,
                 last: float = 0.0, baseline: Engine | None = None) -> None:
        self.engine = engine
        #: a fresh engine over the same inputs, never fed (snapshots are taken against it;
        #: None: one is made for each)
        self.baseline = baseline
        #: key -> the start, poll or timer without an answer yet, in the order asked
        self.outstanding: dict[str, Action] = dict(outstanding or {})
        #: the site clock's latest reading fed
        self.last = last

    @classmethod
    def restore(cls, plan: Plan, inventory: Inventory, policy: Policy,
                saved: dict[str, Any], outstanding: list[dict[str, Any]],
                last: float, baseline: Engine | None = None) -> Driver:
        """The driver :meth:`save` described, over the same plan, inventory and policy."""
        engine = Engine.from_snapshot(plan, inventory, policy, saved)
        actions = [decode(a) for a in outstanding]
        return cls(engine, {action_key(a): a for a in actions}, last, baseline)

    def save(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The engine's snapshot and the outstanding actions, as plain data."""
        return (snapshot.take(self.engine, self.baseline),
                [encode(a) for a in self.outstanding.values()])

    def feed(self, event: Event) -> Event:
        """Apply ``event`` (its time raised to the latest fed); returns the event as fed."""
        if event.at < self.last:  # another machine's clock: never let time run backwards
            event = dataclasses.replace(event, at=self.last)  # type: ignore[type-var]
        self.last = event.at
        key = answered_key(event)
        if key is not None:
            self.outstanding.pop(key, None)
        for action in self.engine.handle(event):
            if not isinstance(action, Notice):
                self.outstanding[action_key(action)] = action
        if self.engine.settled:
            # what is left (a settled run's retry timers) has nothing to wake: a resume
            # asks again (the engine re-arms what it needs)
            self.outstanding.clear()
        return event

    def postpone(self, key: str, at: float) -> None:
        """A poll that learnt nothing is due again at ``at`` (the engine is not told)."""
        action = self.outstanding.get(key)
        if isinstance(action, Poll):
            self.outstanding[key] = dataclasses.replace(action, at=at)

    def of_kind(self, kind: type) -> list[Action]:
        """The outstanding actions of ``kind``, in the order asked."""
        return [a for a in self.outstanding.values() if isinstance(a, kind)]


def reconcile_keys(outstanding: list[Action]) -> list[str]:
    """The keys of the starts among ``outstanding`` actions (a recovered run asks the target
    about each before it starts it again)."""
    return [action_key(a) for a in outstanding if isinstance(a, Start)]
