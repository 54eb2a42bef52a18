"""Quiet polls: a poll that learns nothing new adds nothing to the journal (issue 9 item 2b,
issue 12 item 3), and replaying such a journal still gives the engine the live run had.

These run the real :class:`~upgrade.shell.runner.Runner` with a real journal and the simulated
adapter in this process, on a virtual clock; the CLI tests in ``test_runaway.py`` do the
same through subprocesses, signals and ``kill -9``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.shell.test_fault_matrix import TARGETS
from tests.sim_helpers import TARGET, Case, make_inventory, make_playbook
from upgrade.adapters.simulated import SimulatedAdapter
from upgrade.clock import VirtualClock
from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import Begin, Event, OpState, Poll, Polled, Resumed
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Drs, Fault, FaultKind, Op, Timeouts
from upgrade.shell.journal import Journal
from upgrade.shell.replay import replay
from upgrade.shell.runner import Runner
from upgrade.sim.drive import drive
from upgrade.sim.world import World

DAY = 24 * 3600


def _case(*faults: Fault, timeout: int | None = None) -> Case:
    inventory = make_inventory(
        [(Drs.MANUAL, ((True, True, False), (True,), ())),
         (Drs.FULLY_AUTOMATED, ((True,), (True,)))],
        edge_clusters=(2, 1), controllers=3, faults=faults)
    playbook = make_playbook(max_parallel=2)
    if timeout is not None:
        playbook = replace(playbook, timeouts=Timeouts(host_upgrade=timeout))
    return Case(inventory, playbook)


class Chatty:
    """The simulated adapter, except that a running operation's detail changes every poll
    (a manager reporting its percentage): every one of those polls learns something."""

    def __init__(self, inner: SimulatedAdapter) -> None:
        self.inner = inner
        self.polls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def status(self, op: Op, unit: str) -> OpStatus:
        status = await self.inner.status(op, unit)
        if status.state != "running":
            return status
        self.polls += 1
        return OpStatus(OpState.RUNNING, f"{status.detail} (poll {self.polls})")


def _engine(case: Case) -> Engine:
    return Engine(case.plan, case.inventory, Policy.from_playbook(case.playbook))


def _run(case: Case, state_dir: Path, chatty: bool = False,
         retry_failed: bool = False) -> Engine:
    """Run ``case`` to a settled state through the runner (and once more with
    ``Resumed(retry_failed=True)`` if asked); the live engine."""
    state_dir.mkdir(parents=True, exist_ok=True)

    async def go() -> Engine:
        clock = VirtualClock()
        engine = _engine(case)
        sim = SimulatedAdapter(state_dir, case.inventory, TARGET, clock)
        adapter: Any = Chatty(sim) if chatty else sim
        with Journal.open(state_dir) as journal:
            runner = Runner(engine, adapter, journal, clock)
            runner.feed(Begin(0.0))
            await runner.run()
            if retry_failed:
                runner.feed(Resumed(clock.now(), retry_failed=True))
                await runner.run()
        await sim.close()
        return engine

    return asyncio.run(go())


def _state(engine: Engine) -> dict[str, Any]:
    """Everything the engine decides from, as plain data."""
    items = {i.id: (i.state.value, i.index, i.waiting, i.deadline, i.op_started, i.seen,
                    i.start_attempts, i.transient, i.error, i.holds_maintenance, i.moves)
             for i in engine.items.values()}
    return {"items": items, "state": engine.state.value, "phase": engine.phase.value,
            "stop": engine.stop, "reasons": engine.stop_reasons, "now": engine.now,
            "times": engine.unit_times, "phases": engine.phase_times}


def _records(state_dir: Path) -> list[dict[str, Any]]:
    with Journal.open(state_dir, create=False) as journal:
        return [{"kind": r.kind, **r.payload} for r in journal.records()]


def test_a_hang_journals_the_same_records_whatever_its_timeout(tmp_path: Path) -> None:
    """A hung host upgrade watched for one hour or for seven days leaves journals of the
    same length: its first "running" answer is recorded, the thousands of identical ones
    after it are not; the timeout that ends it is."""
    counts = []
    for timeout in (3600, 7 * DAY):
        state_dir = tmp_path / str(timeout)
        engine = _run(_case(Fault("esx-0-0", Op.UPGRADE, FaultKind.HANG), timeout=timeout),
                      state_dir)
        assert engine.state is RunState.PAUSED
        assert f"upgrade timed out after {timeout}s" in engine.stop_reasons[0]
        assert "--retry-failed" in engine.stop_reasons[0]
        records = _records(state_dir)
        polled = [r for r in records if r["type"] == "Polled" and r["unit"] == "esx-0-0"
                  and r["op"] == "upgrade"]
        assert len(polled) == 2, polled  # "not making progress", then the timeout
        assert polled[-1]["at"] - polled[0]["at"] >= timeout - 60
        counts.append(len(records))
    assert counts[0] == counts[1], counts


def test_polls_that_learn_something_are_journaled(tmp_path: Path) -> None:
    """A running operation whose detail changes on every poll (a percentage) is journaled
    poll by poll: quiet means nothing new, not merely still running."""
    short, long_ = (_run(_case(Fault("esx-0-0", Op.UPGRADE, FaultKind.HANG), timeout=t),
                         tmp_path / str(t), chatty=True) for t in (600, 1200))
    assert short.state is long_.state is RunState.PAUSED
    assert len(_records(tmp_path / "1200")) >= len(_records(tmp_path / "600")) + 2 * 19


@pytest.mark.parametrize("kind", [FaultKind.HANG, FaultKind.TIMEOUT, FaultKind.FAIL],
                         ids=lambda k: k.value)
@pytest.mark.parametrize("where", list(TARGETS))
def test_replay_of_a_journal_without_quiet_polls_gives_the_live_engine(
        tmp_path: Path, where: str, kind: FaultKind) -> None:
    """For a fault in every phase, the journal (quiet polls left out) replays into an engine
    in exactly the live engine's state, also after `--retry-failed` finished the run; and
    a run that paused with an operation still watched replays with that poll outstanding,
    so a resume asks again at once."""
    unit, op = TARGETS[where]
    case = _case(Fault(unit, op, kind), timeout=4 * 3600)
    live = _run(case, tmp_path / "once")
    with Journal.open(tmp_path / "once", create=False) as journal:
        replayed = replay(journal, _engine(case))
    assert _state(replayed.engine) == _state(live)
    for seq, action in replayed.outstanding.items():
        assert isinstance(action, Poll), (seq, action)

    finished = _run(case, tmp_path / "twice", retry_failed=True)
    assert finished.state is RunState.DONE, finished.stop_reasons
    with Journal.open(tmp_path / "twice", create=False) as journal:
        again = replay(journal, _engine(case))
    assert _state(again.engine) == _state(finished)
    assert again.outstanding == {}


def test_quiet_is_only_a_repeat_of_the_same_answer() -> None:
    """Driven purely (no journal): the engine calls a poll quiet only when it repeats the
    previous answer for the same operation and leads to nothing but the next poll; the
    first answer and the one at the deadline are not quiet."""
    case = _case(Fault("esx-0-0", Op.UPGRADE, FaultKind.HANG), timeout=3600)
    engine = _engine(case)
    seen: list[tuple[float, bool]] = []

    def watch(event: Event) -> list[Event]:
        if isinstance(event, Polled) and event.unit == "esx-0-0" and event.op is Op.UPGRADE:
            seen.append((event.at, engine.quiet))
        return []

    drive(engine, World(case.inventory, TARGET), on_event=watch)
    assert engine.state is RunState.PAUSED
    quiet = [q for _, q in seen]
    assert quiet == [False] + [True] * (len(seen) - 2) + [False]
    assert len(seen) == 3600 // 30
    assert seen[-1][0] - seen[0][0] == 3600 - 30
