"""The engine: every rule of how an upgrade proceeds is stated here, and lives in this
module and the parts it holds: the run ledger (:mod:`.state`), the cluster capacity
(:mod:`.clusters`), the unit pipeline (:mod:`.pipeline`), the scheduler (:mod:`.schedule`)
and the gates (:mod:`.canary`, :mod:`.gate`, :mod:`.budget`).

It takes events (:mod:`upgrade.core.engine.messages`) and returns actions; it does
no I/O, reads no clock (time arrives in each event's ``at``), starts no
thread and draws no random number.  The same plan, inventory and events give
the same actions, which is what lets the journal replay a run and what would
let a durable-execution engine run it as a workflow.

The rules:

* phases strictly in order; a phase's units start only when the previous
  phase is complete;
* within a phase, groups in plan order, at most ``max_parallel_groups`` at
  once, and within a group at most ``max_parallel`` items at once, started
  in plan order as soon as the constraints allow;
* a host enters maintenance only when another host of its cluster is not in
  (or entering) maintenance to receive its VMs, and (in a cluster with running
  VMs) only when no other host of its cluster is still entering: VMs in
  motion must land on a host that stays out of maintenance; with DRS not
  fully automated the engine chooses where each powered-on VM goes (already
  upgraded hosts first);
* transient start failures are retried ``retries`` times with exponential
  backoff; every operation has a deadline; poll errors (5xx, refused, timed
  out) mean "still running" until that deadline;
* a failure stops new work; in-flight items finish their pipelines (a host
  leaves maintenance only after it reports the target version); then the run
  pauses or fails, as ``on_error`` says.  A pause request drains the same way;
  ``pause_after_each_group`` pauses when a host group is done while others are
  left (not when the last group to finish is done).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from upgrade.core.engine import snapshot
from upgrade.core.engine.budget import Budget
from upgrade.core.engine.canary import CanaryGate
from upgrade.core.engine.clusters import Capacity
from upgrade.core.engine.gate import WindowGate
from upgrade.core.engine.interventions import observed, resume
from upgrade.core.engine.items import Group, Item, Waiting
from upgrade.core.engine.machines import PhaseMachine, RunState
from upgrade.core.engine.messages import (
    Action,
    Begin,
    Event,
    Observed,
    PauseRequested,
    Poll,
    Polled,
    PollFailed,
    Resumed,
    Started,
    StartFailed,
    TimerFired,
)
from upgrade.core.engine.pipeline import UnitPipeline
from upgrade.core.engine.schedule import Scheduler
from upgrade.core.engine.state import ACTIVE_STATES, Ledger, Stop
from upgrade.core.engine.timing import Policy, Timing
from upgrade.core.model import Inventory
from upgrade.core.model import UpgradeMode as Mode
from upgrade.core.plan import SYSTEM_STEPS, Phase, Plan

#: (operation, target) of each system step -> its work item, and those operations
_SYSTEM_ITEMS = {(s.op, s.target): s.item for s in SYSTEM_STEPS.values()}
_SYSTEM_OPS = frozenset(op for op, _ in _SYSTEM_ITEMS)
#: the outcomes of operations (most of a run's events, dispatched first, by exact type):
#: what the item must wait for to take each, and the :class:`UnitPipeline` method taking it
_OPERATIONS: dict[type, tuple[Waiting, Callable[..., None]]] = {
    Started: (Waiting.START, UnitPipeline.started), Polled: (Waiting.POLL, UnitPipeline.polled),
    StartFailed: (Waiting.START, UnitPipeline.start_failed),
    PollFailed: (Waiting.POLL, UnitPipeline.poll_failed)}


def _outcome_of_subclass(event: Event) -> tuple[Waiting, Callable[..., None]] | None:
    """What :data:`_OPERATIONS` says of a subclass of an outcome (none is made here)."""
    return next((v for k, v in _OPERATIONS.items() if isinstance(event, k)), None)


class Engine:
    """Drives one upgrade run: ``handle(event) -> list[Action]``.

    It holds its parts and passes each event to the one it concerns: the
    :class:`~.state.Ledger` (items, groups, phase, clock, stop request), the
    :class:`~.clusters.Capacity` (maintenance slots and VM placement), the
    :class:`~.pipeline.UnitPipeline` (one item through its operations), the
    :class:`~.schedule.Scheduler` (what starts next) and the gates (canary, window,
    failure budget); this class takes the events, the timers and the resumes.
    """

    def __init__(self, plan: Plan, inventory: Inventory, policy: Policy | None = None) -> None:
        self.plan = plan
        self.inventory = inventory
        self.policy = policy = policy or Policy()
        self.ledger = ledger = Ledger(plan, inventory)
        self.capacity = Capacity(inventory, ledger.items, plan.upgrade_mode is Mode.MAINTENANCE,
                                 policy.restore_vm_placement)
        self.timing = Timing(inventory, policy, self.capacity.running_vms)
        #: the maintenance window rule (None: units start at any time)
        self.window = WindowGate(policy.window) if policy.window else None
        self.canary = CanaryGate(policy.canary, ledger.items.values())
        self.budget = Budget(policy.max_fail_hosts_percent, ledger.items.values())
        self.pipeline = UnitPipeline(ledger, self.capacity, self.timing, policy, self.budget,
                                     self.window, plan.pause_after_each_group)
        self.scheduler = Scheduler(plan, ledger, self.pipeline, self.capacity, self.canary,
                                   self.window, self.budget)

    # what the shell, the renderers and the fleet read: the ledger's, by their old names
    @property
    def machine(self) -> PhaseMachine:
        """The phase machine (the run's state and phase)."""
        return self.ledger.machine

    @property
    def items(self) -> dict[str, Item]:
        """The work items, by id, in plan order."""
        return self.ledger.items

    @property
    def groups(self) -> dict[Phase, list[Group]]:
        """Each phase's groups, in plan order."""
        return self.ledger.groups

    @property
    def state(self) -> RunState:
        """The run's state."""
        return self.ledger.state

    @property
    def phase(self) -> Phase:
        """The phase running now, or the one the run paused, failed or finished in."""
        return self.ledger.phase

    @property
    def settled(self) -> bool:
        """True when the run is done, paused or failed."""
        return self.ledger.settled

    @property
    def now(self) -> float:
        """The last event's time."""
        return self.ledger.now

    @property
    def stop(self) -> Stop:
        """Whether the engine is stopping, and how it will settle."""
        return self.ledger.stop

    @property
    def stop_reasons(self) -> list[str]:
        """Why it is stopping."""
        return self.ledger.stop_reasons

    @property
    def unit_times(self) -> dict[str, list[float | None]]:
        """Unit -> [started, ended]."""
        return self.ledger.unit_times

    @property
    def phase_times(self) -> dict[str, list[float | None]]:
        """Phase -> [started, ended]."""
        return self.ledger.phase_times

    @property
    def quiet(self) -> bool:
        """The last event only repeated what the previous poll said (:meth:`handle`)."""
        return self.ledger.quiet

    def handle(self, event: Event) -> list[Action]:
        """Apply ``event``; return what to do next, in order.

        Afterwards :attr:`quiet` says whether the event only repeated what the previous
        poll of the same operation said (and led to nothing but the next poll).
        """
        ledger = self.ledger
        before = ledger.now
        if event.at > before:
            ledger.now = event.at
        ledger.repeat = ledger.idle = False
        out: list[Action] = []
        # an operation's outcome (most events: taken here, not in a method of its own)
        operation = _OPERATIONS.get(type(event)) or _outcome_of_subclass(event)
        if operation is not None:
            waits, answer = operation
            op, unit = event.op, event.unit  # type: ignore[attr-defined]
            item = ledger.items.get(_SYSTEM_ITEMS.get((op, unit), unit)
                                    if op in _SYSTEM_OPS else unit)
            # not stale (the item moved on, e.g. timed out, before this arrived) and awaited
            if item is not None and item.waiting is waits and item.state in ACTIVE_STATES \
                    and item.pipeline[item.index].op is op:
                answer(self.pipeline, item, event, out)
        elif isinstance(event, Begin):
            ledger.machine.begin()
            self.scheduler.phase_started(out)
        elif isinstance(event, PauseRequested):
            ledger.request_stop(Stop.PAUSE, event.reason, out)
        elif isinstance(event, Resumed):
            resume(event, self.ledger, self.pipeline, self.capacity, self.canary,
                   self.window, out)
        elif isinstance(event, TimerFired):
            self.scheduler.timer_fired(event, out)
        elif isinstance(event, Observed):
            observed(event, self.ledger, str(self.plan.target_version), out)
        if not ledger.idle or self.window is not None:
            # an idle event (an operation still running, started and now polled, or on to
            # its next stage freeing nothing a group can use) changed nothing the scheduler
            # reads, and its last pass left nothing startable: unless a window opens or
            # closes with the time, a pass now would start nothing
            self.scheduler.schedule(out)
        ledger.quiet = ledger.repeat and len(out) == 1 and isinstance(out[0], Poll)
        if ledger.quiet:
            # leave no trace of it, so that an engine that never saw it (a replay of a
            # journal that left it out) is in exactly the same state
            ledger.now = before
        return out

    def parts(self) -> dict[str, Any]:
        """The parts whose ``STATE`` fields a snapshot keeps, by the names it keeps them
        under."""
        found: dict[str, Any] = {"run": self.ledger, "capacity": self.capacity,
                                 "canary": self.canary, "budget": self.budget}
        if self.window is not None:
            found["window"] = self.window
        return found

    def fresh(self) -> Engine:
        """A new engine over the same plan, inventory and policy (never fed an event)."""
        return type(self)(self.plan, self.inventory, self.policy)

    def recount(self) -> None:
        """Rebuild what the parts derive from the items and groups (after a restore)."""
        self.ledger.recount()

    def snapshot(self) -> dict[str, Any]:
        """This engine's whole state as plain JSON-ready data (see :mod:`.snapshot`)."""
        return snapshot.take(self)

    @classmethod
    def from_snapshot(cls, plan: Plan, inventory: Inventory, policy: Policy | None,
                      data: dict[str, Any]) -> Engine:
        """An engine in the state :meth:`snapshot` saved, over the same plan and inventory
        (of this version's layout, or of one it reads: :func:`.snapshot.migrate`)."""
        return snapshot.restore(cls(plan, inventory, policy), data)
