"""The engine skips the scheduling pass after events that free nothing a pass could use
(:attr:`upgrade.core.engine.state.Ledger.idle`): a skipped pass must never have started
anything.  After every event of a drive, a full pass over the engine's state (on a copy
restored from its snapshot) starts nothing."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from tests.sim_helpers import SETTINGS, Case, Run, cases, fault_sets, make_inventory, make_playbook
from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import Action, Event, Start
from upgrade.core.model import Drs, Mode, Op
from upgrade.core.plan import GroupPlan, Phase


def _watched(run: Run) -> list[int]:
    """Drive ``run`` (resuming each pause at once), checking after every event that a full
    scheduling pass would start nothing; the count of events checked."""
    engine = run.engine
    checked = [0]

    def check(event: Event) -> list[Event]:
        copy = Engine.from_snapshot(engine.plan, engine.inventory, engine.policy,
                                    engine.snapshot())
        out: list[Action] = []
        copy.scheduler.schedule(out)
        assert not [a for a in out if isinstance(a, Start)], (event, out)
        checked[0] += 1
        return []

    run.start(on_event=check)
    for _ in range(10):
        if run.state is not RunState.PAUSED:
            break
        run.resume()
    return checked


@SETTINGS
@given(cases(), st.data())
def test_no_skipped_pass_would_have_started_anything(case: Case, data: st.DataObject) -> None:
    """Random cases, with faults: every pass the engine skipped would have started nothing."""
    case = case.with_faults(data.draw(fault_sets(case.inventory)))
    assert _watched(case.run())[0] > 0


def test_a_cluster_spread_over_two_groups_lets_the_other_group_in_at_once() -> None:
    """One cluster's hosts in two groups of one slot each: when the first group's host has
    entered maintenance (its group full), the other group's host starts entering then, not
    when the first host is done."""
    inventory = make_inventory([(Drs.FULLY_AUTOMATED, ((True,), (True,), (True,)))],
                               edge_clusters=())
    playbook = make_playbook(mode=Mode.PARALLEL, max_parallel=1, max_parallel_groups=2)
    case = Case(inventory, playbook)
    plan = case.plan
    hosts = plan.phase(Phase.HOSTS)
    split = (GroupPlan("first", ("esx-0-0",), 1), GroupPlan("second", ("esx-0-1", "esx-0-2"), 1))
    plan = replace(plan, phases=tuple(replace(p, groups=split, max_parallel_groups=2)
                                      if p is hosts else p for p in plan.phases))
    run = Run.of(plan, inventory, playbook)
    _watched(run)
    assert run.state is RunState.DONE
    starts = [(a.unit, a.op) for a in run.actions if isinstance(a, Start)]
    # (the first host's upgrade starts as its entry ends: the same event lets the other in)
    assert starts[3:7] == [("esx-0-0", Op.ENTER_MAINTENANCE), ("esx-0-0", Op.UPGRADE),
                           ("esx-0-1", Op.ENTER_MAINTENANCE), ("esx-0-1", Op.UPGRADE)], starts
    entry_ends = next(i for i, a in enumerate(run.actions)
                      if isinstance(a, Start) and (a.unit, a.op) == ("esx-0-0", Op.UPGRADE))
    assert run.actions[entry_ends + 1] == Start(Op.ENTER_MAINTENANCE, "esx-0-1", 1)
