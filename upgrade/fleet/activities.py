"""The one activity: a round of engine actions (adapter starts and polls) against a site.

Any worker on the machine (or, with a shared state dir, any machine) can run any site's
activity: the simulated adapter works on the site's world in its state dir (kept open between
calls, reloaded when SQLite's ``data_version`` says another process changed it), the nsxt
adapter is built for each call and connects to the site's manager with credentials read
here, from the environment, never from Temporal.
Calls on one site hold the site's lock file: two workers never change one world at once.
Adapter errors become events (the engine decides); anything else fails the activity and
Temporal retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from upgrade.adapters.base import Adapter
from upgrade.adapters.simulated import SimulatedAdapter
from upgrade.clock import RealClock
from upgrade.core.engine.messages import (
    Event,
    Observed,
    OpState,
    Poll,
    Polled,
    PollFailed,
    Start,
    Started,
    decode,
    encode,
)
from upgrade.core.model import Inventory, Playbook
from upgrade.errors import AdapterError, InputError
from upgrade.fleet import sitelog
from upgrade.fleet.driver import action_key
from upgrade.fleet.shared import OPERATE, Call, CallResult, SiteRef
from upgrade.inputs.inventory import load_inventory
from upgrade.inputs.playbook import load_playbook
from upgrade.shell.runner import execute

#: the lock file in a site's state dir that serializes calls on the site
LOCK_FILE = "fleet.lock"
#: the simulated world's inventory, written by ``fleet run`` before the site starts
INVENTORY_FILE = "inventory.yaml"


@dataclass
class _Cached:
    stamp: tuple[int, int]
    value: Any


_CACHE: dict[str, _Cached] = {}


def _cached_load(path: Path, load: Any) -> Any:
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    hit = _CACHE.get(str(path))
    if hit is None or hit.stamp != stamp:
        hit = _Cached(stamp, load(path))
        _CACHE[str(path)] = hit
    return hit.value


@contextlib.asynccontextmanager
async def site_lock(state_dir: Path) -> AsyncIterator[None]:
    """Hold ``state_dir``'s lock file (polled without blocking the event loop)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.002)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@dataclass
class _World:
    """A site's simulated world kept open in this process between calls."""

    adapter: SimulatedAdapter
    inventory: Inventory
    origin: float
    speed: float
    #: SQLite's data_version after our last call: it changes when another process commits
    seen: int


_WORLDS: dict[str, _World] = {}


def _data_version(adapter: SimulatedAdapter) -> int:
    row = adapter.store.db.execute("PRAGMA data_version").fetchone()
    return int(row[0])


def simulated_adapter(ref: SiteRef, clock: RealClock) -> SimulatedAdapter:
    """The site's simulated adapter, reloading its world only when another process changed it
    (call with the site's lock held; do not close it: :func:`done_with` keeps it)."""
    state_dir = Path(ref.state_dir)
    playbook: Playbook = _cached_load(Path(ref.playbook), load_playbook)
    inventory: Inventory = _cached_load(state_dir / INVENTORY_FILE, load_inventory)
    kept = _WORLDS.get(ref.state_dir)
    if kept is not None and kept.inventory is inventory and \
            (kept.origin, kept.speed) == (ref.origin, ref.speed):
        if _data_version(kept.adapter) != kept.seen:  # another worker moved the world on
            kept.adapter.world = kept.adapter.store.load(inventory)
        return kept.adapter
    if kept is not None:
        asyncio.get_running_loop().create_task(kept.adapter.close())
    adapter = SimulatedAdapter(state_dir, inventory, playbook.target_version, clock)
    _WORLDS[ref.state_dir] = _World(adapter, inventory, ref.origin, ref.speed,
                                    _data_version(adapter))
    return adapter


def site_adapter(ref: SiteRef, clock: RealClock) -> Adapter:
    """The adapter of the site ``ref`` names, on ``clock``."""
    if ref.adapter == "simulated":
        return simulated_adapter(ref, clock)
    from upgrade.adapters.factory import nsxt_adapter

    playbook: Playbook = _cached_load(Path(ref.playbook), load_playbook)
    return nsxt_adapter(playbook, clock, Path(ref.state_dir), site=ref.name)


async def done_with(adapter: Adapter, ref: SiteRef) -> None:
    """After a call: a kept simulated world notes where the store stands; others close."""
    kept = _WORLDS.get(ref.state_dir)
    if kept is not None and kept.adapter is adapter:
        kept.seen = _data_version(kept.adapter)
        return
    await adapter.close()


#: adapter calls one activity has in flight at once (a real manager's API)
CONCURRENT_CALLS = 16
#: a call that learnt something still takes the polls due within this many real seconds
#: (less than a round trip through Temporal: returning first would only delay them)
LINGER_S = 0.03
#: the key prefix of a poll the call makes on its own (of an operation it started)
SPECULATIVE = "spec|"
_ENDS = (OpState.DONE, OpState.FAILED)
#: how often a waiting call heartbeats (real seconds)
HEARTBEAT_S = 1.0


def _learnt(event: Event, seen: list[str] | None) -> bool:
    """Whether a poll's outcome tells the engine anything: not when it repeats what the last
    poll said about a still-running operation (the engine's ``quiet`` poll)."""
    if isinstance(event, Polled) and event.state is OpState.RUNNING:
        now = ["Polled", event.state.value, event.detail]
    elif isinstance(event, PollFailed):
        now = ["PollFailed", "", event.error]
    else:
        return True
    return seen is None or list(seen) != now


