"""What the orchestrator's actions do to a simulated world: one function, used by the
simulated adapter and by the pure drivers (estimates, tests)."""

from __future__ import annotations

from upgrade.core.engine.messages import (
    Action,
    Event,
    OpState,
    Poll,
    Polled,
    PollFailed,
    Start,
    Started,
    StartFailed,
)
from upgrade.core.engine.outcome import OpStatus, outcome
from upgrade.core.model import Op
from upgrade.errors import AdapterError, TransientAdapterError
from upgrade.sim.world import World

# enum members read once (a member read off its class is a slow lookup, asked per event)
_OS_DONE, _OS_FAILED, _OS_RUNNING = OpState.DONE, OpState.FAILED, OpState.RUNNING
_O_POSTCHECK, _O_UPGRADE, _O_VERIFY = Op.POSTCHECK, Op.UPGRADE, Op.VERIFY

#: while the manager upgrades, its API is down from this many seconds after the start...
MANAGER_OUTAGE_FROM_S = 60.0
#: ... for this long (the real product: about five minutes)
MANAGER_OUTAGE_S = 300.0


def manager_down(world: World, now: float) -> bool:
    """True while the simulated manager's API is unavailable during its own upgrade."""
    rec = world.ops.get(world.manager_upgrade)
    if rec is None or rec.applied or (rec.end is not None and rec.end <= now):
        return False
    return rec.start + MANAGER_OUTAGE_FROM_S <= now < rec.start + MANAGER_OUTAGE_FROM_S + \
        MANAGER_OUTAGE_S


def answer(world: World, op: Op, unit: str, now: float) -> tuple[OpState, str]:
    """How ``op`` on ``unit`` stands at ``now`` (state and detail), as the simulated manager
    answers.

    Raises :class:`TransientAdapterError` while the manager's API is down.
    """
    if world.ops.get(world.manager_upgrade) is not None and manager_down(world, now):
        raise TransientAdapterError("503 Service Unavailable: the NSX Manager is upgrading")
    if op is _O_VERIFY:
        world.advance(now)
        version = world.units[unit].version
        if version == world.target:
            return _OS_DONE, f"reports {version}"
        return _OS_RUNNING, f"still reports {version}"
    state, detail = world.status(op, unit, now)
    if op is _O_POSTCHECK and state is _OS_DONE:
        problems = world.postcheck_problems()
        if problems:
            return _OS_FAILED, "; ".join(problems)
    return state, detail


def status(world: World, op: Op, unit: str, now: float) -> OpStatus:
    """How ``op`` on ``unit`` stands at ``now``, as the simulated manager answers.

    Raises :class:`TransientAdapterError` while the manager's API is down.
    """
    state, detail = answer(world, op, unit, now)
    return OpStatus(state, detail)


def execute(world: World, action: Action, now: float) -> Event:
    """Run a :class:`Start` or :class:`Poll` against ``world`` at ``now``, as an event
    (:func:`~upgrade.core.engine.outcome.outcome` of what it gave)."""
    kind = type(action)
    if kind is Poll:  # by exact type, the event made directly: a drive runs ~7 per host
        op, unit = action.op, action.unit  # type: ignore[attr-defined]
        try:
            if op is not _O_VERIFY and op is not _O_POSTCHECK and \
                    world.ops.get(world.manager_upgrade) is None:
                # what :func:`answer` says while the manager is not upgrading, one call sooner
                state, detail = world.status(op, unit, now)
            else:
                state, detail = answer(world, op, unit, now)
        except AdapterError as exc:
            return PollFailed(now, op, unit, str(exc))
        return Polled(now, op, unit, state, detail)
    if kind is Start:
        op, unit = action.op, action.unit  # type: ignore[attr-defined]
        try:
            eta = world.start(op, unit, now, action.moves)  # type: ignore[attr-defined]
        except AdapterError as exc:
            return StartFailed(now, op, unit, str(exc),
                               transient=isinstance(exc, TransientAdapterError))
        return Started(now, op, unit, eta)
    assert isinstance(action, Start | Poll)  # a subclass of either
    result: float | OpStatus | AdapterError | None
    try:
        if isinstance(action, Start):
            result = world.start(action.op, action.unit, now, action.moves)
        else:
            result = status(world, action.op, action.unit, now)
    except AdapterError as exc:
        result = exc
    return outcome(action, now, result)
