"""The maintenance window around a run: its calendar journaled, read back, and shown.

The calendar (the window, the calendar instant the run's clock started at, and
whether the run pauses when the window closes) is journaled when a run starts
(meta ``window``), so that resume, status, report and replay see the very rules
the run began with.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from upgrade.core.engine.timing import Policy
from upgrade.core.model import Playbook
from upgrade.core.window import Calendar

if TYPE_CHECKING:  # click 8.4 makes ParamType generic; 8.1 (also supported) cannot subscript it
    from upgrade.core.engine.core import Engine
    from upgrade.shell.journal import Journal

    _FloatParam = click.ParamType[float]
else:
    _FloatParam = click.ParamType

META = "window"


def calendar_of(journal: Journal) -> Calendar | None:
    """The calendar a run journaled when it started (None: no window)."""
    text = journal.get_meta(META)
    return Calendar.from_json(json.loads(text)) if text else None


def policy_for(playbook: Playbook, journal: Journal) -> Policy:
    """The engine policy of the run in ``journal``: the playbook's, with its window."""
    policy = Policy.from_playbook(playbook)
    calendar = calendar_of(journal)
    return replace(policy, window=calendar) if calendar is not None else policy


def iso_at(instant: float) -> str:
    """Epoch seconds as ISO-8601 UTC."""
    return dt.datetime.fromtimestamp(instant, dt.UTC).isoformat(timespec="seconds")


def window_doc(engine: Engine, at: float) -> dict[str, Any] | None:
    """``status``'s ``window``: the window, whether it is open at clock time ``at``, when
    it closes or next opens, and whether the run is paused because it closed."""
    gate = engine.window
    if gate is None:
        return None
    cal = gate.calendar
    closes = cal.closes(at)
    opens = cal.next_open(at)
    return {
        "window": cal.spec.describe(),
        "open": closes is not None,
        "closes_at": iso_at(cal.instant(closes)) if closes is not None else None,
        "next_opens_at": iso_at(cal.instant(opens)) if closes is None else None,
        "next_opens_local": cal.local(opens) if closes is None else None,
        "paused_by_window": any("maintenance window is closed" in r
                                for r in engine.stop_reasons),
        "windows_used": len(gate.used),
    }


#: ``--start-at`` range, epoch seconds: 1970-01-01 to before 9000-01-01 UTC, which leaves
#: a thousand years of calendar after the latest start for estimates and clocks to reach
EARLIEST = 0.0
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC).timestamp()


class StartAt(_FloatParam):
    """``--start-at``: an ISO-8601 instant with its UTC offset, as epoch seconds."""

    name = "ISO-8601"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        """``value`` as epoch seconds, or a usage error (exit 2) saying what is accepted."""
        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is not an ISO-8601 date and time; write e.g. "
                      "2026-12-04T20:00:00+01:00", param, ctx)
        if moment.tzinfo is None:
            self.fail(f"{text!r} has no UTC offset; add one, e.g. {text}+01:00 or {text}Z",
                      param, ctx)
        instant = moment.timestamp()
        if not EARLIEST <= instant < LATEST:
            self.fail(f"{text!r} is out of range: give an instant from "
                      f"{iso_at(EARLIEST)[:10]} to before {iso_at(LATEST)[:10]} (the estimate "
                      "and the run's clock count on from it)", param, ctx)
        return instant


START_AT = StartAt()
