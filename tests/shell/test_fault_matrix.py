"""The fault matrix: each fault kind in each phase, under ``on_error: pause`` and ``abort``,
with and without retries (pure: the engine against the simulated world, in memory).

A fault stops the run safely, PAUSED or FAILED as ``on_error`` says (a refusal the
retries absorb does not stop it), having started no new unit after the failure;
one ``Resumed(retry_failed=True)`` then finishes the run: every unit at the
target version, upgraded once (twice where an upgrade attempt failed or hung),
nothing left in maintenance.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.invariants import check_invariants
from tests.sim_helpers import (
    Case,
    expected_upgrade_counts,
    make_inventory,
    make_playbook,
)
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import Action, Notice, Start
from upgrade.core.model import (
    BUNDLE,
    COORDINATOR,
    SYSTEM,
    Drs,
    Fault,
    FaultKind,
    Mode,
    OnError,
    Op,
)

#: phase -> the (unit, op) the fault hits; the host is in a manual-DRS cluster with VMs
#: running on it, so that the orchestrator evacuates it itself
TARGETS = {
    "precheck": (SYSTEM, Op.PRECHECK),
    "bundle": (BUNDLE, Op.UPLOAD),
    "coordinator": (COORDINATOR, Op.COORDINATOR),
    "host-enter-maintenance": ("esx-0-0", Op.ENTER_MAINTENANCE),
    "host-evacuate": ("esx-0-0", Op.EVACUATE),
    "host-upgrade": ("esx-0-0", Op.UPGRADE),
    "host-exit-maintenance": ("esx-0-0", Op.EXIT_MAINTENANCE),
    "edges": ("edge-0-1", Op.UPGRADE),
    "controllers": ("ctrl-1", Op.UPGRADE),
    "manager": ("nsx-mgr", Op.UPGRADE),
    "postcheck": (SYSTEM, Op.POSTCHECK),
}


def _case(unit: str, op: Op, kind: FaultKind, on_error: OnError, retries: int) -> Case:
    inventory = make_inventory(
        [(Drs.MANUAL, ((True, True, False), (True,), ())),
         (Drs.FULLY_AUTOMATED, ((True,), (True,)))],
        edge_clusters=(2, 1),
        controllers=3,
        faults=[Fault(unit, op, kind)],
    )
    playbook = make_playbook(max_parallel=2, on_error=on_error, retries=retries)
    return Case(inventory, playbook)


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("on_error", list(OnError), ids=lambda o: o.value)
@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
@pytest.mark.parametrize("where", list(TARGETS))
def test_fault_stops_safely_and_resume_finishes(
    where: str, kind: FaultKind, on_error: OnError, retries: int
) -> None:
    """A fault in any phase stops the run as on_error says (or is absorbed by retries if it
    is a refusal), with the invariants intact and no new unit started after the
    failure; Resumed(retry_failed=True) then finishes with every unit upgraded the
    expected number of times and no host in maintenance."""
    unit, op = TARGETS[where]
    case = _case(unit, op, kind, on_error, retries)
    run = case.run()
    run.start()
    assert not run.in_flight()
    check_invariants(run.plan, case.inventory, run.world.snapshot())
    if kind is FaultKind.REFUSE and retries >= 1:
        assert run.state is RunState.DONE, run.engine.stop_reasons
        assert run.notices("retry"), "the refusal was retried"
    else:
        stopped = RunState.PAUSED if on_error is OnError.PAUSE else RunState.FAILED
        assert run.state is stopped, run.engine.stop_reasons
        failed = run.failed()
        item = TARGETS_ITEM.get(where, unit)
        assert failed == [item], (failed, run.engine.stop_reasons)
        assert item in run.engine.stop_reasons[0]
        _no_new_unit_after_failure(run.traces[0].actions)
        run.resume(retry_failed=True)
        assert run.state is RunState.DONE, run.engine.stop_reasons
    check_invariants(run.plan, case.inventory, run.world.snapshot(), complete=True,
                     upgrade_counts=expected_upgrade_counts(case.inventory))


#: the engine's item id for faults on system steps (which have pseudo-unit targets)
TARGETS_ITEM = {"precheck": "precheck", "bundle": "bundle", "coordinator": "coordinator",
                "postcheck": "postcheck"}


def _no_new_unit_after_failure(actions: Sequence[Action]) -> None:
    """After a unit fails, only units already under way get more operations."""
    started: set[str] = set()
    failed = False
    for action in actions:
        if isinstance(action, Notice) and action.kind == "unit_failed":
            failed = True
        elif isinstance(action, Start):
            if failed:
                assert action.unit in started, f"{action.unit} started after a failure"
            started.add(action.unit)


def test_plain_resume_after_a_failure_starts_nothing_new_in_that_component() -> None:
    """A failed unit stops new work in its component: resuming without --retry-failed or
    --skip starts no other unit of that phase (not even in other host groups) and pauses
    again, naming the failed unit and what to do; --retry-failed then finishes the run."""
    inventory = make_inventory(
        clusters=((Drs.FULLY_AUTOMATED, ((True,), (), ())),
                  (Drs.FULLY_AUTOMATED, ((True,), (), ()))),
        faults=(Fault("esx-0-0", Op.UPGRADE, FaultKind.FAIL),),
    )
    playbook = make_playbook(mode=Mode.PARALLEL, max_parallel=1, max_parallel_groups=2)
    run = Case(inventory, playbook).run()
    run.start()
    assert run.state is RunState.PAUSED
    assert run.failed() == ["esx-0-0"]
    trace = run.resume()
    started = [a for a in trace.actions if isinstance(a, Start)]
    assert started == [], f"plain resume started {started}"
    assert run.state is RunState.PAUSED
    assert any("--retry-failed" in n.message for n in run.notices("stopping"))
    run.resume(retry_failed=True)
    assert run.state is RunState.DONE
