"""The phase machine built from the hop's flow (DESIGN section 9), on the pure core.

* the phase machine has exactly the plan's phases, in the flow's order; a phase the flow
  leaves out (2.4's controllers) is no state it can reach;
* for random sites and every flow, a fault-free run upgrades each unit of the flow's
  kinds exactly once, starts the phases in the flow's order, never overlaps two unit
  phases, and never acts on a unit the flow merges (2.4: the controllers);
* the 2.1 -> 2.3 flow plans and decides exactly as the engine did before flows existed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sim_helpers import SETTINGS, Case, Run, cases, fault_free, make_inventory, make_playbook
from upgrade.compat.flows import flow_for, load_flows
from upgrade.core.engine.machines import InvalidTransition, PhaseMachine, RunState
from upgrade.core.engine.messages import NoticeKind, Start
from upgrade.core.model import Drs, Op, UnitKind
from upgrade.core.plan import CLASSIC_ORDER, PHASES, UNIT_PHASES, Flow, Phase, Plan, build_plan
from upgrade.core.versions import Version

#: (source, target) of one hop per flow of the data
HOPS = {
    "2.1-to-2.2": ("2.1.0.0", "2.2.0.0"),
    "2.x-to-2.3": ("2.1.0.0", "2.3.0.0"),
    "2.3-patch": ("2.3.0.0", "2.3.1.0"),
    "2.3-to-2.4": ("2.3.1.0", "2.4.1.0"),
    "2.4-to-2.5": ("2.4.1.0", "2.5.0.0"),
}
SYSTEM_FIRST = (Phase.PRECHECK, Phase.BUNDLE, Phase.COORDINATOR)


def _flow(name: str) -> Flow:
    source, target = HOPS[name]
    flow = flow_for(Version.parse(source), Version.parse(target))
    assert flow is not None and flow.id == name
    return flow


def _hop(case: Case, name: str) -> tuple[Plan, Run]:
    """``case`` as the hop of flow ``name``: its versions, its flow's plan, a fresh run."""
    source, target = (Version.parse(v) for v in HOPS[name])
    inventory = replace(case.inventory, version=source)
    playbook = replace(case.playbook, target_version=target)
    plan = build_plan(playbook, inventory, flow=_flow(name))
    assert plan.runnable, plan.refusals
    return plan, Run.of(plan, inventory, playbook)


def test_the_phase_machine_has_only_the_flows_phases_in_its_order() -> None:
    order = (*SYSTEM_FIRST, Phase.HOSTS, Phase.EDGES, Phase.MANAGER, Phase.POSTCHECK)
    machine = PhaseMachine(order)
    seen = [machine.phase]
    while machine.state is not RunState.DONE:
        machine.advance()
        if machine.state is not RunState.DONE:
            seen.append(machine.phase)
    assert tuple(seen) == order
    with pytest.raises(InvalidTransition):
        machine.advance()  # done is done


def test_a_paused_2_5_run_resumes_in_the_phase_it_paused_in() -> None:
    order = (*SYSTEM_FIRST, Phase.EDGES, Phase.HOSTS, Phase.MANAGER, Phase.POSTCHECK)
    machine = PhaseMachine(order)
    for _ in range(3):
        machine.advance()
    assert machine.phase is Phase.EDGES
    machine.pause()
    machine.resume()
    assert machine.state is RunState.EDGES
    machine.advance()
    assert machine.phase is Phase.HOSTS


def test_the_default_phase_machine_is_the_classic_order() -> None:
    assert PhaseMachine().order == PHASES
    assert PHASES[3:7] == CLASSIC_ORDER


def test_a_phase_machine_must_begin_with_the_precheck() -> None:
    with pytest.raises(ValueError, match="pre-check"):
        PhaseMachine((Phase.HOSTS, Phase.MANAGER))


@SETTINGS
@given(case=cases(), name=st.sampled_from(sorted(HOPS)))
def test_every_flow_runs_in_its_order_each_unit_once(case: Case, name: str) -> None:
    flow = _flow(name)
    plan, run = _hop(case, name)
    expected = (*SYSTEM_FIRST, *flow.order, Phase.POSTCHECK)
    assert tuple(p.name for p in plan.phases) == expected
    run.start()
    run.through_group_pauses()
    assert run.state is RunState.DONE, run.engine.stop_reasons
    started = [n.message.split()[0] for n in run.notices(NoticeKind.PHASE_STARTED)]
    assert tuple(Phase(s) for s in started) == expected
    upgraded = {UNIT_PHASES[p] for p in flow.order}
    counts = Counter(a.unit for a in run.actions if isinstance(a, Start) and a.op is Op.UPGRADE)
    for unit, kind in run.inventory.units().items():
        assert counts[unit] == (1 if kind in upgraded else 0), (unit, kind, flow.id)
        record = run.world.units[unit]
        assert len(record.upgrades) == (1 if kind in upgraded else 0), (unit, record.upgrades)
    # unit phases never overlap: every upgrade of a phase ends before the next one's begins
    windows = []
    for phase in flow.order:
        kind = UNIT_PHASES[phase]
        spans = [u for rec in run.world.units.values() if rec.kind is kind for u in rec.upgrades]
        if spans:
            windows.append((min(s for s, _ in spans), max(e for _, e in spans)))
    for (_, end), (start, _) in pairwise(windows):
        assert end <= start, (flow.id, windows)
    assert run.world.postcheck_problems() == []


@SETTINGS
@given(case=cases())
def test_the_2_1_to_2_3_flow_plans_and_decides_as_before(case: Case) -> None:
    """The flow of the shipped hop changes nothing: the same phases and groups, and the
    same events and actions, as a plan without a flow (the order the engine always had)."""
    flow = _flow("2.x-to-2.3")
    classic = build_plan(case.playbook, case.inventory)
    flowed = build_plan(case.playbook, case.inventory, flow=flow)
    assert replace(flowed, flow=None) == classic
    one = fault_free(case)
    other = Run.of(flowed, case.inventory, case.playbook)
    other.start()
    other.through_group_pauses()
    assert other.encoded() == one.encoded()


def test_a_merging_flow_names_the_controllers_it_leaves_alone() -> None:
    inventory = replace(make_inventory([(Drs.FULLY_AUTOMATED, [[True], [False]])], [2], 3),
                        version=Version.parse("2.3.1.0"))
    playbook = replace(make_playbook(), target_version=Version.parse("2.4.1.0"))
    plan = build_plan(playbook, inventory, flow=_flow("2.3-to-2.4"))
    assert Phase.CONTROLLERS not in [p.name for p in plan.phases]
    assert [p.name for p in plan.phases][-2] is Phase.MANAGER
    assert any(note.startswith(", ".join(inventory.controllers) + ": not upgraded")
               for note in plan.notes), plan.notes
    assert not {u for p in plan.phases for g in p.groups for u in g.units} \
        & set(inventory.controllers)


def test_every_flow_of_the_data_ends_with_the_management_plane() -> None:
    for entry in load_flows().flows:
        flow = entry.flow()
        assert flow.order[-1] is Phase.MANAGER, flow.id
        assert (UnitKind.CONTROLLER in flow.merged) == (Phase.CONTROLLERS not in flow.order)
