"""tests/invariants.py takes the component order from the plan it checks: each hop's flow
(upgrade/compat/flows.yaml) has its own (2.4 -> 2.5: edges before hosts), and a run that
breaks the plan's order is caught."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.invariants import check_invariants, unit_order
from tests.sim_helpers import Run, make_inventory, make_playbook
from upgrade.compat.flows import flow_for
from upgrade.core.engine.machines import RunState
from upgrade.core.model import Drs, Inventory
from upgrade.core.plan import Plan, build_plan
from upgrade.core.versions import Version
from upgrade.render.plan_json import plan_to_json

#: one hop per order the flow data has, and the order its plan upgrades the unit kinds in
HOPS = {
    ("2.1.0.0", "2.3.0.0"): ("host", "edge", "controller", "manager"),
    ("2.3.1.0", "2.4.1.0"): ("host", "edge", "manager"),
    ("2.4.1.0", "2.5.0.0"): ("edge", "host", "manager"),
}


def _hop(source: str, target: str) -> tuple[Plan, Run]:
    """A small site (two clusters, two edge clusters, a controller) on the hop's flow,
    driven to its end."""
    inventory: Inventory = replace(make_inventory(
        clusters=((Drs.FULLY_AUTOMATED, ((True,), (), (False,))),
                  (Drs.FULLY_AUTOMATED, ((True,), ()))),
        edge_clusters=(2, 1)), version=Version.parse(source))
    playbook = replace(make_playbook(), target_version=Version.parse(target))
    flow = flow_for(Version.parse(source), Version.parse(target))
    assert flow is not None
    plan = build_plan(playbook, inventory, flow=flow)
    assert plan.runnable, plan.refusals
    run = Run.of(plan, inventory, playbook)
    run.start()
    run.through_group_pauses()
    assert run.state is RunState.DONE, run.engine.stop_reasons
    return plan, run


def _snapshot(run: Run) -> dict[str, Any]:
    snapshot: dict[str, Any] = run.world.snapshot()
    return snapshot


@pytest.mark.parametrize(("hop", "order"), sorted(HOPS.items()))
def test_each_flows_run_meets_the_invariants_in_its_own_order(
        hop: tuple[str, str], order: tuple[str, ...]) -> None:
    """A fault-free run of each flow passes, checked against the plan or its JSON; 2.4's
    controllers (merged into the manager) are never upgraded."""
    plan, run = _hop(*hop)
    assert unit_order(plan) == unit_order(plan_to_json(plan)) == order
    snapshot = _snapshot(run)
    check_invariants(plan, run.inventory, snapshot, complete=True)
    check_invariants(plan_to_json(plan), run.inventory, snapshot, complete=True)


def test_a_run_out_of_the_plans_order_is_caught() -> None:
    """The 2.4 -> 2.5 run (edges first) checked against a plan that puts the hosts first
    fails, naming the edges that started before the hosts were done."""
    plan, run = _hop("2.4.1.0", "2.5.0.0")
    doc = plan_to_json(plan)
    names = [p["name"] for p in doc["phases"]]
    edges, hosts = names.index("edges"), names.index("hosts")
    assert edges < hosts
    doc["phases"][edges], doc["phases"][hosts] = doc["phases"][hosts], doc["phases"][edges]
    assert unit_order(doc) == ("host", "edge", "manager")
    with pytest.raises(AssertionError, match=r"a edge started at .* before every host"):
        check_invariants(doc, run.inventory, _snapshot(run))