class _Site:
    """One call's view of a site: the adapter, the clock, concurrency for real managers."""

    def __init__(self, adapter: Adapter, clock: RealClock) -> None:
        self.adapter = adapter
        self.clock = clock
        self.direct = adapter.execute_now if isinstance(adapter, SimulatedAdapter) else None
        self._gate = asyncio.Semaphore(CONCURRENT_CALLS)

    async def run(self, actions: list[Start | Poll]) -> list[Event]:
        if self.direct is not None:
            return [self.direct(a) for a in actions]

        async def one(action: Start | Poll) -> Event:
            async with self._gate:
                return await execute(self.adapter, action, self.clock.now)

        return list(await asyncio.gather(*(one(a) for a in actions)))

    async def version(self, unit: str) -> str | None:
        try:
            if isinstance(self.adapter, SimulatedAdapter):
                world = self.adapter.world
                world.advance(self.clock.now())
                return world.units[unit].version
            async with self._gate:
                return await self.adapter.unit_version(unit)
        except (AdapterError, KeyError):
            return None  # cannot tell now; its upgrade finds out

    async def reconciled(self, start: Start) -> Event | None:
        """A start the target already runs or finished: its ``Started``; None: start it."""
        try:
            async with self._gate:
                status = await self.adapter.status(start.op, start.unit)
        except AdapterError:
            return None  # could not ask: start it again (a start of what runs changes nothing)
        if status.begun:
            now = self.clock.now()
            return Started(now, start.op, start.unit, now)
        return None

    async def flush(self) -> None:
        if isinstance(self.adapter, SimulatedAdapter):
            self.adapter.store.flush(self.adapter.world)


async def _first(site: _Site, call: Call) -> list[Event]:
    """The call's starts (after reconciliation, when asked) and drift observations."""
    events: list[Event] = []
    for unit in call.observe:
        version = await site.version(unit)
        if version is not None and version == call.target:
            events.append(Observed(site.clock.now(), unit, version))
    starts: list[Start | Poll] = []
    for data in call.starts:
        start = decode(data)
        assert isinstance(start, Start)
        if action_key(start) in call.reconcile:
            found = await site.reconciled(start)
            if found is not None:
                events.append(found)
                continue
        starts.append(start)
    events += await site.run(starts)
    return events


def _open(ref: SiteRef, clock: RealClock) -> _Site:
    """The site's adapter for this call (with the site's lock held)."""
    try:
        return _Site(site_adapter(ref, clock), clock)
    except InputError as exc:  # no credentials, a playbook gone: retrying cannot help
        raise ApplicationError(str(exc), non_retryable=True) from exc


async def _heartbeat() -> None:
    """Heartbeat until cancelled: a long start (a bundle upload) or a long wait is seen to be
    alive, and a killed worker's call is retried within the heartbeat timeout."""
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_S)


@activity.defn(name=OPERATE)
async def step(ref: SiteRef, call: Call) -> CallResult:
    """One round of a site's adapter work (see :func:`_step`), heartbeating throughout."""
    beating = asyncio.create_task(_heartbeat())
    try:
        return await _step(ref, call)
    finally:
        beating.cancel()


async def _step(ref: SiteRef, call: Call) -> CallResult:
    """One round of a site's adapter work (see :class:`~upgrade.fleet.shared.Call`): journal
    what the workflow fed, run the starts, then poll until something changes.

    A poll that repeats what the last one said about a running operation is not returned
    (it would teach the engine nothing and cost history): the call polls it again one
    interval later (or at its deadline), holding the site's lock only while it calls the
    adapter.
    """
    state_dir = Path(ref.state_dir)
    clock = RealClock(ref.speed, 0.0, ref.origin)
    events: list[Event] = []
    async with site_lock(state_dir):
        sitelog.append(state_dir, call.round, ref.origin, call.fed)
        if call.starts or call.observe:
            site = _open(ref, clock)
            try:
                events = await _first(site, call)
                await site.flush()
            finally:
                await done_with(site.adapter, ref)
    due: dict[str, tuple[float, Poll, dict[str, Any]]] = {}
    for entry in call.polls:
        poll = decode(entry["action"])
        assert isinstance(poll, Poll)
        due[action_key(poll)] = (poll.at, poll, entry)
    for event in events:  # the engine polls a started operation at its eta: poll it then
        if isinstance(event, Started) and event.eta is not None:
            poll = Poll(event.op, event.unit, max(event.eta, event.at))
            due[SPECULATIVE + action_key(poll)] = (poll.at, poll, {"deadline": math.inf})
    while due:
        now = clock.now()
        ready = [(k, p, e) for k, (at, p, e) in due.items() if at <= now]
        if ready:
            async with site_lock(state_dir):
                site = _open(ref, clock)
                try:
                    outcomes = await site.run([p for _, p, _ in ready])
                    await site.flush()
                finally:
                    await done_with(site.adapter, ref)
            for (key, poll, entry), event in zip(ready, outcomes, strict=True):
                if key.startswith(SPECULATIVE):  # only an end is news; else the engine asks
                    del due[key]
                    if isinstance(event, Polled) and event.state in _ENDS:
                        events.append(event)
                elif _learnt(event, entry.get("seen")) or event.at >= entry["deadline"]:
                    events.append(event)
                    del due[key]
                else:
                    due[key] = (min(event.at + call.interval, entry["deadline"]), poll, entry)
        if now >= call.until or not due:
            break
        nxt = min(min(at for at, _, _ in due.values()), call.until)
        # a started operation changes nothing the engine decides on (it only polls it): a
        # call that learnt no more than that keeps watching
        news = any(not isinstance(e, Started) for e in events)
        if news and nxt > now + LINGER_S * ref.speed:
            break  # what is due this soon would wait a whole round trip: take it along
        await asyncio.sleep(min(max(0.0, (nxt - clock.now()) / ref.speed), HEARTBEAT_S))
    later = [[k, at] for k, (at, _, _) in due.items() if not k.startswith(SPECULATIVE)]
    return CallResult([encode(e) for e in events], later)
