"""What a run's state dir records at its start, and state dirs of earlier versions.

A run records the plan JSON once (``plan.json``) and the engine's inputs in the
journal (``run_input``); ``status``, ``resume``, ``verify`` and ``report`` read those.
A state dir written by an earlier version has no ``run_input`` and the plan JSON in the
journal's ``plan`` meta as well: it still reads, and resumes, as it did.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.run_support import LAB, as_earlier_version, nsxt, status_json, world
from upgrade.shell.drive import CRASH_ENV
from upgrade.shell.journal import Journal
from upgrade.shell.start_record import RUN_INPUT
from upgrade.shell.statedir import OLD_PLAN, PLAN_FILE


def test_a_run_records_its_plan_json_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state).returncode == 0
    with Journal.open_readonly(state) as journal:
        assert journal.get_meta(OLD_PLAN) is None
        assert journal.get_meta(RUN_INPUT) is not None
    assert json.loads((state / PLAN_FILE).read_text())["name"] == "lab-2.1-to-2.3"
    report = nsxt("report", "--state-dir", state, "--format", "json")
    assert report.returncode == 0 and json.loads(report.stdout)["state"] == "done"


def test_a_state_dir_of_the_earlier_version_reads_and_resumes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    killed = nsxt("run", LAB, "--yes", "--state-dir", state, env={CRASH_ENV: "12"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before = status_json(state)
    as_earlier_version(state)
    assert status_json(state) == before
    (state / PLAN_FILE).unlink()  # the earlier version kept the plan in its journal too
    assert nsxt("report", "--state-dir", state, "--format", "json").returncode == 0
    resumed = nsxt("resume", "--state-dir", state)
    assert resumed.returncode == 0, resumed.stderr
    assert all(u["upgrade_count"] == 1 for u in world(state)["units"])
    assert status_json(state)["state"] == "done"
    verified = nsxt("verify", "--state-dir", state)
    assert verified.returncode == 0, verified.stderr
