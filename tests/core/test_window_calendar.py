"""The pure maintenance-window calendar and the engine's window rule (hypothesis).

No files, no clock: the calendar maps instants to "open until" / "next opens", DST
changes included; the engine, driven on the virtual clock against the in-memory world,
never starts a unit while the window is closed and still finishes every run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim_helpers import MAX_STEPS, Case, Run, cases
from upgrade.core.engine.core import Engine
from upgrade.core.engine.gate import GATED
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import Resumed
from upgrade.core.engine.timing import Policy
from upgrade.core.plan import Phase
from upgrade.core.window import Calendar, WindowSpec, next_open, open_until, parse_time
from upgrade.sim.drive import drive
from upgrade.sim.estimate import estimate
from upgrade.sim.world import World

BERLIN = ZoneInfo("Europe/Berlin")
SAT_SUN_1_5 = WindowSpec((5, 6), 60, 300, "Europe/Berlin")


def _at(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def _local(instant: float, zone: ZoneInfo = BERLIN) -> str:
    return dt.datetime.fromtimestamp(instant, zone).isoformat(timespec="minutes")


def test_parse_time_accepts_hh_mm_only() -> None:
    assert parse_time("01:00") == 60
    assert parse_time("23:59") == 23 * 60 + 59
    assert parse_time("7:05") == 425
    for bad in ("24:00", "12:60", "1", "01:0", "ab:cd", "01:00:00", "",
                "\uff11\uff12:\uff10\uff10"):
        assert parse_time(bad) is None, bad


def test_open_until_and_next_open_on_a_plain_weekend() -> None:
    friday_evening = _at("2026-12-04T20:00:00+01:00")
    assert open_until(SAT_SUN_1_5, friday_evening) is None
    opens = next_open(SAT_SUN_1_5, friday_evening)
    assert _local(opens) == "2026-12-05T01:00+01:00"
    closes = open_until(SAT_SUN_1_5, opens)
    assert closes is not None and _local(closes) == "2026-12-05T05:00+01:00"
    # the end is exclusive; then Sunday's window is next, then the next Saturday's
    assert open_until(SAT_SUN_1_5, closes) is None
    assert _local(next_open(SAT_SUN_1_5, closes)) == "2026-12-06T01:00+01:00"
    sunday_end = _at("2026-12-06T05:00:00+01:00")
    assert _local(next_open(SAT_SUN_1_5, sunday_end)) == "2026-12-12T01:00+01:00"


def test_dst_spring_forward_inside_the_window_makes_it_three_hours() -> None:
    # Europe/Berlin: 2027-03-28 02:00 CET -> 03:00 CEST, inside 01:00-05:00
    sunday = _at("2027-03-28T01:30:00+01:00")
    opens = next_open(SAT_SUN_1_5, sunday)
    closes = open_until(SAT_SUN_1_5, sunday)
    assert _local(opens) == _local(sunday)  # open now
    assert closes is not None
    assert _local(closes) == "2027-03-28T05:00+02:00"
    assert closes - _at("2027-03-28T01:00:00+01:00") == 3 * 3600


def test_dst_fall_back_inside_the_window_makes_it_five_hours() -> None:
    # Europe/Berlin: 2026-10-25 03:00 CEST -> 02:00 CET, inside 01:00-05:00
    opens = next_open(SAT_SUN_1_5, _at("2026-10-24T23:00:00+02:00"))
    assert _local(opens) == "2026-10-25T01:00+02:00"
    closes = open_until(SAT_SUN_1_5, opens)
    assert closes is not None and _local(closes) == "2026-10-25T05:00+01:00"
    assert closes - opens == 5 * 3600
    # the repeated hour 02:00-03:00 is open both times round
    assert open_until(SAT_SUN_1_5, _at("2026-10-25T02:30:00+02:00")) == closes
    assert open_until(SAT_SUN_1_5, _at("2026-10-25T02:30:00+01:00")) == closes


def test_a_window_crossing_midnight_belongs_to_the_day_it_opens() -> None:
    nights = WindowSpec((4,), 22 * 60, 4 * 60, "UTC")  # fri 22:00 - sat 04:00
    friday_noon = _at("2026-12-04T12:00:00+00:00")
    opens = next_open(nights, friday_noon)
    assert _local(opens, ZoneInfo("UTC")) == "2026-12-04T22:00+00:00"
    saturday_3am = _at("2026-12-05T03:00:00+00:00")
    closes = open_until(nights, saturday_3am)
    assert closes is not None and _local(closes, ZoneInfo("UTC")) == "2026-12-05T04:00+00:00"
    assert open_until(nights, _at("2026-12-06T03:00:00+00:00")) is None  # sunday: not listed


def test_calendar_maps_clock_seconds_to_the_calendar() -> None:
    origin = _at("2026-12-04T20:00:00+01:00")
    cal = Calendar(SAT_SUN_1_5, origin, zero=100.0)
    assert not cal.is_open(100.0)
    assert cal.next_open(100.0) == 100.0 + 5 * 3600
    assert cal.is_open(100.0 + 5 * 3600)
    assert cal.closes(100.0 + 5 * 3600) == 100.0 + 9 * 3600
    assert cal.local(100.0 + 5 * 3600) == "Sat 2026-12-05 01:00 CET"
    assert Calendar.from_json(cal.to_json()) == cal


@st.composite
def windows(draw: st.DrawFn) -> WindowSpec:
    """A random window: any days, 30 minutes to 6 hours, maybe across midnight, in a
    zone with DST changes or without."""
    days = tuple(sorted(draw(st.sets(st.integers(0, 6), min_size=1, max_size=3))))
    start = draw(st.integers(0, 47)) * 30
    length = draw(st.integers(1, 12)) * 30
    tz = draw(st.sampled_from(["Europe/Berlin", "America/New_York", "UTC",
                               "Australia/Sydney"]))
    return WindowSpec(days, start, (start + length) % 1440, tz)


SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(cases(), windows(), st.integers(0, 365 * 2), st.integers(0, 23))
def test_no_unit_starts_outside_the_window(case: Case, spec: WindowSpec, day: int,
                                           hour: int) -> None:
    """On the virtual clock the engine jumps from window to window: every operation of a
    unit phase starts while a window is open (in-flight work may end after it closes),
    the run ends done, and the estimate (windows included) equals the run's time."""
    origin = _at("2026-01-01T00:00:00+00:00") + day * 86400 + hour * 3600
    calendar = Calendar(spec, origin)
    plan = case.plan
    policy = replace(Policy.from_playbook(case.playbook), window=calendar)
    run = Run(plan, case.inventory, Engine(plan, case.inventory, policy),
              World(case.inventory, plan.target_version))
    run.start()
    run.through_group_pauses()
    assert run.state is RunState.DONE, run.engine.stop_reasons
    unit_phase = {u: p.name for p in plan.phases if p.name in GATED
                  for g in p.groups for u in g.units}
    for unit, (began, _) in run.engine.unit_times.items():
        if unit in unit_phase and began is not None:
            assert calendar.is_open(began), (unit, calendar.local(began))
    assert len(run.engine.unit_times) >= len(unit_phase)
    estimated = estimate(plan, case.inventory, replace(case.playbook, window=spec), origin)
    if not case.playbook.hosts.pause_after_each_group:
        assert estimated.estimated_duration_s == int(run.now), (estimated.estimated_duration_s,
                                                                run.now)


