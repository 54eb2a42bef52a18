"""Operating a run as an operator meets it: `--events`, `abort`, `history` and shell
completion, through the real CLI in subprocesses with real state directories."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.run_support import ENV, LAB, command, edit, nsxt, world
from upgrade.core.plan import PHASES
from upgrade.shell.events import TYPES

UNITS = {"esx-01", "esx-02", "esx-03", "esx-04", "edge-01", "edge-02", "ctrl-01", "nsx-mgr-01"}
SYSTEM = {"precheck", "bundle", "coordinator", "postcheck"}
EDGE_FAULT = "faults:\n  - {unit: edge-02, op: upgrade, kind: fail, times: 1}\n"


def with_edge_fault(books: Path) -> Path:
    """The lab playbook in ``books`` with edge-02's first upgrade failing."""
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text(encoding="utf-8") + EDGE_FAULT, encoding="utf-8")
    return books / LAB.name


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every event line of ``path``, checked against the DESIGN section 3 shape."""
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for event in events:
        assert event["type"] in TYPES, event
        assert set(event) <= {"at", "sim_s", "type", "phase", "unit", "detail"}, event
        dt.datetime.fromisoformat(event["at"])
        assert isinstance(event["sim_s"], int | float)
        assert all(event[k] is not None for k in event), event
    return events


def check_lab_sequence(events: list[dict[str, Any]], started_at: str | None = None) -> None:
    """A whole lab run: run_started first, run_done last, phases in order, one
    unit_started and one unit_done per unit (in that order, inside its phase), no unit for
    the system phases, clock times that never go back."""
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[-1] == "run_done"
    phases = [(e["type"], e["phase"]) for e in events if e["type"].startswith("phase_")]
    assert phases == [(t, p.value) for p in PHASES for t in ("phase_started", "phase_done")]
    done = [e["unit"] for e in events if e["type"] == "unit_done"]
    assert sorted(done) == sorted(UNITS)
    started = [e["unit"] for e in events if e["type"] == "unit_started"]
    assert sorted(started) == sorted(UNITS)
    position = {(e["type"], e.get("unit")): i for i, e in enumerate(events)}
    for unit in UNITS:
        assert position[("unit_started", unit)] < position[("unit_done", unit)]
    current = None
    for event in events:
        if event["type"] == "phase_started":
            current = event["phase"]
        if "unit" in event:
            assert event["unit"] not in SYSTEM
            assert event["phase"] == current, event
    times = [e["sim_s"] for e in events]
    assert times == sorted(times)
    if started_at is not None:  # `at` is the run's start plus its clock
        origin = dt.datetime.fromisoformat(started_at)
        for event in events:
            at = dt.datetime.fromisoformat(event["at"])
            assert abs((at - origin).total_seconds() - event["sim_s"]) < 0.01


def status(state_dir: Path) -> dict[str, Any]:
    """`status --format json`."""
    proc = nsxt("status", "--state-dir", state_dir, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- --events --------------------------------------------------------------------------------


def test_events_of_a_virtual_lab_run(tmp_path: Path) -> None:
    """`run --events FILE` on the virtual clock writes the whole run as JSON lines: phases
    in order, one unit_started and one unit_done per unit, `at` = start + sim_s."""
    state_dir, path = tmp_path / "state", tmp_path / "events" / "lab.jsonl"
    path.parent.mkdir()  # not created for you (issue 21 item 8)
    proc = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--events", path)
    assert proc.returncode == 0, proc.stderr
    events = read_events(path)
    check_lab_sequence(events, status(state_dir)["started_at"])
    assert events[-1]["sim_s"] == 9060
    assert "upgrade complete" in proc.stdout  # the human output is still there


def test_events_to_stdout_leave_stdout_to_json(tmp_path: Path) -> None:
    """`--events -`: stdout carries the JSON lines and nothing else; the progress and the
    summary go to stderr."""
    proc = nsxt("run", LAB, "--yes", "--state-dir", tmp_path / "state", "--events", "-")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith("{") for line in lines)
    (tmp_path / "out.jsonl").write_text(proc.stdout, encoding="utf-8")
    check_lab_sequence(read_events(tmp_path / "out.jsonl"))
    assert "upgrade complete" in proc.stderr


def test_events_can_be_read_while_a_real_clock_run_goes_on(
        tmp_path: Path, live: Callable[..., subprocess.Popen[str]]) -> None:
    """On the real clock the events are flushed as they happen: a reader tailing the file
    sees events while the runner is still running (and `report` shows the run as far as
    it got); the finished file is the whole run."""
    state_dir, path = tmp_path / "state", tmp_path / "events.jsonl"
    runner = live("run", LAB, "--yes", "--state-dir", state_dir, "--clock", "real",
                  "--speed", "1200", "--events", path)
    seen: list[dict[str, Any]] = []
    offset = 0
    deadline = time.monotonic() + 60
    while runner.poll() is None and time.monotonic() < deadline:
        if path.exists():
            data = path.read_bytes()
            complete = data[offset:data.rfind(b"\n", offset) + 1]  # whole lines only
            seen += [json.loads(line) for line in complete.splitlines()]
            offset += len(complete)
            if any(e["type"] == "unit_done" for e in seen):
                break
        time.sleep(0.05)
    assert runner.poll() is None, "the run ended before the reader saw a unit finish"
    assert any(e["type"] == "unit_done" for e in seen)
    assert not any(e["type"] == "run_done" for e in seen)
    # the report reads the journal beside the live runner: as far as the run got
    during = nsxt("report", "--state-dir", state_dir, "--format", "json")
    assert during.returncode == 0, during.stderr
    doc = json.loads(during.stdout)
    assert doc["state"] == "running" and 1 <= doc["units_done"] < 8
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, out + err
    events = read_events(path)
    assert events[: len(seen)] == seen
    check_lab_sequence(events)


def test_events_after_a_failure_and_resume(books: Path, tmp_path: Path) -> None:
    """A failed edge pauses the run (event `paused`, asked by on_error); `resume
    --retry-failed --events` on the same file adds `resumed`, `unit_retry` and what is
    new: over both processes every unit is done exactly once."""
    playbook = with_edge_fault(books)
    state_dir, path = tmp_path / "state", tmp_path / "events.jsonl"
    first = nsxt("run", playbook, "--yes", "--state-dir", state_dir, "--events", path)
    assert first.returncode == 3, first.stdout
    events = read_events(path)
    failed = [e for e in events if e["type"] == "unit_failed"]
    assert [(e["phase"], e["unit"]) for e in failed] == [("edges", "edge-02")]
    assert events[-1]["type"] == "paused" and "on_error" in events[-1]["detail"]
    second = nsxt("resume", "--state-dir", state_dir, "--retry-failed", "--events", path)
    assert second.returncode == 0, second.stdout
    events = read_events(path)
    later = events[len([e for e in events if e["sim_s"] < failed[0]["sim_s"]]):]
    types = [e["type"] for e in later]
    assert "resumed" in types and types.index("resumed") < types.index("unit_retry")
    assert types[-1] == "run_done"
    assert sorted(e["unit"] for e in events if e["type"] == "unit_done") == sorted(UNITS)
    assert [e["unit"] for e in events if e["type"] == "unit_started"].count("edge-02") == 1


def test_pause_command_is_named_in_the_events(
        tmp_path: Path, live: Callable[..., subprocess.Popen[str]]) -> None:
    """A pause asked with `nsxt-upgrade pause` shows in the stream as asked by an operator,
    and the run exits 3."""
    state_dir, path = tmp_path / "state", tmp_path / "events.jsonl"
    runner = live("run", LAB, "--yes", "--state-dir", state_dir, "--clock", "real",
                  "--speed", "1500", "--events", path)
    deadline = time.monotonic() + 30
    while not (path.exists() and b"unit_started" in path.read_bytes()):
        assert runner.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    assert nsxt("pause", "--state-dir", state_dir, "--reason", "change freeze").returncode == 0
    out, err = runner.communicate(timeout=30)
    assert runner.returncode == 3, out + err
    paused = read_events(path)[-1]
    assert paused["type"] == "paused"
    assert "change freeze" in paused["detail"]
    assert "operator (nsxt-upgrade pause)" in paused["detail"]


# -- abort -----------------------------------------------------------------------------------


def test_abort_closes_a_paused_run_and_run_starts_afresh(books: Path, tmp_path: Path) -> None:
    """`abort` on a paused run: exit 0, status `aborted` with the reason, `resume` refuses
    (exit 1, naming the reason), a second abort is harmless; a new `run` keeps the old
    journal under runs/, and the simulated world is not reset (units the aborted run
    upgraded are not upgraded again)."""
    playbook = with_edge_fault(books)
    state_dir = tmp_path / "state"
    assert nsxt("run", playbook, "--yes", "--state-dir", state_dir).returncode == 3
    aborted = nsxt("abort", "--state-dir", state_dir, "--reason", "edge-02 needs a new NIC")
    assert aborted.returncode == 0, aborted.stderr
    assert "aborted the paused run" in aborted.stdout
    doc = status(state_dir)
    assert doc["state"] == "aborted"
    assert doc["reasons"] == ["aborted: edge-02 needs a new NIC"]
    text = nsxt("status", "--state-dir", state_dir).stdout
    assert "aborted" in text and "edge-02 needs a new NIC" in text
    resumed = nsxt("resume", "--state-dir", state_dir)
    assert resumed.returncode == 1
    assert "aborted (edge-02 needs a new NIC)" in resumed.stderr
    assert "Traceback" not in resumed.stderr
    again = nsxt("abort", "--state-dir", state_dir)
    assert again.returncode == 0 and "aborted already" in again.stdout

    before = {u["id"]: u for u in world(state_dir)["units"]}
    edit(books / "lab-inventory.yaml", EDGE_FAULT, "")  # the NIC was replaced
    fresh = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    archived = list((state_dir / "runs").iterdir())
    assert len(archived) == 1
    assert {"journal.sqlite", "plan.json", "playbook.yaml", "inventory.yaml"} <= \
        {p.name for p in archived[0].iterdir()}
    assert f"kept in {archived[0]}" in fresh.stdout
    assert status(state_dir)["state"] == "done"
    after = {u["id"]: u for u in world(state_dir)["units"]}
    for unit in ("esx-01", "esx-02", "esx-03", "esx-04", "edge-01"):
        assert before[unit]["version"] == "2.3.0.0"
        assert after[unit]["upgrade_count"] == before[unit]["upgrade_count"] == 1
    assert {u["version"] for u in after.values()} == {"2.3.0.0"}

    history = nsxt("history", "--root", state_dir, "--format", "json")
    runs = json.loads(history.stdout)["runs"]
    assert [r["state"] for r in runs] == ["done", "aborted"]
    assert runs[1]["state_dir"] == str(archived[0]) and runs[1]["units_done"] == 5


def test_abort_refuses_a_done_run_and_a_live_one(
        tmp_path: Path, live: Callable[..., subprocess.Popen[str]]) -> None:
    """`abort` of a done run exits 2 and changes nothing; of a running one exits 5 naming
    the runner's PID (pause it first)."""
    done_dir = tmp_path / "done"
    assert nsxt("run", LAB, "--yes", "--state-dir", done_dir).returncode == 0
    refused = nsxt("abort", "--state-dir", done_dir)
    assert refused.returncode == 2 and "is done" in refused.stderr
    assert status(done_dir)["state"] == "done"

    live_dir = tmp_path / "live"
    runner = live("run", LAB, "--yes", "--state-dir", live_dir, "--clock", "real",
                  "--speed", "100")
    deadline = time.monotonic() + 30
    while status(live_dir)["state"] != "running":
        assert runner.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    locked = nsxt("abort", "--state-dir", live_dir)
    assert locked.returncode == 5 and f"pid {runner.pid}" in locked.stderr
    assert status(live_dir)["state"] == "running"


