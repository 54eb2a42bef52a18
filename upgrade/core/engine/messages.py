"""Events (inputs) and actions (outputs) of the engine: small frozen dataclasses.

They are plain data (strings, numbers, tuples) so the journal can store them
and a durable-execution history could carry them.  :func:`encode` and
:func:`decode` turn them into JSON-ready dicts and back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from upgrade.core.model import Op


class Action:
    """Something the engine asks the runner to do."""

    __slots__ = ()


class Event:
    """Something that happened, fed to the engine; ``at`` is the clock time it happened."""

    __slots__ = ()
    at: float


@dataclass(frozen=True, slots=True)
class Start(Action):
    """Start ``op`` on ``unit``; ``moves`` are (vm, destination host) for evacuations."""

    op: Op
    unit: str
    attempt: int
    moves: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
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

    kind: str
    message: str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Begin(Event):
    """The run starts."""

    at: float


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Polled(Event):
    """How ``op`` on ``unit`` stood: not_started, running, done or failed."""

    at: float
    op: Op
    unit: str
    state: str
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


def encode(message: Action | Event) -> dict[str, Any]:
    """A JSON-ready dict: ``{"type": name, **fields}``."""
    out: dict[str, Any] = {"type": type(message).__name__}
    for f in dataclasses.fields(message):  # type: ignore[arg-type]
        out[f.name] = _plain(getattr(message, f.name))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Op):
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
    if "moves" in fields:
        fields["moves"] = tuple(tuple(m) for m in fields["moves"])
    if "skip" in fields:
        fields["skip"] = tuple(fields["skip"])
    return cls(**fields)
