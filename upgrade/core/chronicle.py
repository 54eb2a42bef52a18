"""A run's story, read from its journal records alone: what happened against the plan.

Pure: it takes the journal's records (plain dicts, as the runner wrote them),
the plan the run recorded, and a few facts the caller looked up (is a runner
alive, was the run aborted), and returns the JSON-ready document behind
``nsxt-upgrade report`` and ``history``.  It never replays the engine, so it
works on any journal, also one whose playbook has changed or gone since, and
on runs archived under ``runs/``.

It reads the journal as steps (:mod:`upgrade.core.steps`, which also says who asked
for each stop) and keeps what the report needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from upgrade.core.engine.messages import NoticeKind
from upgrade.core.plan import PHASES
from upgrade.core.steps import (
    SETTLING,
    Step,
    done_detail,
    phase_of_notice,
    steps,
    stop_source,
    unit_phases,
)

#: the operation that moves VMs back home (``Op.RESTORE``; the chronicle reads plain records)
RESTORE = "restore_placement"
_INTERRUPTED = ("interrupted: the runner stopped without pausing (killed, crashed, or "
                "stopped at once by a second signal)")


@dataclass
class _Unit:
    id: str
    phase: str
    group: str
    planned: tuple[float, float] | None
    start: float | None = None
    end: float | None = None
    outcome: str = "not_started"
    retries: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    ops: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Pause:
    requested_at: float
    by: list[str]
    why: list[str]
    paused_at: float | None = None
    resumed_at: float | None = None
    outcome: str = "draining"

    def doc(self) -> dict[str, Any]:
        return {"requested_at_s": self.requested_at, "paused_at_s": self.paused_at,
                "resumed_at_s": self.resumed_at, "by": ", ".join(dict.fromkeys(self.by)),
                "why": "; ".join(self.why), "outcome": self.outcome}


class _Reader:
    """Walks the steps once, keeping everything the report needs."""

    def __init__(self, plan: Mapping[str, Any]) -> None:
        self.target = str(plan.get("target_version", ""))
        self.phase_of = unit_phases(plan)
        planned = _planned_units(plan)
        self.units = {
            unit: _Unit(unit, phase["name"], group["name"], planned.get(unit))
            for phase in plan.get("phases", []) for group in phase.get("groups", [])
            for unit in group.get("units", [])
        }
        # the plan's phases, in its flow's order (a 2.4 plan has no controller phase)
        names = [p["name"] for p in plan.get("phases", [])] or [p.value for p in PHASES]
        self.phases: dict[str, dict[str, Any]] = {name: {} for name in names}
        self.state = "not_started"
        self.first_at: float | None = None
        self.last_at = 0.0
        self.pauses: list[_Pause] = []
        self.stop: _Pause | None = None
        self.retries: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.skips: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.vmotions: list[dict[str, Any]] = []
        #: host -> the moves of its evacuation in flight
        self.evacuating: dict[str, list[dict[str, Any]]] = {}
        #: host -> the moves bringing its VMs back home, in flight
        self.homecoming: dict[str, list[dict[str, Any]]] = {}

    def read(self, step: Step) -> None:
        at, previous = step.at, self.last_at
        self.first_at = at if self.first_at is None else self.first_at
        self.last_at = max(self.last_at, at)
        kind = step.event.get("type")
        if kind == "Begin":
            self.state = "running"
        elif kind == "Resumed":
            self._resumed(step, previous)
        else:
            self._outcome(step)
        for action in step.actions:
            if action.get("type") == "Notice":
                self._notice(step, action)
            else:
                self._action(at, action)

    def _resumed(self, step: Step, previous: float) -> None:
        event = step.event
        after = self.state
        if self.state == "running":  # nothing settled it: the runner was stopped or died
            self.pauses.append(_Pause(previous, ["runner stopped"], [_INTERRUPTED], previous,
                                      step.at, "interrupted"))
            after = "interrupted"
        elif self.pauses and self.pauses[-1].resumed_at is None:
            self.pauses[-1].resumed_at = step.at
        self.stop = None
        self.resumes.append({"at_s": step.at, "after": after,
                             "retry_failed": bool(event.get("retry_failed")),
                             "skip": list(event.get("skip", []))})
        for unit in event.get("skip", []):
            self.skips.append({"unit": unit, "at_s": step.at, "by": "operator (resume --skip)"})
        self.state = "running"

    def _outcome(self, step: Step) -> None:
        event = step.event
        unit, op = event.get("unit"), event.get("op")
        if not isinstance(unit, str) or not isinstance(op, str) or unit not in self.units:
            return
        record = self.units[unit].ops.get(op)
        if record is None:
            return
        state = event.get("state")
        if event.get("type") == "StartFailed" and not event.get("transient"):
            state = "failed"
        elif event.get("type") != "Polled" or state not in ("done", "failed"):
            return
        record["end_s"], record["outcome"] = step.at, state
        if op in ("evacuate", RESTORE):
            flight = self.evacuating if op == "evacuate" else self.homecoming
            for move in flight.pop(unit, []):
                move["end_s"], move["outcome"] = step.at, state

    def _action(self, at: float, action: Mapping[str, Any]) -> None:
        unit, op = action.get("unit"), action.get("op")
        if not isinstance(unit, str) or not isinstance(op, str) or unit not in self.units:
            return
        item = self.units[unit]
        if item.start is None:
            item.start = at
        if item.outcome in ("not_started", "failed"):
            item.outcome = "in_progress"
        record = item.ops.setdefault(op, {"op": op, "start_s": at, "end_s": None,
                                          "outcome": "running", "attempts": 0})
        if action.get("type") == "Start":
            record["attempts"] += 1
            if record["outcome"] != "running":  # started again (a retry)
                record.update(start_s=at, end_s=None, outcome="running")
            if op == "evacuate" and action.get("moves"):
                for stale in self.evacuating.pop(unit, []):  # asked again: keep the latest
                    self.vmotions.remove(stale)
                moves = [{"vm": vm, "from": unit, "to": dst, "start_s": at, "end_s": None,
                          "outcome": "running", "by": "nsxt-upgrade"}
                         for vm, dst in action["moves"]]
                self.vmotions += moves
                self.evacuating[unit] = moves
            if op == RESTORE and action.get("moves"):
                self._homecoming(at, unit, action["moves"])

    def _homecoming(self, at: float, unit: str, moves: Sequence[Sequence[str]]) -> None:
        """``restore_vm_placement``: VMs back to ``unit``, from where the last move put them."""
        for stale in self.homecoming.pop(unit, []):  # asked again: keep the latest
            self.vmotions.remove(stale)
        last = {m["vm"]: m["to"] for m in self.vmotions}
        back = [{"vm": vm, "from": last.get(vm, "?"), "to": dst, "start_s": at, "end_s": None,
                 "outcome": "running", "by": "nsxt-upgrade (back home)"} for vm, dst in moves]
        self.vmotions += back
        self.homecoming[unit] = back

    def _notice(self, step: Step, notice: Mapping[str, Any]) -> None:
        at, kind, unit = step.at, notice.get("kind"), str(notice.get("unit", ""))
        message = str(notice.get("message", ""))
        if kind in (NoticeKind.PHASE_STARTED, NoticeKind.PHASE_DONE):
            phase = phase_of_notice(notice)
            if phase is not None:
                edge = "start" if kind == NoticeKind.PHASE_STARTED else "end"
                self.phases.setdefault(phase.value, {})[edge] = at
        elif kind in (NoticeKind.UNIT_DONE, NoticeKind.DRIFT) and unit in self.units:
            item = self.units[unit]
            item.end = at
            item.start = at if item.start is None else item.start
            item.outcome = {"upgraded": "upgraded", "skipped": "skipped"}.get(
                done_detail(notice, self.target), "already_at_target")
        elif kind == NoticeKind.UNIT_FAILED:
            error = message.split(": ", 1)[1] if ": " in message else message
            entry = {"at_s": at, "unit": unit if unit in self.units else None,
                     "phase": self.phase_of.get(unit, unit), "error": error}
            self.failures.append(entry)
            if unit in self.units:
                self.units[unit].outcome = "failed"
                self.units[unit].failures.append({"at_s": at, "error": error})
        elif kind == NoticeKind.WITHIN_BUDGET:
            for entry in reversed(self.failures):  # the unit_failed notice just before
                if entry["unit"] == unit:
                    entry["within_budget"] = True
                    entry["error"] += " (within the failure budget: the phase went on)"
                    break
        elif kind == NoticeKind.RETRY:
            self.retries.append({"at_s": at, "unit": unit if unit in self.units else None,
                                 "phase": self.phase_of.get(unit, unit), "detail": message})
            if unit in self.units:
                self.units[unit].retries += 1
        elif kind == NoticeKind.STOPPING:
            if self.stop is None:
                self.stop = _Pause(at, [], [])
                self.pauses.append(self.stop)
            self.stop.by.append(stop_source(step))
            self.stop.why.append(message)
        elif kind == NoticeKind.CONTINUING and self.stop is not None:
            self.stop.outcome, self.stop.resumed_at, self.stop = "not_needed", at, None
        elif kind in SETTLING:
            self.state = SETTLING[NoticeKind(kind)]
            if self.stop is not None and kind != NoticeKind.DONE:
                self.stop.paused_at = at
                self.stop.outcome = "paused" if kind == NoticeKind.PAUSED else "failed"
            self.stop = None


def _planned_units(plan: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    spans: dict[str, tuple[float, float]] = {}
    for bar in plan.get("schedule", []):
        first, last = spans.get(bar["unit"], (bar["start"], bar["end"]))
        spans[bar["unit"]] = (min(first, bar["start"]), max(last, bar["end"]))
    return spans


def chronicle(records: Iterable[tuple[str, float, Mapping[str, Any]]],
              plan: Mapping[str, Any], *, live: bool = False,
              aborted: Mapping[str, Any] | None = None,
              acks: Sequence[str] = (),
              drs_evacuated: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """The report document of a run (see ``report --format json``).

    ``live``: a runner holds the state directory's lock now (a run that did not
    settle without one was interrupted).  ``aborted``: the run's abort record.
    ``drs_evacuated``: hosts whose VMs vCenter's DRS moves (destinations not ours to
    record) and their powered-on VMs.
    """
    reader = _Reader(plan)
    origin: float | None = None
    for step in steps(records):
        # times from the run's start: a run that went on in a world an aborted run
        # left begins later than 0 on its clock
        origin = step.at if origin is None else origin
        reader.read(Step(step.at - origin, step.event, step.actions))
    state = reader.state
    interrupted = state == "running" and not live
    if interrupted:
        state = "paused"
        reader.pauses.append(_Pause(reader.last_at, ["runner stopped"], [_INTERRUPTED],
                                    reader.last_at, None, "interrupted"))
    if aborted:
        state = "aborted"
    return {
        "name": plan.get("name"),
        "source_version": plan.get("source_version"),
        "target_version": plan.get("target_version"),
        "state": state,
        "interrupted": interrupted,
        "aborted": dict(aborted) if aborted else None,
        "planned_duration_s": plan.get("estimated_duration_s", 0),
        "actual_duration_s": (reader.last_at - reader.first_at
                              if reader.first_at is not None else 0.0),
        "clock_s": reader.last_at,
        "phases": [_phase_doc(p, plan, reader) for p in reader.phases],
        "units": [_unit_doc(u) for u in reader.units.values()],
        "units_total": len(reader.units),
        "units_done": sum(1 for u in reader.units.values()
                          if u.outcome in ("upgraded", "already_at_target")),
        "retries": reader.retries,
        "pauses": [p.doc() for p in reader.pauses],
        "resumes": reader.resumes,
        "failures": reader.failures,
        "skips": reader.skips,
        "vmotions": sorted(reader.vmotions, key=lambda m: (m["start_s"], m["vm"])),
        "drs_evacuations": _drs(reader, drs_evacuated or {}),
        "findings": list(plan.get("findings", [])),
        "acknowledged": sorted(set(acks) | {f["id"] for f in plan.get("findings", [])
                                            if f.get("acknowledged")}),
    }


def _phase_doc(name: str, plan: Mapping[str, Any], reader: _Reader) -> dict[str, Any]:
    planned: Mapping[str, Any] = next(
        (p for p in plan.get("phases", []) if p.get("name") == name), {})
    seen = reader.phases[name]
    start, end = seen.get("start"), seen.get("end")
    outcome = "done" if end is not None else "not_started" if start is None else (
        "running" if reader.state == "running" else "stopped")
    units = [u for u in reader.units.values() if u.phase == name]
    return {
        "name": name,
        "planned_start_s": planned.get("estimated_start_s", 0),
        "planned_duration_s": planned.get("estimated_duration_s", 0),
        "actual_start_s": start,
        "actual_duration_s": None if start is None or end is None else end - start,
        "actual_end_s": end,
        "outcome": outcome,
        "units": len(units),
        "units_done": sum(1 for u in units if u.outcome in ("upgraded", "already_at_target")),
    }


def _unit_doc(unit: _Unit) -> dict[str, Any]:
    planned = unit.planned
    return {
        "id": unit.id,
        "phase": unit.phase,
        "group": unit.group,
        "planned_start_s": planned[0] if planned else None,
        "planned_duration_s": planned[1] - planned[0] if planned else None,
        "actual_start_s": unit.start,
        "actual_duration_s": (unit.end - unit.start
                              if unit.start is not None and unit.end is not None else None),
        "outcome": unit.outcome,
        "retries": unit.retries,
        "failures": unit.failures,
        "operations": list(unit.ops.values()),
    }


def _drs(reader: _Reader, hosts: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    out = []
    for host, vms in hosts.items():
        record = reader.units.get(host)
        entry = record.ops.get("enter_maintenance") if record else None
        if entry is None or not vms:
            continue
        out.append({"host": host, "vms": list(vms), "start_s": entry["start_s"],
                    "end_s": entry["end_s"], "by": "vCenter DRS (fully automated)"})
    return out
