"""`nsxt-upgrade run`, `resume`, `pause` and `status` as an operator meets them: real
subprocesses, real files in a state directory, the simulated world behind them."""

from __future__ import annotations

import copy
import json
import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import (
    ENV,
    LAB,
    PRODUCTION,
    check_world,
    command,
    edit,
    journal_records,
    nsxt,
    peek_phase,
    world,
)
from upgrade.inputs.inventory import load_inventory
from upgrade.shell.journal import Journal

TARGET = "2.3.0.0"
WARNING = "edge-connectivity-degraded"
STATES = {"not_started", "running", "paused", "done", "failed"}
EDGE_FAULT = "faults:\n  - {unit: edge-02, op: upgrade, kind: fail}\n"


# -- helpers ---------------------------------------------------------------------------------


def status(state_dir: Path) -> dict[str, Any]:
    """`status --format json`, checked against the DESIGN contract."""
    proc = nsxt("status", "--state-dir", state_dir, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    assert_status_contract(doc)
    return doc


def assert_status_contract(doc: dict[str, Any]) -> None:
    """The keys and types DESIGN section 3 promises for `status --format json`."""
    assert {"state", "phase", "units", "started_at", "eta_s"} <= set(doc)
    assert doc["state"] in STATES
    assert doc["phase"] is None or isinstance(doc["phase"], str)
    units = doc["units"]
    assert {"total", "done", "failed", "in_progress"} <= set(units)
    assert isinstance(units["total"], int) and isinstance(units["done"], int)
    assert 0 <= units["done"] <= units["total"]
    for key in ("failed", "in_progress"):
        assert isinstance(units[key], list) and all(isinstance(u, str) for u in units[key])
    assert doc["started_at"] is None or isinstance(doc["started_at"], str)
    assert doc["eta_s"] is None or isinstance(doc["eta_s"], int | float)
    if doc["state"] != "not_started":
        assert doc["phase"] is not None and doc["started_at"] is not None
        assert isinstance(doc["eta_s"], int | float) and doc["eta_s"] >= 0


def units_of(state_dir: Path) -> dict[str, dict[str, Any]]:
    """The world's units by id."""
    return {u["id"]: u for u in world(state_dir)["units"]}


def assert_invariants(state_dir: Path) -> None:
    """Every safety invariant, on the world the run in ``state_dir`` left behind."""
    check_world(world(state_dir), json.loads((state_dir / "plan.json").read_text()),
                load_inventory(state_dir / "inventory.yaml"))


def assert_nothing_in_flight(state_dir: Path) -> None:
    """No host in maintenance, no upgrade or other operation still running in the world."""
    snapshot = world(state_dir)
    for unit in snapshot["units"]:
        assert not unit["in_maintenance"], unit["id"]
        assert all(u["end"] is not None for u in unit["upgrades"]), unit
        assert all(m["end"] is not None for m in unit["maintenance"]), unit
    for op in snapshot["operations"]:
        assert op["end"] is not None and op["end"] <= snapshot["time"], op


def wait_for(predicate: Callable[[], bool], limit: float = 20) -> None:
    """Poll ``predicate`` until true (or fail after ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def add_fault(books: Path) -> None:
    """Make edge-02's first upgrade attempt fail in the copied lab inventory."""
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text(encoding="utf-8") + EDGE_FAULT, encoding="utf-8")


def started(proc: subprocess.Popen[str], state_dir: Path, phase: str = "precheck") -> None:
    """Wait until the runner has journaled the start of ``phase`` (or a later one)."""
    order = ["precheck", "bundle", "coordinator", "hosts", "edges", "controllers", "manager",
             "postcheck"]

    def reached() -> bool:
        assert proc.poll() is None, proc.communicate()
        seen = peek_phase(state_dir)
        return seen is not None and order.index(seen) >= order.index(phase)

    wait_for(reached)


# -- run -------------------------------------------------------------------------------------


