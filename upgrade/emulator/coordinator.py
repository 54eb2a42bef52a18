"""The emulated Upgrade Coordinator's plan: start, pause, continue, reset, its scheduler,
and :func:`sync`, which brings the site to now.

A plan run upgrades one component at a time, in the order of the emulated hop's flow
(``Site.components``: HOST, EDGE, CCP, MP up to 2.3; HOST, EDGE, MP for 2.4, whose
manager absorbs the controllers; EDGE, HOST, MP for 2.5): its enabled
groups in order, up to five groups at once when the component's settings say
``parallel`` (else one), and up to five units of a group at once when the
group is ``parallel`` (else one).  It pauses on a failed unit
(``pause_on_error``), after each group (``pause_after_each_group``) when asked,
and always at the component boundary: the next component needs another
``start`` or ``continue``.

:func:`sync` applies completions in time order and lets the scheduler start the
next units at the exact simulated second the previous ones ended, as the
coordinator does.  The site (:mod:`upgrade.emulator.site`) is the state below
this module; it never calls back up here.
"""

from __future__ import annotations

from upgrade.core.engine.messages import OpState
from upgrade.core.model import Op
from upgrade.emulator.layout import MAX_PARALLEL, ApiError, Settings, default_groups
from upgrade.emulator.site import Site
from upgrade.errors import AdapterError


def sync(site: Site) -> float:
    """Bring the site's world to now, completion by completion, driving the plan; now.

    Each step asks the world's queue of ends for the next one due (no scan of every
    operation: a site of a thousand hosts is synced several hundred times a second)."""
    now = site.clock.now()
    world = site.world
    completed = False
    while (at := world.next_end(now)) is not None:
        world.advance(at)
        advance_plan(site, at)
        completed = True
    world.advance(now)
    advance_plan(site, now)
    site.record_history(completed)
    return now


def plan_action(site: Site, action: str, component: str | None, skip: bool, now: float) -> None:
    """``POST /upgrade/plan?action=start|pause|continue|reset``."""
    plan = site.plan
    if action == "pause":
        if plan.state == "running":
            plan.state = "pausing"
    elif action == "reset":
        if component not in site.components:
            raise ApiError(400, 30030, "reset needs component_type="
                           f"{'|'.join(site.components)}")
        if any(site.state(Op.UPGRADE, u, now)[0] == "running"
               for u in site.component_units(component)):
            raise ApiError(400, 30031, f"cannot reset the {component} plan while it upgrades")
        site.groups = [g for g in site.groups if g.type != component] + [
            g for g in default_groups(site.inventory, site.components) if g.type == component]
        site.groups.sort(key=lambda g: site.components.index(g.type))
        site.settings[component] = Settings()
    elif action in ("start", "continue"):
        site.require_uc(now)
        if action == "continue" and skip and plan.component is not None:
            plan.skipped.append(plan.component)
            plan.component, plan.state = None, "idle"
        if action == "continue" and plan.component is not None:
            for unit in site.component_units(plan.component):
                if site.state(Op.UPGRADE, unit, now)[0] == "failed":
                    site.start(Op.UPGRADE, unit, now)  # continue retries what failed
            plan.state = "running"
        else:
            _start(site, component, now)
    else:
        raise ApiError(400, 30032, f"unknown plan action {action!r}")
    advance_plan(site, now)


def _start(site: Site, component: str | None, now: float) -> None:
    plan = site.plan
    if component is None:
        component = next((c for c in site.components if c not in plan.skipped and any(
            site.state(Op.UPGRADE, u, now)[0] != "done" for u in site.component_units(c))),
            None)
        if component is None:
            raise ApiError(400, 30033, "every component is already upgraded")
    if component not in site.components:
        raise ApiError(400, 30035, f"NSX-T {site.world.target} has no {component} component "
                       f"(its upgrade: {', '.join(site.components)})")
    if plan.component not in (None, component) and plan.state in ("running", "pausing"):
        raise ApiError(400, 30034, f"the {plan.component} upgrade is in progress")
    site.exclusive(component, now)
    site.in_flow_order(component, now)  # a component_type asked for out of the hop's order
    if plan.component != component:
        plan.done_groups = []
    plan.component, plan.state = component, "running"


def advance_plan(site: Site, at: float) -> None:
    """Start what the plan allows at ``at``; notice finished groups, pauses and the boundary."""
    plan = site.plan
    if plan.component is None or plan.state not in ("running", "pausing"):
        return
    comp = plan.component
    groups = [g for g in site.component_groups(comp) if g.enabled]
    states = {u: site.state(Op.UPGRADE, u, at)[0] for g in groups for u in g.units}
    running = [u for u, s in states.items() if s == "running"]
    settings = site.settings[comp]
    for g in groups:
        if g.id not in plan.done_groups and all(states[u] in ("done", "failed")
                                                for u in g.units):
            plan.done_groups.append(g.id)
            if settings.pause_after_each_group and plan.state == "running":
                plan.state = "pausing"
    failed = any(s == "failed" for s in states.values())
    if plan.state == "pausing" or (failed and settings.pause_on_error):
        if not running:
            plan.state = "paused"
        return
    todo = [g for g in groups if any(states[u] in ("running", "not_started") for u in g.units)]
    if not todo:
        plan.component, plan.state = None, "idle"  # the coordinator stops at the boundary
        return
    for g in todo[: MAX_PARALLEL if settings.parallel else 1]:
        slots = (MAX_PARALLEL if g.parallel else 1) - sum(states[u] == "running" for u in g.units)
        for unit in (u for u in g.units if states[u] == "not_started"):
            if slots <= 0:
                break
            try:
                site.world.start(Op.UPGRADE, unit, at)
            except AdapterError:
                continue  # refused for now: tried again on the next tick
            states[unit] = OpState.RUNNING
            slots -= 1