def test_the_gate_leaves_system_steps_alone() -> None:
    assert Phase.PRECHECK not in GATED and Phase.BUNDLE not in GATED
    assert Phase.COORDINATOR not in GATED and Phase.POSTCHECK not in GATED


@SETTINGS
@given(cases(), windows(), st.integers(0, 365 * 2), st.integers(0, 23))
def test_on_the_real_clock_rule_the_run_pauses_at_the_close_and_finishes(
        case: Case, spec: WindowSpec, day: int, hour: int) -> None:
    """With ``pause`` (the real clock) the engine never starts a unit while the window is
    closed; it settles paused with nothing in flight, and resuming when the next window
    opens (as ``resume --wait`` does) always ends done."""
    origin = _at("2026-01-01T00:00:00+00:00") + day * 86400 + hour * 3600
    calendar = Calendar(spec, origin, pause=True)
    plan = case.plan
    engine = Engine(plan, case.inventory,
                    replace(Policy.from_playbook(case.playbook), window=calendar))
    world = World(case.inventory, plan.target_version)
    trace = drive(engine, world, 0.0, max_steps=MAX_STEPS)
    for _ in range(500):
        if engine.state is RunState.DONE:
            break
        assert engine.state is RunState.PAUSED, engine.stop_reasons
        assert not any(i.active for i in engine.items.values()), "paused with work in flight"
        opens = calendar.next_open(trace.end)
        assert all("maintenance window is closed" in r or "pauses after each group" in r
                   for r in engine.stop_reasons), engine.stop_reasons
        trace = drive(engine, world, opens, max_steps=MAX_STEPS, first=Resumed(opens))
    assert engine.state is RunState.DONE
    gated = {u for p in plan.phases if p.name in GATED for g in p.groups for u in g.units}
    for unit, (began, _) in engine.unit_times.items():
        if unit in gated and began is not None:
            assert calendar.is_open(began), (unit, calendar.local(began))
