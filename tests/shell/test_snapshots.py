"""Snapshots and `verify` (issue 12 item 2): the journal stores the engine's state every so
many records and whenever the run settles; `status` and `resume` start from the latest one;
`nsxt-upgrade verify` replays the whole history and checks every snapshot against it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import LAB, copy_playbooks, nsxt, world
from tests.shell.test_quiet_polls import Chatty, _case, _engine
from upgrade.adapters.simulated import SimulatedAdapter
from upgrade.clock import VirtualClock
from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import Begin, Resumed
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Fault, FaultKind, Op
from upgrade.errors import DeterminismError
from upgrade.inputs.inventory import dump_inventory
from upgrade.prepare.planning import prepare
from upgrade.shell.drive import CRASH_ENV
from upgrade.shell.journal import Journal, Record
from upgrade.shell.replay import replay, verify
from upgrade.shell.runner import Runner
from upgrade.shell.start_record import record_start
from upgrade.shell.status import run_status

DAY = 24 * 3600


def _snapshot_seqs(state: Path) -> list[int]:
    with Journal.open_readonly(state) as journal:
        return [seq for seq, _ in journal.snapshots()]


def _last_seq(state: Path) -> int:
    with Journal.open_readonly(state) as journal:
        return journal.last_seq()


def _verified(state: Path) -> str:
    proc = nsxt("verify", "--state-dir", state)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_lab_run_ends_with_a_snapshot_that_verify_accepts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state).returncode == 0
    assert _snapshot_seqs(state) == [_last_seq(state)]
    assert "1 snapshots" in _verified(state)


def test_canary_window_and_budget_runs_snapshot_and_verify(tmp_path: Path) -> None:
    """The canary, window and budget gates are engine state too: a run that pauses after
    its canary, jumps across maintenance windows and fails a host within its budget leaves
    snapshots that `verify` replays exactly, and `resume` continues from them."""
    books = copy_playbooks(tmp_path)
    playbook = books / "lab-2.1-to-2.3.yaml"
    playbook.write_text(playbook.read_text() + (
        "canary: {hosts: 1, then: pause}\n"
        "max_fail_percentage: {hosts: 50}\n"
        'window: {days: [sat, sun], start: "01:00", end: "03:00", tz: "Europe/Berlin"}\n'))
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text()
                         + "faults:\n  - {unit: esx-03, op: upgrade, kind: fail}\n")
    state = tmp_path / "state"
    start = ("--start-at", "2026-12-04T20:00:00+01:00")
    first = nsxt("run", playbook, "--yes", "--state-dir", state, *start)
    assert first.returncode == 3, first.stdout + first.stderr  # the canary's pause
    _verified(state)
    second = nsxt("resume", "--state-dir", state)
    assert second.returncode == 3, second.stdout + second.stderr  # esx-03 failed, in budget
    assert "esx-03" in second.stdout
    _verified(state)
    assert len(_snapshot_seqs(state)) >= 2


def test_failure_and_retry_snapshot_at_the_pause_and_the_end(tmp_path: Path) -> None:
    books = copy_playbooks(tmp_path)
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text()
                         + "faults:\n  - {unit: esx-02, op: upgrade, kind: fail}\n")
    state = tmp_path / "state"
    assert nsxt("run", books / "lab-2.1-to-2.3.yaml", "--yes", "--state-dir",
                state).returncode == 3
    paused_at = _last_seq(state)
    assert _snapshot_seqs(state) == [paused_at]
    assert nsxt("resume", "--state-dir", state, "--retry-failed").returncode == 0
    assert _snapshot_seqs(state) == [paused_at, _last_seq(state)]
    assert "2 snapshots" in _verified(state)


def test_crash_then_resume_from_a_snapshot_verifies(tmp_path: Path) -> None:
    """A pause (snapshot), a resume SIGKILLed mid-run, another resume: verify passes and
    nothing was upgraded twice."""
    state = tmp_path / "state"
    nsxt("run", LAB, "--yes", "--state-dir", state, env={CRASH_ENV: "30"})
    assert nsxt("resume", "--state-dir", state).returncode == 0
    assert all(u["upgrade_count"] == 1 for u in world(state)["units"])
    assert _snapshot_seqs(state)[-1] == _last_seq(state)
    _verified(state)


def _tamper(state: Path, change: Any) -> None:
    db = sqlite3.connect(state / "journal.sqlite")
    seq, payload = db.execute("SELECT seq, payload FROM snapshots ORDER BY seq").fetchone()
    data = json.loads(payload)
    change(data)
    db.execute("UPDATE snapshots SET payload = ? WHERE seq = ?", (json.dumps(data), seq))
    db.commit()
    db.close()


@pytest.mark.parametrize("what", ["unit state", "clock", "in flight"])
def test_verify_catches_a_tampered_snapshot(tmp_path: Path, what: str) -> None:
    state = tmp_path / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state).returncode == 0

    def change(data: dict[str, Any]) -> None:
        if what == "unit state":
            data["engine"]["items"]["esx-01"]["state"]["v"] = "failed"
        elif what == "clock":
            data["engine"]["parts"]["run"]["now"] += 1
        else:
            data["outstanding"].append([1, {"type": "Wake", "at": 1.0, "token": "x"}])

    _tamper(state, change)
    proc = nsxt("verify", "--state-dir", state)
    assert proc.returncode == 1
    assert f"snapshot after journal record {_last_seq(state)} differs" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verify_catches_a_tampered_record(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state).returncode == 0
    db = sqlite3.connect(state / "journal.sqlite")
    db.execute("UPDATE records SET payload = replace(payload, '\"esx-02\"', '\"esx-03\"') "
               "WHERE seq = (SELECT min(seq) FROM records WHERE kind = 'action' AND "
               "payload LIKE '%\"esx-02\"%')")
    db.commit()
    db.close()
    proc = nsxt("verify", "--state-dir", state)
    assert proc.returncode == 1 and "journal record" in proc.stderr


class _Counting:
    """Counts the journal records read (``Journal.records`` patched)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read = 0
        original = Journal.records

        def records(journal: Journal, after: int = 0) -> Iterator[Record]:
            for record in original(journal, after):
                self.read += 1
                yield record

        monkeypatch.setattr(Journal, "records", records)


