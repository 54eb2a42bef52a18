"""What the report document means for a reader: shared by the HTML and markdown reports.

The report document (``report --format json``) records every stop of the run in
``pauses``, also the one that ended a failed run (``on_error: abort``: outcome
``failed``), and a phase the run left unfinished as ``stopped``.  A reader must not
take a failure for a pause or a stop for an early finish, so the renderers ask here:
which entries are pauses and which stopped the run, what a phase's outcome reads as,
how long the run took against the plan, and what to do next (from
:mod:`upgrade.render.hints`, the one source of that line).  Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upgrade.render import hms
from upgrade.render.hints import next_command, report_facts

#: how a unit outcome ranks when a group is summed up in one bar (worst first)
_WORST_FIRST = ("failed", "running", "in_progress", "skipped", "not_started",
                "already_at_target", "upgraded", "done")


def is_stop(pause: Mapping[str, Any]) -> bool:
    """True for the entry of ``pauses`` that ended the run as failed (not a pause)."""
    return pause.get("outcome") == "failed"


def pauses(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The run's pauses: stops an operator (or the window, a canary, a failure under
    ``on_error: pause``) can resume from, without the stop that failed the run."""
    return [p for p in doc["pauses"] if not is_stop(p)]


def stops(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The stops that ended the run as failed (``on_error: abort``)."""
    return [p for p in doc["pauses"] if is_stop(p)]


def phase_outcome(doc: Mapping[str, Any], phase: Mapping[str, Any]) -> str:
    """A phase's outcome in words: an unfinished (``stopped``) phase reads as what
    stopped it: ``failed`` where the failure was, else the run's state."""
    outcome = str(phase["outcome"])
    if outcome == "not_started":
        return "not started"
    if outcome != "stopped":
        return outcome
    failed_here = any(u["outcome"] == "failed" and u["phase"] == phase["name"]
                      for u in doc["units"]) or any(
        f["unit"] is None and f["phase"] == phase["name"] for f in doc["failures"])
    state = str(doc["state"])
    if state == "failed":
        return "failed" if failed_here else "stopped by the failure"
    if state == "paused":
        return "paused" + (", with a failure" if failed_here else "")
    return "aborted" if state == "aborted" else outcome


def duration_text(doc: Mapping[str, Any]) -> str:
    """``took 2:31:00 (planned 2:31:00)`` for a finished run; an unfinished one says it
    ran that long before it stopped, against the whole plan, so it never reads like an
    early finish."""
    took, planned = hms(doc["actual_duration_s"]), hms(doc["planned_duration_s"])
    state = str(doc["state"])
    if state == "done":
        return f"took {took} (planned {planned})"
    ending = {"failed": "before it failed", "paused": "before it paused",
              "aborted": "before it was aborted", "running": "so far"}.get(state, "")
    return (f"ran {took} {ending} ({doc['units_done']}/{doc['units_total']} units done; "
            f"the whole upgrade was planned at {planned})").replace("  ", " ")


def stop_text(doc: Mapping[str, Any]) -> str | None:
    """Why a failed run stopped, when, and who said so (None for a run that did not fail)."""
    found = stops(doc)
    if not found or doc["state"] != "failed":
        return None
    last = found[-1]
    at = last["paused_at_s"] if last["paused_at_s"] is not None else last["requested_at_s"]
    return f"{last['why']} (the run stopped at {hms(at)}: on_error: abort)"


def next_text(doc: Mapping[str, Any]) -> str | None:
    """What moves the run on, as ``status`` and the run's own last line say it."""
    state_dir = doc.get("state_dir")
    return next_command(report_facts(doc), Path(state_dir) if state_dir else None)


@dataclass
class GroupSummary:
    """One group of units (a host group, an edge cluster, ...), summed up."""

    phase: str
    name: str
    units: list[dict[str, Any]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Units per outcome, worst first."""
        found: dict[str, int] = {}
        for unit in self.units:
            found[unit["outcome"]] = found.get(unit["outcome"], 0) + 1
        return dict(sorted(found.items(), key=lambda kv: _rank(kv[0])))

    @property
    def outcome(self) -> str:
        """The worst outcome of any unit of the group."""
        return min((str(u["outcome"]) for u in self.units), key=_rank)

    def span(self, start_key: str, length_key: str, clock_s: float) -> tuple[float, float] | None:
        """First start and last end of the units (an open unit ends at ``clock_s``)."""
        starts = [u[start_key] for u in self.units if u[start_key] is not None]
        if not starts:
            return None
        ends = [u[start_key] + (u[length_key] if u[length_key] is not None
                                else max(0.0, clock_s - u[start_key]))
                for u in self.units if u[start_key] is not None]
        return min(starts), max(ends)


def _rank(outcome: str) -> int:
    return _WORST_FIRST.index(outcome) if outcome in _WORST_FIRST else 0


def groups(doc: Mapping[str, Any]) -> list[GroupSummary]:
    """The units by group, in plan order."""
    found: dict[tuple[str, str], GroupSummary] = {}
    for unit in doc["units"]:
        key = (str(unit["phase"]), str(unit["group"]))
        found.setdefault(key, GroupSummary(*key)).units.append(unit)
    return list(found.values())


def counts_text(counts: Mapping[str, int]) -> str:
    """``2 failed, 98 upgraded``."""
    return ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in counts.items())

