"""Rebuild an engine from its journal, and find the intents that never got an outcome.

The journal holds two kinds of records: ``action`` (an intent the engine
issued, written before it was executed) and ``event`` (an outcome or an
operator's input, which names the action it answers in ``for``).  Feeding
the events in journal order to a fresh engine reproduces every action; any
difference means the plan or the code changed under a live run and is
reported as a :class:`~upgrade.errors.DeterminismError` (as a workflow
engine reports a non-deterministic replay).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from upgrade.engine.core import Engine
from upgrade.engine.messages import Action, Notice, decode, encode
from upgrade.errors import DeterminismError
from upgrade.journal import Journal


@dataclass
class Replayed:
    """The engine as the journal left it, and what was in flight."""

    engine: Engine
    #: intents (by journal seq) that have no outcome yet, in journal order
    outstanding: dict[int, Action] = field(default_factory=dict)
    last_at: float = 0.0
    records: int = 0


def replay(journal: Journal, engine: Engine) -> Replayed:
    """Feed ``journal``'s events to ``engine``, checking each action it issues again."""
    result = Replayed(engine)
    expected: deque[Action] = deque()
    for record in journal.records():
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
    leftover = [a for a in expected if not isinstance(a, Notice)]
    if leftover:
        # an event and the actions it caused are journaled in one transaction, so the
        # journal can never end between them: the engine decides differently now
        raise DeterminismError(
            f"replay issued {encode(leftover[0])} after the journal's last record, but the "
            "run never journaled it; was the playbook or nsxt-upgrade changed mid-run?"
        )
    return result
