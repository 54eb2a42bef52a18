"""The canary (``canary: {hosts: N, then: pause}`` or ``{hosts: N, watch_s: S}``).

Pure, like the rest of the engine.  The first N hosts of the plan (in plan
order; units already at the target are not hosts of the plan) are upgraded
alone: no other host starts until every one of them is done or skipped.  Then,
with ``then: pause``, the run pauses (a ``canary_done`` notice beside the stop)
until ``resume``; with ``watch_s`` the engine sets a timer S seconds ahead and
the hosts phase goes on when it fires, if no host failed meanwhile (else the
run stops as ``on_error`` says).  When the canary is every host of the plan
there is nothing to hold back: no pause, no watch.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from upgrade.core.engine.items import Item
from upgrade.core.engine.messages import Action, Notice, NoticeKind, Wake
from upgrade.core.model import Canary
from upgrade.core.plan import Phase

#: the token of the watch timer (:class:`~upgrade.core.engine.messages.Wake`)
WATCH_TOKEN = "canary|watch"


class Stage(Enum):
    """Where the canary stands."""

    RUNNING = "running"  #: only the canary hosts may start
    WATCHING = "watching"  #: the canary is done; the watch timer runs; nothing else starts
    DONE = "done"  #: every host may start (also: no canary asked for)


# members read off their class once: that is a slow lookup, and the scheduler asks per event
_HOSTS, _RUNNING, _WATCHING, _DONE = Phase.HOSTS, Stage.RUNNING, Stage.WATCHING, Stage.DONE


class CanaryGate:
    """Holds the hosts beyond the canary back until the canary is done (and watched)."""

    __slots__ = ("canary", "hosts", "ids", "members", "stage", "watch_end")
    #: fields that change as the run goes (a snapshot keeps these; the rest is the plan's)
    STATE: tuple[str, ...] = ("stage", "watch_end")

    def __init__(self, canary: Canary | None, items: Iterable[Item]) -> None:
        self.canary = canary
        self.hosts = [i for i in items if i.phase is Phase.HOSTS]
        count = canary.hosts if canary is not None else 0
        #: the canary hosts' items and ids, in plan order
        self.members = self.hosts[:count]
        self.ids = tuple(i.id for i in self.members)
        self.stage = Stage.RUNNING if self.ids else Stage.DONE
        self.watch_end: float | None = None

    @property
    def watching(self) -> bool:
        """True while the watch timer runs."""
        return self.stage is _WATCHING

    def allows(self, item: Item) -> bool:
        """May ``item`` start now?"""
        return self.stage is _DONE or item.phase is not _HOSTS or item.id in self.ids

    def finished(self) -> bool:
        """True when the canary runs and every canary host is done or skipped."""
        if self.stage is not _RUNNING:
            return False
        return all(i.terminal for i in self.members)

    def others_left(self) -> bool:
        """True when a host beyond the canary is still to be upgraded."""
        return any(not i.terminal for i in self.hosts if i.id not in self.ids)

    def summary(self) -> str:
        """``esx-01, esx-02``: the canary hosts."""
        return ", ".join(self.ids)

    def complete(self, now: float, out: list[Action]) -> str:
        """Every canary host is done: say so, start the watch if any; the reason to pause
        (empty: no pause)."""
        assert self.canary is not None
        hosts = self.summary()
        if not self.others_left():
            self.stage = Stage.DONE
            out.append(Notice(NoticeKind.CANARY_DONE,
                              f"canary done: {hosts}; no other host is left"))
            return ""
        if self.canary.watch_s is None:
            self.stage = Stage.DONE
            out.append(Notice(NoticeKind.CANARY_DONE, f"canary done: {hosts} upgraded"))
            return f"canary done: resume to continue (canary hosts: {hosts})"
        self.stage = Stage.WATCHING
        self.watch_end = now + self.canary.watch_s
        out.append(Notice(NoticeKind.CANARY_DONE, f"canary done: {hosts} upgraded; watching "
                          f"{self.canary.watch_s}s before the other hosts start"))
        out.append(Wake(self.watch_end, WATCH_TOKEN))
        return ""

    def end_watch(self) -> bool:
        """The watch timer fired: True if it was watching (the other hosts may start now)."""
        if not self.watching:
            return False
        self.stage = Stage.DONE
        return True

    def rearm(self, now: float, out: list[Action]) -> None:
        """On resume: set the watch's timer again if a watch is still on."""
        if self.watching and self.watch_end is not None:
            out.append(Wake(max(now, self.watch_end), WATCH_TOKEN))
