"""Events (inputs) and actions (outputs) of the engine: small frozen dataclasses.

They are plain data (strings, numbers, tuples) so the journal can store them
and a durable-execution history could carry them.  :func:`encode` and
:func:`decode` turn them into JSON-ready dicts and back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from upgrade.core.model import Op


class OpState(StrEnum):
    """How an operation stands, as the target says: the one vocabulary the adapters, the
    simulated world and the engine share (a member is its string in JSON)."""

    NOT_STARTED = "not_started"  #: the target knows of no such operation (a start was lost)
    RUNNING = "running"  #: under way
    DONE = "done"  #: ended well
    FAILED = "failed"  #: ended badly


class NoticeKind(StrEnum):
    """What a :class:`Notice` tells (journaled as its string)."""

    PHASE_STARTED = "phase_started"  #: a phase began ("hosts started")
    PHASE_DONE = "phase_done"  #: a phase ended ("hosts done")
    UNIT_DONE = "unit_done"  #: a unit was upgraded (or skipped by an operator)
    UNIT_FAILED = "unit_failed"  #: a unit's operation failed
    GROUP_DONE = "group_done"  #: every unit of a host group is done
    RETRY = "retry"  #: a start is retried after a transient failure, or an operator retries
    WITHIN_BUDGET = "within_budget"  #: a failed host is within the failure budget
    DRIFT = "drift"  #: a unit already reports the target though this run did not upgrade it
    STOPPING = "stopping"  #: a pause or abort was asked: in-flight work drains
    CONTINUING = "continuing"  #: a pending pause became moot (every host group is done)
    PAUSED = "paused"  #: the run settled, waiting for an operator
    FAILED = "failed"  #: the run settled as failed (on_error: abort)
    DONE = "done"  #: the upgrade is complete
    RESUMED = "resumed"  #: an operator resumed the run
    CANARY_DONE = "canary_done"  #: the canary hosts are upgraded
    CANARY_WATCHED = "canary_watched"  #: the canary's watch ended without a failure
    WINDOW_CLOSED = "window_closed"  #: the maintenance window closed: nothing new starts
    WINDOW_OPENED = "window_opened"  #: the maintenance window is open again


class Action:
    """Something the engine asks the runner to do."""

    __slots__ = ()


class Event:
    """Something that happened, fed to the engine; ``at`` is the clock time it happened."""

    __slots__ = ()
    at: float


@dataclass(slots=True, unsafe_hash=True)  # not frozen: made ~700,000 times by a 100k-host estimate
class Start(Action):
    """Start ``op`` on ``unit``; ``moves`` are (vm, destination host) for evacuations."""

    op: Op
    unit: str
    attempt: int
    moves: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True, unsafe_hash=True)  # not frozen: made ~700,000 times by a 100k-host estimate
class Poll(Action):
    """At clock time ``at``, ask how ``op`` on ``unit`` stands."""

    op: Op
    unit: str
    at: float


@dataclass(frozen=True, slots=True)
class Wake(Action):
    """Feed :class:`TimerFired` with ``token`` back at clock time ``at`` (retry backoff)."""

    at: float
    token: str


@dataclass(frozen=True, slots=True)
class Notice(Action):
    """Nothing to execute: tells the runner (and the operator) what the engine decided."""

    kind: NoticeKind
    message: str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Begin(Event):
    """The run starts."""

    at: float


@dataclass(slots=True, unsafe_hash=True)  # not frozen: made ~700,000 times by a 100k-host estimate
class Started(Event):
    """The adapter accepted the start of ``op``; ``eta`` is when it expects the end, if known."""

    at: float
    op: Op
    unit: str
    eta: float | None = None


@dataclass(frozen=True, slots=True)
class StartFailed(Event):
    """The adapter refused or could not start ``op``."""

    at: float
    op: Op
    unit: str
    error: str
    transient: bool


@dataclass(slots=True, unsafe_hash=True)  # not frozen: made ~700,000 times by a 100k-host estimate
class Polled(Event):
    """How ``op`` on ``unit`` stood."""

    at: float
    op: Op
    unit: str
    state: OpState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PollFailed(Event):
    """The adapter could not say (connection refused, 5xx, timeout)."""

    at: float
    op: Op
    unit: str
    error: str


@dataclass(frozen=True, slots=True)
class TimerFired(Event):
    """A :class:`Wake` came due."""

    at: float
    token: str


@dataclass(frozen=True, slots=True)
class PauseRequested(Event):
    """An operator asked for a pause (``pause`` command, SIGINT, SIGTERM)."""

    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Resumed(Event):
    """An operator resumed a paused, failed or interrupted run."""

    at: float
    retry_failed: bool = False
    skip: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Observed(Event):
    """A unit was seen at ``version`` before this run upgraded it (drift, e.g. by hand)."""

    at: float
    unit: str
    version: str


_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (Start, Poll, Wake, Notice, Begin, Started, StartFailed, Polled, PollFailed,
                TimerFired, PauseRequested, Resumed, Observed)
}


#: message class -> its field names, in declaration order
_FIELDS: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _TYPES.values()
}
#: field value types :func:`_plain` returns as they are
_SCALARS = frozenset({str, int, float, bool, type(None)})


def encode(message: Action | Event) -> dict[str, Any]:
    """A JSON-ready dict: ``{"type": name, **fields}``."""
    cls = type(message)
    out: dict[str, Any] = {"type": cls.__name__}
    names = _FIELDS.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(message))  # type: ignore[arg-type]
    for name in names:
        value = getattr(message, name)
        out[name] = value if type(value) in _SCALARS else _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def decode(data: dict[str, Any]) -> Any:
    """The message :func:`encode` made (lists become tuples again)."""
    fields = dict(data)
    cls = _TYPES[fields.pop("type")]
    if "op" in fields:
        fields["op"] = Op(fields["op"])
    if cls is Polled:
        fields["state"] = OpState(fields["state"])
    if cls is Notice:
        fields["kind"] = NoticeKind(fields["kind"])
    if "moves" in fields:
        fields["moves"] = tuple(tuple(m) for m in fields["moves"])
    if "skip" in fields:
        fields["skip"] = tuple(fields["skip"])
    return cls(**fields)
