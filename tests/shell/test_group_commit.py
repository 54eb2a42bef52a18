"""Group commit (issue 12 item 1): events ready together are journaled in one commit, the
plan's estimate drives the same batches, and a crash between a batch's commit and its
execution resumes without double or lost work."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import LAB, PLAYBOOKS, journal_records, nsxt, world
from upgrade.shell.drive import CRASH_ENV
from upgrade.shell.journal import Journal
from upgrade.sim.drive import Dispatcher


def _run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    import subprocess
    import sys

    from tests.run_support import ENV
    return subprocess.run([sys.executable, "-m", "upgrade", *map(str, args)],
                          capture_output=True, text=True, env={**ENV, **(env or {})},
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def test_batch_takes_everything_due_at_one_instant_in_order() -> None:
    queue: Dispatcher[str] = Dispatcher()
    queue.add(5.0, "t5a", 0.0)
    queue.add(0.0, "r1", 0.0)
    queue.add(9.0, "t9", 0.0)
    queue.add(5.0, "t5b", 0.0)
    queue.add(0.0, "r2", 0.0)
    assert queue.batch(0.0) == (0.0, ["r1", "r2"])
    assert queue.batch(0.0) == (5.0, ["t5a", "t5b"])
    queue.add(5.0, "r3", 5.0)
    queue.add(9.0, "t9b", 5.0)
    assert queue.batch(5.0) == (5.0, ["r3"])
    assert queue.batch(5.0) == (9.0, ["t9", "t9b"])
    assert queue.batch(9.0) is None


def test_a_run_commits_far_fewer_times_than_it_has_events(tmp_path: Path) -> None:
    """Many records share a commit: the parallel production playbook's journal holds
    several events per transaction, seen as several event records at one instant."""
    state = tmp_path / "state"
    proc = nsxt("run", PLAYBOOKS / "production-2.1-to-2.3.yaml", "--yes",
                "--state-dir", state, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = journal_records(state)
    events = [at for kind, at, _ in records if kind == "event"]
    assert len(set(events)) < len(events)
    plan = json.loads(nsxt("plan", PLAYBOOKS / "production-2.1-to-2.3.yaml", "--format",
                           "json").stdout)
    assert max(at for _, at, _ in records) == plan["estimated_duration_s"]


@pytest.mark.parametrize("commits", [2, 5, 11, 23, 40])
def test_sigkill_between_commit_and_execution_loses_and_doubles_nothing(
        tmp_path: Path, commits: int) -> None:
    """SIGKILL right after the Nth commit, before anything it holds runs; then resume."""
    state = tmp_path / "state"
    killed = _run("run", LAB, "--yes", "--state-dir", state, env={CRASH_ENV: str(commits)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with Journal.open_readonly(state) as journal:
        last = list(journal.records())[-1]
    assert last.kind == "action", "the kill comes after a commit holding unexecuted actions"
    resumed = _run("resume", "--state-dir", state)
    assert resumed.returncode == 0, resumed.stderr
    units = world(state)["units"]
    assert units and all(u["upgrade_count"] == 1 for u in units), \
        {u["id"]: u["upgrade_count"] for u in units}
    status = json.loads(_run("status", "--state-dir", state, "--format", "json").stdout)
    assert status["state"] == "done"
