"""The one activity: run an engine action (an adapter start or poll) against a site.

Each call builds the site's adapter afresh from the site's files, so any worker on the
machine (or, with a shared state dir, any machine) can run any site's activity: the
simulated adapter loads the site's world from its state dir, the nsxt adapter connects to the
site's manager with credentials read here, from the environment, never from Temporal.
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
from upgrade.clock import RealClock
from upgrade.engine.messages import Poll, Start, decode, encode
from upgrade.errors import InputError
from upgrade.fleet.shared import OPERATE, SiteRef
from upgrade.inventory import load_inventory
from upgrade.model import Inventory, Playbook
from upgrade.playbook import load_playbook
from upgrade.runner import execute

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


def site_adapter(ref: SiteRef, clock: RealClock) -> Adapter:
    """The adapter of the site ``ref`` names, on ``clock``."""
    state_dir = Path(ref.state_dir)
    playbook: Playbook = _cached_load(Path(ref.playbook), load_playbook)
    if ref.adapter == "simulated":
        from upgrade.adapters.simulated import SimulatedAdapter

        inventory: Inventory = _cached_load(state_dir / INVENTORY_FILE, load_inventory)
        return SimulatedAdapter(state_dir, inventory, playbook.target_version, clock)
    from upgrade.adapters.factory import nsxt_adapter

    return nsxt_adapter(playbook, clock, state_dir, site=ref.name)


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
            await adapter.close()
    return encode(event)
