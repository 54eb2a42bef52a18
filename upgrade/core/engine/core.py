"""The engine: every rule of how an upgrade proceeds lives in this module.

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

from typing import Any

from upgrade.core.capacity import maintenance_capacity
from upgrade.core.engine import items as st
from upgrade.core.engine.budget import Budget, failed_hosts
from upgrade.core.engine.canary import WATCH_TOKEN, CanaryGate
from upgrade.core.engine.gate import TOKEN as WINDOW_OPENS
from upgrade.core.engine.gate import WindowGate
from upgrade.core.engine.items import Group, Item, Step, Waiting
from upgrade.core.engine.machines import Lifecycles, PhaseMachine, RunState, UnitState
from upgrade.core.engine.messages import (
    Action,
    Begin,
    Event,
    Notice,
    NoticeKind,
    Observed,
    OpState,
    PauseRequested,
    Poll,
    Polled,
    PollFailed,
    Resumed,
    Start,
    Started,
    StartFailed,
    TimerFired,
    Wake,
)
from upgrade.core.engine.placement import homecoming
from upgrade.core.engine.state import Stop
from upgrade.core.engine.timing import Policy, Timing
from upgrade.core.model import Drs, Inventory, OnError, Op
from upgrade.core.model import UpgradeMode as Mode
from upgrade.core.plan import PHASES, SYSTEM_STEPS, Phase, Plan

#: (operation, target) of each system step -> its work item
_SYSTEM_ITEMS = {(s.op, s.target): s.item for s in SYSTEM_STEPS.values()}


class Engine:
    """Drives one upgrade run: ``handle(event) -> list[Action]``."""

    def __init__(self, plan: Plan, inventory: Inventory, policy: Policy | None = None) -> None:
        self.plan = plan
        self.inventory = inventory
        self.policy = policy or Policy()
        self.lifecycles = Lifecycles()
        #: the phase machine: the run's state and phase
        self.machine = PhaseMachine()
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
        self._capacity = {c.name: maintenance_capacity(c, inventory.host_map)
                          for c in inventory.clusters}
        self.timing = Timing(inventory, self.policy)
        self._active: dict[Phase, int] = dict.fromkeys(PHASES, 0)
        #: the last event was a poll that learnt nothing new: a journal may leave it (and
        #: the next poll) out and lose nothing; it grows with events, not watching time
        self.quiet = False
        self._repeat = False
        #: the maintenance window rule (None: units start at any time)
        self.window = WindowGate(self.policy.window) if self.policy.window else None
        self._build()
        self.canary = CanaryGate(self.policy.canary, self.items.values())
        self.budget = Budget(self.policy.max_fail_hosts_percent, self.items.values())

    # -- construction -------------------------------------------------------------------------

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

    # -- public API ---------------------------------------------------------------------------

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

    def handle(self, event: Event) -> list[Action]:
        """Apply ``event``; return what to do next, in order.

        Afterwards :attr:`quiet` says whether the event only repeated what the previous
        poll of the same operation said (and led to nothing but the next poll).
        """
        before = self.now
        self.now = max(self.now, event.at)
        self._repeat = False
        out: list[Action] = []
        if isinstance(event, Begin):
            self.machine.begin()
            self._phase_started(out)
        elif isinstance(event, PauseRequested):
            self._request_stop(Stop.PAUSE, event.reason, out)
        elif isinstance(event, Resumed):
            self._resume(event, out)
        elif isinstance(event, TimerFired):
            self._timer(event, out)
        elif isinstance(event, Observed):
            self._observed(event, out)
        else:
            self._operation_event(event, out)
        self._schedule(out)
        self.quiet = self._repeat and len(out) == 1 and isinstance(out[0], Poll)
        if self.quiet:
            # leave no trace of it, so that an engine that never saw it (a replay of a
            # journal that left it out) is in exactly the same state
            self.now = before
        return out

    # -- events -------------------------------------------------------------------------------

    def _item_for(self, op: Op, unit: str) -> Item | None:
        return self.items.get(_SYSTEM_ITEMS.get((op, unit), unit))

    def _operation_event(self, event: Event, out: list[Action]) -> None:
        assert isinstance(event, Started | StartFailed | Polled | PollFailed)
        item = self._item_for(event.op, event.unit)
        if item is None or not item.active or item.stage.op is not event.op:
            return  # stale: the item moved on (e.g. it timed out) before this arrived
        if isinstance(event, Started) and item.waiting is Waiting.START:
            self._started(item, event, out)
        elif isinstance(event, StartFailed) and item.waiting is Waiting.START:
            self._start_failed(item, event, out)
        elif isinstance(event, Polled) and item.waiting is Waiting.POLL:
            self._polled(item, event, out)
        elif isinstance(event, PollFailed) and item.waiting is Waiting.POLL:
            self._still_running(item, event.at, f"could not ask: {event.error}", out,
                                ("PollFailed", "", event.error))

    def _started(self, item: Item, event: Started, out: list[Action]) -> None:
        item.transient = 0
        if item.stage.step is Step.START:
            self._next_stage(item, out)
            return
        # the operation runs from now: a start delayed (by a crash before it reached the
        # target, or by retries) does not eat into its deadline
        item.op_started = event.at
        item.deadline = event.at + self.timing.timeout(item)
        item.seen = None
        # an adapter that knows when the operation ends (the simulated one) is polled then;
        # one that does not (a real manager) is polled every poll interval, so a unit that
        # finishes early is noticed within one interval, not one whole expected duration
        wait = min(self.timing.expected(item), self.policy.poll_interval_s)
        due = event.eta if event.eta is not None else event.at + wait
        self._poll(item, min(max(due, event.at), item.deadline), out)

    def _start_failed(self, item: Item, event: StartFailed, out: list[Action]) -> None:
        if event.transient and item.transient < self.policy.retries:
            item.transient += 1
            item.waiting = Waiting.TIMER
            delay = self.policy.backoff_s * 2 ** (item.transient - 1)
            out.append(Wake(event.at + delay, f"retry|{item.id}"))
            out.append(Notice(NoticeKind.RETRY, f"{event.error}; retrying in {delay:.0f}s",
                              item.id))
            return
        self._fail(item, event.error, out)

    def _polled(self, item: Item, event: Polled, out: list[Action]) -> None:
        if event.state is OpState.DONE:
            self._next_stage(item, out)
        elif event.state is OpState.FAILED:
            self._fail(item, event.detail or f"{item.stage.op.value} failed", out)
        elif event.state is OpState.NOT_STARTED and item.stage.step is not Step.WAIT:
            self._begin_stage(item, out)  # the start was lost: start again
        else:
            self._still_running(item, event.at, event.detail, out,
                                ("Polled", event.state.value, event.detail))

    def _still_running(self, item: Item, at: float, detail: str, out: list[Action],
                       seen: tuple[str, str, str]) -> None:
        repeat, item.seen = item.seen == seen, seen
        if at >= item.deadline:
            waited = item.deadline - item.op_started
            why = f"; last seen: {detail}" if detail else ""
            self._fail(item, f"{item.stage.op.value} timed out after {waited:.0f}s{why}; it "
                       f"may still be running (no API call stops it): check {item.target}, "
                       "then `resume --retry-failed` follows it again, or starts it again "
                       "once it reports failed", out)
            return
        self._repeat = repeat
        self._poll(item, min(at + self.policy.poll_interval_s, item.deadline), out)

    def _timer(self, event: TimerFired, out: list[Action]) -> None:
        if event.token == WINDOW_OPENS:
            if self.window is not None:
                self.window.waking = False  # the scheduling step that follows decides
            return
        if event.token == WATCH_TOKEN:
            self._canary_watched(out)
            return
        _, _, ident = event.token.partition("|")
        item = self.items.get(ident)
        if item is not None and item.active and item.waiting is Waiting.TIMER:
            self._begin_stage(item, out)

    # -- the pipeline -------------------------------------------------------------------------

    def _fire(self, item: Item, trigger: str) -> None:
        """Move ``item``'s lifecycle and keep every counter that depends on it right."""
        was_active, was_terminal = item.active, item.terminal
        was_failed = item.state is UnitState.FAILED
        self.lifecycles.fire(item, trigger)
        group = self.groups[item.phase][item.group]
        self._active[item.phase] += int(item.active) - int(was_active)
        group.finished += int(item.terminal) - int(was_terminal)
        group.failed += int(item.state is UnitState.FAILED) - int(was_failed)
        group.recount(item)

    def _launch(self, item: Item, group: Group, out: list[Action]) -> None:
        if item.state is UnitState.PENDING and item.index == 0 and item.phase is Phase.HOSTS:
            item.pipeline = self._host_pipeline(item)
        if item.id not in self.unit_times:
            self.unit_times[item.id] = [self.now, None]
            if self.window is not None:
                self.window.started(self.now)
        self._begin_stage(item, out)

    def _host_pipeline(self, item: Item) -> tuple[st.Stage, ...]:
        if self.plan.upgrade_mode is not Mode.MAINTENANCE:
            return st.UPGRADE
        assert item.cluster is not None
        manual = self._cluster[item.cluster].drs is not Drs.FULLY_AUTOMATED
        # its VMs come home even when a retry finds them gone already (a pipeline built anew)
        back = (st.RESTORE,) if (manual and self.policy.restore_vm_placement
                                 and self._home[item.id]) else ()
        if manual and self._running_vms[item.id]:
            return (*st.ENTER_THEN_EVACUATE, *st.UPGRADE, st.EXIT, *back)
        return (st.ENTER, *st.UPGRADE, st.EXIT, *back)

    def _begin_stage(self, item: Item, out: list[Action]) -> None:
        stage = item.stage
        if stage.op is Op.ENTER_MAINTENANCE and not item.holds_maintenance:
            item.holds_maintenance = True
            assert item.cluster is not None
            self._maintenance[item.cluster] = self._maintenance.get(item.cluster, 0) + 1
            self._entering.setdefault(item.cluster, set()).add(item.id)
        if item.state is not stage.state:
            self._fire(item, st.TRIGGER[stage.state])
        item.seen = None
        if item.waiting is not Waiting.TIMER:
            item.op_started = self.now
            item.deadline = self.now + self.timing.timeout(item)
        if stage.step is Step.WAIT:
            self._poll(item, self.now, out)
            return
        if stage.op is not Op.RESTORE:
            item.start_attempts += 1
            item.waiting = Waiting.START
        moves: tuple[tuple[str, str], ...] = ()
        if stage.op is Op.RESTORE:
            if not self._begin_restore(item, out):
                return
            assert item.restores is not None
            moves = item.restores
        if stage.op is Op.EVACUATE:
            if item.moves is None:  # chosen once: a retry asks for the very same moves
                item.moves = self._evacuation_moves(item)
            moves = item.moves
        out.append(Start(stage.op, item.target, item.start_attempts, moves))

    def _next_stage(self, item: Item, out: list[Action]) -> None:
        item.waiting = Waiting.NOTHING
        item.index += 1
        self._entered(item)
        if item.pipeline[item.index - 1].op is Op.EXIT_MAINTENANCE:
            self._release_maintenance(item)  # out of maintenance: its VMs may come back
        if item.index < len(item.pipeline):
            self._begin_stage(item, out)
            return
        self._release_maintenance(item)
        if item.cluster is not None:
            self._restoring.get(item.cluster, set()).discard(item.id)
        self._fire(item, "skip" if item.skipping else "finish")
        end = self.unit_times.setdefault(item.id, [self.now, None])
        end[1] = self.now
        group = self.groups[item.phase][item.group]
        if item.phase not in SYSTEM_STEPS:
            word = "skipped" if item.skipping else "upgraded"
            out.append(Notice(NoticeKind.UNIT_DONE, f"{item.id} {word}", item.id))
        if group.complete() and item.phase is Phase.HOSTS:
            out.append(Notice(NoticeKind.GROUP_DONE, f"host group {group.name} done"))
            last = all(g.complete() for g in self.groups[Phase.HOSTS])
            if self.plan.pause_after_each_group and not last:
                self._request_stop(Stop.PAUSE, f"host group {group.name} is done and the "
                                   "playbook pauses after each group", out, checkpoint=True)

    def _poll(self, item: Item, at: float, out: list[Action]) -> None:
        item.waiting = Waiting.POLL
        out.append(Poll(item.stage.op, item.target, at))

    def _fail(self, item: Item, error: str, out: list[Action]) -> None:
        item.waiting = Waiting.NOTHING
        if item.cluster is not None:
            self._restoring.get(item.cluster, set()).discard(item.id)
        item.error = error
        self._fire(item, "fail")
        out.append(Notice(NoticeKind.UNIT_FAILED, f"{item.id}: {error}", item.id))
        over = ""
        if self.budget.applies(item.phase):
            failed = len(failed_hosts(self.items.values()))
            if self.budget.within(failed):
                out.append(Notice(NoticeKind.WITHIN_BUDGET, f"{item.id} failed; "
                                  f"{self.budget.describe(failed)}: the hosts phase goes on",
                                  item.id))
                return
            over = f" ({self.budget.describe(failed)}: over the budget)"
        stop = Stop.ABORT if self.policy.on_error is OnError.ABORT else Stop.PAUSE
        self._request_stop(stop, f"{item.id} failed: {error}{over}", out)

    # -- evacuation ---------------------------------------------------------------------------

    def _evacuation_moves(self, item: Item) -> tuple[tuple[str, str], ...]:
        assert item.cluster is not None
        hosts = self._cluster[item.cluster].hosts
        # a host the plan leaves alone (already at the target) is not an item: it never
        # enters maintenance, and counts as upgraded
        others = {h: self.items.get(h) for h in hosts if h != item.id}
        candidates = [h for h, i in others.items() if i is None or not i.holds_maintenance]
        if not candidates:
            return ()
        upgraded = [h for h in candidates
                    if (i := others[h]) is None or i.state is UnitState.DONE]
        pool = upgraded or candidates
        order = {h: i for i, h in enumerate(hosts)}
        moves = []
        for vm in self._running_vms[item.id]:
            dst = min(pool, key=lambda h: (len(self._running_vms[h]), order[h]))
            self._running_vms[dst].append(vm)
            moves.append((vm, dst))
        self._running_vms[item.id] = []
        return tuple(moves)

    def _release_maintenance(self, item: Item) -> None:
        if item.holds_maintenance:
            item.holds_maintenance = False
            assert item.cluster is not None
            self._maintenance[item.cluster] -= 1

    def _begin_restore(self, item: Item, out: list[Action]) -> bool:
        """Choose (once) the moves that bring ``item``'s VMs home; False: not yet (an
        evacuation of its cluster is under way: try again one poll interval later; a host
        that failed while entering moves nothing and is not waited for)."""
        assert item.cluster is not None
        if item.restores is None:
            if any(self.items[h].active for h in self._entering.get(item.cluster, ())):
                item.waiting = Waiting.TIMER
                out.append(Wake(self.now + self.policy.poll_interval_s, f"restore|{item.id}"))
                return False
            item.restores = homecoming(item.id, self._home, self._running_vms)
            item.op_started = self.now  # its deadline runs from now, not from the wait
            item.deadline = self.now + self.timing.timeout(item)
        self._restoring.setdefault(item.cluster, set()).add(item.id)
        item.start_attempts += 1
        item.waiting = Waiting.START
        return True

    def _entered(self, item: Item) -> None:
        """Once no maintenance entry is left in its pipeline, ``item`` moves no more VMs."""
        if item.cluster is not None and all(
                s.op is not Op.ENTER_MAINTENANCE for s in item.pipeline[item.index:]):
            self._entering.get(item.cluster, set()).discard(item.id)

    def _may_enter_maintenance(self, item: Item) -> bool:
        if (self.plan.upgrade_mode is not Mode.MAINTENANCE or item.holds_maintenance
                or item.cluster is None):
            return True
        cluster = item.cluster
        limit = self._capacity[cluster]
        if limit is None:
            return True
        if self._entering.get(cluster) or self._restoring.get(cluster):
            return False  # VMs in motion land only on hosts that stay out of maintenance
        return self._maintenance.get(cluster, 0) < limit

    # -- scheduling ---------------------------------------------------------------------------

    def _schedule(self, out: list[Action]) -> None:
        while self.machine.running:
            if self.phase is Phase.HOSTS and self.canary.finished():
                self._canary_done(out)  # before a stop settles: one pause says both
            if self.stop is not Stop.NONE:
                if self._active[self.phase]:
                    return
                if not (self._checkpoint and all(g.complete() for g in self.groups[self.phase])):
                    self._settle(out)
                    return
                # the host groups that were running finished while draining: no group is
                # left to pause before, so the pause after each group is moot
                self.stop, self.stop_reasons, self._checkpoint = Stop.NONE, [], False
                out.append(Notice(NoticeKind.CONTINUING, "every host group is done; not pausing"))
            groups = self.groups[self.phase]
            waiting = self._start_ready(groups, out)
            if waiting and self.stop is not Stop.NONE:
                continue  # the window closed on the real clock: drain, then pause
            if all(g.complete() for g in groups):
                self._phase_done(out)
                continue
            if not self._active[self.phase] and not waiting and not self.canary.watching:
                self._stalled(groups, out)
            return

    def _stalled(self, groups: list[Group], out: list[Action]) -> None:
        failed = [i.id for g in groups for i in g.items if i.state is UnitState.FAILED]
        if failed:
            # under a failure budget the failures did not stop the phase: now that nothing
            # but failed hosts is left, on_error says whether the run pauses or fails
            abort = self.budget.applies(self.phase) and self.policy.on_error is OnError.ABORT
            self._request_stop(Stop.ABORT if abort else Stop.PAUSE,
                               f"failed units wait for an operator: {', '.join(failed)} "
                               "(resume with --retry-failed or --skip UNIT)", out)
        else:
            self._request_stop(Stop.PAUSE, f"nothing in phase {self.phase.value} can start", out)
        self._settle(out)

    def _start_ready(self, groups: list[Group], out: list[Action]) -> bool:
        """Start what may start; True when the maintenance window holds units back."""
        if self._failures_stop(groups):
            return False  # a failure stops new work in its component until an operator decides
        if self.window is not None and self.window.blocks(
                self.phase, groups, self.now, out,
                lambda reason: self._request_stop(Stop.PAUSE, reason, out)):
            return True
        tolerant = self.budget.applies(self.phase)
        limit = self._max_parallel_groups()
        open_groups = 0
        for group in groups:
            if group.complete():
                continue
            open_groups += 1
            if open_groups > limit:
                return False
            if (group.failed and not tolerant) or group.busy >= group.max_parallel:
                continue
            members = group.items
            while group.cursor < len(members) and members[group.cursor].state is not \
                    UnitState.PENDING:
                group.cursor += 1
            for index in range(group.cursor, len(members)):
                if group.busy >= group.max_parallel:
                    break
                item = members[index]
                if item.state is not UnitState.PENDING or item.waiting is not Waiting.NOTHING:
                    continue
                if not self.canary.allows(item):
                    break  # the canary hosts come first in plan order: none is after this
                if not self._may_enter_maintenance(item):
                    if group.single_cluster:
                        break
                    continue
                self._launch(item, group, out)
        return False

    def _failures_stop(self, groups: list[Group]) -> bool:
        """True when failed units stop new work in the phase (over its budget, if any)."""
        failed = sum(g.failed for g in groups)
        if not failed:
            return False
        return not (self.budget.applies(self.phase) and self.budget.within(failed))

    # -- canary -------------------------------------------------------------------------------

    def _canary_done(self, out: list[Action]) -> None:
        pause = self.canary.complete(self.now, out)
        if pause:
            self._request_stop(Stop.PAUSE, pause, out)

    def _canary_watched(self, out: list[Action]) -> None:
        if self.settled or not self.canary.end_watch():
            return
        failed = failed_hosts(self.items.values())
        if failed:
            stop = Stop.ABORT if self.policy.on_error is OnError.ABORT else Stop.PAUSE
            self._request_stop(stop, "after the canary's watch, failed hosts wait for an "
                               f"operator: {', '.join(failed)}", out)
            return
        out.append(Notice(NoticeKind.CANARY_WATCHED, "canary watched without a failure: the other "
                          "hosts start"))

    def _max_parallel_groups(self) -> int:
        for phase_plan in self.plan.phases:
            if phase_plan.name is self.phase:
                return phase_plan.max_parallel_groups
        return 1

    def _phase_done(self, out: list[Action]) -> None:
        self.phase_times.setdefault(self.phase.value, [self.now, None])[1] = self.now
        out.append(Notice(NoticeKind.PHASE_DONE, f"{self.phase.value} done"))
        self.machine.advance()
        if self.state is RunState.DONE:
            out.append(Notice(NoticeKind.DONE, "upgrade complete"))
            return
        self._phase_started(out)

    def _phase_started(self, out: list[Action]) -> None:
        self.phase_times.setdefault(self.phase.value, [self.now, None])
        out.append(Notice(NoticeKind.PHASE_STARTED, f"{self.phase.value} started"))

    def _observed(self, event: Observed, out: list[Action]) -> None:
        item = self.items.get(event.unit)
        if item is None or item.state is not UnitState.PENDING or item.index:
            return
        if event.version != str(self.plan.target_version):
            return
        self._fire(item, "adopt")
        self.unit_times[item.id] = [event.at, event.at]
        out.append(Notice(NoticeKind.DRIFT, f"{item.id} already reports {event.version}, but "
                          "this run did not upgrade it (upgraded by hand?); counted as done",
                          item.id))

    # -- stopping and resuming ----------------------------------------------------------------

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

    def _resume(self, event: Resumed, out: list[Action]) -> None:
        self.stop, self.stop_reasons, self._checkpoint = Stop.NONE, [], False
        if self.window is not None:
            self.window.resumed()
        if self.state in (RunState.PAUSED, RunState.FAILED):
            self.machine.resume()
        for ident in event.skip:
            item = self.items.get(ident)
            if item is None or item.state not in (UnitState.PENDING, UnitState.FAILED):
                continue
            if item.holds_maintenance:
                if item.state is UnitState.FAILED:
                    self._fire(item, "retry")
                item.skipping = True
                # only leave maintenance (and, with restore on, take its VMs back)
                item.index = next(i for i, s in enumerate(item.pipeline)
                                  if s.op is Op.EXIT_MAINTENANCE)
                self._entered(item)
                self._begin_stage(item, out)
            else:
                self._fire(item, "skip")
                out.append(Notice(NoticeKind.UNIT_DONE, f"{item.id} skipped", item.id))
        if event.retry_failed:
            for item in self.items.values():
                if item.state is UnitState.FAILED:
                    self._fire(item, "retry")
                    item.transient = 0
                    group = self.groups[item.phase][item.group]
                    group.cursor = 0
                    if item.stage.step is Step.WAIT and item.stage.op is not Op.VERIFY:
                        # the operation waited for failed: start it again, not only poll it
                        item.index = next(i for i, s in enumerate(item.pipeline)
                                          if s.op is item.stage.op)
                    out.append(Notice(NoticeKind.RETRY, f"retrying {item.id}", item.id))
                    if item.holds_maintenance:
                        self._launch(item, group, out)  # it already holds its slot
        self.canary.rearm(self.now, out)  # the watch's timer may have died with the runner
        out.append(Notice(NoticeKind.RESUMED, f"resumed in phase {self.phase.value}"))

    # -- snapshots ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """This engine's whole state as plain JSON-ready data (see :mod:`.snapshot`)."""
        from upgrade.core.engine import snapshot
        return snapshot.take(self)

    @classmethod
    def from_snapshot(cls, plan: Plan, inventory: Inventory, policy: Policy | None,
                      data: dict[str, Any]) -> Engine:
        """An engine in the state :meth:`snapshot` saved, over the same plan and inventory."""
        from upgrade.core.engine import snapshot
        return snapshot.restore(cls(plan, inventory, policy), data)
