"""The unit pipeline: one item through its stages.  Start each operation, poll it to its
end, retry a transient start failure, time out, fail, and move to the next stage.

:class:`UnitPipeline` answers the adapter's outcomes for one item at a time; it asks the
cluster capacity (:class:`~.clusters.Capacity`) for maintenance slots and VM moves, and
moves the item's lifecycle through the run ledger (:class:`~.state.Ledger`).
"""

from __future__ import annotations

from upgrade.core.engine.budget import Budget, failed_hosts
from upgrade.core.engine.clusters import Capacity
from upgrade.core.engine.gate import WindowGate
from upgrade.core.engine.items import TRIGGER, Item, Step, Waiting
from upgrade.core.engine.machines import UnitState
from upgrade.core.engine.messages import (
    Action,
    Notice,
    NoticeKind,
    OpState,
    Poll,
    Polled,
    PollFailed,
    Start,
    Started,
    StartFailed,
    Wake,
)
from upgrade.core.engine.state import Ledger, Stop
from upgrade.core.engine.timing import Policy, Timing
from upgrade.core.model import OnError, Op
from upgrade.core.plan import SYSTEM_STEPS, Phase

# enum members read once (a member read off its class is a slow lookup, asked per event)
_NK_GROUP_DONE, _NK_RETRY = NoticeKind.GROUP_DONE, NoticeKind.RETRY
_NK_UNIT_DONE, _NK_UNIT_FAILED = NoticeKind.UNIT_DONE, NoticeKind.UNIT_FAILED
_NK_WITHIN_BUDGET, _OE_ABORT, _OS_DONE = NoticeKind.WITHIN_BUDGET, OnError.ABORT, OpState.DONE
_OS_FAILED, _OS_NOT_STARTED = OpState.FAILED, OpState.NOT_STARTED
_O_ENTER_MAINTENANCE, _O_EVACUATE = Op.ENTER_MAINTENANCE, Op.EVACUATE
_O_EXIT_MAINTENANCE, _O_RESTORE, _P_HOSTS = Op.EXIT_MAINTENANCE, Op.RESTORE, Phase.HOSTS
_STOP_ABORT, _STOP_PAUSE, _STEP_START, _STEP_WAIT = Stop.ABORT, Stop.PAUSE, Step.START, Step.WAIT
_US_PENDING, _W_NOTHING, _W_POLL = UnitState.PENDING, Waiting.NOTHING, Waiting.POLL
_W_START, _W_TIMER = Waiting.START, Waiting.TIMER


