"""Rebuild an engine from its journal, and find the intents that never got an outcome.

The journal holds two kinds of records: ``action`` (an intent the engine
issued, written before it was executed) and ``event`` (an outcome or an
operator's input, which names the action it answers in ``for``).  Feeding
the events in journal order to a fresh engine reproduces every action; any
difference means the plan or the code changed under a live run and is
reported as a :class:`~upgrade.errors.DeterminismError` (as a workflow
engine reports a non-deterministic replay).

Every so many records, and whenever the run settles, the runner stores a
snapshot of the engine (:meth:`~upgrade.core.engine.core.Engine.snapshot`, with the
intents in flight): :func:`replay` starts from the latest one and reads only
the records after it; :func:`verify` replays the whole history and checks that
every snapshot equals the state replayed up to it.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from upgrade.core.engine import snapshot as snapshots
from upgrade.core.engine.core import Engine
from upgrade.core.engine.messages import Action, Notice, decode, encode
from upgrade.errors import DeterminismError, JournalError
from upgrade.shell.journal import Journal, Record, dump_payload

#: a snapshot after this many records since the last one, and no sooner than the journal
#: doubled since then (and whenever the run settles): see :class:`~upgrade.shell.runner.Runner`
SNAPSHOT_EVERY = 20_000


@dataclass
class Replayed:
    """The engine as the journal left it, and what was in flight."""

    engine: Engine
    #: intents (by journal seq) that have no outcome yet, in journal order
    outstanding: dict[int, Action] = field(default_factory=dict)
    last_at: float = 0.0
    records: int = 0
    #: the seq of the snapshot the replay started from (0: none)
    snapshot_seq: int = 0

    def snapshot(self) -> dict[str, Any]:
        """What :meth:`Journal.add_snapshot` stores: the engine and the intents in flight."""
        return {"engine": self.engine.snapshot(),
                "outstanding": [[seq, encode(a)] for seq, a in self.outstanding.items()],
                "last_at": self.last_at, "records": self.records}


def _restore(result: Replayed, payload: Mapping[str, Any]) -> None:
    snapshots.restore(result.engine, payload["engine"])
    result.outstanding = {int(seq): decode(a) for seq, a in payload["outstanding"]}
    result.last_at = float(payload["last_at"])
    result.records = int(payload["records"])
    if not math.isfinite(result.last_at) or result.records < 0:
        raise ValueError(f"last_at {result.last_at!r}, records {result.records!r}")


def replay(journal: Journal, engine: Engine, *, from_snapshot: bool = True,
           check: Callable[[int, Replayed], None] | None = None) -> Replayed:
    """Feed ``journal``'s events to a fresh ``engine``, checking each action it issues again.

    Starts from the latest snapshot unless ``from_snapshot`` is False; ``check(seq, state)``
    is called after each record (:func:`verify`).
    """
    result = Replayed(engine)
    after = 0
    if from_snapshot:
        for seq, payload in journal.snapshots(last=True):
            engine_state = payload.get("engine")
            if isinstance(engine_state, dict) and snapshots.readable(engine_state):
                try:
                    _restore(result, payload)
                except _DAMAGE as exc:
                    raise JournalError(
                        f"{journal.path}: the snapshot after journal record {seq} is damaged "
                        f"({_what(exc)}): the journal was altered; restore the file from a "
                        "backup (`nsxt-upgrade verify` checks the whole journal)") from None
                after = result.snapshot_seq = seq
    expected: deque[Action] = deque()
    for record in journal.records(after):
        try:
            _feed(record, result, expected, engine)
        except _DAMAGE as exc:
            raise JournalError(
                f"{journal.path}: journal record {record.seq} is damaged ({_what(exc)}): the "
                "journal was altered; restore the file from a backup") from None
        if check is not None and not expected:
            check(record.seq, result)
    leftover = [a for a in expected if not isinstance(a, Notice)]
    if leftover:
        # an event and the actions it caused are journaled in one transaction, so the
        # journal can never end between them: the engine decides differently now
        raise DeterminismError(
            f"replay issued {encode(leftover[0])} after the journal's last record, but the "
            "run never journaled it; was the playbook or nsxt-upgrade changed mid-run?"
        )
    return result


#: what a record or snapshot changed by hand makes the engine's decoding raise
_DAMAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError, LookupError,
           RecursionError)


def _what(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _feed(record: Record, result: Replayed, expected: deque[Action], engine: Engine) -> None:
    """Replay one record: check an action against the one replay issued, or feed an event."""
    result.records += 1
    result.last_at = max(result.last_at, record.at)
    payload = dict(record.payload)
    if record.kind == "action":
        if not expected:
            raise DeterminismError(
                f"journal record {record.seq} holds an action the engine did not issue "
                f"on replay: {payload}; was the playbook or nsxt-upgrade changed mid-run?"
            )
        issued = expected.popleft()
        if encode(issued) != payload:
            raise DeterminismError(
                f"journal record {record.seq}: recorded {payload}, but replay issued "
                f"{encode(issued)}; was the playbook or nsxt-upgrade changed mid-run?"
            )
        if not isinstance(issued, Notice):
            result.outstanding[record.seq] = issued
    elif record.kind == "event":
        answers = payload.pop("for", None)
        if answers is not None:
            result.outstanding.pop(int(answers), None)
        expected.extend(engine.handle(decode(payload)))


def verify(journal: Journal, engine: Engine) -> tuple[int, int]:
    """Replay the whole journal into a fresh ``engine``, checking every snapshot on the way.

    Returns (records, snapshots checked); raises :class:`DeterminismError` naming the first
    record whose replay differs from the journal, or the first snapshot that differs from
    the state replayed up to its record.
    """
    stored = dict(journal.snapshots())
    checked = 0

    def check(seq: int, state: Replayed) -> None:
        nonlocal checked
        if seq not in stored:
            return
        try:
            payload = stored.pop(seq)  # an earlier layout's engine, as this version's
            want = _canonical({**payload, "engine": snapshots.migrate(payload["engine"])})
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise JournalError(f"{journal.path}: the snapshot after journal record {seq} is "
                               f"damaged ({_what(exc)}): the journal was altered; restore "
                               "the file from a backup") from None
        have = _canonical(state.snapshot())
        if want != have:
            raise DeterminismError(
                f"snapshot after journal record {seq} differs from the state replayed up to "
                f"it ({_first_difference(want, have)}); the journal was altered, or "
                "nsxt-upgrade changed mid-run")
        checked += 1

    result = replay(journal, engine, from_snapshot=False, check=check)
    if stored:
        seq = min(stored)
        raise DeterminismError(f"snapshot after journal record {seq} does not fall after a "
                               "complete step of the journal; the journal was altered")
    return result.records, checked


def _canonical(data: Any) -> Any:
    return json.loads(dump_payload(data))


def _first_difference(want: Any, have: Any, path: str = "") -> str:
    if isinstance(want, dict) and isinstance(have, dict):
        for key in sorted(set(want) | set(have)):
            if want.get(key) != have.get(key):
                return _first_difference(want.get(key), have.get(key), f"{path}/{key}")
    elif isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        for index, (a, b) in enumerate(zip(want, have, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{path}/{index}")
    return f"at {path or '/'}: stored {json.dumps(want)[:120]}, replayed {json.dumps(have)[:120]}"
