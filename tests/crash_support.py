"""Kill the orchestrator and resume it, the way ``run`` and ``resume`` do, with the shipped code.

:class:`CrashRun` runs a :class:`~tests.sim_helpers.Case` through the shipped
:class:`~upgrade.shell.runner.Runner` (every step journaled before it is executed, group
commit on a virtual clock) into a real :class:`~upgrade.shell.journal.Journal`.  A crash
kills it part-way; a resume is what ``nsxt-upgrade resume`` does: a fresh engine rebuilt
from the journal by :func:`upgrade.shell.replay.replay` (which checks that it issues the
journaled actions again), then :meth:`~upgrade.shell.runner.Runner.begin` with ``Resumed``
(which observes drift and reconciles the intents that have no outcome), then the runner
again.  The target is an in-memory simulated world behind
:class:`WorldAdapter`; like the simulated adapter's, it lives on while the orchestrator is
dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from tests.sim_helpers import Case
from upgrade.clock import VirtualClock
from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import Action, Begin, Event, Resumed, decode
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Inventory, Op
from upgrade.core.plan import Phase
from upgrade.shell.journal import Journal
from upgrade.shell.replay import SNAPSHOT_EVERY, replay
from upgrade.shell.runner import Hooks, Runner
from upgrade.sim import ops
from upgrade.sim.world import World

#: journals of generated runs go to memory when the machine has a tmpfs (no fsync cost)
FAST_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


class Killed(Exception):
    """The orchestrator died (SIGKILL): nothing it had not journaled yet survives."""


@dataclass(frozen=True)
class Crash:
    """Kill the orchestrator once it has handled ``after`` more events: the next ``lost``
    requests still reach the target (their answers are never journaled), the one after
    never does; it stays dead ``down`` simulated seconds."""

    after: int
    lost: int = 0
    down: float = 0.0


def crash_lists() -> st.SearchStrategy[list[Crash]]:
    """0-4 crashes at random moments, each losing 0-3 answers, down from 0 s to 5000 s."""
    return st.lists(st.builds(Crash, st.integers(0, 60), st.integers(0, 3),
                              st.sampled_from([0.0, 45.0, 600.0, 5000.0])), max_size=4)


class WorldAdapter:
    """The adapter protocol over an in-memory world (the simulated adapter without its
    store), killing the orchestrator where ``crash`` says."""

    def __init__(self, world: World, clock: VirtualClock, crash: Crash | None) -> None:
        self.world = world
        self.clock = clock
        self.crash = crash
        self.deferred = False  # (the virtual-clock runner sets it: it calls flush per batch)
        self.events = 0
        self._lost = crash.lost if crash is not None else 0

    @property
    def armed(self) -> bool:
        """True once the orchestrator has handled the events it lives for."""
        return self.crash is not None and self.events >= self.crash.after

    def saw(self, event: Event) -> None:
        """The runner's ``on_event`` hook: count the events handled."""
        self.events += 1

    def _reach(self) -> None:
        """Before each request reaches the target: die where the crash says."""
        if self.armed:
            if self._lost <= 0:
                raise Killed
            self._lost -= 1

    async def inventory(self) -> Inventory:
        """The inventory the world was made from."""
        return self.world.inventory

    async def start(self, op: Op, unit: str,
                    moves: tuple[tuple[str, str], ...] = ()) -> float | None:
        """Start ``op`` on ``unit`` in the world, now."""
        self._reach()
        return self.world.start(op, unit, self.clock.now(), moves)

    async def status(self, op: Op, unit: str) -> OpStatus:
        """How ``op`` on ``unit`` stands in the world, now."""
        self._reach()
        return ops.status(self.world, op, unit, self.clock.now())

    async def unit_version(self, unit: str) -> str:
        """The version ``unit`` reports now."""
        self._reach()
        self.world.advance(self.clock.now())
        return self.world.units[unit].version

    async def flush(self) -> None:
        """After each batch, before its answers are journaled: an armed crash lands here."""
        if self.armed:
            raise Killed

    async def close(self) -> None:
        """Nothing to release."""


@dataclass
class CrashRun:
    """A run whose orchestrator is killed and resumed, as ``run``/``resume`` do it."""

    case: Case
    journal: Journal
    world: World
    engine: Engine
    clock: VirtualClock = field(default_factory=VirtualClock)
    #: the runner stores a snapshot every so many records (resumes replay from the latest)
    snapshot_every: int = SNAPSHOT_EVERY
    resumes: int = 0
    #: what reconciliation said on each resume
    said: list[str] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def of(cls, case: Case, snapshot_every: int = SNAPSHOT_EVERY) -> Iterator[CrashRun]:
        """A fresh run of ``case`` with its journal in a temporary state directory."""
        with tempfile.TemporaryDirectory(dir=FAST_TMP) as tmp, \
                Journal.open(Path(tmp)) as journal:
            world = World(case.inventory, case.plan.target_version)
            yield cls(case, journal, world, cls._engine(case), snapshot_every=snapshot_every)

    @staticmethod
    def _engine(case: Case) -> Engine:
        return Engine(case.plan, case.inventory, Policy.from_playbook(case.playbook))

    def run(self, crashes: list[Crash]) -> None:
        """Begin, crash as told (resuming after each), then go on until the run ends; the
        pauses ``pause_after_each_group`` asks for are resumed at once."""
        first: Begin | Resumed = Begin(0.0)
        outstanding: Mapping[int, Action] = {}
        pending = list(crashes)
        for _ in range(len(pending) + len(self.case.plan.phase(Phase.HOSTS).groups) + 1):
            crash = pending[0] if pending else None
            if self._leg(first, outstanding, crash):
                if self.engine.state is not RunState.PAUSED:
                    return
                down = 0.0
            else:
                assert crash is not None
                pending.pop(0)
                down = crash.down
            first, outstanding = self._resume(down)
        raise AssertionError(f"still {self.engine.state} after every crash and resume")

    def _leg(self, first: Begin | Resumed, outstanding: Mapping[int, Action],
             crash: Crash | None) -> bool:
        """One process's life: True if the engine settled, False if it was killed."""
        adapter = WorldAdapter(self.world, self.clock, crash)
        runner = Runner(self.engine, adapter, self.journal, self.clock,
                        Hooks(on_event=adapter.saw))
        runner.snapshot_every = self.snapshot_every
        runner.outstanding = dict(outstanding)

        async def go() -> None:  # what `run` and `resume` do once the engine is built
            await runner.begin(first, outstanding, self.said.append)
            await runner.run()

        try:
            asyncio.run(go())
        except Killed:
            return False
        assert self.engine.settled, "the runner ran out of work before the engine settled"
        return True

    def _resume(self, down: float) -> tuple[Resumed, Mapping[int, Action]]:
        """A new process: a fresh engine replayed from the journal, ``down`` seconds later."""
        self.resumes += 1
        self.clock.advance_to(self.clock.now() + down)
        self.engine = self._engine(self.case)
        replayed = replay(self.journal, self.engine)
        self.clock.advance_to(max(replayed.last_at, self.world.time))
        return Resumed(self.clock.now()), replayed.outstanding

    def actions(self) -> list[Action]:
        """Every action the journal holds, in order."""
        return [decode(r.payload) for r in self.journal.records() if r.kind == "action"]
