"""What a run's state dir records at its start, and state dirs of earlier versions.

A run records the plan JSON once (``plan.json``) and the engine's inputs in the
journal (``run_input``); ``status``, ``resume``, ``verify`` and ``report`` read those.
A state dir written by an earlier version has no ``run_input`` and the plan JSON in the
journal's ``plan`` meta as well: it still reads, and resumes, as it did.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.run_support import ENV, LAB, as_earlier_version, world
from upgrade.shell.drive import CRASH_ENV
from upgrade.shell.journal import Journal
from upgrade.shell.recorded import RUN_INPUT
from upgrade.shell.statedir import OLD_PLAN, PLAN_FILE


def _run(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run([sys.executable, "-m", "upgrade", *map(str, args)],
                          capture_output=True, text=True, env={**ENV, **(env or {})},
                          timeout=120, check=False, stdin=subprocess.DEVNULL)


def _status(state: Path) -> dict[str, Any]:
    proc = _run("status", "--state-dir", state, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_a_run_records_its_plan_json_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert _run("run", LAB, "--yes", "--state-dir", state).returncode == 0
    with Journal.open_readonly(state) as journal:
        assert journal.get_meta(OLD_PLAN) is None
        assert journal.get_meta(RUN_INPUT) is not None
    assert json.loads((state / PLAN_FILE).read_text())["name"] == "lab-2.1-to-2.3"
    report = _run("report", "--state-dir", state, "--format", "json")
    assert report.returncode == 0 and json.loads(report.stdout)["state"] == "done"


def test_a_state_dir_of_the_earlier_version_reads_and_resumes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    killed = _run("run", LAB, "--yes", "--state-dir", state, env={CRASH_ENV: "12"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before = _status(state)
    as_earlier_version(state)
    assert _status(state) == before
    (state / PLAN_FILE).unlink()  # the earlier version kept the plan in its journal too
    assert _run("report", "--state-dir", state, "--format", "json").returncode == 0
    resumed = _run("resume", "--state-dir", state)
    assert resumed.returncode == 0, resumed.stderr
    assert all(u["upgrade_count"] == 1 for u in world(state)["units"])
    assert _status(state)["state"] == "done"
    verified = _run("verify", "--state-dir", state)
    assert verified.returncode == 0, verified.stderr
