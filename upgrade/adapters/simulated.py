"""The simulated adapter: the world lives in the state directory and outlives the orchestrator."""

from __future__ import annotations

from pathlib import Path

from upgrade.clock import Clock
from upgrade.core.engine.messages import Event, Poll, Start
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import Inventory, Op
from upgrade.core.versions import Version
from upgrade.sim import ops
from upgrade.sim.store import WorldPlace, WorldStore, WorldWrites, adopt_world
from upgrade.sim.world import World


class SimulatedAdapter:
    """Operations on the simulated world kept in ``state_dir``, on ``clock``'s time."""

    def __init__(self, state_dir: Path, inventory: Inventory, target: Version,
                 clock: Clock, *, joint: bool = False) -> None:
        """The world kept in ``state_dir`` (made from ``inventory`` if there is none).

        ``joint``: keep it in the run's journal database (``journal.sqlite``, which must
        exist), moving a ``world.sqlite`` found there (the previous layout, or the world an
        aborted run left) into it; otherwise in ``world.sqlite`` alone (a fleet site).
        """
        self.clock = clock
        #: set by a virtual-clock runner that writes the world once per batch instead
        self.deferred = False
        self._inventory = inventory
        if joint:
            self.store = WorldStore(WorldPlace.in_journal(state_dir))
            adopt_world(state_dir, self.store.db)
        else:
            self.store = WorldStore(WorldPlace.alone(state_dir))
        #: True when the world's batch writes can join the journal's transaction
        self.joint = joint
        if self.store.has_world():
            self.world = self.store.load(inventory)
        else:
            self.world = World(inventory, target)
            self.store.create(self.world)

    async def inventory(self) -> Inventory:
        """The inventory the world was made from."""
        return self._inventory

    async def start(self, op: Op, unit: str,
                    moves: tuple[tuple[str, str], ...] = ()) -> float | None:
        """Start ``op`` on ``unit`` in the world, now."""
        try:
            return self.world.start(op, unit, self.clock.now(), moves)
        finally:
            if not self.deferred:
                self.store.flush(self.world)

    async def status(self, op: Op, unit: str) -> OpStatus:
        """How ``op`` on ``unit`` stands in the world, now."""
        try:
            return ops.status(self.world, op, unit, self.clock.now())
        finally:
            if not self.deferred:
                self.store.flush(self.world)

    def execute_now(self, action: Start | Poll) -> Event:
        """Run ``action`` in the world, now, as :meth:`start` or :meth:`status` does, and
        the event that reports it (a virtual-clock runner's batches: no coroutine each)."""
        try:
            return ops.execute(self.world, action, self.clock.now())
        finally:
            if not self.deferred:
                self.store.flush(self.world)

    async def flush(self) -> None:
        """Store what the calls since the last flush changed (one transaction).

        A virtual-clock runner defers the world's writes of a whole batch to this, before
        it journals the batch's outcomes: a crash in between is one before the requests
        reached the target, and the resume sends them again.
        """
        self.store.flush(self.world)

    def batch_writes(self) -> WorldWrites | None:
        """The world's changes since the last write, for the journal's transaction of a
        batch (one commit covers both); None when nothing changed, or when the world is
        not kept in the journal's database (then :meth:`flush` writes it)."""
        return self.store.writes(self.world) if self.joint else None

    def batch_written(self) -> None:
        """The journal committed what :meth:`batch_writes` gave."""
        self.store.written(self.world)

    async def unit_version(self, unit: str) -> str:
        """The version ``unit`` reports now."""
        self.world.advance(self.clock.now())
        self.store.flush(self.world)
        return self.world.units[unit].version

    async def close(self) -> None:
        """Flush (the clock too) and close the world's store."""
        self.store.flush(self.world, force=True)
        self.store.close()
