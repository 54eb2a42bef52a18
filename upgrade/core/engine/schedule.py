"""What starts next: phases in order, groups and items within the concurrency limits,
the canary and window gates, and settling once a stop has drained."""

from __future__ import annotations

from upgrade.core.engine.budget import failed_hosts
from upgrade.core.engine.items import Group, Waiting
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.messages import Action, Notice, NoticeKind
from upgrade.core.engine.pipeline import Pipelines
from upgrade.core.engine.state import Stop
from upgrade.core.model import OnError
from upgrade.core.plan import Phase


class Scheduler(Pipelines):
    """Starts what may start after every event, and moves the run from phase to phase."""

    def _schedule(self, out: list[Action]) -> None:
        while self.machine.running:
            phase = self.machine.phase
            if phase is Phase.HOSTS and self.canary.finished():
                self._canary_done(out)  # before a stop settles: one pause says both
            if self.stop is not Stop.NONE:
                if self._active[phase]:
                    return
                if not (self._checkpoint and self._phase_complete(phase)):
                    self._settle(out)
                    return
                # the host groups that were running finished while draining: no group is
                # left to pause before, so the pause after each group is moot
                self.stop, self.stop_reasons, self._checkpoint = Stop.NONE, [], False
                out.append(Notice(NoticeKind.CONTINUING, "every host group is done; not pausing"))
            groups = self.groups[phase]
            waiting = self._start_ready(phase, groups, out)
            if waiting and self.stop is not Stop.NONE:
                continue  # the window closed on the real clock: drain, then pause
            if self._phase_complete(phase):
                self._phase_done(out)
                continue
            if not self._active[phase] and not waiting and not self.canary.watching:
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

    def _start_ready(self, phase: Phase, groups: list[Group], out: list[Action]) -> bool:
        """Start what may start in ``phase``; True when the maintenance window holds units
        back."""
        failed = self._failed_in[phase]
        if failed and not (self.budget.applies(phase) and self.budget.within(failed)):
            return False  # a failure stops new work in its component until an operator decides
        if self.window is not None and self.window.blocks(
                phase, groups, self.now, out,
                lambda reason: self._request_stop(Stop.PAUSE, reason, out)):
            return True
        tolerant = self.budget.applies(phase)
        limit = self._parallel_groups.get(phase, 1)
        open_groups = 0
        for index in range(self._first_open_group(phase), len(groups)):
            group = groups[index]
            if group.finished == len(group.items):  # complete (inlined: asked very often)
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
            for position in range(group.cursor, len(members)):
                if group.busy >= group.max_parallel:
                    break
                item = members[position]
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
