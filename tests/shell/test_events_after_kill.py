"""`--events` survives kill -9 (issue 21 item 2): the stream is derivable from the journal.

A runner killed right after a journal commit (the `NSXT_UPGRADE_KILL_AFTER_COMMITS`
crash hook: the worst moment, the step is durable but its line was never written) used
to lose that step's lines for good: the resume attached to the replayed engine and
wrote only what was new.  Now `resume --events FILE` first writes what the journal holds
and FILE lacks.  The property: after any number of kills and resumes, every unit has
exactly one `unit_started` and one `unit_done`, the run one `run_started` and one
`run_done`, and the lines a finished run's journal makes are all in the file, none twice.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import LAB, nsxt
from upgrade.shell.drive import CRASH_ENV
from upgrade.shell.events import EventLog, _cut_torn_line

UNITS = {"esx-01", "esx-02", "esx-03", "esx-04", "edge-01", "edge-02", "ctrl-01", "nsx-mgr-01"}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _killed_until_done(state_dir: Path, events: Path, kills: list[int]) -> int:
    """`run` then `resume`s, each killed after the next count of commits in ``kills``,
    then resumes without a kill until the run is done; how many processes were killed."""
    killed = 0
    proc = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--events", events,
                env={CRASH_ENV: str(kills[0])})
    for after in [*kills[1:], 0, 0]:
        if proc.returncode == 0:
            return killed
        assert proc.returncode == -9, proc.stdout + proc.stderr
        killed += 1
        proc = nsxt("resume", "--state-dir", state_dir, "--events", events,
                    env={CRASH_ENV: str(after)} if after else None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return killed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_unit_has_one_unit_done_after_kills_and_resumes(tmp_path: Path,
                                                              seed: int) -> None:
    """kill -9 at random commit counts (1 to 12 commits into each process), resume into
    the same events file each time: one unit_started and one unit_done per unit, one
    run_started and one run_done, and every line the journal makes is in the file."""
    rng = random.Random(seed)
    kills = [rng.randint(1, 12) for _ in range(rng.randint(2, 6))]
    state_dir, events = tmp_path / "state", tmp_path / "events.jsonl"
    assert _killed_until_done(state_dir, events, kills) >= 1
    lines = _lines(events)
    count = Counter((e["type"], e.get("unit")) for e in lines)
    for unit in UNITS:
        assert count[("unit_done", unit)] == 1, (unit, kills)
        assert count[("unit_started", unit)] == 1, (unit, kills)
    assert count[("run_started", None)] == 1 and count[("run_done", None)] == 1
    assert sum(1 for e in lines if e["type"] == "unit_done") == len(UNITS)
    # and nothing is left to catch up: the journal's stream is all in the file
    from upgrade.shell.dirstate import facts_on_disk
    from upgrade.shell.journal import Journal

    assert facts_on_disk(state_dir) is not None
    log = EventLog(events)
    with Journal.open_readonly(state_dir) as journal:
        from upgrade.shell.replay import replay
        from upgrade.shell.start_record import load_run, recorded_engine

        engine = recorded_engine(load_run(state_dir, journal), journal)
        replay(journal, engine)
        log.attach(journal.get_meta("calendar_start") or journal.get_meta("started_at"),
                   engine, float(journal.get_meta("clock_origin") or 0.0))
        try:
            assert log.catch_up((r.kind, r.at, r.payload) for r in journal.records()) == 0
        finally:
            log.close()


def test_a_kill_right_after_a_units_last_commit_loses_no_unit_done(tmp_path: Path) -> None:
    """The issue's case: each process killed after a commit holding a unit's completion;
    the resume writes the lost `unit_done` lines (here: every process dies after 2
    commits, so many steps' lines are lost on the way)."""
    state_dir, events = tmp_path / "state", tmp_path / "events.jsonl"
    _killed_until_done(state_dir, events, [2] * 40)
    done = Counter(e["unit"] for e in _lines(events) if e["type"] == "unit_done")
    assert done == dict.fromkeys(UNITS, 1)


def test_a_torn_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    """A line half written when the runner died is cut, the complete ones kept."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type": "run_started"}\n{"type": "unit_do')
    _cut_torn_line(path)
    assert path.read_bytes() == b'{"type": "run_started"}\n'
    path.write_bytes(b'{"type": "unit_do')
    _cut_torn_line(path)
    assert path.read_bytes() == b""


def test_a_resume_into_another_file_writes_only_what_is_new(tmp_path: Path) -> None:
    """The catch-up is for the file the run wrote before; a resume into another file gets
    `resumed` and what happens from there (as the README says), not the run's history."""
    state_dir = tmp_path / "state"
    first = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--events",
                 tmp_path / "first.jsonl", env={CRASH_ENV: "6"})
    assert first.returncode == -9
    other = tmp_path / "other.jsonl"
    resumed = nsxt("resume", "--state-dir", state_dir, "--events", other)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    lines = _lines(other)
    assert lines[0]["type"] == "resumed"
    assert not any(e["type"] == "run_started" for e in lines)


def test_kills_on_the_real_clock_lose_no_unit_done(tmp_path: Path) -> None:
    """The same on the real clock (concurrent work, group commits of whatever came back):
    each process killed after 3 commits, resumed into the same file until done."""
    state_dir, events = tmp_path / "state", tmp_path / "events.jsonl"
    proc = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--events", events,
                "--speed", "3000", env={CRASH_ENV: "3"})
    for _ in range(60):
        if proc.returncode == 0:
            break
        assert proc.returncode == -9, proc.stdout + proc.stderr
        proc = nsxt("resume", "--state-dir", state_dir, "--events", events,
                    env={CRASH_ENV: "3"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    done = Counter(e["unit"] for e in _lines(events) if e["type"] == "unit_done")
    assert done == dict.fromkeys(UNITS, 1)
