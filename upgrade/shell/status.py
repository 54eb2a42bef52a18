"""Where a run stands, read from its journal without disturbing the runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.plan import SYSTEM_ITEMS, Phase
from upgrade.gcpause import collector_paused
from upgrade.shell.dirstate import Command, Holds, admit, warnings
from upgrade.shell.journal import JOURNAL_FILE, Journal
from upgrade.shell.lock import RunnerLock
from upgrade.shell.replay import replay
from upgrade.shell.start_record import load_run, recorded_engine
from upgrade.shell.window_calendar import window_doc


def not_started() -> dict[str, Any]:
    """The status document of a state directory where no run has begun."""
    doc = _doc("not_started", None, 0, [], [], 0, None, None)
    doc["units"]["skipped"] = []
    doc["units"]["already_at_target"] = []
    doc.update(interrupted=False, runner_pid=None, reasons=[], clock_s=None, warnings=[],
               interrupted_start=False)
    return doc


def run_status(state_dir: Path) -> tuple[dict[str, Any], Engine | None]:
    """The DESIGN ``status --format json`` document, and the replayed engine."""
    reading = admit(state_dir, Command.STATUS)  # what the directory holds, read once
    if reading.holds is Holds.ABORTED:
        return aborted_status(state_dir), None
    if reading.holds is not Holds.RUN or (reading.journal is not None
                                          and not reading.start_recorded):
        doc = not_started()
        if reading.journal is not None and _has_schema(state_dir):
            doc["started_at"] = reading.journal.started_at
            doc["runner_pid"] = _pid(state_dir)
            doc["interrupted_start"] = reading.start_recorded
        doc["warnings"] = warnings(state_dir, reading)
        return doc, None
    with Journal.open_readonly(state_dir) as journal:
        with collector_paused():
            engine = recorded_engine(load_run(state_dir, journal), journal)
            replayed = replay(journal, engine)
        started_at = journal.get_meta("started_at")
    holder = RunnerLock.holder(state_dir)
    units = [i for i in engine.items.values() if i.id not in SYSTEM_ITEMS]
    state = {RunState.DONE: "done", RunState.FAILED: "failed",
             RunState.PAUSED: "paused"}.get(engine.state, "running")
    interrupted = state == "running" and holder is None
    if interrupted:
        state = "paused"
    doc = _doc(
        state, engine.phase.value, len(units),
        [i.id for i in units if i.state is UnitState.FAILED],
        [i.id for i in units if i.active],
        sum(1 for i in units if i.state is UnitState.DONE), started_at, _eta(engine),
    )
    doc["units"]["skipped"] = [i.id for i in units if i.state is UnitState.SKIPPED]
    # not in total: the run leaves them alone (they were at the target when it was planned)
    doc["units"]["already_at_target"] = list(engine.plan.already_at_target)
    doc["interrupted"] = interrupted
    doc["runner_pid"] = holder.pid if holder else None
    doc["reasons"] = list(engine.stop_reasons)
    doc["clock_s"] = replayed.last_at
    doc["warnings"] = []
    doc["interrupted_start"] = False
    window = window_doc(engine, replayed.last_at)
    if window is not None:
        doc["window"] = window
    return doc, engine


def _has_schema(state_dir: Path) -> bool:
    """A journal file with something in it (a zero-length one holds no schema yet)."""
    path = state_dir / JOURNAL_FILE
    return path.is_file() and path.stat().st_size > 0


def aborted_status(state_dir: Path) -> dict[str, Any]:
    """The status of an aborted run, from its journal alone (its playbook may be gone)."""
    from upgrade.shell.run_records import report_doc

    report = report_doc(state_dir)
    units = report["units"]
    aborted = report["aborted"] or {}
    doc = _doc("aborted", aborted.get("phase"), len(units),
               [u["id"] for u in units if u["outcome"] == "failed"], [],
               report["units_done"], report["started_at"], None)
    doc["units"]["skipped"] = [u["id"] for u in units if u["outcome"] == "skipped"]
    doc.update(interrupted=False, runner_pid=_pid(state_dir),
               reasons=[f"aborted: {aborted.get('reason', '')}"], clock_s=report["clock_s"],
               aborted=aborted)
    return doc


def _doc(state: str, phase: str | None, total: int, failed: list[str], active: list[str],
         done: int, started_at: str | None, eta: float | None) -> dict[str, Any]:
    return {"state": state, "phase": phase,
            "units": {"total": total, "done": done, "failed": failed, "in_progress": active},
            "started_at": started_at, "eta_s": eta}


#: the ETA's pace correction stays within these factors (one slow phase is no forecast)
PACE_LIMITS = (0.5, 3.0)


def _eta(engine: Engine) -> float:
    """Seconds left: the plan's estimate for what remains, scaled by the pace so far.

    The pace is how long the finished phases took against their estimates (1.0
    before any phase finished), kept within :data:`PACE_LIMITS`.
    """
    if engine.state is RunState.DONE:
        return 0.0
    plan = engine.plan
    phase = plan.phase(engine.phase)
    items = [i for g in engine.groups[engine.phase] for i in g.items]
    fraction = sum(1 for i in items if i.terminal) / len(items) if items else 0.0
    position = phase.estimated_start_s + fraction * phase.estimated_duration_s
    remaining = max(0.0, plan.estimated_duration_s - position)
    took = estimated = 0.0
    for name, (start, end) in engine.phase_times.items():
        if start is not None and end is not None:
            took += end - start
            estimated += plan.phase(Phase(name)).estimated_duration_s
    pace = took / estimated if estimated > 0 else 1.0
    low, high = PACE_LIMITS
    return round(remaining * min(max(pace, low), high), 1)


def _pid(state_dir: Path) -> int | None:
    holder = RunnerLock.holder(state_dir)
    return holder.pid if holder else None


def dumps(doc: dict[str, Any]) -> str:
    """The status document as JSON text."""
    return json.dumps(doc, indent=2)
