"""A journal read as *steps*: one ``event`` record (what happened) followed by the
``action`` records the engine issued in answer, among them ``Notice`` records
(``phase_started``, ``unit_done``, ``stopping``, ``paused``, ...).

Pure, over plain records (dicts as the runner wrote them).  Who asked for a stop is read
from the step that asked: a ``PauseRequested`` event is an operator (a signal, or
``nsxt-upgrade pause``), a stop beside a ``unit_failed`` notice is the playbook's
``on_error``, beside a ``group_done`` notice it is ``pause_after_each_group``.  The run's
report (:mod:`upgrade.core.chronicle`) and the live ``--events`` stream
(:mod:`upgrade.shell.events`) both read steps with these rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from upgrade.core.engine.messages import NoticeKind
from upgrade.core.plan import Phase

#: notice kinds that settle a run, and the state each leaves
SETTLING = {NoticeKind.PAUSED: "paused", NoticeKind.FAILED: "failed", NoticeKind.DONE: "done"}
#: notices that future engine rules (canary, maintenance windows) journal beside a stop
LATER_SOURCES = {NoticeKind.CANARY_DONE: "canary", NoticeKind.WINDOW_CLOSED: "window"}
#: how the engine's stop begins when nothing but failed units is left in a phase
_FAILED_WAIT = "failed units wait for an operator"
_SIGNAL = re.compile(r"\b(SIG[A-Z]+)\b")


@dataclass(frozen=True, slots=True)
class Step:
    """One journaled step: the event and the actions it caused."""

    at: float
    event: Mapping[str, Any]
    actions: tuple[Mapping[str, Any], ...]

    def notices(self, kind: NoticeKind | None = None) -> list[Mapping[str, Any]]:
        """The step's notices (of ``kind``), in order."""
        return [a for a in self.actions if a.get("type") == "Notice"
                and (kind is None or a.get("kind") == kind)]


def steps(records: Iterable[tuple[str, float, Mapping[str, Any]]]) -> Iterator[Step]:
    """Group ``(kind, at, payload)`` journal records into steps (other kinds are skipped)."""
    current: tuple[float, Mapping[str, Any]] | None = None
    actions: list[Mapping[str, Any]] = []
    for kind, at, payload in records:
        if kind == "event":
            if current is not None:
                yield Step(current[0], current[1], tuple(actions))
            current, actions = (at, payload), []
        elif kind == "action" and current is not None:
            actions.append(payload)
    if current is not None:
        yield Step(current[0], current[1], tuple(actions))


def stop_source(step: Step) -> str:
    """Who or what asked for the stop (pause or abort) that ``step`` began."""
    event = step.event
    if event.get("type") == "PauseRequested":
        reason = str(event.get("reason", ""))
        signal = _SIGNAL.search(reason)
        if signal:
            how = "Ctrl-C" if signal.group(1) == "SIGINT" else signal.group(1)
            return f"operator ({how})"
        return "operator (nsxt-upgrade pause)"
    for kind, source in LATER_SOURCES.items():  # the engine's canary and windows, later
        if step.notices(kind):
            return source
    if step.notices(NoticeKind.UNIT_FAILED) or any(
            str(n.get("message", "")).startswith(_FAILED_WAIT)
            for n in step.notices(NoticeKind.STOPPING)):
        return "on_error"
    if step.notices(NoticeKind.GROUP_DONE):
        return "pause_after_each_group"
    return "engine"


def phase_of_notice(notice: Mapping[str, Any]) -> Phase | None:
    """The phase a ``phase_started``/``phase_done`` notice names (``"hosts started"``)."""
    words = str(notice.get("message", "")).split()
    try:
        return Phase(words[0]) if words else None
    except ValueError:
        return None


def unit_phases(plan: Mapping[str, Any]) -> dict[str, str]:
    """Unit id -> phase name, from a plan document (``plan --format json``)."""
    return {unit: phase["name"] for phase in plan.get("phases", [])
            for group in phase.get("groups", []) for unit in group.get("units", [])}


def done_detail(notice: Mapping[str, Any], target: str) -> str:
    """What a ``unit_done`` or ``drift`` notice says happened to its unit."""
    if notice.get("kind") == NoticeKind.DRIFT:
        return f"already at {target} (not upgraded by this run)"
    return "skipped" if str(notice.get("message", "")).endswith(" skipped") else "upgraded"
