"""Maintenance windows: a pure calendar (no clock reads) the engine and the estimate share.

A :class:`WindowSpec` is what the playbook says (``window: {days: [sat, sun], start:
"01:00", end: "05:00", tz: "Europe/Berlin"}``): on each listed day a window opens at
``start`` local time and closes at the next ``end`` (on the same day, or the next one
when ``end`` is not later than ``start``: ``22:00``-``04:00`` crosses midnight).  The
*day* is the day the window opens.  Local times are read in ``tz`` with
:mod:`zoneinfo`, so a window over a DST change is as long as the wall clock says
(01:00-05:00 Europe/Berlin lasts 3 hours on the last Sunday of March and 5 on the
last Sunday of October); a local time the change skips is read with the offset
before the change (02:30 on the March change is 03:30 CEST).

A :class:`Calendar` ties a window to a run's clock: clock time ``t`` (seconds) is the
calendar instant ``origin + (t - zero)`` (epoch seconds).  It answers "is it open at
``t``", "open until" and "next opens at", in clock seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """The playbook's ``window``: weekdays (0 = Monday), local start/end minutes, a tz."""

    days: tuple[int, ...]
    start: int  # minutes after local midnight
    end: int
    tz: str

    def describe(self) -> str:
        """``sat, sun 01:00-05:00 Europe/Berlin``."""
        days = ", ".join(DAYS[d] for d in self.days)
        return f"{days} {_hhmm(self.start)}-{_hhmm(self.end)} {self.tz}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_time(text: str) -> int | None:
    """``"HH:MM"`` (24-hour) as minutes after midnight, or None when it is not one."""
    hours, sep, minutes = text.partition(":")
    if not sep or len(minutes) != 2 or not (1 <= len(hours) <= 2) \
            or not (hours + minutes).isdigit() or not hours.isascii() or not minutes.isascii():
        return None
    h, m = int(hours), int(minutes)
    return h * 60 + m if h < 24 and m < 60 else None


def intervals(spec: WindowSpec, instant: float) -> list[tuple[float, float]]:
    """The windows (open, close) in epoch seconds that open from a week before
    ``instant`` to eight days after it, in order, touching ones merged."""
    zone = ZoneInfo(spec.tz)
    today = dt.datetime.fromtimestamp(instant, zone).date()
    out: list[tuple[float, float]] = []
    for offset in range(-8, 9):
        day = today + offset * _DAY
        if day.weekday() not in spec.days:
            continue
        opens = _local(day, spec.start, zone)
        close_day = day if spec.end > spec.start else day + _DAY
        closes = _local(close_day, spec.end, zone)
        if closes <= opens:
            continue  # a window the DST change swallowed whole
        if out and opens <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], closes))
        else:
            out.append((opens, closes))
    return out


def _local(day: dt.date, minutes: int, zone: ZoneInfo) -> float:
    moment = dt.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                         tzinfo=zone)
    return moment.timestamp()


def open_until(spec: WindowSpec, instant: float) -> float | None:
    """When the window open at ``instant`` closes (epoch seconds); None if it is closed."""
    for opens, closes in intervals(spec, instant):
        if opens <= instant < closes:
            return closes
    return None


def next_open(spec: WindowSpec, instant: float) -> float:
    """When the next window opens after ``instant`` (``instant`` itself if open then)."""
    probe = instant
    for _ in range(60):  # a week ahead always holds one (days is never empty)
        for opens, closes in intervals(spec, probe):
            if opens <= instant < closes:
                return instant
            if opens > instant:
                return opens
        probe += 7 * 86400.0
    raise ValueError(f"window {spec.describe()} never opens")


@dataclass(frozen=True, slots=True)
class Calendar:
    """A window on a run's clock: clock time ``t`` is epoch ``origin + t - zero``.

    ``pause``: on the real clock the run pauses when the window closes (an operator
    resumes it, ``resume --wait``); on the virtual clock it waits for the next window.
    """

    spec: WindowSpec
    origin: float
    zero: float = 0.0
    pause: bool = False

    def instant(self, t: float) -> float:
        """Clock time ``t`` as epoch seconds (to the millisecond: a timer set for an
        opening fires at an instant that reads as open, whatever the float rounding)."""
        return round(self.origin + (t - self.zero), 3)

    def clock(self, instant: float) -> float:
        """Epoch seconds as clock time."""
        return instant - self.origin + self.zero

    def is_open(self, t: float) -> bool:
        """True when a window is open at clock time ``t``."""
        return open_until(self.spec, self.instant(t)) is not None

    def next_open(self, t: float) -> float:
        """Clock time the next window opens (``t`` when one is open)."""
        return self.clock(next_open(self.spec, self.instant(t)))

    def closes(self, t: float) -> float | None:
        """Clock time the window open at ``t`` closes; None when closed."""
        end = open_until(self.spec, self.instant(t))
        return None if end is None else self.clock(end)

    def local(self, t: float) -> str:
        """Clock time ``t`` in the window's time zone: ``Sat 2026-12-05 01:00 CET``."""
        moment = dt.datetime.fromtimestamp(self.instant(t), ZoneInfo(self.spec.tz))
        return moment.strftime("%a %Y-%m-%d %H:%M %Z")

    def to_json(self) -> dict[str, object]:
        """What :meth:`from_json` reads (journaled with the run)."""
        return {"days": list(self.spec.days), "start": self.spec.start, "end": self.spec.end,
                "tz": self.spec.tz, "origin": self.origin, "zero": self.zero,
                "pause": self.pause}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Calendar:
        """The calendar :meth:`to_json` wrote."""
        days = data["days"]
        assert isinstance(days, list)
        spec = WindowSpec(tuple(int(d) for d in days), int(str(data["start"])),
                          int(str(data["end"])), str(data["tz"]))
        return cls(spec, float(str(data["origin"])), float(str(data["zero"])),
                   bool(data["pause"]))
