"""The engine: every rule of how an upgrade proceeds is stated here, and lives in this
module and the layers it is built on (:mod:`.state`, :mod:`.clusters`, :mod:`.pipeline`,
:mod:`.schedule`).

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

from upgrade.core.engine.canary import WATCH_TOKEN
from upgrade.core.engine.gate import TOKEN as WINDOW_OPENS
from upgrade.core.engine.items import Step, Waiting
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.messages import (
    Action,
    Begin,
    Event,
    Notice,
    NoticeKind,
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
from upgrade.core.engine.schedule import Scheduler
from upgrade.core.engine.state import ACTIVE_STATES, Stop
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Inventory, Op
from upgrade.core.plan import SYSTEM_STEPS, Plan

#: (operation, target) of each system step -> its work item
_SYSTEM_ITEMS = {(s.op, s.target): s.item for s in SYSTEM_STEPS.values()}
#: the outcomes of operations: the events most of a run is made of, dispatched first
_OPERATION_EVENTS = frozenset({Started, StartFailed, Polled, PollFailed})


class Engine(Scheduler):
    """Drives one upgrade run: ``handle(event) -> list[Action]``.

    Its parts, each a layer over the one below: :class:`~.state.EngineState` (what it
    knows), :class:`~.clusters.ClusterRules` (maintenance and VM placement),
    :class:`~.pipeline.Pipelines` (one item through its operations) and
    :class:`~.schedule.Scheduler` (what starts next, phase by phase); this class takes
    the events and resumes.
    """

    def handle(self, event: Event) -> list[Action]:
        """Apply ``event``; return what to do next, in order.

        Afterwards :attr:`quiet` says whether the event only repeated what the previous
        poll of the same operation said (and led to nothing but the next poll).
        """
        before = self.now
        self.now = max(self.now, event.at)
        self._repeat = False
        self._idle = False
        out: list[Action] = []
        if type(event) in _OPERATION_EVENTS:
            self._operation_event(event, out)
        elif isinstance(event, Begin):
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
        if not self._idle or self.window is not None:
            # an idle event (an operation still running, or started and now polled) changed
            # nothing the scheduler reads, and its last pass left nothing startable: unless
            # a window opens or closes with the time, a pass now would start nothing
            self._schedule(out)
        self.quiet = self._repeat and len(out) == 1 and isinstance(out[0], Poll)
        if self.quiet:
            # leave no trace of it, so that an engine that never saw it (a replay of a
            # journal that left it out) is in exactly the same state
            self.now = before
        return out

    def _operation_event(self, event: Event, out: list[Action]) -> None:
        assert isinstance(event, Started | StartFailed | Polled | PollFailed)
        op = event.op
        item = self.items.get(_SYSTEM_ITEMS.get((op, event.unit), event.unit))
        if item is None or item.state not in ACTIVE_STATES or \
                item.pipeline[item.index].op is not op:
            return  # stale: the item moved on (e.g. it timed out) before this arrived
        waiting = item.waiting
        if isinstance(event, Started) and waiting is Waiting.START:
            self._started(item, event, out)
        elif isinstance(event, StartFailed) and waiting is Waiting.START:
            self._start_failed(item, event, out)
        elif isinstance(event, Polled) and waiting is Waiting.POLL:
            self._polled(item, event, out)
        elif isinstance(event, PollFailed) and waiting is Waiting.POLL:
            self._still_running(item, event.at, f"could not ask: {event.error}", out,
                                ("PollFailed", "", event.error))

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