# -- history ---------------------------------------------------------------------------------


def test_history_lists_runs_newest_first_and_reads_only(books: Path, tmp_path: Path) -> None:
    """`history` under a state root (default ./.nsxt-upgrade): every run, newest first,
    with the DESIGN keys; text names each; the journals are not written to."""
    playbook = with_edge_fault(books)
    assert nsxt("run", playbook, "--yes", cwd=tmp_path).returncode == 3
    time.sleep(1.1)  # started_at has one-second resolution
    other = edit(books / "lab-2.1-to-2.3.yaml", "name: lab-2.1-to-2.3", "name: lab-two")
    assert nsxt("run", other, "--yes", cwd=tmp_path).returncode == 3
    journals = sorted((tmp_path / ".nsxt-upgrade").glob("*/journal.sqlite"))
    before = [digest(p) for p in journals]
    proc = nsxt("history", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)["runs"]
    assert [r["name"] for r in runs] == ["lab-two", "lab-2.1-to-2.3"]
    keys = {"state_dir", "name", "source_version", "target_version", "state", "started_at",
            "ended_at", "duration_s", "units_total", "units_done"}
    for run in runs:
        assert keys <= set(run)
        assert (run["state"], run["units_total"], run["units_done"]) == ("paused", 8, 5)
        assert run["ended_at"] is None and run["duration_s"] > 0
        assert run["source_version"] == "2.1.0.0" and run["target_version"] == "2.3.0.0"
    assert [digest(p) for p in journals] == before
    text = nsxt("history", cwd=tmp_path).stdout
    assert text.index("lab-two") < text.index("lab-2.1-to-2.3")
    assert "edge-02 failed" in text
    empty = nsxt("history", "--root", tmp_path / "nowhere")
    assert empty.returncode == 0 and "no runs" in empty.stdout


