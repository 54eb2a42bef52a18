"""What the engine knows between two events, and the moves every other part makes on it.

:class:`EngineState` builds the work items and groups from the plan, holds every counter
the rules read, moves an item's lifecycle keeping those counters right (:meth:`_fire`),
and records a stop request (pause or abort) until the run settles.
"""

from __future__ import annotations

from enum import StrEnum

from upgrade.core.capacity import maintenance_capacity
from upgrade.core.engine import items as st
from upgrade.core.engine.budget import Budget
from upgrade.core.engine.canary import CanaryGate
from upgrade.core.engine.gate import WindowGate
from upgrade.core.engine.items import Group, Item, Step
from upgrade.core.engine.machines import Lifecycles, PhaseMachine, RunState, UnitState
from upgrade.core.engine.messages import Action, Notice, NoticeKind
from upgrade.core.engine.timing import Policy, Timing
from upgrade.core.model import Inventory
from upgrade.core.plan import PHASES, SYSTEM_STEPS, Phase, Plan

#: the lifecycle states of an item part-way through its pipeline (:attr:`Item.active`)
ACTIVE_STATES = frozenset(UnitState) - {UnitState.PENDING, UnitState.DONE, UnitState.FAILED,
                                  UnitState.SKIPPED}
#: the lifecycle states of an item done with (:attr:`Item.terminal`)
TERMINAL_STATES = frozenset({UnitState.DONE, UnitState.SKIPPED})


class Stop(StrEnum):
    """Whether the engine is stopping, and how it settles once in-flight work has drained."""

    NONE = ""  #: not stopping
    PAUSE = "pause"  #: pause: an operator resumes
    ABORT = "abort"  #: fail (``on_error: abort``): an operator fixes the cause, then resumes


