"""The scheduler: what starts next.  Phases in order, groups and items within the
concurrency limits, the canary, window and budget gates, and settling once a stop has
drained.

:class:`Scheduler` runs one pass after each event: it asks the gates (canary, window,
budget) and the cluster capacity whether an item may start, and hands what may to the
unit pipeline (:meth:`~.pipeline.UnitPipeline.launch`).
"""

from __future__ import annotations

from upgrade.core.engine.budget import Budget, failed_hosts
from upgrade.core.engine.canary import WATCH_TOKEN, CanaryGate
from upgrade.core.engine.canary import Stage as CanaryStage
from upgrade.core.engine.clusters import Capacity
from upgrade.core.engine.gate import TOKEN as WINDOW_OPENS
from upgrade.core.engine.gate import WindowGate
from upgrade.core.engine.items import Group, Waiting
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.messages import Action, Notice, NoticeKind, TimerFired
from upgrade.core.engine.pipeline import UnitPipeline
from upgrade.core.engine.state import Ledger, Stop
from upgrade.core.plan import Phase, Plan

# members read off their class once: that is a slow lookup, and a pass runs after most events
_HOSTS, _PENDING, _NOTHING, _NO_STOP = Phase.HOSTS, UnitState.PENDING, Waiting.NOTHING, Stop.NONE
_CANARY_RUNS = CanaryStage.RUNNING  # (a canary finishes only while it runs)


