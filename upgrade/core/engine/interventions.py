"""What reaches the engine from outside the operations it started: an operator's resume
(with its skips and retries) and a unit found already at the target (drift).

Each is a function over the parts it moves: the run ledger, the unit pipeline, the cluster
capacity and the gates that a resume rearms.
"""

from __future__ import annotations

from upgrade.core.engine.canary import CanaryGate
from upgrade.core.engine.clusters import Capacity
from upgrade.core.engine.gate import WindowGate
from upgrade.core.engine.items import Step
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.messages import Action, Notice, NoticeKind, Observed, Resumed
from upgrade.core.engine.pipeline import UnitPipeline
from upgrade.core.engine.state import Ledger
from upgrade.core.model import Op


def resume(event: Resumed, ledger: Ledger, pipeline: UnitPipeline, capacity: Capacity,
           canary: CanaryGate, window: WindowGate | None, out: list[Action]) -> None:
    """An operator resumed: forget the stop, skip and retry what ``event`` names."""
    ledger.clear_stop()
    if window is not None:
        window.resumed()
    if ledger.state in (RunState.PAUSED, RunState.FAILED):
        ledger.machine.resume()
    for ident in event.skip:
        item = ledger.items.get(ident)
        if item is None or item.state not in (UnitState.PENDING, UnitState.FAILED):
            continue
        if item.holds_maintenance:
            if item.state is UnitState.FAILED:
                ledger.fire(item, "retry")
            item.skipping = True
            # only leave maintenance (and, with restore on, take its VMs back)
            item.index = next(i for i, s in enumerate(item.pipeline)
                              if s.op is Op.EXIT_MAINTENANCE)
            capacity.entered(item)
            pipeline.begin_stage(item, out)
        else:
            ledger.fire(item, "skip")
            out.append(Notice(NoticeKind.UNIT_DONE, f"{item.id} skipped", item.id))
    if event.retry_failed:
        for item in ledger.items.values():
            if item.state is UnitState.FAILED:
                ledger.fire(item, "retry")
                item.transient = 0
                ledger.groups[item.phase][item.group].cursor = 0
                if item.stage.step is Step.WAIT and item.stage.op is not Op.VERIFY:
                    # the operation waited for failed: start it again, not only poll it
                    item.index = next(i for i, s in enumerate(item.pipeline)
                                      if s.op is item.stage.op)
                out.append(Notice(NoticeKind.RETRY, f"retrying {item.id}", item.id))
                if item.holds_maintenance:
                    pipeline.launch(item, out)  # it already holds its slot
    canary.rearm(ledger.now, out)  # the watch's timer may have died with the runner
    out.append(Notice(NoticeKind.RESUMED, f"resumed in phase {ledger.phase.value}"))


def observed(event: Observed, ledger: Ledger, target_version: str, out: list[Action]) -> None:
    """A unit not yet started reports a version: at the target, it counts as done."""
    item = ledger.items.get(event.unit)
    if item is None or item.state is not UnitState.PENDING or item.index:
        return
    if event.version != target_version:
        return
    ledger.fire(item, "adopt")
    ledger.unit_times[item.id] = [event.at, event.at]
    out.append(Notice(NoticeKind.DRIFT, f"{item.id} already reports {event.version}, but "
                      "this run did not upgrade it (upgraded by hand?); counted as done",
                      item.id))
