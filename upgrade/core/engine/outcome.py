"""How an operation stands as the target says (:class:`OpStatus`), and the engine event a
started or polled action turns into (:func:`outcome`): the one vocabulary the adapters, the
simulated world and the engine share.

:class:`OpState` is declared with the events (:class:`~.messages.Polled` carries it) and
offered here too, beside the status that holds it."""

from __future__ import annotations

from dataclasses import dataclass

from upgrade.core.engine.messages import (
    Event,
    OpState,
    Poll,
    Polled,
    PollFailed,
    Start,
    Started,
    StartFailed,
)
from upgrade.errors import AdapterError, TransientAdapterError

__all__ = ["OpState", "OpStatus", "outcome"]


@dataclass(frozen=True, slots=True, init=False)
class OpStatus:
    """How one operation on one unit stands, as the target system says."""

    state: OpState
    detail: str

    def __init__(self, state: OpState | str, detail: str = "") -> None:
        # a plain string is accepted and checked here: ``OpStatus("done")`` reads as well
        # as ``OpStatus(OpState.DONE)``, and an unknown state fails where it is made
        object.__setattr__(self, "state", state if type(state) is OpState else OpState(state))
        object.__setattr__(self, "detail", detail)

    @property
    def begun(self) -> bool:
        """True when the target already runs the operation or has finished it: on
        reconciliation it is followed, not started again."""
        return self.state in (OpState.RUNNING, OpState.DONE)


def outcome(action: Start | Poll, at: float,
            result: float | OpStatus | AdapterError | None) -> Event:
    """The event that reports what running ``action`` gave at ``at``: a start's expected end
    (or None), a poll's :class:`OpStatus`, or the :class:`AdapterError` either raised."""
    if isinstance(action, Start):
        if isinstance(result, AdapterError):
            transient = isinstance(result, TransientAdapterError)
            return StartFailed(at, action.op, action.unit, str(result), transient=transient)
        assert not isinstance(result, OpStatus)
        return Started(at, action.op, action.unit, result)
    if isinstance(result, AdapterError):
        return PollFailed(at, action.op, action.unit, str(result))
    assert isinstance(result, OpStatus)
    return Polled(at, action.op, action.unit, result.state, result.detail)