def test_lab_run_completes_and_fills_the_state_dir(tmp_path: Path) -> None:
    """A virtual-clock run of the lab playbook exits 0, says it is complete, and leaves the
    journal, copies of the playbook, inventory and plan, and a JSON-lines log behind."""
    state_dir = tmp_path / "state"
    proc = nsxt("run", LAB, "--yes", "--state-dir", state_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "upgrade complete: 8 units at 2.3.0.0" in proc.stdout
    assert "run done" in proc.stdout
    for name in ("journal.sqlite", "playbook.yaml", "inventory.yaml", "plan.json", "run.log"):
        assert (state_dir / name).is_file(), name
    assert (state_dir / "playbook.yaml").read_bytes() == LAB.read_bytes()
    plan = nsxt("plan", LAB, "--format", "json")
    assert json.loads((state_dir / "plan.json").read_text()) == json.loads(plan.stdout)
    assert load_inventory(state_dir / "inventory.yaml") == load_inventory(
        LAB.parent / "lab-inventory.yaml")
    log = [json.loads(line) for line in (state_dir / "run.log").read_text().splitlines()]
    assert log and all("event" in entry and "timestamp" in entry for entry in log)
    assert log[-1]["event"] == "summary" and log[-1]["state"] == "done"
    assert {u["id"]: u["version"] for u in world(state_dir)["units"]} == dict.fromkeys(
        units_of(state_dir), TARGET)
    assert_invariants(state_dir)
    doc = status(state_dir)
    assert doc["state"] == "done" and doc["eta_s"] == 0
    assert doc["units"] == {"total": 8, "done": 8, "failed": [], "in_progress": [],
                            "skipped": [], "already_at_target": []}


def test_second_run_into_the_same_state_dir_exits_2_and_says_resume(tmp_path: Path) -> None:
    """`run` into a state dir that already holds a run refuses (exit 2) and names `resume`."""
    state_dir = tmp_path / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state_dir).returncode == 0
    again = nsxt("run", LAB, "--yes", "--state-dir", state_dir)
    assert again.returncode == 2
    assert f"nsxt-upgrade resume --state-dir {state_dir}" in again.stderr
    assert "Traceback" not in again.stderr
    assert units_of(state_dir)["esx-01"]["upgrade_count"] == 1


def test_run_refuses_like_plan_and_writes_nothing(books: Path, tmp_path: Path) -> None:
    """An unacknowledged pre-check warning: `plan` and `run` both exit 4 naming it, and
    `run` creates no state dir; acknowledging it with --ack lets the run go ahead."""
    playbook = edit(books / LAB.name, f"acknowledge: [{WARNING}]", "acknowledge: []")
    state_dir = tmp_path / "state"
    assert nsxt("plan", playbook).returncode == 4
    refused = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert refused.returncode == 4
    assert WARNING in refused.stderr and "--ack" in refused.stderr
    assert not state_dir.exists()
    acked = nsxt("run", playbook, "--yes", "--state-dir", state_dir, "--ack", WARNING)
    assert acked.returncode == 0, acked.stderr


def test_run_refuses_an_incompatible_upgrade(books: Path, tmp_path: Path) -> None:
    """PKS 1.0.0 does not run on NSX-T 2.3: `plan` and `run` both exit 4 saying so, and
    `run` writes nothing."""
    playbook = edit(books / LAB.name, 'pks: "1.2.0"', 'pks: "1.0.0"')
    state_dir = tmp_path / "state"
    assert nsxt("plan", playbook).returncode == 4
    refused = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert refused.returncode == 4
    assert "PKS 1.0.0" in refused.stderr and "Traceback" not in refused.stderr
    assert not state_dir.exists()


