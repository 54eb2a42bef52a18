"""What crosses Temporal, and the status document of a site: plain data, pure functions.

The workflow's input carries the plan, the inventory and the policy (frozen dataclasses of
strings, numbers, enums and tuples, which Temporal's JSON converter round-trips), never a
credential.  An activity gets a :class:`SiteRef` and one engine action as
:func:`~upgrade.core.engine.messages.encode` made it, and answers with the encoded event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Inventory
from upgrade.core.plan import Plan

#: the activity every adapter start and poll goes through (one call: a round of them)
OPERATE = "nsxt-upgrade.step"
#: the workflow type of one site's upgrade
WORKFLOW = "NsxtSiteUpgrade"
#: the pause reason ``fleet pause`` sends; ``fleet run`` starts no new site after it
FLEET_PAUSE = "fleet pause"
_SYSTEM = {"precheck", "bundle", "coordinator", "postcheck"}


@dataclass(frozen=True)
class SiteRef:
    """What an activity needs to reach a site: files, adapter kind and the site's clock."""

    fleet: str
    name: str
    playbook: str
    state_dir: str
    adapter: str
    #: the wall time (epoch seconds) at which the site's clock read 0
    origin: float
    speed: float


@dataclass(frozen=True)
class SiteInput:
    """The site workflow's input."""

    fleet: str
    name: str
    playbook: str
    state_dir: str
    adapter: str
    speed: float
    #: the plan, inventory and policy as :func:`upgrade.fleet.inputs.pack` wrote them
    inputs: str
    #: the SHA-256 of ``inputs``
    digest: str
    activity_timeout_s: float = 120.0
    activity_attempts: int = 20
    #: a run continues as new once its history holds this many events
    history_limit: int = 1000
    #: the longest a call waits for a change, in real seconds (then it returns empty)
    watch_s: float = 30.0


    def engine_inputs(self) -> tuple[Plan, Inventory, Policy]:
        """The plan, the inventory and the policy (decoded once per process)."""
        from upgrade.fleet.inputs import unpack

        return unpack(self.inputs, self.digest)

    def fresh_engine(self) -> Engine:
        """A fresh engine over the inputs, kept per process: the baseline of snapshots
        (read only; never feed it)."""
        from upgrade.fleet.inputs import pristine

        return pristine(self.inputs, self.digest)


@dataclass(frozen=True)
class Carry:
    """What a site workflow run hands to the next one (continue-as-new, ``fleet resume``).

    The engine's snapshot and its outstanding actions at a safe point (no activity in
    flight), the site clock, the pause state and the journal's round counter.
    """

    snapshot: dict[str, Any]
    outstanding: list[dict[str, Any]]
    origin: float
    last: float
    round: int
    #: events fed since the last call, not journaled yet
    fed: list[dict[str, Any]] = field(default_factory=list)
    pause: str | None = None
    pause_sent: bool = False
    #: a new run after a dead one: ask the target about these starts (keys) first, and
    #: about every unit not begun (``Resumed`` is fed first)
    reconcile: list[str] = field(default_factory=list)
    recovered: bool = False
    retry_failed: bool = False
    runs: int = 1


@dataclass(frozen=True)
class Call:
    """One round of adapter work: the activity's input.

    ``fed`` are the events the workflow fed since the previous call (the activity journals
    them first, in the site's state dir); then the starts run, then the polls are watched
    until one of them learns something or the site clock reaches ``until``.
    """

    round: int
    fed: list[dict[str, Any]]
    starts: list[dict[str, Any]]
    #: each {"action": encoded Poll, "seen": what the last poll said or None, "deadline"}
    polls: list[dict[str, Any]]
    until: float
    #: the poll interval of a real manager (site seconds)
    interval: float
    reconcile: list[str] = field(default_factory=list)
    observe: list[str] = field(default_factory=list)
    target: str = ""


@dataclass(frozen=True)
class CallResult:
    """What a call learnt: events in the order they happened, and when each unchanged poll
    is due again (``[key, at]``)."""

    events: list[dict[str, Any]]
    later: list[list[Any]]


def site_status(engine: Engine, at: float, pause: str | None = None) -> dict[str, Any]:
    """The site's status document: DESIGN's ``status --format json`` fields, from the engine."""
    units = [i for i in engine.items.values() if i.id not in _SYSTEM]
    state = {RunState.DONE: "done", RunState.FAILED: "failed",
             RunState.PAUSED: "paused"}.get(engine.state, "running")
    return {
        "state": state,
        "phase": engine.phase.value,
        "units": {
            "total": len(units),
            "done": sum(1 for i in units if i.state is UnitState.DONE),
            "failed": [i.id for i in units if i.state is UnitState.FAILED],
            "in_progress": [i.id for i in units if i.active],
            "skipped": [i.id for i in units if i.state is UnitState.SKIPPED],
        },
        "reasons": list(engine.stop_reasons),
        "pause_requested": pause,
        "clock_s": round(at, 3),
    }
