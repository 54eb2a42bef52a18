"""Driving a run to its end: signals, the runner's hooks, reconciling what was in flight.

:func:`drive` hands the engine, the adapter and the journal to the
:class:`~upgrade.shell.runner.Runner` and turns how it ended into the exit code.
SIGINT/SIGTERM ask for a pause (a second one stops at once); a resumed run first
observes units already at the target and reconciles every intent without an outcome
by asking the adapter what really happened.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from upgrade.adapters.base import Adapter
from upgrade.clock import Clock
from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import Action, Begin, Resumed
from upgrade.errors import JournalError
from upgrade.render.live import Display
from upgrade.shell.events import EventLog
from upgrade.shell.journal import Journal
from upgrade.shell.runner import GROUP_RECORDS, Hooks, Runner
from upgrade.shell.statedir import PAUSE_FILE

#: the exit code of a run that settled in each state
EXIT = {RunState.DONE: 0, RunState.FAILED: 1, RunState.PAUSED: 3}


@dataclass
class Signals:
    """SIGINT/SIGTERM: the first asks for a pause, the second stops at once."""

    reason: str | None = None
    count: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    #: told (once) what a second signal would do
    notify: Callable[[str], None] | None = field(default=None, repr=False)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle SIGINT and SIGTERM on ``loop``."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on, sig)

    def _on(self, sig: signal.Signals) -> None:
        self.count += 1
        self.reason = self.reason or f"{sig.name} received"
        if self.count == 1 and self.notify is not None:
            self.notify(f"{sig.name} received: pausing at the next safe point; {sig.name} "
                        "again stops at once, without waiting for what is in flight")
        if self.count > 1 and self.task is not None:
            self.task.cancel()


def _pause_probe(state_dir: Path, signals: Signals) -> str | None:
    if signals.reason:
        return signals.reason
    pause = state_dir / PAUSE_FILE
    if pause.exists():
        text = pause.read_text(encoding="utf-8").strip()
        return text or "pause requested"
    return None


#: crash tests: SIGKILL this process right after that many journal commits, before
#: anything the last commit holds is executed
CRASH_ENV = "NSXT_UPGRADE_KILL_AFTER_COMMITS"


#: crash tests: SIGKILL this process inside the that-many-th commit that also writes the
#: simulated world, between the world's part and the journal's (nothing of it is committed)
CRASH_IN_COMMIT_ENV = "NSXT_UPGRADE_KILL_IN_COMMIT"


#: tests: the records a virtual-clock run of the simulated adapter holds before it commits
#: (:attr:`~upgrade.shell.runner.Runner.group_records`; 0: every batch commits alone).  Not
#: set, it is :data:`~upgrade.shell.runner.GROUP_RECORDS`, or 0 under a crash hook above (which
#: counts commits: a lab run is a handful of groups, killed at its Nth batch commit as before)
GROUP_ENV = "NSXT_UPGRADE_GROUP_RECORDS"


def _group_records() -> int:
    value = os.environ.get(GROUP_ENV, "").strip()
    if value.isdigit():
        return int(value)
    if os.environ.get(CRASH_ENV) or os.environ.get(CRASH_IN_COMMIT_ENV):
        return 0
    return GROUP_RECORDS


def _crash_hook(env: str = CRASH_ENV) -> Callable[[], None] | None:
    after = int(os.environ.get(env) or 0)
    if after <= 0:
        return None
    commits = 0

    def count() -> None:
        nonlocal commits
        commits += 1
        if commits >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    return count


#: journal meta: the resolved ``--events`` file the run last wrote to
EVENTS_META = "events_file"


def _catch_up(events: EventLog, journal: Journal, first: Begin | Resumed) -> None:
    """A resume into the file an earlier process of this run wrote: first the lines a
    crash lost between a step's commit and its line (another file gets what is new)."""
    if events.to_stdout:
        return
    target = str(Path(events.target).resolve())
    if isinstance(first, Resumed) and journal.get_meta(EVENTS_META) == target:
        events.catch_up((r.kind, r.at, r.payload) for r in journal.records())
    if journal.get_meta(EVENTS_META) != target:
        journal.set_meta(EVENTS_META, target)


def catch_up_done(events: EventLog, journal: Journal, engine: Engine) -> None:
    """``resume --events FILE`` of a run that is done already: the lines a kill after its
    last commit lost (a group commit tells its steps after the commit), then nothing."""
    events.attach(journal.get_meta("calendar_start") or journal.get_meta("started_at"),
                  engine, float(journal.get_meta("clock_origin") or 0.0))
    try:
        _catch_up(events, journal, Resumed(engine.now))
    finally:
        events.close()


async def drive(engine: Engine, adapter: Adapter, journal: Journal, clock: Clock,
                state_dir: Path, display: Display, first: Begin | Resumed,
                outstanding: dict[int, Action] | None = None,
                events: EventLog | None = None) -> int:
    """Run ``engine`` from ``first`` until it settles or is stopped; the exit code.

    ``outstanding`` are a resumed run's intents without an outcome (by journal seq).
    """
    signals = Signals(notify=display.line)
    signals.install(asyncio.get_running_loop())
    if events is not None:
        events.attach(journal.get_meta("calendar_start") or journal.get_meta("started_at"),
                      engine,
                      float(journal.get_meta("clock_origin") or 0.0))
        _catch_up(events, journal, first)
    hooks = Hooks(on_notice=display.notice,
                  pause_requested=lambda: _pause_probe(state_dir, signals),
                  on_step=events.step if events is not None else None,
                  after_commit=_crash_hook(),
                  in_commit=_crash_hook(CRASH_IN_COMMIT_ENV))
    runner = Runner(engine, adapter, journal, clock, hooks)
    runner.group_records = _group_records()
    runner.outstanding = dict(outstanding or {})  # (the times only grow: last_at need not)
    display.begin(engine)
    try:
        await runner.begin(first, outstanding or {}, display.line)
        signals.task = asyncio.current_task()
        await runner.run()
    except asyncio.CancelledError:
        if events is not None:
            events.stopped_at_once(clock.now())
        display.line("stopped at once on the second signal; operations already started go on "
                     "in the target system, and `nsxt-upgrade resume` picks them up")
        return 3
    finally:
        try:
            await adapter.close()
        finally:  # the display and the events end even when the target cannot be closed
            display.end(engine)
            if events is not None:
                events.close()
    if not engine.settled:
        raise JournalError("the runner ran out of work before the engine settled")
    return EXIT[engine.state]
