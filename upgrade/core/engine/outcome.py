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

    def __init__(self, state: OpState, detail: str = "") -> None:
        # a member only: a plain word ("done", or a target's "IN_PROGRESS") is read into a
        # member where the answer is read (:mod:`upgrade.adapters.status_words`), so one
        # that reaches here is a mistake, refused where it is made
        if type(state) is not OpState:
            raise TypeError(f"OpStatus needs an OpState member, not {state!r}")
        object.__setattr__(self, "state", state)
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