class UnitPipeline:
    """Drives each item through its stages, answering the adapter's outcomes."""

    def __init__(self, ledger: Ledger, capacity: Capacity, timing: Timing, policy: Policy,
                 budget: Budget, window: WindowGate | None, pause_after_each_group: bool) -> None:
        self.ledger = ledger
        self.capacity = capacity
        self.timing = timing
        self.fixed = timing.fixed  #: the timeouts the same on every unit (read without a call)
        self.policy = policy
        self.budget = budget
        self.window = window
        self.pause_after_each_group = pause_after_each_group

    def started(self, item: Item, event: Started, out: list[Action]) -> None:
        """The adapter started ``item``'s operation."""
        item.transient = 0
        stage = item.pipeline[item.index]
        if stage.step is _STEP_START:
            self._next_stage(item, out)
            return
        # the operation runs from now: a start delayed (by a crash before it reached the
        # target, or by retries) does not eat into its deadline
        at = item.op_started = event.at
        limit = self.fixed[item.phase].get(stage.op)
        deadline = item.deadline = at + (self.timing.timeout(item) if limit is None else limit)
        item.seen = None
        self.ledger.idle = True  # only the item's own wait changed: nothing may start now
        # an adapter that knows when the operation ends (the simulated one) is polled then;
        # one that does not (a real manager) is polled every poll interval, so a unit that
        # finishes early is noticed within one interval, not one whole expected duration
        due = event.eta
        if due is None:
            due = at + min(self.timing.expected(item), self.policy.poll_interval_s)
        if due < at:  # min and max spelt out (as they pick, on a tie too)
            due = at
        item.waiting = _W_POLL
        out.append(Poll(stage.op, item.target, due if due <= deadline else deadline))

    def start_failed(self, item: Item, event: StartFailed, out: list[Action]) -> None:
        """The adapter could not start ``item``'s operation: retry (transient) or fail."""
        if event.transient and item.transient < self.policy.retries:
            item.transient += 1
            item.waiting = _W_TIMER
            delay = self.policy.backoff_s * 2 ** (item.transient - 1)
            out.append(Wake(event.at + delay, f"retry|{item.id}"))
            out.append(Notice(_NK_RETRY, f"{event.error}; retrying in {delay:.0f}s",
                              item.id))
            return
        self._fail(item, event.error, out)

    def polled(self, item: Item, event: Polled, out: list[Action]) -> None:
        """A poll of ``item``'s operation answered."""
        if event.state is _OS_DONE:
            self._next_stage(item, out)
        elif event.state is _OS_FAILED:
            self._fail(item, event.detail or f"{item.stage.op.value} failed", out)
        elif event.state is _OS_NOT_STARTED and item.stage.step is not _STEP_WAIT:
            self.begin_stage(item, out)  # the start was lost: start again
        else:
            self._still_running(item, event.at, event.detail, out,
                                ("Polled", event.state.value, event.detail))

    def poll_failed(self, item: Item, event: PollFailed, out: list[Action]) -> None:
        """A poll could not ask: the operation counts as still running until its deadline."""
        self._still_running(item, event.at, f"could not ask: {event.error}", out,
                            ("PollFailed", "", event.error))

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
        ledger = self.ledger
        ledger.repeat, ledger.idle = repeat, True
        self._poll(item, min(at + self.policy.poll_interval_s, item.deadline), out)

    def launch(self, item: Item, out: list[Action]) -> None:
        """Start ``item`` (pending, or failed and retried while holding its slot)."""
        ledger = self.ledger
        if item.state is _US_PENDING and item.index == 0 and item.phase is _P_HOSTS:
            item.pipeline = self.capacity.host_pipeline(item)
        if item.id not in ledger.unit_times:
            ledger.unit_times[item.id] = [ledger.now, None]
            if self.window is not None:
                self.window.started(ledger.now)
        self.begin_stage(item, out)

    def begin_stage(self, item: Item, out: list[Action]) -> None:
        """Start (or, for a wait, poll) ``item``'s current stage."""
        stage = item.pipeline[item.index]
        op, ledger = stage.op, self.ledger  # (read once: every stage of every item comes here)
        now = ledger.now
        if op is _O_ENTER_MAINTENANCE and not item.holds_maintenance:
            self.capacity.hold(item)
        if item.state is not stage.state:
            ledger.fire(item, TRIGGER[stage.state])
        item.seen = None
        if item.waiting is not _W_TIMER:
            item.op_started = now
            limit = self.fixed[item.phase].get(op)
            item.deadline = now + (self.timing.timeout(item) if limit is None else limit)
        if stage.step is _STEP_WAIT:
            item.waiting = _W_POLL  # (as _poll does)
            out.append(Poll(op, item.target, now))
            return
        moves: tuple[tuple[str, str], ...] = ()
        if op is _O_RESTORE:
            if not self._begin_restore(item, out):
                return
            assert item.restores is not None
            moves = item.restores
        else:
            item.start_attempts += 1
            item.waiting = _W_START
        if op is _O_EVACUATE:
            if item.moves is None:  # chosen once: a retry asks for the very same moves
                item.moves = self.capacity.evacuation_moves(item)
            moves = item.moves
        out.append(Start(op, item.target, item.start_attempts, moves))

    def _begin_restore(self, item: Item, out: list[Action]) -> bool:
        """Choose (once) the moves that bring ``item``'s VMs home; False: not yet (an
        evacuation of its cluster is under way: try again one poll interval later; a host
        that failed while entering moves nothing and is not waited for)."""
        capacity, now = self.capacity, self.ledger.now
        if item.restores is None:
            if capacity.evacuating(item):
                item.waiting = _W_TIMER
                out.append(Wake(now + self.policy.poll_interval_s, f"restore|{item.id}"))
                return False
            item.restores = capacity.homecoming(item)
            item.op_started = now  # its deadline runs from now, not from the wait
            item.deadline = now + self.timing.timeout(item)
        capacity.restore_begins(item)
        item.start_attempts += 1
        item.waiting = _W_START
        return True

    def _next_stage(self, item: Item, out: list[Action]) -> None:
        ledger, capacity = self.ledger, self.capacity
        item.waiting = _W_NOTHING
        pipeline, index = item.pipeline, item.index + 1
        item.index = index
        # (entered is asked only of a host still entering: most moves end no entry)
        freed = item.id in capacity.entering.get(item.cluster, ()) and capacity.entered(item)
        if pipeline[index - 1].op is _O_EXIT_MAINTENANCE:
            capacity.release(item)  # out of maintenance: its VMs may come back
            freed = True
        if index < len(pipeline):
            self.begin_stage(item, out)
            # from one working stage to the next, freeing no capacity (or only its cluster's,
            # which no group can use now): no pass would start anything (3/4 of a run's)
            ledger.idle = not freed or ledger.full_and_alone(item)
            return
        capacity.release(item)
        capacity.restore_ends(item)
        ledger.fire(item, "skip" if item.skipping else "finish")
        ledger.unit_times.setdefault(item.id, [ledger.now, None])[1] = ledger.now
        group = ledger.groups[item.phase][item.group]
        if item.phase not in SYSTEM_STEPS:
            word = "skipped" if item.skipping else "upgraded"
            out.append(Notice(_NK_UNIT_DONE, f"{item.id} {word}", item.id))
        if group.complete() and item.phase is _P_HOSTS:
            out.append(Notice(_NK_GROUP_DONE, f"host group {group.name} done"))
            last = ledger.phase_complete(_P_HOSTS)
            if self.pause_after_each_group and not last:
                ledger.request_stop(_STOP_PAUSE, f"host group {group.name} is done and the "
                                    "playbook pauses after each group", out, checkpoint=True)

    @staticmethod
    def _poll(item: Item, at: float, out: list[Action]) -> None:
        item.waiting = _W_POLL
        out.append(Poll(item.pipeline[item.index].op, item.target, at))

    def _fail(self, item: Item, error: str, out: list[Action]) -> None:
        item.waiting = _W_NOTHING
        self.capacity.restore_ends(item)
        item.error = error
        self.ledger.fire(item, "fail")
        out.append(Notice(_NK_UNIT_FAILED, f"{item.id}: {error}", item.id))
        over = ""
        budget = self.budget
        if budget.applies(item.phase):
            failed = len(failed_hosts(self.ledger.items.values()))
            if budget.within(failed):
                out.append(Notice(_NK_WITHIN_BUDGET, f"{item.id} failed; "
                                  f"{budget.describe(failed)}: the hosts phase goes on",
                                  item.id))
                return
            over = f" ({budget.describe(failed)}: over the budget)"
        self.ledger.request_stop(self.stop_for_failure(), f"{item.id} failed: {error}{over}",
                                 out)

    def stop_for_failure(self) -> Stop:
        """How a failure stops the run: ``on_error`` says pause or abort."""
        return _STOP_ABORT if self.policy.on_error is _OE_ABORT else _STOP_PAUSE