class Scheduler:
    """Starts what may start after every event, and moves the run from phase to phase."""

    def __init__(self, plan: Plan, ledger: Ledger, pipeline: UnitPipeline, capacity: Capacity,
                 canary: CanaryGate, window: WindowGate | None, budget: Budget) -> None:
        self.ledger = ledger
        self.pipeline = pipeline
        self.capacity = capacity
        self.canary = canary
        self.window = window
        self.budget = budget
        #: phase -> its max_parallel_groups
        self.parallel_groups = {p.name: p.max_parallel_groups for p in plan.phases}

    def schedule(self, out: list[Action]) -> None:
        """Start what may start; move to the next phase, or settle a drained stop."""
        ledger, canary = self.ledger, self.canary
        machine = ledger.machine
        while machine.running:
            phase = machine.phase
            if phase is _HOSTS and canary.stage is _CANARY_RUNS and canary.finished():
                self._canary_done(out)  # before a stop settles: one pause says both
            if ledger.stop is not _NO_STOP:
                if ledger.active[phase]:
                    return
                if not (ledger.checkpoint and ledger.phase_complete(phase)):
                    ledger.settle(out)
                    return
                # the host groups that were running finished while draining: no group is
                # left to pause before, so the pause after each group is moot
                ledger.clear_stop()
                out.append(Notice(NoticeKind.CONTINUING, "every host group is done; not pausing"))
            groups = ledger.groups[phase]
            # asked once: what a pass starts completes no group
            first = ledger.first_open_group(phase)
            waiting = self._start_ready(phase, groups, first, out)
            if waiting and ledger.stop is not _NO_STOP:
                continue  # the window closed on the real clock: drain, then pause
            if first == len(groups):  # the phase is complete
                self._phase_done(out)
                continue
            if not ledger.active[phase] and not waiting and not canary.watching:
                self._stalled(groups, out)
            return

    def _stalled(self, groups: list[Group], out: list[Action]) -> None:
        ledger = self.ledger
        failed = [i.id for g in groups for i in g.items if i.state is UnitState.FAILED]
        if failed:
            # under a failure budget the failures did not stop the phase: now that nothing
            # but failed hosts is left, on_error says whether the run pauses or fails
            abort = self.budget.applies(ledger.phase) and \
                self.pipeline.stop_for_failure() is Stop.ABORT
            ledger.request_stop(Stop.ABORT if abort else Stop.PAUSE,
                                f"failed units wait for an operator: {', '.join(failed)} "
                                "(resume with --retry-failed or --skip UNIT)", out)
        else:
            ledger.request_stop(Stop.PAUSE, f"nothing in phase {ledger.phase.value} can "
                                "start", out)
        ledger.settle(out)

    def _start_ready(self, phase: Phase, groups: list[Group], first: int,
                     out: list[Action]) -> bool:
        """Start what may start in ``phase`` from its group ``first`` (the first open one);
        True when the maintenance window holds units back."""
        ledger, budget = self.ledger, self.budget
        failed = ledger.failed_in(phase)
        if failed and not (budget.applies(phase) and budget.within(failed)):
            return False  # a failure stops new work in its component until an operator decides
        if self.window is not None and self.window.blocks(
                phase, groups, ledger.now, out,
                lambda reason: ledger.request_stop(Stop.PAUSE, reason, out)):
            return True
        limit = self.parallel_groups.get(phase, 1)
        launch = None  # the callables below, once a group has room (most passes find none)
        open_groups = 0
        for index in range(first, len(groups)):
            group = groups[index]
            members = group.items
            if group.finished == len(members):  # complete (inlined: asked very often)
                continue
            open_groups += 1
            if open_groups > limit:
                return False
            most = group.max_parallel
            if group.busy >= most or (group.failed and not budget.applies(phase)):
                continue
            if launch is None:
                allows, may_enter, launch = self.canary.allows, self.capacity.may_enter, \
                    self.pipeline.launch
            cursor, size = group.cursor, len(members)
            while cursor < size and members[cursor].state is not _PENDING:
                cursor += 1
            group.cursor = cursor
            for position in range(cursor, size):
                item = members[position]
                if item.state is not _PENDING or item.waiting is not _NOTHING:
                    continue
                if not allows(item):
                    break  # the canary hosts come first in plan order: none is after this
                if not may_enter(item):
                    if group.single_cluster:
                        break
                    continue
                launch(item, out)
                if group.busy >= most:
                    break
        return False

    def timer_fired(self, event: TimerFired, out: list[Action]) -> None:
        """A timer the engine set fired: a window opens, the canary's watch ends, or an item
        waited out a backoff (or for an evacuation before its restore)."""
        if event.token == WINDOW_OPENS:
            if self.window is not None:
                self.window.waking = False  # the scheduling step that follows decides
            return
        if event.token == WATCH_TOKEN:
            self._canary_watched(out)
            return
        _, _, ident = event.token.partition("|")
        item = self.ledger.items.get(ident)
        if item is not None and item.active and item.waiting is Waiting.TIMER:
            self.pipeline.begin_stage(item, out)

    def _canary_done(self, out: list[Action]) -> None:
        pause = self.canary.complete(self.ledger.now, out)
        if pause:
            self.ledger.request_stop(Stop.PAUSE, pause, out)

    def _canary_watched(self, out: list[Action]) -> None:
        ledger = self.ledger
        if ledger.settled or not self.canary.end_watch():
            return
        failed = failed_hosts(ledger.items.values())
        if failed:
            ledger.request_stop(self.pipeline.stop_for_failure(), "after the canary's watch, "
                                f"failed hosts wait for an operator: {', '.join(failed)}", out)
            return
        out.append(Notice(NoticeKind.CANARY_WATCHED, "canary watched without a failure: the other "
                          "hosts start"))

    def _phase_done(self, out: list[Action]) -> None:
        ledger = self.ledger
        ledger.phase_times.setdefault(ledger.phase.value, [ledger.now, None])[1] = ledger.now
        out.append(Notice(NoticeKind.PHASE_DONE, f"{ledger.phase.value} done"))
        ledger.machine.advance()
        if ledger.state is RunState.DONE:
            out.append(Notice(NoticeKind.DONE, "upgrade complete"))
            return
        self.phase_started(out)

    def phase_started(self, out: list[Action]) -> None:
        """The run entered its current phase: note it and its start time."""
        ledger = self.ledger
        ledger.phase_times.setdefault(ledger.phase.value, [ledger.now, None])
        out.append(Notice(NoticeKind.PHASE_STARTED, f"{ledger.phase.value} started"))
