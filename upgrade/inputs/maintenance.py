"""Reading the playbook's ``window`` (DESIGN section 4): every mistake is ``FILE:LINE:COL``."""

from __future__ import annotations

from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from upgrade.core.window import DAYS, WindowSpec, parse_time
from upgrade.inputs.yamlio import MapReader, as_str

_KEYS = ("days", "start", "end", "tz")
#: in the IANA database but no place's time: ``Factory`` is the tz project's zone for
#: "time zone not configured" (its abbreviation is ``-00``, file ``factory``)
_NOT_A_PLACE = frozenset({"Factory"})


#: names a zoneinfo directory answers to that are not IANA zones, and what they are
_WHY_NOT = {
    "localtime": " (the machine's own setting, not a zone name)",
    "posixrules": " (a template for POSIX TZ strings, not a zone)",
    "Factory": " (the tz database's placeholder for an unset zone)",
}


@cache
def iana_zone_names() -> frozenset[str]:
    """The zone names of the IANA time zone database (as the ``tzdata`` package ships its
    list), without ``Factory``.

    A system's zoneinfo directory holds more than zones: ``localtime`` (a link to the
    host's own setting, different on every machine), ``posixrules`` (a template for POSIX
    TZ strings) and the ``posix/`` and ``right/`` trees; none of them is an IANA name.
    """
    text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(text.split()) - _NOT_A_PLACE


def read_window(root: MapReader) -> WindowSpec | None:
    """The playbook's maintenance window, or None when it has none."""
    node = root.get("window")
    if node is None or node.value is None:
        return None
    w = root.map("window", _KEYS)
    for key in _KEYS:
        w.require(key)
    days: list[int] = []
    entries = w.list("days", required=True)
    if not entries:
        raise w.at("days").error(f"window.days needs at least one day ({', '.join(DAYS)})")
    for item in entries:
        text = as_str(item, "window.days").strip().lower()
        if text not in DAYS:
            raise item.where.error(f"unknown day {text!r} in window.days: write one of "
                                   f"{', '.join(DAYS)}")
        if DAYS.index(text) not in days:
            days.append(DAYS.index(text))
    times = {}
    for key in ("start", "end"):
        value = w.str(key, required=True)
        assert value is not None
        minutes = parse_time(value)
        if minutes is None:
            raise w.at(key).error(f"window.{key} {value!r} is not a time: write 24-hour "
                                  'HH:MM in quotes, e.g. "01:00" or "22:30"')
        times[key] = minutes
    if times["start"] == times["end"]:
        raise w.at("end").error("window.end equals window.start: a window needs a length "
                                '(an end before the start crosses midnight, e.g. "22:00" '
                                'to "04:00")')
    tz = w.str("tz", required=True)
    assert tz is not None
    try:
        if tz not in iana_zone_names():
            raise ValueError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        why = _WHY_NOT.get(tz, "")
        raise w.at("tz").error(f"unknown time zone {tz!r} in window.tz{why}: write an IANA "
                               'name such as "Europe/Berlin", "America/New_York" or "UTC"'
                               ) from None
    return WindowSpec(tuple(sorted(days)), times["start"], times["end"], tz)