async def _run_until(runner: Runner, journal: Journal, records: int) -> None:
    """Run, then retry the hung hosts into their hang again until ``records`` are journaled."""
    runner.feed(Begin(0.0))
    await runner.run()
    while journal.count() < records:
        assert runner.engine.state is RunState.PAUSED
        runner.feed(Resumed(runner.clock.now(), retry_failed=True))
        await runner.run()


def test_status_reads_no_record_after_a_finished_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state).returncode == 0
    counting = _Counting(monkeypatch)
    doc, _ = run_status(state)
    assert doc["state"] == "done" and doc["units"]["done"] == doc["units"]["total"]
    assert counting.read == 0


@pytest.mark.slow
def test_replay_of_a_150k_record_journal_reads_under_1000_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two hosts hung for a week with a manager reporting progress on every poll, then
    retried into the same hang: over 150,000 records.  Starting from the last
    snapshot, the replay `status` and `resume` do reads under 1,000 of them and ends in
    the state a full replay reaches."""
    case = _case(Fault("esx-0-0", Op.UPGRADE, FaultKind.HANG, 3),
                 Fault("esx-0-1", Op.UPGRADE, FaultKind.HANG, 3), timeout=7 * DAY)

    async def go() -> None:
        clock = VirtualClock()
        sim = SimulatedAdapter(tmp_path, case.inventory, case.plan.target_version, clock)
        with Journal.open(tmp_path) as journal:
            journal._conn.execute("PRAGMA synchronous=OFF")  # a test journal: no fsyncs
            runner = Runner(_engine(case), Chatty(sim), journal, clock)
            await _run_until(runner, journal, 150_000)
        await sim.close()

    asyncio.run(go())
    with Journal.open_readonly(tmp_path) as journal:
        total = journal.count()
        assert total >= 150_000, total
        counting = _Counting(monkeypatch)
        fast = replay(journal, _engine(case))
        assert counting.read < 1000, counting.read
        full = replay(journal, _engine(case), from_snapshot=False)
        assert fast.engine.snapshot() == full.engine.snapshot()
        assert fast.outstanding == full.outstanding and fast.last_at == full.last_at
        assert verify(journal, _engine(case))[1] >= 2


@pytest.mark.slow
def test_status_of_a_150k_record_journal_reads_under_1000_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`status` of a run whose journal holds over 150,000 records (two hosts hung for a
    week, a manager reporting progress on every poll, retried into the same hang) reads
    under 1,000 of them: the latest snapshot and the tail, over the plan and inventory
    the run recorded when it started."""
    case = _case(Fault("esx-0-0", Op.UPGRADE, FaultKind.HANG, 3),
                 Fault("esx-0-1", Op.UPGRADE, FaultKind.HANG, 3))
    (tmp_path / "inventory.yaml").write_text(dump_inventory(case.inventory), encoding="utf-8")
    playbook = tmp_path / "hung.yaml"
    playbook.write_text(f'name: hung\ntarget_version: "{case.playbook.target_version}"\n'
                        "bundle: {url: https://example.invalid/bundle.mub}\n"
                        "inventory: {adapter: simulated, source: inventory.yaml}\n"
                        "hosts: {mode: parallel, max_parallel: 2}\n"
                        f"timeouts: {{host_upgrade: {7 * DAY}}}\n", encoding="utf-8")
    prepared = prepare(playbook)
    assert prepared.plan.runnable, prepared.plan.refusals
    state = tmp_path / "state"
    state.mkdir()

    async def go() -> None:
        clock = VirtualClock()
        sim = SimulatedAdapter(state, prepared.inventory, prepared.plan.target_version, clock)
        engine = Engine(prepared.plan, prepared.inventory, Policy.from_playbook(prepared.playbook))
        with Journal.open(state) as journal:
            journal._conn.execute("PRAGMA synchronous=OFF")  # a test journal: no fsyncs
            record_start(state, journal, prepared, (), clock)
            runner = Runner(engine, Chatty(sim), journal, clock)
            await _run_until(runner, journal, 150_000)
        await sim.close()

    asyncio.run(go())
    with Journal.open_readonly(state) as journal:
        assert journal.count() >= 150_000
    counting = _Counting(monkeypatch)
    doc, _ = run_status(state)
    assert counting.read < 1000, counting.read
    assert doc["state"] == "paused" and "esx-0-0" in doc["units"]["failed"]


def test_verify_of_a_journal_with_a_snapshot_mid_step_fails(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state).returncode == 0
    with Journal.open(state, create=False) as journal:
        first_event = next(r.seq for r in journal.records() if r.kind == "event")
        journal.add_snapshot(first_event, {"engine": {}, "outstanding": [], "last_at": 0,
                                            "records": first_event})
    with Journal.open_readonly(state) as journal, pytest.raises(DeterminismError):
        verify(journal, _engine_for(state))


def _engine_for(state: Path) -> Any:
    from upgrade.shell.start_record import load_run

    with Journal.open_readonly(state) as journal:
        prepared = load_run(state, journal)
    return Engine(prepared.plan, prepared.inventory, Policy.from_playbook(prepared.playbook))

