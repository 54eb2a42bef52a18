"""The run ledger: what the engine knows of the run between two events.

:class:`Ledger` builds the work items and groups from the plan, holds the run's phase
machine, clock and times, moves an item's lifecycle keeping the counters the scheduler
reads right (:meth:`Ledger.fire`), and records a stop request (pause or abort) until the
run settles.  Every other part of the engine reads and moves the run through it; none
holds a copy of what it holds.
"""

from __future__ import annotations

from enum import StrEnum

from upgrade.core.engine import items as st
from upgrade.core.engine.items import Group, Item, Step
from upgrade.core.engine.machines import Lifecycles, PhaseMachine, RunState, UnitState
from upgrade.core.engine.messages import Action, Notice, NoticeKind
from upgrade.core.model import Inventory
from upgrade.core.plan import PHASES, SYSTEM_STEPS, Phase, Plan

#: the lifecycle states of an item part-way through its pipeline (:attr:`Item.active`)
ACTIVE_STATES = frozenset(UnitState) - {UnitState.PENDING, UnitState.DONE, UnitState.FAILED,
                                  UnitState.SKIPPED}
#: the lifecycle states of an item done with (:attr:`Item.terminal`)
TERMINAL_STATES = frozenset({UnitState.DONE, UnitState.SKIPPED})
_FAILED = UnitState.FAILED  # a member read off its class is a slow lookup (asked per event)


#: the run states of a settled run
_SETTLED = frozenset({RunState.DONE, RunState.PAUSED, RunState.FAILED})


class Stop(StrEnum):
    """Whether the engine is stopping, and how it settles once in-flight work has drained."""

    NONE = ""  #: not stopping
    PAUSE = "pause"  #: pause: an operator resumes
    ABORT = "abort"  #: fail (``on_error: abort``): an operator fixes the cause, then resumes


