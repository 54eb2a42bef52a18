"""The adapter protocol: start an operation, ask how it stands, close.

DESIGN lists named operations (``upload_bundle``, ``enter_maintenance``, …).
Every one of them is *start + poll* addressed by unit id, so the protocol
takes the operation as data (:class:`~upgrade.model.Op`) instead: one
``start`` and one ``status``.  That keeps the runner's reconciliation, the
journal and a future Temporal activity uniform over all operations; each
adapter dispatches on the ``Op`` internally.

Errors: raise :class:`~upgrade.errors.TransientAdapterError` for what may go
away on its own (refused for now, 5xx, connection refused, time-outs) and
:class:`~upgrade.errors.AdapterError` for the rest, translated at the boundary
with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from upgrade.engine.messages import (
    Event,
    Poll,
    Polled,
    PollFailed,
    Start,
    Started,
    StartFailed,
)
from upgrade.errors import AdapterError, TransientAdapterError
from upgrade.model import Inventory, Op

OpState = Literal["not_started", "running", "done", "failed"]


@dataclass(frozen=True, slots=True)
class OpStatus:
    """How one operation on one unit stands, as the target system says."""

    state: OpState
    detail: str = ""


class Adapter(Protocol):
    """What the runner needs from a target system."""

    async def inventory(self) -> Inventory:
        """What the target holds: units, clusters, VMs, versions."""
        ...

    async def start(
        self, op: Op, unit: str, moves: tuple[tuple[str, str], ...] = ()
    ) -> float | None:
        """Start ``op`` on ``unit`` (idempotently); return the expected end in clock time."""
        ...

    async def status(self, op: Op, unit: str) -> OpStatus:
        """How ``op`` on ``unit`` stands now; derived from the target, never cached."""
        ...

    async def unit_version(self, unit: str) -> str:
        """The version ``unit`` reports now."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


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
