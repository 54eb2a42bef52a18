"""Where a run stands, read from its journal without disturbing the runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from upgrade.engine.core import Engine, Policy
from upgrade.engine.machines import RunState, UnitState
from upgrade.journal import Journal, RunnerLock
from upgrade.replay import replay

_SYSTEM = {"precheck", "bundle", "coordinator", "postcheck"}


def run_status(state_dir: Path) -> tuple[dict[str, Any], Engine | None]:
    """The DESIGN ``status --format json`` document, and the replayed engine."""
    from upgrade.session import load_run  # the session module pulls in the adapters

    with Journal.open(state_dir, create=False) as journal:
        if journal.count() == 0:
            return _doc("not_started", None, 0, [], [], 0, journal.get_meta("started_at"),
                        None), None
        _, _, prepared = load_run(state_dir, journal)
        engine = Engine(prepared.plan, prepared.inventory,
                        Policy.from_playbook(prepared.loaded.playbook))
        replayed = replay(journal, engine)
        started_at = journal.get_meta("started_at")
    holder = RunnerLock.holder(state_dir)
    units = [i for i in engine.items.values() if i.id not in _SYSTEM]
    state = {RunState.DONE: "done", RunState.FAILED: "failed",
             RunState.PAUSED: "paused"}.get(engine.state, "running")
    interrupted = state == "running" and holder is None
    if interrupted:
        state = "paused"
    doc = _doc(
        state, engine.phase.value, len(units),
        [i.id for i in units if i.state is UnitState.FAILED],
        [i.id for i in units if i.active],
        sum(1 for i in units if i.terminal), started_at, _eta(engine, replayed.last_at),
    )
    doc["interrupted"] = interrupted
    doc["runner_pid"] = holder.pid if holder else None
    doc["reasons"] = list(engine.stop_reasons)
    doc["clock_s"] = replayed.last_at
    return doc, engine


def _doc(state: str, phase: str | None, total: int, failed: list[str], active: list[str],
         done: int, started_at: str | None, eta: float | None) -> dict[str, Any]:
    return {"state": state, "phase": phase,
            "units": {"total": total, "done": done, "failed": failed, "in_progress": active},
            "started_at": started_at, "eta_s": eta}


def _eta(engine: Engine, now: float) -> float:
    """Seconds left: the plan's remaining estimate, scaled by how the run compares so far."""
    if engine.state is RunState.DONE:
        return 0.0
    plan = engine.plan
    phase = plan.phase(engine.phase)
    items = [i for g in engine.groups[engine.phase] for i in g.items]
    fraction = sum(1 for i in items if i.terminal) / len(items) if items else 0.0
    position = phase.estimated_start_s + fraction * phase.estimated_duration_s
    remaining = max(0.0, plan.estimated_duration_s - position)
    ratio = now / position if position > 0 and now > 0 else 1.0
    return round(remaining * max(ratio, 0.1), 1)


def dumps(doc: dict[str, Any]) -> str:
    """The status document as JSON text."""
    return json.dumps(doc, indent=2)