class EngineState:
    """The engine's state (see :class:`~upgrade.core.engine.core.Engine` for its rules)."""

    def __init__(self, plan: Plan, inventory: Inventory, policy: Policy | None = None) -> None:
        self.plan = plan
        self.inventory = inventory
        self.policy = policy or Policy()
        self.lifecycles = Lifecycles()
        #: the phase machine: the run's state and phase
        self.machine = PhaseMachine(tuple(p.name for p in plan.phases))
        #: whether the engine is stopping (and how it will settle)
        self.stop = Stop.NONE
        self.stop_reasons: list[str] = []
        #: the stop is only a pause_after_each_group checkpoint (dropped if nothing is left)
        self._checkpoint = False
        self.items: dict[str, Item] = {}
        self.groups: dict[Phase, list[Group]] = {}
        self.phase_times: dict[str, list[float | None]] = {}
        self.unit_times: dict[str, list[float | None]] = {}
        self.now = 0.0
        self._maintenance: dict[str, int] = {}  # cluster -> hosts in or entering maintenance
        #: cluster -> hosts whose maintenance entry (and VMs' evacuation) has not ended yet
        self._entering: dict[str, set[str]] = {}
        self._running_vms = {h.id: [vm.id for vm in h.running_vms] for h in inventory.hosts}
        #: host -> the powered-on VMs it had when the run began (their home)
        self._home = {h.id: [vm.id for vm in h.running_vms] for h in inventory.hosts}
        #: cluster -> hosts whose VMs are on their way back home
        self._restoring: dict[str, set[str]] = {}
        self._cluster = {c.name: c for c in inventory.clusters}
        #: cluster -> how many of its hosts may be in maintenance at once (None: any)
        host_map = inventory.host_map
        self._capacity = {c.name: maintenance_capacity(c, host_map) for c in inventory.clusters}
        self.timing = Timing(inventory, self.policy)
        self._active: dict[Phase, int] = dict.fromkeys(PHASES, 0)
        #: the last event was a poll that learnt nothing new: a journal may leave it (and
        #: the next poll) out and lose nothing; it grows with events, not watching time
        self.quiet = False
        self._repeat = False
        #: the last event changed nothing the scheduler reads (no pass is needed after it)
        self._idle = False
        #: the maintenance window rule (None: units start at any time)
        self.window = WindowGate(self.policy.window) if self.policy.window else None
        self._build()
        self.canary = CanaryGate(self.policy.canary, self.items.values())
        self.budget = Budget(self.policy.max_fail_hosts_percent, self.items.values())
        #: phase -> its max_parallel_groups
        self._parallel_groups = {p.name: p.max_parallel_groups for p in self.plan.phases}
        # derived from the items and groups, so that no event scans them (not snapshotted:
        # :meth:`_recount` rebuilds them): phase -> failed items, and phase -> the index of
        # its first group not complete (a complete group never reopens)
        self._failed_in: dict[Phase, int] = dict.fromkeys(PHASES, 0)
        self._first_open: dict[Phase, int] = dict.fromkeys(PHASES, 0)

    def _build(self) -> None:
        hosts = self.inventory.host_map
        for phase_plan in self.plan.phases:
            phase = phase_plan.name
            groups: list[Group] = []
            system = SYSTEM_STEPS.get(phase)
            if system is not None and not phase_plan.skipped:
                item = Item(system.item, phase, system.target, 0)
                item.pipeline = (st.Stage(system.op, Step.RUN, UnitState.UPGRADING),)
                groups.append(Group(phase.value, [item], 1))
            for g_index, gplan in enumerate(phase_plan.groups):
                members = []
                for unit in gplan.units:
                    item = Item(unit, phase, unit, g_index)
                    if phase is Phase.HOSTS:
                        item.cluster = hosts[unit].cluster
                    item.pipeline = st.UPGRADE
                    members.append(item)
                groups.append(Group(gplan.name, members, gplan.max_parallel))
            for group in groups:
                for item in group.items:
                    self.items[item.id] = item
            self.groups[phase] = groups

    @property
    def state(self) -> RunState:
        """The phase machine's state."""
        return self.machine.state

    @property
    def phase(self) -> Phase:
        """The phase running now, or the one the run paused, failed or finished in."""
        return self.machine.phase

    @property
    def settled(self) -> bool:
        """True when the run is done, paused or failed: nothing more will happen by itself."""
        return self.state in (RunState.DONE, RunState.PAUSED, RunState.FAILED)

    def _fire(self, item: Item, trigger: str) -> None:
        """Move ``item``'s lifecycle and keep every counter that depends on it right."""
        was = item.state
        now = self.lifecycles.fire(item, trigger)
        phase = item.phase
        group = self.groups[phase][item.group]
        active = now in ACTIVE_STATES
        if active is not (was in ACTIVE_STATES):
            self._active[phase] += 1 if active else -1
        terminal = now in TERMINAL_STATES
        if terminal is not (was in TERMINAL_STATES):
            group.finished += 1 if terminal else -1
        failed = int(now is UnitState.FAILED) - int(was is UnitState.FAILED)
        if failed:
            group.failed += failed
            self._failed_in[phase] += failed
        group.recount(item)

    def _recount(self) -> None:
        """Rebuild the derived counters from the items and groups (after a restore)."""
        self._failed_in = {phase: sum(g.failed for g in groups)
                           for phase, groups in self.groups.items()}
        self._first_open = dict.fromkeys(PHASES, 0)

    def _first_open_group(self, phase: Phase) -> int:
        """The index of ``phase``'s first group that is not complete (len: none is left)."""
        groups = self.groups[phase]
        index = start = self._first_open[phase]
        while index < len(groups) and groups[index].complete():
            index += 1
        if index != start:
            self._first_open[phase] = index
        return index

    def _phase_complete(self, phase: Phase) -> bool:
        """True when every group of ``phase`` is complete."""
        return self._first_open_group(phase) == len(self.groups[phase])

    def _request_stop(self, kind: Stop, reason: str, out: list[Action],
                      checkpoint: bool = False) -> None:
        if self.settled:
            return
        self._checkpoint = checkpoint and (self._checkpoint or self.stop is Stop.NONE)
        if kind is Stop.ABORT or self.stop is Stop.NONE:
            self.stop = kind
        self.stop_reasons.append(reason)
        out.append(Notice(NoticeKind.STOPPING, reason))

    def _settle(self, out: list[Action]) -> None:
        reason = "; ".join(self.stop_reasons)
        if self.stop is Stop.ABORT:
            self.machine.fail()
            out.append(Notice(NoticeKind.FAILED, reason))
        else:
            self.machine.pause()
            out.append(Notice(NoticeKind.PAUSED, reason))