def at_terminal(answer: bytes, *args: str | Path) -> tuple[int, str]:
    """Run ``nsxt-upgrade ARGS`` on a pseudo-terminal, typing ``answer`` at the prompt."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(command(*args), stdin=slave, stdout=slave, stderr=slave,
                            env={**ENV, "COLUMNS": "120"})
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            output += chunk
            if not answered and b"[y/N]" in output:
                os.write(master, answer)
                answered = True
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), output.decode(errors="replace")


def test_run_at_a_terminal_asks_first(tmp_path: Path) -> None:
    """At a terminal `run` says what it will do and asks; "n" aborts with nothing written,
    "y" runs it with the live progress display and the closing summary."""
    state_dir = tmp_path / "state"
    code, out = at_terminal(b"n\n", "run", LAB, "--state-dir", state_dir)
    assert code == 1 and "8 units, estimated 2:31:00" in out and "no rollback" in out
    assert not state_dir.exists()
    code, out = at_terminal(b"y\n", "run", LAB, "--state-dir", state_dir)
    assert code == 0, out
    assert "upgrading" in out and "8/8" in out  # the progress bar, at its end
    assert "upgrade complete: 8 units at 2.3.0.0" in out


def test_run_without_yes_on_a_pipe_exits_2(tmp_path: Path) -> None:
    """Without --yes and with stdin not a terminal there is nobody to confirm: exit 2 with a
    message naming --yes, and nothing is written."""
    state_dir = tmp_path / "state"
    proc = nsxt("run", LAB, "--state-dir", state_dir, stdin="y\n")
    assert proc.returncode == 2
    assert "stdin is not a terminal" in proc.stderr and "--yes" in proc.stderr
    assert not state_dir.exists()


def test_clock_options(tmp_path: Path) -> None:
    """--speed alone runs on the real clock, sped up; --speed with --clock virtual is a bad
    invocation (exit 2) that writes nothing."""
    state_dir = tmp_path / "state"
    refused = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--clock", "virtual",
                   "--speed", "3")
    assert refused.returncode == 2 and "--speed applies to --clock real" in refused.stderr
    assert not state_dir.exists()
    fast = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--speed", "30000")
    assert fast.returncode == 0, fast.stdout
    with Journal.open(state_dir, create=False) as journal:
        clock = json.loads(journal.get_meta("clock") or "{}")
    assert clock["kind"] == "real" and clock["speed"] == 30000


# -- status ----------------------------------------------------------------------------------


def test_status_where_no_run_exists_says_not_started(tmp_path: Path) -> None:
    """`status` on an empty or missing state dir, or with no run under ./.nsxt-upgrade,
    answers not_started (exit 0) and says how to start; `resume` and `pause` exit 2 saying
    there is no run there."""
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing"
    for state_dir in (empty, missing):
        doc = status(state_dir)
        assert doc["state"] == "not_started" and doc["phase"] is None
        text = nsxt("status", "--state-dir", state_dir)
        assert text.returncode == 0
        assert f"no run in {state_dir}" in text.stdout and "nsxt-upgrade run" in text.stdout
    assert "does not exist" in nsxt("status", "--state-dir", missing).stdout
    here = nsxt("status", cwd=tmp_path)
    assert here.returncode == 0 and "no run under .nsxt-upgrade" in here.stdout
    for verb in ("resume", "pause"):
        proc = nsxt(verb, "--state-dir", missing)
        assert proc.returncode == 2
        assert f"{missing} does not exist" in proc.stderr


def test_default_state_dir_is_found_by_status_and_resume(books: Path) -> None:
    """Without --state-dir, `run` uses ./.nsxt-upgrade/<playbook name> and `status` and
    `resume` find the only run there."""
    cwd = books.parent
    assert nsxt("run", books / LAB.name, "--yes", cwd=cwd).returncode == 0
    assert (cwd / ".nsxt-upgrade" / "lab-2.1-to-2.3" / "journal.sqlite").is_file()
    shown = nsxt("status", "--format", "json", cwd=cwd)
    assert json.loads(shown.stdout)["state"] == "done"
    again = nsxt("resume", cwd=cwd)
    assert again.returncode == 0 and "already done" in again.stdout


def test_interrupted_start_can_be_run_again(tmp_path: Path) -> None:
    """A run killed while starting (a journal with nothing in it): `status` says
    not_started, `resume` says to run it again (exit 2), and `run` then works."""
    state_dir = tmp_path / "state"
    Journal.open(state_dir).close()
    assert status(state_dir)["state"] == "not_started"
    resumed = nsxt("resume", "--state-dir", state_dir)
    assert resumed.returncode == 2
    assert "interrupted while starting" in resumed.stderr and "nsxt-upgrade run" in resumed.stderr
    assert nsxt("run", LAB, "--yes", "--state-dir", state_dir).returncode == 0
    assert status(state_dir)["state"] == "done"


# -- pause, signals, the lock ----------------------------------------------------------------


def test_pause_from_another_process(tmp_path: Path,
                                    live: Callable[..., subprocess.Popen[str]]) -> None:
    """`pause` from another process during a real-clock run: the runner starts nothing new,
    lets what is in flight finish and exits 3; status says paused; `resume` (faster, on the
    same real clock) finishes."""
    state_dir = tmp_path / "state"
    runner = live("run", LAB, "--yes", "--state-dir", state_dir, "--clock", "real",
                  "--speed", "1500")
    started(runner, state_dir, "hosts")
    asked = nsxt("pause", "--state-dir", state_dir)
    assert asked.returncode == 0 and f"pid {runner.pid}" in asked.stdout
    out, _ = runner.communicate(timeout=30)
    assert runner.returncode == 3, out
    assert "stopping (pause requested by an operator)" in out
    assert f"nsxt-upgrade resume --state-dir {state_dir}" in out
    doc = status(state_dir)
    assert doc["state"] == "paused" and doc["units"]["in_progress"] == []
    assert doc["units"]["done"] < 8
    assert_nothing_in_flight(state_dir)
    resumed = nsxt("resume", "--state-dir", state_dir, "--speed", "6000")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert status(state_dir)["state"] == "done"
    assert_invariants(state_dir)


def test_sigint_pauses_the_runner(tmp_path: Path,
                                  live: Callable[..., subprocess.Popen[str]]) -> None:
    """SIGINT (Ctrl-C) to a running upgrade pauses it at the next safe point (exit 3,
    nothing in flight); `resume`, here on the virtual clock, finishes it."""
    state_dir = tmp_path / "state"
    runner = live("run", LAB, "--yes", "--state-dir", state_dir, "--clock", "real",
                  "--speed", "1500")
    started(runner, state_dir, "hosts")
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=30)
    assert runner.returncode == 3, out + err
    assert "SIGINT received: pausing at the next safe point" in out
    assert "Traceback" not in err
    doc = status(state_dir)
    assert doc["state"] == "paused" and doc["units"]["in_progress"] == []
    assert doc["reasons"] == ["SIGINT received"]
    assert_nothing_in_flight(state_dir)
    resumed = nsxt("resume", "--state-dir", state_dir, "--clock", "virtual")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_invariants(state_dir)


def test_second_sigterm_stops_at_once(tmp_path: Path,
                                      live: Callable[..., subprocess.Popen[str]]) -> None:
    """A second SIGTERM stops the runner at once (exit 3) without waiting for what is in
    flight; `resume` picks the running operations up and finishes with every invariant."""
    state_dir = tmp_path / "state"
    runner = live("run", LAB, "--yes", "--state-dir", state_dir, "--clock", "real",
                  "--speed", "300")
    started(runner, state_dir, "bundle")
    runner.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=30)
    assert runner.returncode == 3, out + err
    assert "stopped at once" in out and "Traceback" not in err
    doc = status(state_dir)
    assert doc["state"] == "paused" and doc["interrupted"] is True
    resumed = nsxt("resume", "--state-dir", state_dir, "--clock", "virtual")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "reconciled" in resumed.stdout or "resumed in phase bundle" in resumed.stdout
    assert_invariants(state_dir)


def test_a_second_runner_exits_5_naming_the_pid(tmp_path: Path,
                                                live: Callable[..., subprocess.Popen[str]]
                                                ) -> None:
    """While a runner holds the state dir, a second `run` or `resume` exits 5 naming its
    PID, and `status` says running; once it is killed, status says paused (interrupted)
    and `pause` says there is no runner to pause."""
    state_dir = tmp_path / "state"
    runner = live("run", LAB, "--yes", "--state-dir", state_dir, "--clock", "real",
                  "--speed", "100")
    started(runner, state_dir)
    second: list[list[str | Path]] = [["run", LAB, "--yes", "--state-dir", state_dir],
                                      ["resume", "--state-dir", state_dir]]
    for argv in second:
        proc = nsxt(*argv)
        assert proc.returncode == 5, proc.stderr
        assert f"pid {runner.pid}" in proc.stderr
    doc = status(state_dir)
    assert doc["state"] == "running" and doc["runner_pid"] == runner.pid
    assert f"runner pid {runner.pid}" in nsxt("status", "--state-dir", state_dir).stdout
    runner.kill()
    runner.communicate(timeout=30)
    doc = status(state_dir)
    assert doc["state"] == "paused" and doc["interrupted"] is True
    assert "interrupted" in nsxt("status", "--state-dir", state_dir).stdout
    nobody = nsxt("pause", "--state-dir", state_dir)
    assert nobody.returncode == 0 and "no runner is active" in nobody.stdout
    assert not (state_dir / "pause-requested").exists()


# -- failures --------------------------------------------------------------------------------


def test_failed_unit_pauses_and_retry_failed_finishes(books: Path, tmp_path: Path) -> None:
    """A unit whose upgrade fails under `on_error: pause`: run exits 3 naming it; `resume`
    alone exits 3 again saying to retry or skip; `resume --retry-failed` finishes, the
    failed unit upgraded twice and every other unit once."""
    add_fault(books)
    state_dir = tmp_path / "state"
    run = nsxt("run", books / LAB.name, "--yes", "--state-dir", state_dir)
    assert run.returncode == 3, run.stdout
    assert "needs attention: edge-02" in run.stdout and "--retry-failed" in run.stdout
    doc = status(state_dir)
    assert doc["state"] == "paused" and doc["units"]["failed"] == ["edge-02"]
    assert doc["phase"] == "edges"
    again = nsxt("resume", "--state-dir", state_dir)
    assert again.returncode == 3
    assert "--retry-failed" in again.stdout and "--skip" in again.stdout
    done = nsxt("resume", "--state-dir", state_dir, "--retry-failed")
    assert done.returncode == 0, done.stdout
    counts = {u: d["upgrade_count"] for u, d in units_of(state_dir).items()}
    assert counts.pop("edge-02") == 2
    assert set(counts.values()) == {1}
    assert {d["version"] for d in units_of(state_dir).values()} == {TARGET}
    assert status(state_dir)["state"] == "done"


def test_skip_leaves_the_failed_unit_as_it_is(books: Path, tmp_path: Path) -> None:
    """`resume --skip edge-02` after its upgrade failed: the run goes on without upgrading
    it again; the post-check then flags it at its old version (exit 3) and status lists it
    as skipped; an unknown unit to skip is an error naming it, a done one is left done."""
    add_fault(books)
    state_dir = tmp_path / "state"
    assert nsxt("run", books / LAB.name, "--yes", "--state-dir", state_dir).returncode == 3
    unknown = nsxt("resume", "--state-dir", state_dir, "--skip", "edge-99")
    assert unknown.returncode == 2 and "edge-99" in unknown.stderr
    skipped = nsxt("resume", "--state-dir", state_dir, "--skip", "edge-02", "--skip", "edge-01")
    assert skipped.returncode == 3, skipped.stdout
    assert "edge-02 skipped" in skipped.stdout
    assert "--skip edge-01: it is done already; nothing to skip" in skipped.stdout
    assert "edge-02 reports 2.1.0.0" in skipped.stdout
    units = units_of(state_dir)
    assert units["edge-02"]["version"] == "2.1.0.0" and units["edge-02"]["upgrade_count"] == 1
    assert units["ctrl-01"]["version"] == TARGET and units["nsx-mgr-01"]["version"] == TARGET
    doc = status(state_dir)
    assert doc["state"] == "paused" and doc["phase"] == "postcheck"
    assert doc["units"]["skipped"] == ["edge-02"] and doc["units"]["done"] == 7


def test_abort_fails_the_run_and_retry_failed_finishes(books: Path, tmp_path: Path) -> None:
    """Under `on_error: abort` a failed unit fails the run (exit 1, status failed);
    `resume --retry-failed` finishes it."""
    add_fault(books)
    playbook = edit(books / LAB.name, "on_error: pause", "on_error: abort")
    state_dir = tmp_path / "state"
    run = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert run.returncode == 1, run.stdout
    doc = status(state_dir)
    assert doc["state"] == "failed" and doc["units"]["failed"] == ["edge-02"]
    text = nsxt("status", "--state-dir", state_dir).stdout
    assert "failed" in text and "--retry-failed" in text
    done = nsxt("resume", "--state-dir", state_dir, "--retry-failed")
    assert done.returncode == 0, done.stdout
    assert units_of(state_dir)["edge-02"]["upgrade_count"] == 2
    assert status(state_dir)["state"] == "done"


# -- drift, changed inputs ---------------------------------------------------------------------


def test_unit_upgraded_by_hand_is_reported_and_not_upgraded_again(books: Path,
                                                                  tmp_path: Path) -> None:
    """After a pause, someone upgrades a pending host and an edge by hand: `resume` says
    each already reports the target version and does not upgrade them again."""
    from upgrade.sim.store import WorldStore, world_in

    playbook = edit(books / LAB.name, "pause_after_each_group: false",
                    "pause_after_each_group: true")
    state_dir = tmp_path / "state"
    paused = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert paused.returncode == 3, paused.stdout
    assert "compute-cluster-a is done" in paused.stdout
    place = world_in(state_dir)
    assert place is not None and place.joint  # a new run keeps its world in the journal
    store = WorldStore(place)
    by_hand = store.load(load_inventory(state_dir / "inventory.yaml"))
    for unit in ("esx-04", "edge-01"):
        by_hand.units[unit].version = TARGET
        by_hand.dirty.add(f"u:{unit}")
    store.flush(by_hand)
    store.close()
    resumed = nsxt("resume", "--state-dir", state_dir)
    assert resumed.returncode == 0, resumed.stdout
    units = units_of(state_dir)
    for unit in ("esx-04", "edge-01"):
        assert f"{unit} already reports {TARGET}" in resumed.stdout
        assert units[unit]["upgrade_count"] == 0
        assert not units[unit]["maintenance"]
    assert "esx-04 upgraded" not in resumed.stdout
    assert "already at the target version before this run upgraded them" in resumed.stdout
    assert units["esx-03"]["upgrade_count"] == 1
    assert status(state_dir)["state"] == "done"


def test_resume_refuses_a_changed_playbook(books: Path, tmp_path: Path) -> None:
    """A playbook edited after the run started: `resume` exits 2 naming it and where the
    copy is; restored, the run resumes."""
    playbook = edit(books / LAB.name, "pause_after_each_group: false",
                    "pause_after_each_group: true")
    original = playbook.read_bytes()
    state_dir = tmp_path / "state"
    assert nsxt("run", playbook, "--yes", "--state-dir", state_dir).returncode == 3
    edit(playbook, "retries: 2", "retries: 3")
    refused = nsxt("resume", "--state-dir", state_dir)
    assert refused.returncode == 2
    assert str(playbook) in refused.stderr and "changed" in refused.stderr
    assert str(state_dir / "playbook.yaml") in refused.stderr
    playbook.write_bytes(original)
    assert nsxt("resume", "--state-dir", state_dir).returncode == 0


# -- determinism and estimates -----------------------------------------------------------------


@pytest.mark.parametrize("playbook", [LAB, PRODUCTION], ids=["lab", "production"])
def test_virtual_runs_are_deterministic_and_match_the_estimate(playbook: Path,
                                                               tmp_path: Path) -> None:
    """Two virtual-clock runs of one playbook journal identical records (kind, time,
    payload), and a fault-free run's makespan equals `plan`'s estimated duration."""
    first, second = tmp_path / "one", tmp_path / "two"
    for state_dir in (first, second):
        proc = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
        assert proc.returncode == 0, proc.stdout
    records = journal_records(first)
    assert records == journal_records(second)
    assert len(records) > 50
    estimate = json.loads(nsxt("plan", playbook, "--format", "json").stdout)
    assert world(first)["time"] == estimate["estimated_duration_s"]
    assert max(at for _, at, _ in records) == estimate["estimated_duration_s"]


def test_lab_virtual_run_keeps_the_invariants(tmp_path: Path) -> None:
    """The lab run's world: every unit once, no VM left on a host under upgrade, edges one
    at a time, components in order."""
    state_dir = tmp_path / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state_dir).returncode == 0
    assert_invariants(state_dir)


def test_production_virtual_run_keeps_the_invariants(tmp_path: Path) -> None:
    """The production run (three hosts at a time in fully automated DRS clusters): no
    powered-on VM is ever on a host while it is upgraded, and every other invariant."""
    state_dir = tmp_path / "state"
    assert nsxt("run", PRODUCTION, "--yes", "--state-dir", state_dir).returncode == 0
    assert_invariants(state_dir)


def test_timeout_counts_from_the_real_start() -> None:
    """An operation whose start intent outlived a crashed runner and was executed on
    resume long after it was issued is given its full timeout from the real start."""
    from upgrade.core.engine.core import Engine
    from upgrade.core.engine.machines import UnitState
    from upgrade.core.engine.messages import Begin, Poll, Start
    from upgrade.core.engine.timing import Policy
    from upgrade.prepare.planning import prepare
    from upgrade.sim import ops
    from upgrade.sim.world import World

    prepared = prepare(LAB, [])
    engine = Engine(prepared.plan, prepared.inventory,
                    Policy.from_playbook(prepared.loaded.playbook))
    target = World(prepared.inventory, prepared.plan.target_version)
    start = next(a for a in engine.handle(Begin(0.0)) if isinstance(a, Start))
    now = 5000.0  # the runner died before executing it; resumed 5000 s later
    event = ops.execute(target, start, now)
    for _ in range(10):
        poll = next((a for a in engine.handle(event) if isinstance(a, Poll)), None)
        if poll is None:
            break
        now = max(now, poll.at)
        event = ops.execute(target, poll, now)
    assert engine.items["precheck"].state is UnitState.DONE


def test_invariant_checker_catches_violations(tmp_path: Path) -> None:
    """The invariant checks the crash test relies on do fail on a world that breaks them."""
    state_dir = tmp_path / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state_dir).returncode == 0
    good = world(state_dir)
    plan = json.loads((state_dir / "plan.json").read_text())
    inventory = load_inventory(state_dir / "inventory.yaml")
    check_world(good, plan, inventory)

    def unit(doc: dict[str, Any], ident: str) -> dict[str, Any]:
        return next(u for u in doc["units"] if u["id"] == ident)

    def broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        doc = copy.deepcopy(good)
        change(doc)
        return doc

    def twice(doc: dict[str, Any]) -> None:
        unit(doc, "esx-02")["upgrade_count"] = 2

    def in_maintenance(doc: dict[str, Any]) -> None:
        unit(doc, "esx-03")["in_maintenance"] = True

    def edges_overlap(doc: dict[str, Any]) -> None:
        first = unit(doc, "edge-01")["upgrades"][0]
        unit(doc, "edge-02")["upgrades"][0]["start"] = first["start"] + 1

    def vm_stays(doc: dict[str, Any]) -> None:
        next(v for v in doc["vms"] if v["id"] == "pks-worker-2")["moves"] = []

    def manager_early(doc: dict[str, Any]) -> None:
        unit(doc, "nsx-mgr-01")["upgrades"][0]["start"] = 0.0

    def vm_lost(doc: dict[str, Any]) -> None:
        doc["vms"].pop()

    for change in (twice, in_maintenance, edges_overlap, vm_stays, manager_early, vm_lost):
        with pytest.raises(AssertionError):
            check_world(broken(change), plan, inventory)
