"""What the orchestrator's actions do to a simulated world: one function, used by the
simulated adapter and by the pure drivers (estimates, tests)."""

from __future__ import annotations

from upgrade.engine.messages import Action, Event, Poll, PollFailed, Polled, Start, Started
from upgrade.engine.messages import StartFailed
from upgrade.errors import AdapterError, TransientAdapterError
from upgrade.model import Op, UnitKind
from upgrade.sim.world import World

#: while the manager upgrades, its API is down from this many seconds after the start...
MANAGER_OUTAGE_FROM_S = 60.0
#: ... for this long (the real product: about five minutes)
MANAGER_OUTAGE_S = 300.0


def manager_down(world: World, now: float) -> bool:
    """True while the simulated manager's API is unavailable during its own upgrade."""
    rec = world.ops.get((world.inventory.manager, Op.UPGRADE.value))
    if rec is None or rec.applied or (rec.end is not None and rec.end <= now):
        return False
    return rec.start + MANAGER_OUTAGE_FROM_S <= now < rec.start + MANAGER_OUTAGE_FROM_S + \
        MANAGER_OUTAGE_S


def start(world: World, action: Start, now: float) -> Event:
    """Start an operation; a refusal becomes :class:`StartFailed`."""
    try:
        eta = world.start(action.op, action.unit, now, action.moves)
    except TransientAdapterError as exc:
        return StartFailed(now, action.op, action.unit, str(exc), transient=True)
    except AdapterError as exc:
        return StartFailed(now, action.op, action.unit, str(exc), transient=False)
    return Started(now, action.op, action.unit, eta)


def poll(world: World, action: Poll, now: float) -> Event:
    """Ask how an operation stands, as the adapter would."""
    if manager_down(world, now):
        return PollFailed(now, action.op, action.unit, "503 Service Unavailable: the NSX "
                          "Manager is upgrading")
    if action.op is Op.VERIFY:
        world.advance(now)
        unit = world.units[action.unit]
        if unit.version == world.target:
            return Polled(now, action.op, action.unit, "done", f"reports {unit.version}")
        return Polled(now, action.op, action.unit, "running", f"still reports {unit.version}")
    state, detail = world.status(action.op, action.unit, now)
    if action.op is Op.POSTCHECK and state == "done":
        problems = world.postcheck_problems()
        if problems:
            return Polled(now, action.op, action.unit, "failed", "; ".join(problems))
    return Polled(now, action.op, action.unit, state, detail)


def execute(world: World, action: Action, now: float) -> Event:
    """Run a :class:`Start` or :class:`Poll` against ``world`` at ``now``."""
    if isinstance(action, Start):
        return start(world, action, now)
    assert isinstance(action, Poll)
    return poll(world, action, now)


def unit_kind(world: World, unit: str) -> UnitKind:
    """The kind of ``unit``."""
    return world.units[unit].kind
