"""The engine's maintenance-window rule: no unit starts while the window is closed.

Pure: the engine asks at each scheduling step, with its own notion of now (the
last event's ``at``).  Only the units' phases are gated (hosts, edges,
controllers, manager): the pre-check, the bundle upload, the coordinator's own
upgrade and the post-check change no data plane and run at any time.

A unit may *start* whenever a window is open, even if its expected duration
runs past the window's end: what is in flight when the window closes finishes
(drains), and nothing new starts after the end.  Then

* on the virtual clock (``Calendar.pause`` false) the engine asks for a timer
  (:class:`~upgrade.core.engine.messages.Wake`) at the next opening: simulated time
  jumps there and the run goes on, so a rehearsal spans nights;
* on the real clock it asks for a pause (reason: the window closed, and when the
  next one opens); ``resume --wait`` sleeps until then.

What an operator asks on ``resume`` is not held back: ``--skip`` of a host in
maintenance takes it out of maintenance, and ``--retry-failed`` of a host that failed
in maintenance goes on with it at once (it is in flight, holding its slot); a failed
unit that holds nothing waits for the window like any other.

Notices ``window_closed`` (when the engine first finds the window closed with
units waiting) and ``window_opened`` (when it finds it open again) are journaled
like any other, so the report and ``--events`` show them.
"""

from __future__ import annotations

from collections.abc import Callable

from upgrade.core.engine.items import Group
from upgrade.core.engine.messages import Action, Notice, NoticeKind, Wake
from upgrade.core.plan import Phase
from upgrade.core.window import Calendar

GATED = (Phase.HOSTS, Phase.EDGES, Phase.CONTROLLERS, Phase.MANAGER)
#: the token of the timer that wakes the engine when a window opens
TOKEN = "window|open"


class WindowGate:
    """Remembers what the engine said about the window, so it says it once."""

    #: fields that change as the run goes (a snapshot keeps these; the calendar is the plan's)
    STATE: tuple[str, ...] = ("shut", "waking", "asked", "used")

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.shut = False  # said window_closed, not yet window_opened
        self.waking = False  # a Wake for the next opening is out
        self.asked = False  # asked for a pause since the last resume
        #: clock times the windows in which units started close (``plan``: "in N windows")
        self.used: list[float] = []

    def resumed(self) -> None:
        """An operator resumed: a closed window asks for a pause (or a timer) again (a
        timer out before the pause may be lost with the process that set it)."""
        self.asked = False
        self.waking = False

    def blocks(self, phase: Phase, groups: list[Group], now: float, out: list[Action],
               stop: Callable[[str], None]) -> bool:
        """True when nothing may start in ``phase`` at ``now``; says so once in ``out``.

        ``stop(reason)`` asks the engine for a pause (real clock).
        """
        if phase not in GATED or not any(g.startable() for g in groups):
            return False
        cal = self.calendar
        if cal.is_open(now):
            self.waking = False
            if self.shut:
                self.shut = False
                closes = cal.closes(now)
                out.append(Notice(NoticeKind.WINDOW_OPENED, "maintenance window open until "
                                  f"{cal.local(closes if closes is not None else now)}"))
            return False
        opens = cal.next_open(now)
        if not self.shut or (cal.pause and not self.asked):
            # on the real clock said again with each pause it asks for (after a resume)
            self.shut = True
            out.append(Notice(NoticeKind.WINDOW_CLOSED, "maintenance window closed "
                              f"({cal.spec.describe()}); the next opens "
                              f"{cal.local(opens)}"))
        if cal.pause:
            if not self.asked:
                self.asked = True
                stop(f"the maintenance window is closed; the next opens {cal.local(opens)} "
                     "(`nsxt-upgrade resume --wait` sleeps until then)")
        elif not self.waking:
            self.waking = True
            out.append(Wake(opens, TOKEN))
        return True

    def started(self, now: float) -> None:
        """A unit started at ``now``: count the window it started in."""
        closes = self.calendar.closes(now)
        if closes is not None and (not self.used or self.used[-1] != closes):
            self.used.append(closes)
