"""One item through its pipeline: start each operation, poll it to its end, retry a
transient start failure, time out, fail, and move to the next stage."""

from __future__ import annotations

from upgrade.core.engine import items as st
from upgrade.core.engine.budget import failed_hosts
from upgrade.core.engine.clusters import ClusterRules
from upgrade.core.engine.items import Group, Item, Step, Waiting
from upgrade.core.engine.machines import UnitState
from upgrade.core.engine.messages import (
    Action,
    Notice,
    NoticeKind,
    OpState,
    Poll,
    Polled,
    Start,
    Started,
    StartFailed,
    Wake,
)
from upgrade.core.engine.state import Stop
from upgrade.core.model import Drs, OnError, Op
from upgrade.core.model import UpgradeMode as Mode
from upgrade.core.plan import SYSTEM_STEPS, Phase


class Pipelines(ClusterRules):
    """Drives each item through its stages, answering the adapter's outcomes."""

    def _started(self, item: Item, event: Started, out: list[Action]) -> None:
        item.transient = 0
        if item.pipeline[item.index].step is Step.START:
            self._next_stage(item, out)
            return
        # the operation runs from now: a start delayed (by a crash before it reached the
        # target, or by retries) does not eat into its deadline
        item.op_started = event.at
        item.deadline = event.at + self.timing.timeout(item)
        item.seen = None
        self._idle = True  # only the item's own wait changed: nothing may start because of it
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
        self._idle = True
        self._poll(item, min(at + self.policy.poll_interval_s, item.deadline), out)

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
        stage = item.pipeline[item.index]
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
        if item.cluster is not None:
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
            last = self._phase_complete(Phase.HOSTS)
            if self.plan.pause_after_each_group and not last:
                self._request_stop(Stop.PAUSE, f"host group {group.name} is done and the "
                                   "playbook pauses after each group", out, checkpoint=True)

    def _poll(self, item: Item, at: float, out: list[Action]) -> None:
        item.waiting = Waiting.POLL
        out.append(Poll(item.pipeline[item.index].op, item.target, at))

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
