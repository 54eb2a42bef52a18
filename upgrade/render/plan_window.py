"""The plan's finish on the calendar, across maintenance windows (``plan --start-at``)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from upgrade.core.plan import Plan


def _zone(plan: Plan) -> dt.tzinfo:
    return ZoneInfo(plan.window.tz) if plan.window is not None else dt.UTC


def finish_json(plan: Plan) -> dict[str, Any]:
    """``estimated_start_at``, ``estimated_finish_at``, ``window`` and ``windows`` for
    ``plan --format json`` (only when the plan was estimated on the calendar)."""
    if plan.start_at is None:
        return {}
    zone = _zone(plan)
    start = dt.datetime.fromtimestamp(plan.start_at, zone)
    finish = dt.datetime.fromtimestamp(plan.start_at + plan.estimated_duration_s, zone)
    out: dict[str, Any] = {
        "estimated_start_at": start.isoformat(timespec="seconds"),
        "estimated_finish_at": finish.isoformat(timespec="seconds"),
    }
    if plan.window is not None:
        out["window"] = plan.window.describe()
        out["windows"] = plan.windows
    return out


def finish_text(plan: Plan) -> str:
    """``finishes Sun 03:40, in 3 windows (2026-12-06 Europe/Berlin)``, or ``""``."""
    if plan.start_at is None:
        return ""
    zone = _zone(plan)
    finish = dt.datetime.fromtimestamp(plan.start_at + plan.estimated_duration_s, zone)
    where = plan.window.tz if plan.window is not None else "UTC"
    text = f"finishes {finish:%a %H:%M}"
    if plan.window is not None:
        count = plan.windows
        text += f", in {count} window{'s' if count != 1 else ''}"
    return f"{text} ({finish:%Y-%m-%d} {where})"
