"""Run the pure engine against an in-memory simulated world on a virtual clock.

This is the "fake peer" of the engine (h11's tests/helpers): no I/O, no
clock, no threads.  The plan's estimates come from it, and the tests use it to
check the engine's invariants on generated inventories and faults.  The
asynchronous runner follows the same dispatch order (:class:`Dispatcher`), so
a simulated run and its estimate agree to the second.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from upgrade.core.engine.core import Engine
from upgrade.core.engine.messages import Action, Begin, Event, Notice, Poll, Start, TimerFired, Wake
from upgrade.sim import ops
from upgrade.sim.world import World

T = TypeVar("T")


class Dispatcher(Generic[T]):
    """Orders work: ready entries first-in first-out, timed ones by (time, arrival)."""

    def __init__(self) -> None:
        self.ready: deque[T] = deque()
        self.timers: list[tuple[float, int, T]] = []
        self._seq = 0

    def add(self, at: float, entry: T, now: float) -> None:
        """Queue ``entry`` to run at ``at`` (at once when ``at <= now``)."""
        if at > now:
            self._seq += 1
            heapq.heappush(self.timers, (at, self._seq, entry))
        else:
            self.ready.append(entry)

    def next(self, now: float) -> tuple[float, T] | None:
        """The next entry and the time to run it at (never earlier than ``now``)."""
        if self.ready:
            return now, self.ready.popleft()
        if self.timers:
            at, _, entry = heapq.heappop(self.timers)
            return max(at, now), entry
        return None

    def batch(self, now: float) -> tuple[float, list[T]] | None:
        """Everything due at one instant, in :meth:`next` order, and that instant.

        That is every ready entry and every timer due by ``now``; when there are none, the
        timers of the earliest instant.  A run executes a batch together and journals its
        outcomes, with the actions they cause, in one commit (group commit); the plan's
        estimate drives the same batches, so the two agree to the second.
        """
        timers = self.timers
        if not self.ready and not timers:
            return None
        if not self.ready:
            now = max(timers[0][0], now)
        entries = list(self.ready)
        self.ready.clear()
        while timers and timers[0][0] <= now:
            entries.append(heapq.heappop(timers)[2])
        return now, entries

    def __len__(self) -> int:
        return len(self.ready) + len(self.timers)


def due(action: Action, now: float) -> float:
    """When ``action`` should run."""
    return action.at if isinstance(action, Poll | Wake) else now


@dataclass
class Trace:
    """What happened in a driven run."""

    events: list[Event] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    end: float = 0.0


def drive(
    engine: Engine,
    world: World,
    start_at: float = 0.0,
    on_event: Callable[[Event], Sequence[Event]] | None = None,
    max_steps: int = 10_000_000,
    first: Event | None = None,
    dispatcher: Dispatcher[Action] | None = None,
    record: bool = True,
    watch: Callable[[list[Event]], None] | None = None,
) -> Trace:
    """Run ``engine`` against ``world`` until it settles; ``on_event`` may inject events.

    The run opens with ``first`` (default: ``Begin(start_at)``); pass a
    :class:`~upgrade.core.engine.messages.Resumed` to continue a settled engine
    against the same world.  ``dispatcher`` replaces the default order (tests use
    one that shuffles what is due at the same time).  ``record=False`` keeps no
    events or actions in the trace (a large site's estimate watches them through
    ``on_event`` instead of holding a million of them).  ``watch`` sees the outcomes of
    each batch (what the world answered, not the events ``on_event`` injects) before they
    are handled, in one call per batch; it injects nothing (the estimate's schedule).
    """
    trace = Trace()
    if dispatcher is None:
        dispatcher = Dispatcher()
    now = start_at
    handle, add, execute = engine.handle, dispatcher.add, ops.execute
    # what :meth:`Dispatcher.add` does with an action due now (a replacement may differ)
    run_now = dispatcher.ready.append if type(dispatcher) is Dispatcher else None
    events_seen, actions_seen = trace.events.append, trace.actions.extend

    def feed(events: Iterable[Event]) -> None:
        # one call per batch, not per event: the estimate's drive handles ~700,000 events
        for event in events:
            if record:
                events_seen(event)
                actions = handle(event)
                actions_seen(actions)
            else:
                actions = handle(event)
            at = event.at
            for action in actions:
                kind = type(action)
                if kind is Poll:  # the most common first: as :func:`due` says
                    add(action.at, action, at)  # type: ignore[attr-defined]
                elif kind is Start:
                    if run_now is not None:
                        run_now(action)
                    else:
                        add(at, action, at)
                elif not isinstance(action, Notice):
                    add(due(action, at), action, at)

    feed((first if first is not None else Begin(now),))
    steps = 0
    while not engine.settled and steps < max_steps:
        batch = dispatcher.batch(now)
        if batch is None:
            break
        now, due_now = batch
        steps += len(due_now)
        # the runner's group commit: execute the whole batch, then handle its outcomes
        events: list[Event] = [TimerFired(now, action.token) if isinstance(action, Wake)
                               else execute(world, action, now) for action in due_now]
        if watch is not None:
            watch(events)
        if on_event is None:
            feed(events)
            continue
        for event in events:
            feed((event,))
            feed(on_event(event))
    trace.end = now
    return trace


def is_operation(action: Action) -> bool:
    """True for actions that touch the target system."""
    return isinstance(action, Start | Poll)
