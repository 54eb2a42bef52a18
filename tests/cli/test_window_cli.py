"""Maintenance windows through the CLI, with real files (DESIGN sections 3, 4 and 7).

A rehearsal on the virtual clock spans several nights and ends done with every unit
started inside a window; ``plan --start-at`` estimates the finish across windows (the
very time the run takes), DST changes included; on the real clock the run pauses when
the window closes (exit 3, ``window_closed``) and ``resume --wait`` sleeps until the
next one opens; a mistaken window is one ``FILE:LINE:COL`` line, exit 2.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.run_support import copy_playbooks, edit, nsxt, world
from upgrade.core.window import WindowSpec, open_until, parse_time

FRIDAY_EVENING = "2026-12-04T20:00:00+01:00"
NIGHTS = 'window: {days: [sat, sun], start: "01:00", end: "02:00", tz: "Europe/Berlin"}'


def _playbook(tmp_path: Path, window: str) -> Path:
    book = copy_playbooks(tmp_path) / "lab-2.1-to-2.3.yaml"
    return edit(book, "retries: 2\n", f"retries: 2\n{window}\n")


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _spec(window: str) -> WindowSpec:
    days = re.search(r"days: \[([^]]*)\]", window)
    start = re.search(r'start: "([^"]+)"', window)
    end = re.search(r'end: "([^"]+)"', window)
    tz = re.search(r'tz: "([^"]+)"', window)
    assert days and start and end and tz
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    s, e = parse_time(start.group(1)), parse_time(end.group(1))
    assert s is not None and e is not None
    return WindowSpec(tuple(names.index(d.strip()) for d in days.group(1).split(",")),
                      s, e, tz.group(1))


def test_a_virtual_rehearsal_spans_nights_and_starts_units_only_inside_windows(
        tmp_path: Path) -> None:
    book = _playbook(tmp_path, NIGHTS)
    state, events = tmp_path / "state", tmp_path / "events.jsonl"
    planned = nsxt("plan", book, "--start-at", FRIDAY_EVENING, "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["window"] == "sat, sun 01:00-02:00 Europe/Berlin"
    assert plan["windows"] == 2
    assert plan["estimated_start_at"] == "2026-12-04T20:00:00+01:00"
    text = nsxt("plan", book, "--start-at", FRIDAY_EVENING)
    assert "finishes Sun 01:51, in 2 windows (2026-12-06 Europe/Berlin)" in text.stdout

    ran = nsxt("run", book, "--yes", "--state-dir", state, "--start-at", FRIDAY_EVENING,
               "--events", events)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "maintenance window closed" in ran.stdout and "the next opens Sat" in ran.stdout

    spec = _spec(NIGHTS)
    origin = dt.datetime.fromisoformat(FRIDAY_EVENING).timestamp()
    stream = _events(events)
    kinds = [e["type"] for e in stream]
    assert kinds.count("window_closed") == 2 and kinds.count("window_opened") == 2
    done = stream[-1]
    assert done["type"] == "run_done"
    # the estimate is the run, windows included; the run spans two nights
    assert done["sim_s"] == plan["estimated_duration_s"] > 24 * 3600
    finish = dt.datetime.fromisoformat(done["at"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert finish.isoformat() == plan["estimated_finish_at"] == "2026-12-06T01:51:00+01:00"
    started = [e for e in stream if e["type"] == "unit_started"]
    assert len(started) == 8
    for event in started:
        instant = dt.datetime.fromisoformat(event["at"]).timestamp()
        assert instant == origin + event["sim_s"]
        assert open_until(spec, instant) is not None, event

    # the simulated world agrees: every unit's first operation began inside a window
    for unit in world(state)["units"]:
        first = min(i["start"] for i in unit["upgrades"] + unit["maintenance"])
        assert open_until(spec, origin + first) is not None, unit

    status = json.loads(nsxt("status", "--state-dir", state, "--format", "json").stdout)
    assert status["state"] == "done" and status["window"]["windows_used"] == 2
    report = json.loads(nsxt("report", "--state-dir", state, "--format", "json").stdout)
    assert report["window"] == {"window": "sat, sun 01:00-02:00 Europe/Berlin",
                                "on_close": "wait for the next window", "paused_by_window": 0}
    html = nsxt("report", "--state-dir", state, "--format", "html").stdout
    assert "maintenance window</td><td>sat, sun 01:00-02:00 Europe/Berlin" in html


@pytest.mark.parametrize(("start", "windows", "finish"), [
    # a week before the change: 01:00-03:00 is two hours, enough for every unit
    ("2027-03-20T20:00:00+01:00", 1, "2027-03-21T02:55:00+01:00"),
    # the night clocks go forward (02:00 CET -> 03:00 CEST) it is one: the hosts fit,
    # the edges, controllers and manager wait a week
    ("2027-03-27T20:00:00+01:00", 2, "2027-04-04T01:51:00+02:00"),
])
def test_plan_estimates_across_a_dst_change(tmp_path: Path, start: str, windows: int,
                                            finish: str) -> None:
    book = _playbook(tmp_path, 'window: {days: [sun], start: "01:00", end: "03:00", '
                               'tz: "Europe/Berlin"}')
    planned = nsxt("plan", book, "--start-at", start, "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert (plan["windows"], plan["estimated_finish_at"]) == (windows, finish)
    state = tmp_path / "state"
    ran = nsxt("run", book, "--yes", "--state-dir", state, "--start-at", start)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    status = json.loads(nsxt("status", "--state-dir", state, "--format", "json").stdout)
    assert status["clock_s"] == plan["estimated_duration_s"]


@pytest.mark.parametrize(("window", "where", "message"), [
    ('window: {days: [sat, funday], start: "01:00", end: "05:00", tz: "UTC"}',
     "funday", "unknown day 'funday'"),
    ('window: {days: [sat], start: "25:00", end: "05:00", tz: "UTC"}', '"25:00"',
     "window.start '25:00' is not a time"),
    ('window: {days: [sat], start: "01:00", end: "05:00", tz: "Mars/Olympus"}',
     '"Mars/', "unknown time zone 'Mars/Olympus'"),
    ('window: {days: [sat], start: "01:00", end: "01:00", tz: "UTC"}', 'end: "01:00"'[5:],
     "window.end equals window.start"),
    ('window: {days: [], start: "01:00", end: "02:00", tz: "UTC"}', "[]",
     "at least one day"),
    ('window: {days: [sat], start: "01:00", end: "02:00", tz: "UTC", len: 3}', "len",
     "unknown key 'len'"),
])
def test_a_mistaken_window_is_one_line_naming_it(tmp_path: Path, window: str, where: str,
                                                 message: str) -> None:
    book = _playbook(tmp_path, window)
    for args in (("plan", book), ("run", book, "--yes", "--state-dir", tmp_path / "s")):
        result = nsxt(*args)
        assert result.returncode == 2, result.stdout + result.stderr
        line = result.stderr.strip()
        # line 20 of the copied playbook; the column of the offending value
        column = window.rindex(where) + 1
        assert line.startswith(f"{book}:20:{column}: "), line
        assert message in line and "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


def test_start_at_needs_an_offset_and_the_virtual_clock(tmp_path: Path) -> None:
    book = _playbook(tmp_path, NIGHTS)
    naive = nsxt("plan", book, "--start-at", "2026-12-04T20:00:00")
    assert naive.returncode == 2 and "no UTC offset" in naive.stderr
    real = nsxt("run", book, "--yes", "--state-dir", tmp_path / "s", "--clock", "real",
                "--start-at", FRIDAY_EVENING)
    assert real.returncode == 2 and "--start-at sets the virtual clock" in real.stderr


def _hhmm(moment: dt.datetime) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}"


@pytest.mark.timeout(90)
def test_on_the_real_clock_the_run_pauses_when_the_window_closes_and_resume_waits(
        tmp_path: Path) -> None:
    """At --speed 1000 (a simulated minute in 60 ms): a window that closes about an hour
    (simulated) from now and opens again four hours later.  The pre-check, upload and
    coordinator take 36 minutes; two hosts start before the close (on a loaded machine
    maybe one), the last drains after it; the run pauses (exit 3) naming the next
    opening; `resume` alone pauses again at once; `resume --wait` sleeps through the
    closed hours (about 14 s) and finishes."""
    now = dt.datetime.now(dt.UTC)
    closes = (now + dt.timedelta(minutes=61)).replace(second=0, microsecond=0)
    opens = closes + dt.timedelta(hours=4)
    window = (f'window: {{days: [mon, tue, wed, thu, fri, sat, sun], start: "{_hhmm(opens)}", '
              f'end: "{_hhmm(closes)}", tz: "UTC"}}')
    book = _playbook(tmp_path, window)
    state, events = tmp_path / "state", tmp_path / "events.jsonl"
    first = nsxt("run", book, "--yes", "--state-dir", state, "--clock", "real",
                 "--speed", "1000", "--events", events, timeout=60)
    assert first.returncode == 3, first.stdout + first.stderr
    assert f"the next opens {opens:%a %Y-%m-%d %H:%M} UTC" in first.stdout
    status = json.loads(nsxt("status", "--state-dir", state, "--format", "json").stdout)
    assert status["state"] == "paused", status
    assert status["window"]["paused_by_window"] is True
    assert status["window"]["next_opens_at"] == opens.isoformat(timespec="seconds")
    assert 1 <= status["units"]["done"] <= 3 and not status["units"]["in_progress"]
    paused = _events(events)[-1]
    assert paused["type"] == "paused" and "(asked by: window)" in paused["detail"]
    text = nsxt("status", "--state-dir", state).stdout
    assert "maintenance window: mon, tue" in text and "closed; the next opens" in text
    assert "--wait" in text

    again = nsxt("resume", "--state-dir", state, "--events", events, timeout=60)
    assert again.returncode == 3, again.stdout + again.stderr
    assert "maintenance window is closed" in again.stdout

    waited = nsxt("resume", "--state-dir", state, "--wait", "--events", events, timeout=60)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert f"waiting for the maintenance window: it opens {opens:%a %Y-%m-%d %H:%M}" \
        in waited.stdout

    spec = _spec(window)
    stream = _events(events)
    kinds = [e["type"] for e in stream]
    assert "window_closed" in kinds and "window_opened" in kinds and kinds[-1] == "run_done"
    started = [e for e in stream if e["type"] == "unit_started"]
    assert len(started) == 8
    for event in started:
        instant = dt.datetime.fromisoformat(event["at"]).timestamp()
        assert open_until(spec, instant) is not None, event
    reopened = next(e for e in stream if e["type"] == "window_opened")
    assert dt.datetime.fromisoformat(reopened["at"]) >= opens
    report = json.loads(nsxt("report", "--state-dir", state, "--format", "json").stdout)
    assert report["window"]["paused_by_window"] == 2
    assert [p["by"] for p in report["pauses"]] == ["window", "window"]
    markdown = nsxt("report", "--state-dir", state, "--format", "markdown").stdout
    assert "**Maintenance window:** mon, tue" in markdown


def test_a_saved_plan_with_a_window_runs_later(tmp_path: Path) -> None:
    """Its estimates depend on when it starts, not on what it was made from: `run --plan`
    at another time runs it (and still refuses an edited playbook)."""
    book = _playbook(tmp_path, NIGHTS)
    out = tmp_path / "plan.json"
    saved = nsxt("plan", book, "--out", out, "--start-at", "2026-11-27T20:00:00+01:00")
    assert saved.returncode == 0, saved.stderr
    ran = nsxt("run", "--plan", out, "--yes", "--state-dir", tmp_path / "s",
               "--start-at", FRIDAY_EVENING)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    edit(book, 'end: "02:00"', 'end: "03:00"')
    refused = nsxt("run", "--plan", out, "--yes", "--state-dir", tmp_path / "t")
    assert refused.returncode == 4 and "was edited" in refused.stderr
