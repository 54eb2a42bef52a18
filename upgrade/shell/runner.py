"""The runner: one asyncio loop that executes the engine's actions through an adapter.

Every engine step is journaled before anything it decided is executed: the
events that caused it (each naming the action it answers) and all the actions
they issued go into one transaction, so a crash loses nothing.  Events that are
ready together are grouped into one commit (group commit): on a
:class:`~upgrade.clock.VirtualClock`, every action due at the same simulated
instant runs as one batch (:meth:`~upgrade.sim.drive.Dispatcher.batch`, the
same batches the plan's estimate drives) and their outcomes are journaled
together; on a real clock, every outcome that came back while the previous
commit was in flight joins the next one.  The engine is only ever called from
this loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from upgrade.adapters.base import Adapter
from upgrade.adapters.simulated import SimulatedAdapter
from upgrade.clock import Clock, VirtualClock
from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import UnitState
from upgrade.core.engine.messages import (
    Action,
    Begin,
    Event,
    Notice,
    Observed,
    PauseRequested,
    Poll,
    Resumed,
    Start,
    Started,
    TimerFired,
    Wake,
    encode,
)
from upgrade.core.engine.outcome import OpStatus, outcome
from upgrade.core.plan import Phase
from upgrade.errors import AdapterError
from upgrade.shell.journal import Journal
from upgrade.shell.replay import SNAPSHOT_EVERY
from upgrade.sim.drive import Dispatcher, due

#: how often a real-clock runner looks for a pause request while waiting
PAUSE_CHECK_S = 0.2
#: how often a virtual-clock runner, which never waits, gives the event loop a turn (so
#: that SIGINT and SIGTERM are handled) and looks for a pause request, in wall seconds;
#: a held group commit is committed at each turn too
TURN_S = 0.05
#: a virtual-clock run of the simulated adapter commits its held batches once they hold
#: this many journal records (or at the next turn, or before anything else is written)
GROUP_RECORDS = 2000


@dataclass
class Hooks:
    """What the runner tells the outside world; all optional."""

    #: a notice and the engine's time when it was issued (told once it is durable)
    on_notice: Callable[[Notice, float], None] | None = None
    on_event: Callable[[Event], None] | None = None
    pause_requested: Callable[[], str | None] | None = None
    #: each journaled step: the event and the actions it caused (``--events``)
    on_step: Callable[[Event, list[Action]], None] | None = None
    #: after each commit, before anything it holds is executed (crash tests kill here)
    after_commit: Callable[[], None] | None = None
    #: inside a commit that also writes the simulated world, before its COMMIT: after the
    #: world's part and before the journal's records of a batch committed alone, after
    #: every batch of a held group (crash tests kill here: nothing of it is committed)
    in_commit: Callable[[], None] | None = None


async def execute(adapter: Adapter, action: Action, now: Callable[[], float]) -> Event:
    """Run one :class:`Start` or :class:`Poll` through ``adapter``; errors become events."""
    assert isinstance(action, Start | Poll)
    result: float | OpStatus | AdapterError | None
    try:
        if isinstance(action, Start):
            result = await adapter.start(action.op, action.unit, action.moves)
        else:
            result = await adapter.status(action.op, action.unit)
    except AdapterError as exc:
        result = exc
    return outcome(action, now(), result)


class Runner:
    """Executes one engine's actions, journaling each step first."""

    def __init__(self, engine: Engine, adapter: Adapter, journal: Journal, clock: Clock,
                 hooks: Hooks | None = None) -> None:
        self.engine = engine
        self.adapter = adapter
        self.journal = journal
        self.clock = clock
        self.hooks = hooks or Hooks()
        self._dispatcher: Dispatcher[tuple[int, Action]] = Dispatcher()
        self._pause_sent = False
        #: what a snapshot holds besides the engine (as :func:`upgrade.shell.replay.replay` finds
        #: it): the journaled intents without an outcome, the latest record time
        self.outstanding: dict[int, Action] = {}
        self.last_at = 0.0
        #: records since the last snapshot; one is stored once ``snapshot_every`` records
        #: passed since the last one, and at least as many as the journal held then (the
        #: seq of the last one, ``_snapshot_at``), and whenever the engine settles: the
        #: snapshots of a run cost O(records) in all (each is as large as the engine's
        #: state), and a resume or a `status` replays at most half the journal
        self.snapshot_every = SNAPSHOT_EVERY
        self._since_snapshot = 0
        self._snapshot_at = 0
        #: group commit of a virtual-clock run of the simulated adapter: batches are held
        #: (journaled in one open transaction) until they hold this many records; 0: each
        #: batch commits on its own.  See :meth:`_run_virtual` for why this is safe there.
        self.group_records = GROUP_RECORDS
        #: records in the held transaction (0: none held), and whether it writes the world
        self._held = 0
        self._held_world = False
        #: what the held batches have to tell (hooks), told once they are durable
        self._untold: list[tuple[Callable[..., None], tuple[object, ...]]] = []
        #: while batches are held: the simulated adapter whose world's changes are written
        #: once per group, in its commit (a row changed by many batches is written once)
        self._world: SimulatedAdapter | None = None

    def feed(self, event: Event, answers: int | None = None) -> None:
        """Journal ``event`` and the actions it causes (one transaction), then queue them."""
        self.feed_batch([(event, answers)])

    def feed_batch(self, batch: Sequence[tuple[Event, int | None]],
                   world: Callable[[sqlite3.Connection], None] | None = None,
                   hold: bool = False) -> None:
        """Journal ``batch``'s events and the actions they cause in one transaction.

        ``world`` writes the simulated world's changes of the batch in that transaction
        (its tables are in the journal's database): one commit covers both.  ``hold``
        leaves that transaction open for the next batches (group commit, see
        :meth:`_run_virtual`): what the batch has to tell waits until it is committed.

        Each event is ``(event, seq of the action it answers or None)``, handled in order;
        nothing they cause is queued before the commit.  A poll that learnt nothing new
        (:attr:`Engine.quiet`) is not journaled, nor is the next poll it caused: that one
        runs under the seq of the journaled poll it repeats, which stays without an
        outcome until something happens.  A replay never sees the quiet stretch and ends
        in the same state; a resume polls again at once.
        """
        records: list[tuple[str, float, dict[str, object]]] = []
        #: each record's action (None for an event's record), kept for the snapshots
        issued: list[Action | None] = []
        steps: list[tuple[Event, list[Action], int | None]] = []
        for event, answers in batch:
            actions = self.engine.handle(event)
            if self.engine.quiet and answers is not None:
                steps.append((event, actions, answers))
                continue
            payload = encode(event)
            if answers is not None:
                payload["for"] = answers
            at = event.at
            records.append(("event", at, payload))
            issued.append(None)
            records += [("action", at, encode(a)) for a in actions]
            issued += actions
            steps.append((event, actions, None))
        in_commit = self.hooks.in_commit
        if world is not None and in_commit is not None and not hold:
            world_part = world

            def world(conn: sqlite3.Connection) -> None:
                world_part(conn)
                in_commit()

        if hold:
            appended = self.journal.append(records, also=world, hold=True)
            self._held += len(records) + (world is not None)
            self._held_world = self._held_world or world is not None
        else:
            self._hold_world()  # the held batches' world goes with them into this commit
            was_held = self._held > 0
            appended = self.journal.append(records) if world is None else \
                self.journal.append(records, also=world)
            self._held = 0  # what was held is committed with this batch
            self._held_world = False
            self._committed(bool(records) or was_held)
        self._track(records, issued, appended)
        hooks, tell = self.hooks, self._tell
        seqs = iter(appended)
        for event, actions, quiet_seq in steps:
            if hooks.on_event:
                tell(hooks.on_event, event)
            if quiet_seq is not None:
                self.schedule(quiet_seq, actions[0], event.at)
                continue
            next(seqs)  # the event's own record
            if hooks.on_step:
                tell(hooks.on_step, event, actions)
            for action in actions:
                self.schedule(next(seqs), action, event.at)
        if hold and self._held >= self.group_records:
            self.sync()

    def _tell(self, hook: Callable[..., None], *args: object) -> None:
        """Call ``hook`` now, or once the held transaction is committed."""
        if self._held:
            self._untold.append((hook, args))
        else:
            hook(*args)

    def _committed(self, wrote: bool) -> None:
        """What follows a durable commit: the after-commit hook (when it ``wrote``
        records), then what the committed batches had to tell."""
        if wrote and self.hooks.after_commit:
            self.hooks.after_commit()
        self._told()

    def _told(self) -> None:
        """Tell what the batches just committed had to tell."""
        untold, self._untold = self._untold, []
        for hook, args in untold:
            hook(*args)

    def _hold_world(self) -> None:
        """Write the world's changes since the last group into the held transaction."""
        sim = self._world
        if sim is None:
            return
        writes = sim.batch_writes()
        if writes is None:
            return
        self.journal.append([], also=writes, hold=True)
        sim.batch_written()
        self._held += 1
        self._held_world = True

    def sync(self) -> None:
        """Commit the held batches and their world's changes (one fsync), then tell what
        they had to tell.

        A held transaction the journal rolled back (a write failed) tells nothing: none
        of it happened (nor is the world written after it)."""
        if self._held and not self.journal.holding:  # rolled back
            self._held = 0
            self._untold.clear()
            self._world = None
            return
        self._hold_world()
        if not self._held:
            return
        self._held = 0
        if self._held_world and self.hooks.in_commit:
            self.hooks.in_commit()
        self._held_world = False
        self.journal.sync()
        self._committed(True)

    def _track(self, records: list[tuple[str, float, dict[str, object]]],
               issued: list[Action | None], seqs: list[int]) -> None:
        """Keep what a snapshot needs; store one when due (after the batch's commit)."""
        outstanding = self.outstanding
        for seq, (_, at, payload), action in zip(seqs, records, issued, strict=True):
            if at > self.last_at:
                self.last_at = at
            if action is None:
                answers = payload.get("for")
                if isinstance(answers, int):
                    outstanding.pop(answers, None)
            elif not isinstance(action, Notice):
                outstanding[seq] = action
        self._since_snapshot += len(records)
        if records and (self.engine.settled or self._since_snapshot >= max(
                self.snapshot_every, self._snapshot_at)):
            self.journal.add_snapshot(seqs[-1], {
                "engine": self.engine.snapshot(),
                "outstanding": [[seq, encode(a)] for seq, a in self.outstanding.items()],
                "last_at": self.last_at, "records": seqs[-1]}, hold=self.journal.holding)
            self._since_snapshot = 0
            self._snapshot_at = seqs[-1]

    def schedule(self, seq: int, action: Action, now: float) -> None:
        """Queue an already-journaled action."""
        if isinstance(action, Notice):
            if self.hooks.on_notice:
                self._tell(self.hooks.on_notice, action, self.engine.now)
            return
        self._dispatcher.add(due(action, now), (seq, action), now)

    async def begin(self, first: Begin | Resumed, outstanding: Mapping[int, Action],
                    say: Callable[[str], None]) -> None:
        """Feed the run's first event; after a resume, also observe units already at the
        target and reconcile every journaled intent without an outcome (what ``run`` and
        ``resume`` do once the engine is built, before :meth:`run`)."""
        self.feed(first)
        if isinstance(first, Resumed):
            await self.observe_drift()
            await self.reconcile(outstanding, say)

    async def observe_drift(self) -> None:
        """After a resume: feed ``Observed`` for each unit not begun yet that already reports
        the target version (upgraded by hand meanwhile)."""
        target = str(self.engine.plan.target_version)
        for item in self.engine.items.values():
            if item.state is UnitState.PENDING and item.index == 0 and \
                    item.phase in (Phase.HOSTS, Phase.EDGES, Phase.CONTROLLERS, Phase.MANAGER):
                try:
                    version = await self.adapter.unit_version(item.id)
                except AdapterError:
                    continue  # cannot tell now; its upgrade finds out (starting it is idempotent)
                if version == target:
                    self.feed(Observed(self.clock.now(), item.id, version))

    async def reconcile(self, outstanding: Mapping[int, Action],
                        say: Callable[[str], None]) -> None:
        """After a resume: settle each journaled intent without an outcome (by seq).

        A start the target shows running or done is followed (``Started``), any other intent
        is queued again (a start of what already runs or is done changes nothing).
        """
        for seq, action in outstanding.items():
            if isinstance(action, Start):
                try:
                    status = await self.adapter.status(action.op, action.unit)
                except AdapterError as exc:
                    say(f"reconciled: could not ask how {action.op.value} on "
                        f"{action.unit} stands ({exc}); starting it again (a start of "
                        "what already runs or is done changes nothing)")
                    self.schedule(seq, action, self.clock.now())
                    continue
                if status.begun:
                    say(f"reconciled: {action.op.value} on {action.unit} was already "
                        f"{status.state} when the runner stopped; following it")
                    self.feed(Started(self.clock.now(), action.op, action.unit,
                                      self.clock.now()), answers=seq)
                    continue
                say(f"reconciled: {action.op.value} on {action.unit} had not started; "
                    "starting it")
            self.schedule(seq, action, self.clock.now())

    def _check_pause(self) -> None:
        if self._pause_sent or self.engine.settled or not self.hooks.pause_requested:
            return
        reason = self.hooks.pause_requested()
        if reason:
            self._pause_sent = True
            self.feed(PauseRequested(self.clock.now(), reason))

    async def _run_one(self, seq: int, action: Action) -> Event:
        if isinstance(action, Wake):
            return TimerFired(self.clock.now(), action.token)
        return await execute(self.adapter, action, self.clock.now)

    async def run(self) -> None:
        """Execute until the engine settles (done, paused or failed)."""
        if isinstance(self.clock, VirtualClock):
            await self._run_virtual(self.clock)
        else:
            await self._run_real()

    async def _run_virtual(self, clock: VirtualClock) -> None:
        """Run the batches of the virtual clock one after the other, never waiting.

        Group commit: with the simulated adapter itself (``joint``: its world is in the
        journal's database), the batches are held in one open transaction and committed
        together every :attr:`group_records` records, at every turn of the event loop
        (:data:`TURN_S` of wall time) and when this loop ends; any other write to the
        journal (a pause request, the run's end) commits them first.  This defers the
        rule "intents durable before executing" for that adapter alone, and safely: its
        actions have no effect outside this database.  A start changes the world's rows,
        which go into the same transaction as the intent and the outcome, so a crash rolls
        back the world together with the journal, and the resume finds the world exactly
        as the journal left it (the starts it executed never happened).  Nothing leaves
        the process before the commit either: what the batches tell (notices, the
        display, ``run.log``, ``--events`` lines) is told once they are committed.  Every
        other adapter's actions leave the process, so each of its batches is committed
        before any of its actions is executed, as on the real clock.
        """
        flush = getattr(self.adapter, "flush", None)  # one world write per batch (simulated)
        if flush is not None:
            self.adapter.deferred = True  # type: ignore[attr-defined]
        # a world kept in the journal's database: written in the batch's own commit
        joint = isinstance(self.adapter, SimulatedAdapter) and self.adapter.joint
        # the simulated adapter itself (not a subclass or a wrapper, which may change what
        # its calls do) runs a batch's actions without a coroutine each
        direct = self.adapter.execute_now if type(self.adapter) is SimulatedAdapter else None
        hold = joint and direct is not None and self.group_records > 0
        if hold:
            self._world = self.adapter  # type: ignore[assignment]
        self._check_pause()
        turn = time.monotonic()
        try:
            while not self.engine.settled:
                if time.monotonic() - turn >= TURN_S:
                    self.sync()  # what is held is durable (and told) before the turn
                    await asyncio.sleep(0)  # nothing here waits: let signal handlers run
                    self._check_pause()
                    turn = time.monotonic()
                    continue
                batch = self._dispatcher.batch(clock.now())
                if batch is None:
                    return
                at, entries = batch
                clock.advance_to(at)
                if direct is not None:
                    outcomes = [(TimerFired(clock.now(), action.token)
                                 if isinstance(action, Wake)
                                 else direct(action), seq)  # type: ignore[arg-type]
                                for seq, action in entries]
                else:
                    outcomes = [(await self._run_one(seq, action), seq)
                                for seq, action in entries]
                if hold:  # the world's changes are written once per group (sync)
                    self.feed_batch(outcomes, hold=True)
                    continue
                if joint:
                    sim: SimulatedAdapter = self.adapter  # type: ignore[assignment]
                    writes = sim.batch_writes()
                    self.feed_batch(outcomes, world=writes)
                    if writes is not None:
                        sim.batch_written()
                    continue
                if flush is not None:
                    await flush()
                self.feed_batch(outcomes)
        finally:  # also when stopped at once: the held batches are whole, keep them
            try:
                self.sync()
            finally:
                self._world = None

    async def _run_real(self) -> None:
        done: asyncio.Queue[tuple[int, Event] | Exception] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()

        async def work(at: float, seq: int, action: Action) -> None:
            try:
                await self.clock.sleep_until(at)
                await done.put((seq, await self._run_one(seq, action)))
            except Exception as exc:
                await done.put(exc)  # not "Task exception was never retrieved"

        try:
            while not self.engine.settled:
                self._check_pause()
                while (nxt := self._dispatcher.next(self.clock.now())) is not None:
                    at, (seq, action) = nxt
                    task = asyncio.create_task(work(at, seq, action))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if not tasks and done.empty():
                    return
                try:
                    item = await asyncio.wait_for(done.get(), PAUSE_CHECK_S)
                except TimeoutError:
                    continue
                # group commit: whatever else came back meanwhile joins this transaction
                items = [item]
                while not done.empty():
                    items.append(done.get_nowait())
                batch: list[tuple[Event, int | None]] = []
                for item in items:
                    if isinstance(item, Exception):
                        raise item  # an adapter's own failure (not an AdapterError)
                    batch.append((item[1], item[0]))
                self.feed_batch(batch)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
