"""Run and resume sessions: the state directory, the lock, the adapter and replay.

This is the imperative shell around the pure core: it reads files and the
environment, talks to adapters and writes the journal, then hands the loop to
:func:`~upgrade.shell.drive.drive`.  A new run starts from the :class:`Prepared`
value ``plan_for_run`` made; a resumed one from what its state dir recorded
(:mod:`upgrade.shell.start_record`).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from upgrade.adapters.base import Adapter
from upgrade.adapters.simulated import SimulatedAdapter
from upgrade.clock import Clock, RealClock, VirtualClock
from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.messages import Begin, Resumed
from upgrade.core.model import Inventory, Playbook
from upgrade.core.plan import Phase
from upgrade.core.window import Calendar
from upgrade.errors import InputError, JournalError, RefusedError
from upgrade.gcpause import collector_paused
from upgrade.inputs.playbook import load
from upgrade.prepare.inputs import with_inventory
from upgrade.prepare.planning import Prepared, prepare_loaded
from upgrade.render.live import Display
from upgrade.shell.bundle import Digest, bundle_path, remember, verify_bundle
from upgrade.shell.clocks import ClockChoice, choose_clock, resumed_clock
from upgrade.shell.dirstate import Command, Holds, Reading, admit
from upgrade.shell.drive import catch_up_done, drive
from upgrade.shell.events import EventLog
from upgrade.shell.inherited_world import archive_for_new_run, continue_world, replan_over_world
from upgrade.shell.journal import Journal
from upgrade.shell.lock import RunnerLock
from upgrade.shell.replay import replay
from upgrade.shell.start_record import (
    CompatOverlay,
    load_run,
    record_start,
    recorded_engine,
)
from upgrade.shell.statedir import (
    PAUSE_FILE,
    clear_startup,
    default_state_dir,
    writable_state_dir,
)
from upgrade.shell.window_calendar import META as WINDOW_META
from upgrade.shell.window_calendar import iso_at
from upgrade.sim.store import WorldPlace, world_in

__all__ = ["ClockChoice", "check_bundle", "make_adapter", "plan_for_run", "resume_run",
           "start_run"]


def make_adapter(playbook: Playbook, inventory: Inventory, state_dir: Path,
                 clock: Clock) -> Adapter:
    """The adapter the playbook names."""
    if playbook.inventory.adapter == "simulated":
        place = world_in(state_dir) or WorldPlace.in_journal(state_dir)
        try:  # the journal is open: the world goes (or is) in its database
            return SimulatedAdapter(state_dir, inventory, playbook.target_version, clock,
                                    joint=True)
        except sqlite3.Error as exc:  # a damaged world: one line naming its file, exit 1
            raise JournalError(f"{place.path}: not a simulated world ({exc}); "
                               "the run cannot go on without it: restore it from a "
                               "backup") from exc
    from upgrade.adapters.factory import nsxt_adapter

    return nsxt_adapter(playbook, clock, state_dir)



async def _prepare(playbook_path: Path, acks: Sequence[str], choice: ClockChoice,
                   matrix: Path | None, strict: bool, start_at: float | None,
                   calendar_start: float | None,
                   saved_plan: Mapping[str, Any] | None = None) -> Prepared:
    loaded = load(playbook_path)
    choose_clock(choice, loaded.playbook, 0.0)  # refuse a clock the adapter cannot keep first
    if start_at is None and loaded.playbook.window is not None:
        start_at = calendar_start  # estimated from now across the windows
    return prepare_loaded(await with_inventory(loaded), acks, matrix=matrix, strict=strict,
                          start_at=start_at, saved_plan=saved_plan)


def plan_for_run(playbook_path: Path, acks: Sequence[str], choice: ClockChoice,
                 matrix: Path | None = None, strict: bool = False,
                 check: Callable[[Prepared], None] | None = None,
                 start_at: float | None = None,
                 calendar_start: float | None = None,
                 saved_plan: Mapping[str, Any] | None = None) -> Prepared:
    """Prepare a run: validate, discover (real adapters), gate and plan; refuse with exit 4.

    ``matrix`` and ``strict`` are ``run --matrix FILE --strict`` (compatibility data);
    ``check`` sees the plan first (a saved plan names what changed before a refusal);
    ``start_at`` (epoch seconds) is ``--start-at``, ``calendar_start`` now: the run's
    calendar start, for the estimate across a maintenance window.  ``saved_plan``
    (``run --plan``, with ``check`` comparing against it) gives the estimates the plan
    already computed: the run does not drive the engine for them again.
    """
    prepared = asyncio.run(_prepare(playbook_path, acks, choice, matrix, strict, start_at,
                                    calendar_start, saved_plan))
    if check is not None:
        check(prepared)
    if not prepared.plan.runnable:
        raise RefusedError("the plan is refused:\n  " + "\n  ".join(prepared.plan.refusals))
    return prepared


def start_run(prepared: Prepared, state_dir: Path | None,
              acks: Sequence[str], choice: ClockChoice, display: Display,
              events: EventLog | None = None, start_at: float | None = None,
              calendar_start: float | None = None, site: Path | None = None,
              strict: bool = False) -> int:
    """Start a new run of ``prepared`` in ``state_dir``; returns the exit code.

    ``start_at``: ``--start-at`` (epoch seconds; virtual clock only), the calendar instant
    the run's clock starts at; ``calendar_start`` is that instant when it was not given
    (now), for the maintenance window.  ``site`` and ``strict``: ``run --matrix FILE
    --strict``, recorded so that whatever plans this run again uses them too.
    """
    playbook = prepared.playbook
    state_dir = state_dir or default_state_dir(playbook.name)
    clock = choose_clock(choice, playbook, 0.0)  # before anything is written: it may refuse
    if start_at is not None and isinstance(clock, RealClock):
        raise InputError("--start-at sets the virtual clock's calendar start; a run on the "
                         "real clock starts now")
    origin = start_at if start_at is not None else calendar_start
    # the bundle before anything is written anywhere: a mismatch leaves no state dir behind
    uploads = not prepared.plan.phase(Phase.BUNDLE).skipped
    digest = check_bundle(playbook, state_dir, display) if uploads else None
    writable_state_dir(state_dir, "start a run")
    # the lock first: a live runner is named (exit 5) before anything else is said
    with RunnerLock.acquire(state_dir, _owner()):
        # the directory read once, under the lock, before a journal is opened beside it
        reading = admit(state_dir, Command.RUN)
        if reading.holds is Holds.ABORTED:
            reading = archive_for_new_run(state_dir, reading, display)
        with Journal.open(state_dir) as journal:
            return _start(prepared, state_dir, reading, acks, clock, display, journal,
                          digest, events, origin, CompatOverlay(site, strict))


def _start(prepared: Prepared, state_dir: Path, reading: Reading, acks: Sequence[str],
           clock: Clock, display: Display, journal: Journal, digest: Digest | None,
           events: EventLog | None, origin: float | None = None,
           overlay: CompatOverlay | None = None) -> int:
    """Start the run under the lock in a directory ``reading`` says may hold a new one.
    A run is held once its journal has a record: until then nothing was started
    anywhere, so what an interrupted start left is cleared."""
    playbook = prepared.playbook
    if reading.leftovers or reading.start_recorded:
        display.line(f"{state_dir}: an earlier start was interrupted before its first step "
                     f"(nothing was done; left: "
                     f"{', '.join(reading.leftovers) or 'an empty journal'}); starting afresh")
        clear_startup(state_dir, world=not reading.keeps_world)
    overlay = overlay or CompatOverlay()
    if reading.holds is Holds.AFTER_ABORT:  # over the world the aborted run left
        prepared = replan_over_world(prepared, acks, state_dir, overlay)
    (state_dir / PAUSE_FILE).unlink(missing_ok=True)
    _remember_bundle(state_dir, digest, display)
    flow = prepared.plan.flow
    if flow is not None:  # which release's Upgrade Coordinator order this run follows
        display.line(f"flow {flow.id} ({flow.title}): "
                     f"{' -> '.join(p.value for p in flow.order)}")
    record_start(state_dir, journal, prepared, acks, clock, overlay)
    adapter = make_adapter(playbook, prepared.inventory, state_dir, clock)
    if reading.holds is Holds.AFTER_ABORT:
        continue_world(clock, adapter, journal)
    if origin is not None:
        _journal_calendar(journal, playbook, clock, origin)
    engine = recorded_engine(prepared, journal)
    return asyncio.run(drive(engine, adapter, journal, clock, state_dir, display,
                             first=Begin(clock.now()), events=events))


def resume_run(state_dir: Path, skip: Sequence[str], retry_failed: bool,
               choice: ClockChoice, display: Display, events: EventLog | None = None,
               wait: bool = False) -> int:
    """Continue the run in ``state_dir``; returns the exit code.

    ``wait``: with a maintenance window that is closed now, sleep until it opens first.
    """
    writable_state_dir(state_dir, "resume")
    with RunnerLock.acquire(state_dir, _owner()):
        admit(state_dir, Command.RESUME)  # read under the lock, before the journal is written
        with Journal.open(state_dir, create=False) as journal:
            return _resume(state_dir, journal, skip, retry_failed, choice, display, events,
                           wait)


def _resume(state_dir: Path, journal: Journal, skip: Sequence[str], retry_failed: bool,
            choice: ClockChoice, display: Display, events: EventLog | None,
            wait: bool) -> int:
    """Resume under the lock, the journal open."""
    started = journal.last_seq() > 0
    try:
        with collector_paused():
            prepared = load_run(state_dir, journal)
    except InputError as exc:
        if started or journal.get_meta("playbook_path") is None:
            raise
        raise InputError(f"the run in {state_dir} was interrupted while starting, before "
                         f"its first step, and cannot be begun from what it left ({exc}): "
                         f"start it again with `nsxt-upgrade run PLAYBOOK --state-dir "
                         f"{state_dir}`") from exc
    (state_dir / PAUSE_FILE).unlink(missing_ok=True)
    playbook, playbook_path = prepared.playbook, prepared.loaded.path
    with collector_paused():
        engine = recorded_engine(prepared, journal)
        replayed = replay(journal, engine)
    unknown = [s for s in skip if s not in engine.items]
    if unknown:
        known = ", ".join(i for i in engine.items)
        raise InputError(f"--skip {unknown[0]}: no such unit in this run (its units and "
                         f"steps: {known})")
    if engine.state is RunState.DONE:
        if events is not None:
            catch_up_done(events, journal, engine)
        display.line(f"the run in {state_dir} is already done; nothing to resume")
        return 0
    for ident in skip:
        item = engine.items[ident]
        if item.state not in (UnitState.PENDING, UnitState.FAILED):
            display.line(f"--skip {ident}: it is {item.state.value} already; nothing to skip")
    if retry_failed and not any(i.state is UnitState.FAILED for i in engine.items.values()):
        display.line("--retry-failed: no unit has failed; resuming as it stands")
    upload = engine.items.get(Phase.BUNDLE.value)
    if upload is not None and upload.state is not UnitState.DONE:
        # not uploaded yet: the file may have changed since the run started
        _remember_bundle(state_dir, check_bundle(playbook, state_dir, display), display)
    if playbook.inventory.adapter == "nsxt":  # refused credentials or certificate: say so now
        from upgrade.adapters.factory import check_access

        asyncio.run(check_access(playbook))
    clock = resumed_clock(journal, choice, playbook, replayed.last_at)
    adapter = make_adapter(playbook, prepared.inventory, state_dir, clock)
    journal.set_meta("clock", clock.to_json())
    if isinstance(clock, VirtualClock) and isinstance(adapter, SimulatedAdapter):
        clock.advance_to(adapter.world.time)
    if wait:
        _wait_for_window(engine, clock, display)
    first: Begin | Resumed
    if replayed.records == 0:  # killed before its first step: begin it now
        display.line(f"starting {playbook_path.name} in {state_dir} (the run was "
                     "interrupted before its first step)")
        first = Begin(clock.now())
    else:
        display.line(f"resuming {playbook_path.name} from {state_dir} "
                     f"({replayed.records} journal records replayed)")
        first = Resumed(clock.now(), retry_failed, tuple(skip))
    return asyncio.run(drive(engine, adapter, journal, clock, state_dir, display,
                             first=first, outstanding=replayed.outstanding,
                             events=events))


def check_bundle(playbook: Playbook, state_dir: Path, display: Display) -> Digest | None:
    """Verify the playbook's bundle against its sha256 (the cache in ``state_dir`` first),
    with a progress bar on a terminal; a mismatch raises a FileError (exit 2)."""
    path = bundle_path(playbook)
    if path is None or playbook.bundle.sha256 is None:
        return None
    cache = state_dir if state_dir.is_dir() else None
    if not display.console.is_terminal:
        return verify_bundle(playbook, cache)
    with Progress(TextColumn("verifying {task.description}"), BarColumn(),
                  DownloadColumn(), TransferSpeedColumn(), console=display.console,
                  transient=True) as bar:
        task = bar.add_task(path.name, total=None)
        return verify_bundle(playbook, cache,
                             lambda done, total: bar.update(task, completed=done, total=total))


def _remember_bundle(state_dir: Path, digest: Digest | None, display: Display) -> None:
    if digest is None:
        return
    remember(state_dir, digest)
    how = "hashed" if digest.hashed else "cached"
    display.line(f"bundle {Path(digest.path).name} verified: sha256 {digest.sha256} ({how})")


def _journal_calendar(journal: Journal, playbook: Playbook, clock: Clock,
                      origin: float) -> None:
    """Journal the run's calendar: its clock's reading now is the instant ``origin``."""
    meta = {"calendar_start": iso_at(origin)}
    if playbook.window is not None:
        calendar = Calendar(playbook.window, origin, clock.now(), isinstance(clock, RealClock))
        meta[WINDOW_META] = json.dumps(calendar.to_json())
    journal.set_meta_many(meta)


def _wait_for_window(engine: Engine, clock: Clock, display: Display) -> None:
    """``resume --wait``: sleep until the maintenance window opens (at once if open)."""
    if engine.window is None:
        display.line("--wait: the run has no maintenance window; resuming now")
        return
    calendar = engine.window.calendar
    opens = calendar.next_open(clock.now())
    if opens <= clock.now():
        return
    display.line(f"waiting for the maintenance window: it opens {calendar.local(opens)} "
                 "(Ctrl-C stops waiting; nothing is in flight)")
    asyncio.run(clock.sleep_until(opens))


def _owner() -> str:
    """What the lock file says about this process (its PID is recorded beside it)."""
    return " ".join(["nsxt-upgrade", *sys.argv[1:]])[:200]


