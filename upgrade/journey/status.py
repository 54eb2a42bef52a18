"""``journey status``: where a journey stands, from its journal and its hops' journals.

Reads only: it takes no lock and writes nothing, so it can watch a journey being run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from upgrade.journey.hops import hop_dir, hop_state
from upgrade.journey.journal import JourneyJournal, lock_holder_pid
from upgrade.journey.progress import Progress, progress_of
from upgrade.journey.route import JourneyStep
from upgrade.journey.spec import JourneySpec
from upgrade.shell.status import run_status


def _step_state(progress: Progress, step: JourneyStep, index: int, running: bool,
                state_dir: Path) -> str:
    if step.n in progress.done:
        return "done"
    if index != progress.next_index:
        return "pending"
    last = progress.last.get(step.n, {})
    if not step.is_hop:
        return "waiting" if last.get("type") in ("waiting", "refused") else (
            "running" if running else "pending")
    if running:
        return "running"
    if last.get("type") == "step_ended":
        return {3: "paused", 1: "failed", 4: "failed"}.get(int(last.get("code", 1)), "failed")
    if last.get("type") == "step_started" or hop_state(hop_dir(state_dir, step)) != \
            "not_started":
        return "paused"  # interrupted: resume goes on
    return "pending"


def _run_summary(where: Path) -> dict[str, Any]:
    """The hop run's ``status --format json`` essentials: state, phase, units."""
    doc, _ = run_status(where)
    return {"state": doc["state"], "phase": doc["phase"], "units": doc["units"]}


def journey_status(spec: JourneySpec, state_dir: Path) -> dict[str, Any]:
    """The DESIGN ``journey status --format json`` document (plus ``reason`` and
    ``next``, a one-line hint)."""
    journal = JourneyJournal.read(state_dir)
    progress = progress_of(journal.records)
    running = lock_holder_pid(state_dir) is not None
    if progress is None:
        return {"journey": spec.name, "state": "running" if running else "not_started",
                "at": None, "steps": [], "waiting_for": None, "reason": None,
                "state_dir": str(state_dir),
                "next": f"nsxt-upgrade journey run {spec.path}"}
    steps = []
    for index, step in enumerate(progress.steps):
        entry: dict[str, Any] = {"n": step.n, "kind": step.kind, "from": str(step.old),
                                 "to": str(step.new),
                                 "state": _step_state(progress, step, index, running,
                                                      state_dir)}
        if step.is_hop:
            entry["state_dir"] = str(hop_dir(state_dir, step))
            if entry["state"] != "pending":
                entry["run"] = _run_summary(hop_dir(state_dir, step))
        steps.append(entry)
    reason = None
    if progress.finished:
        state = "done"
    elif running:
        state = "running"
    else:
        current = steps[progress.next_index or 0]["state"]
        state = {"waiting": "waiting", "failed": "failed"}.get(current, "paused")
        last = progress.last.get(progress.steps[progress.next_index or 0].n, {})
        if last.get("type") == "refused":
            reason = last.get("reason")
    waiting_for = progress.waiting_for() if state == "waiting" else None
    following = None if state == "done" else f"nsxt-upgrade journey resume {spec.path}"
    if waiting_for and following is not None and spec.opsman_source is None:
        following += "".join(f" --confirm {k}={v}" for k, v in waiting_for.items())
    return {"journey": spec.name, "state": state, "at": progress.at.to_json(), "steps": steps,
            "waiting_for": waiting_for, "reason": reason, "state_dir": str(state_dir),
            "next": following}