class Ledger:
    """The run's items, groups, phase, clock, times and stop request."""

    #: fields that change as the run goes (a snapshot keeps these; the rest is the plan's)
    STATE: tuple[str, ...] = ("now", "stop", "stop_reasons", "checkpoint", "phase_times",
                              "unit_times", "active", "quiet", "repeat")

    def __init__(self, plan: Plan, inventory: Inventory) -> None:
        self.lifecycles = Lifecycles()
        #: the lifecycle's moves (its machine's table, read once: :meth:`fire` asks per move)
        self.moves = self.lifecycles.moves
        #: the phase machine: the run's state and phase
        self.machine = PhaseMachine(tuple(p.name for p in plan.phases))
        #: whether the engine is stopping (and how it will settle)
        self.stop = Stop.NONE
        self.stop_reasons: list[str] = []
        #: the stop is only a pause_after_each_group checkpoint (dropped if nothing is left)
        self.checkpoint = False
        self.items: dict[str, Item] = {}
        self.groups: dict[Phase, list[Group]] = {}
        self.phase_times: dict[str, list[float | None]] = {}
        self.unit_times: dict[str, list[float | None]] = {}
        #: the last event's time: the engine's only notion of now
        self.now = 0.0
        #: phase -> its items part-way through their pipelines
        self.active: dict[Phase, int] = dict.fromkeys(PHASES, 0)
        #: the last event was a poll that learnt nothing new: a journal may leave it (and
        #: the next poll) out and lose nothing; it grows with events, not watching time
        self.quiet = False
        #: the event being handled repeated what the previous poll said
        self.repeat = False
        #: the event being handled changed nothing the scheduler reads (no pass is needed)
        self.idle = False
        self._build(plan, inventory)
        # derived from the items and groups, so that no event scans them (not snapshotted:
        # :meth:`recount` rebuilds them): phase -> failed items, and phase -> the index of
        # its first group not complete (a complete group never reopens)
        self._failed_in: dict[Phase, int] = dict.fromkeys(PHASES, 0)
        self._first_open: dict[Phase, int] = dict.fromkeys(PHASES, 0)
        #: cluster -> how many host groups hold its hosts (made when first asked)
        self._spread: dict[str | None, int] | None = None

    def _build(self, plan: Plan, inventory: Inventory) -> None:
        hosts = inventory.host_map
        for phase_plan in plan.phases:
            phase = phase_plan.name
            groups: list[Group] = []
            system = SYSTEM_STEPS.get(phase)
            if system is not None and not phase_plan.skipped:
                item = Item(system.item, phase, system.target, 0)
                item.pipeline = (st.Stage(system.op, Step.RUN, UnitState.UPGRADING),)
                groups.append(Group(phase.value, [item], 1))
            for g_index, gplan in enumerate(phase_plan.groups):
                # (one call per item, all it needs given at once: 100,000 on a big site)
                members = [Item(unit, phase, unit, g_index, hosts[unit].cluster, st.UPGRADE)
                           for unit in gplan.units] if phase is Phase.HOSTS else \
                    [Item(unit, phase, unit, g_index, None, st.UPGRADE) for unit in gplan.units]
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
        return self.machine.model.state in _SETTLED

    def fire(self, item: Item, trigger: str) -> None:
        """Move ``item``'s lifecycle and keep every counter that depends on it right."""
        was = item.state
        now = self.moves.get((trigger, was))
        if now is None:  # a refused input: the lifecycle raises, naming it
            now = self.lifecycles.fire(item, trigger)
        item.state = now
        if now in ACTIVE_STATES and was in ACTIVE_STATES:  # from one stage to the next
            if not item.counted:  # no count but the group's busy one can change
                self.groups[item.phase][item.group].recount(item)
            return
        phase = item.phase
        group = self.groups[phase][item.group]
        active = now in ACTIVE_STATES
        if active is not (was in ACTIVE_STATES):
            self.active[phase] += 1 if active else -1
        terminal = now in TERMINAL_STATES
        if terminal is not (was in TERMINAL_STATES):
            group.finished += 1 if terminal else -1
        failed = int(now is _FAILED) - int(was is _FAILED)
        if failed:
            group.failed += failed
            self._failed_in[phase] += failed
        group.recount(item)

    def recount(self) -> None:
        """Rebuild the derived counters from the items and groups (after a restore)."""
        self._failed_in = {phase: sum(g.failed for g in groups)
                           for phase, groups in self.groups.items()}
        self._first_open = dict.fromkeys(PHASES, 0)

    def failed_in(self, phase: Phase) -> int:
        """How many items of ``phase`` failed (and wait for an operator)."""
        return self._failed_in[phase]

    def first_open_group(self, phase: Phase) -> int:
        """The index of ``phase``'s first group that is not complete (len: none is left)."""
        groups = self.groups[phase]
        index = start = self._first_open[phase]
        count = len(groups)
        while index < count and groups[index].finished == len(groups[index].items):
            index += 1  # complete (inlined: asked twice by every scheduling pass)
        if index != start:
            self._first_open[phase] = index
        return index

    def full_and_alone(self, item: Item) -> bool:
        """True when ``item``'s group has no free slot and no other group holds a host of
        its cluster: what its cluster frees, no group can use now."""
        group = self.groups[item.phase][item.group]
        if group.busy < group.max_parallel:
            return False
        if self._spread is None:
            self._spread = {}
            for g in self.groups.get(Phase.HOSTS, ()):
                # (a group of one cluster is known from its first host)
                hosts = g.items[:1] if g.single_cluster else g.items
                for cluster in {i.cluster for i in hosts}:
                    self._spread[cluster] = self._spread.get(cluster, 0) + 1
        return self._spread.get(item.cluster, 0) == 1

    def phase_complete(self, phase: Phase) -> bool:
        """True when every group of ``phase`` is complete."""
        return self.first_open_group(phase) == len(self.groups[phase])

    def request_stop(self, kind: Stop, reason: str, out: list[Action],
                     checkpoint: bool = False) -> None:
        """Stop new work (a pause, or with ``ABORT`` a failure) once in-flight work drains;
        an abort outranks a pause.  Nothing happens once the run has settled."""
        if self.settled:
            return
        self.checkpoint = checkpoint and (self.checkpoint or self.stop is Stop.NONE)
        if kind is Stop.ABORT or self.stop is Stop.NONE:
            self.stop = kind
        self.stop_reasons.append(reason)
        out.append(Notice(NoticeKind.STOPPING, reason))

    def clear_stop(self) -> None:
        """Forget the stop request (a resume, or a checkpoint with nothing left to pause)."""
        self.stop, self.stop_reasons, self.checkpoint = Stop.NONE, [], False

    def settle(self, out: list[Action]) -> None:
        """In-flight work has drained: pause or fail as the stop request says."""
        reason = "; ".join(self.stop_reasons)
        if self.stop is Stop.ABORT:
            self.machine.fail()
            out.append(Notice(NoticeKind.FAILED, reason))
        else:
            self.machine.pause()
            out.append(Notice(NoticeKind.PAUSED, reason))
