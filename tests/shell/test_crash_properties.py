"""Crash and resume properties (hypothesis), through the shipped runner, journal, replay and
reconciliation (:mod:`tests.crash_support`) against an in-memory simulated world.

Random inventories and playbooks; the orchestrator is killed at random moments (some
requests reaching the target with their answers lost, the target going on while it is
dead), and each resume replays the journal into a fresh engine (which must issue exactly
the journaled actions again) and reconciles the intents without an outcome.  Snapshots
are stored every few records or as shipped, so resumes start from one or from the first
record.  ``ENGINE_EXAMPLES=2000`` runs a deeper search.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from tests.crash_support import Crash, CrashRun, crash_lists
from tests.invariants import check_invariants
from tests.sim_helpers import SETTINGS, Case, away_from_home, cases, restoring
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import Start
from upgrade.core.model import Canary, Op
from upgrade.shell.replay import SNAPSHOT_EVERY

#: how often the runner stores a snapshot: as shipped, or often enough that resumes start
#: from one
SNAPSHOTS = st.sampled_from([SNAPSHOT_EVERY, 1, 7, 40])


@SETTINGS
@given(cases(), crash_lists(), SNAPSHOTS)
def test_crashes_and_resumes_upgrade_every_unit_once(case: Case, crashes: list[Crash],
                                                     snapshot_every: int) -> None:
    """Killed at random moments and resumed each time: the run still finishes DONE, every
    unit upgraded exactly once, nothing left in maintenance, every invariant held."""
    with CrashRun.of(case, snapshot_every) as run:
        run.run(crashes)
        assert run.engine.state is RunState.DONE, run.engine.stop_reasons
        check_invariants(case.plan, case.inventory, run.world.snapshot(), complete=True)


@SETTINGS
@given(cases(), crash_lists(), SNAPSHOTS)
def test_crashes_neither_lose_nor_repeat_a_move_home(case: Case, crashes: list[Crash],
                                                     snapshot_every: int) -> None:
    """With ``restore_vm_placement``, killed and resumed: the run finishes done, every unit
    upgraded once, every VM back home, and the journal asks for each move home at most
    once per VM with the same destination (chosen once, asked again only as the same
    operation)."""
    case = restoring(case)
    with CrashRun.of(case, snapshot_every) as run:
        run.run(crashes)
        assert run.engine.state is RunState.DONE, run.engine.stop_reasons
        snap = run.world.snapshot()
        check_invariants(case.plan, case.inventory, snap, complete=True)
        assert not away_from_home(case.inventory, snap)
        asked: dict[str, set[tuple[tuple[str, str], ...]]] = {}
        for action in run.actions():
            if isinstance(action, Start) and action.op is Op.RESTORE:
                asked.setdefault(action.unit, set()).add(action.moves)
        assert all(len(moves) == 1 for moves in asked.values()), asked


@SETTINGS
@given(cases(), st.integers(1, 3), crash_lists(), SNAPSHOTS)
def test_crashes_during_a_canary_watch_lose_nothing(case: Case, hosts: int,
                                                    crashes: list[Crash],
                                                    snapshot_every: int) -> None:
    """With a canary watch, killed and resumed: the run still finishes done with every
    invariant; the watch's timer survives (a resume sets it again)."""
    case = replace(case, playbook=replace(case.playbook, canary=Canary(hosts, 1800)))
    with CrashRun.of(case, snapshot_every) as run:
        run.run(crashes)
        assert run.engine.state is RunState.DONE, run.engine.stop_reasons
        check_invariants(case.plan, case.inventory, run.world.snapshot(), complete=True)
