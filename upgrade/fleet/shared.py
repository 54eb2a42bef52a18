"""What crosses Temporal, and the status document of a site: plain data, pure functions.

The workflow's input carries the plan, the inventory and the policy (frozen dataclasses of
strings, numbers, enums and tuples, which Temporal's JSON converter round-trips), never a
credential.  An activity gets a :class:`SiteRef` and one engine action as
:func:`~upgrade.core.engine.messages.encode` made it, and answers with the encoded event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Inventory
from upgrade.core.plan import Plan

#: the activity every adapter start and poll goes through
OPERATE = "nsxt-upgrade.operate"
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
    plan: Plan
    inventory: Inventory
    policy: Policy
    activity_timeout_s: float = 120.0
    activity_attempts: int = 20


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
