"""The one activity: run an engine action (an adapter start or poll) against a site.

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
from upgrade.core.engine.messages import Poll, Start, decode, encode
from upgrade.core.model import Inventory, Playbook
from upgrade.errors import InputError
from upgrade.fleet.shared import OPERATE, SiteRef
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


@activity.defn(name=OPERATE)
async def operate(ref: SiteRef, action: dict[str, Any]) -> dict[str, Any]:
    """Run one encoded :class:`Start` or :class:`Poll` on the site; the encoded event back."""
    act = decode(action)
    if not isinstance(act, Start | Poll):
        raise TypeError(f"{OPERATE} runs starts and polls, not {type(act).__name__}")
    clock = RealClock(ref.speed, 0.0, ref.origin)
    async with site_lock(Path(ref.state_dir)):
        try:
            adapter = site_adapter(ref, clock)
        except InputError as exc:  # no credentials, a playbook gone: retrying cannot help
            raise ApplicationError(str(exc), non_retryable=True) from exc
        try:
            event = await execute(adapter, act, clock.now)
        finally:
            await done_with(adapter, ref)
    return encode(event)
