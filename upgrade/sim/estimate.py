"""Estimated durations: the makespan the engine achieves against a fault-free simulated world.

Rather than a second model of the schedule that could drift from the real
one, the estimate *is* a run: the pure engine driven against an in-memory
simulated world on a virtual clock (:func:`upgrade.sim.drive.drive`).  On
the simulated adapter, a fault-free run therefore takes exactly the
estimated time (pauses the playbook asks for, after each host group, are
counted as resumed at once); on real systems it is as good as the durations
given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import Event, OpState, Polled, Resumed, Started
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Inventory, Op, Playbook, UnitKind
from upgrade.core.plan import SYSTEM_BY_OP, Bar, Phase, Plan
from upgrade.core.window import Calendar
from upgrade.gcpause import collector_paused
from upgrade.sim.drive import drive
from upgrade.sim.world import World

# enum members read once (a member read off its class is a slow lookup, asked per event)
_OS_DONE = OpState.DONE

_SYSTEM_PHASE = {op: step.phase for op, step in SYSTEM_BY_OP.items()}
#: each operation's value (an enum's ``value`` is a slow lookup)
_OP_VALUE = {op: op.value for op in Op}


def estimate(plan: Plan, inventory: Inventory, playbook: Playbook | None = None,
             start_at: float | None = None) -> Plan:
    """``plan`` with per-phase and total estimated durations and its schedule bars.

    ``start_at`` (epoch seconds) is when the run starts on the calendar: with the
    playbook's maintenance window the estimate waits for the windows as a virtual-clock
    run does (a playbook with a window and no ``start_at`` is estimated from epoch 0).
    """
    quiet = replace(inventory, faults=())
    policy = Policy.from_playbook(playbook) if playbook else Policy()
    if playbook is not None and playbook.window is not None:
        policy = replace(policy, window=Calendar(playbook.window, start_at or 0.0))
    engine = Engine(plan, quiet, policy)
    schedule = _Schedule(quiet.units())
    # the drive leaves a few hundred cyclic objects on 10,000 hosts among hundreds of
    # thousands of live ones
    with collector_paused():
        _drive_to_the_end(engine, World(quiet, plan.target_version, track_changes=False),
                          schedule, len(plan.phase(Phase.HOSTS).groups))
    bars = schedule.bars

    phases = []
    for phase_plan in plan.phases:
        start, end = engine.phase_times.get(phase_plan.name.value, [None, None])
        if start is None or end is None:
            phases.append(phase_plan)
            continue
        phases.append(replace(phase_plan, estimated_start_s=int(start),
                              estimated_duration_s=int(end - start)))
    total = max((p.estimated_start_s + p.estimated_duration_s for p in phases), default=0)
    windows = len(engine.window.used) if engine.window is not None else 0
    return replace(plan, phases=tuple(phases), schedule=tuple(bars), estimated_duration_s=total,
                   start_at=start_at, windows=windows,
                   window=playbook.window if playbook is not None else None)


def _drive_to_the_end(engine: Engine, world: World, schedule: _Schedule, groups: int) -> None:
    """Drive ``engine`` until it is done or stalls, resuming each pause at once."""
    trace = drive(engine, world, record=False, watch=schedule.see)
    # pause_after_each_group: the operator goes on at once (a plan that cannot run at all
    # stalls for good; it is refused anyway, so stop there)
    # and the canary's pause, if the playbook asks for one, counts as resumed at once too
    for _ in range(groups + 1):
        if engine.state is not RunState.PAUSED:
            break
        trace = drive(engine, world, trace.end, first=Resumed(trace.end),
                      record=False, watch=schedule.see)


class _Schedule:
    """The schedule's bars, from the events of a drive as they come: each operation from
    its start to the poll that finds it done.

    It sees every outcome of the drive (seven per host), a batch at a time, so it asks the
    exact type (no event type is subclassed) and keeps one int object per distinct second: a
    100,000-host schedule's bars share a few thousand instead of holding 600,000.
    """

    def __init__(self, kinds: Mapping[str, UnitKind]) -> None:
        self.kinds = kinds
        self.opened: dict[tuple[Op, str], float] = {}
        self.bars: list[Bar] = []
        self._seconds: dict[float, int] = {}

    def see(self, events: list[Event]) -> None:
        """Note a batch of the drive's outcomes (one call per batch, not per event)."""
        opened, bars, seconds, kinds = self.opened, self.bars, self._seconds, self.kinds
        for event in events:
            kind = type(event)
            if kind is Polled:  # the most common first
                if event.state is not _OS_DONE:  # type: ignore[attr-defined]
                    continue
                op, unit = event.op, event.unit  # type: ignore[attr-defined]
                began = opened.pop((op, unit), None)
                if began is None:
                    continue
                system = _SYSTEM_PHASE.get(op)
                if system is not None:
                    phase, name = system, system.value
                else:
                    phase, name = _UNIT_PHASE[kinds[unit]], unit
                at = event.at
                first = seconds.get(began)
                if first is None:
                    first = seconds[began] = int(began)
                last = seconds.get(at)
                if last is None:
                    last = seconds[at] = int(at)
                bars.append(Bar(phase, name, _OP_VALUE[op], first, last))
            elif kind is Started:
                opened[(event.op, event.unit)] = event.at  # type: ignore[attr-defined]


def with_recorded_estimates(plan: Plan, recorded: Mapping[str, Any], *,
                            schedule: bool = False, start_at: float | None = None) -> Plan:
    """``plan`` with the estimates a plan recorded (``plan --format json``), not simulated.

    Resuming a run needs its plan's estimates (for the ETA), not another estimating drive,
    which on a large site costs more than the whole replay.  ``run --plan PLAN.json`` takes
    the saved plan's estimates the same way, its ``schedule`` bars too, starting at
    ``start_at`` on the calendar (``--start-at``; the plan has no maintenance window then:
    one with a window is estimated again from when the run starts).
    """
    by_name = {p["name"]: p for p in recorded.get("phases", [])}
    phases = tuple(
        replace(p, estimated_start_s=int(by_name.get(p.name.value, {}).get(
                    "estimated_start_s", 0)),
                estimated_duration_s=int(by_name.get(p.name.value, {}).get(
                    "estimated_duration_s", 0)))
        for p in plan.phases
    )
    out = replace(plan, phases=phases,
                  estimated_duration_s=int(recorded.get("estimated_duration_s", 0)))
    if not schedule:
        return out
    bars = tuple(Bar(Phase(b["phase"]), str(b["unit"]), str(b["op"]), int(b["start"]),
                     int(b["end"])) for b in recorded.get("schedule", ()))
    return replace(out, schedule=bars, start_at=start_at)


#: the phase that upgrades each kind of unit
_UNIT_PHASE = {UnitKind.HOST: Phase.HOSTS, UnitKind.EDGE: Phase.EDGES,
               UnitKind.CONTROLLER: Phase.CONTROLLERS, UnitKind.MANAGER: Phase.MANAGER}