# -- shell completion ------------------------------------------------------------------------


def test_shell_completion_through_clicks_protocol(tmp_path: Path) -> None:
    """`_NSXT_UPGRADE_COMPLETE=bash_source nsxt-upgrade` prints a bash completion script;
    completing `nsxt-upgrade ru` offers `run`, and `nsxt-upgrade re` offers resume and
    report (click's environment-variable protocol)."""
    env = {**ENV, "_NSXT_UPGRADE_COMPLETE": "bash_source"}
    source = subprocess.run(command(), env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert source.returncode == 0, source.stderr
    assert "_nsxt_upgrade_completion" in source.stdout and "complete " in source.stdout

    def complete(words: str) -> list[str]:
        env = {**ENV, "_NSXT_UPGRADE_COMPLETE": "bash_complete", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
        proc = subprocess.run(command(), env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]

    assert complete("nsxt-upgrade ru") == ["run"]
    assert set(complete("nsxt-upgrade re")) == {"resume", "report"}
    assert "--events" in complete("nsxt-upgrade run --ev")
    assert os.environ.get("_NSXT_UPGRADE_COMPLETE") is None


def test_events_file_that_cannot_be_written_is_refused_up_front(tmp_path: Path) -> None:
    """An --events path that cannot be written is exit 2 before anything runs (the run
    would otherwise go on with its stream silently lost)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    state_dir = tmp_path / "state"
    proc = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--events",
                blocker / "events.jsonl")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--events" in proc.stderr and "cannot write" in proc.stderr
    assert not (state_dir / "journal.sqlite").exists()
