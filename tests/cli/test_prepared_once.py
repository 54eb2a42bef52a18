"""The inputs are read once: ``plan`` and ``run`` parse the playbook and its inventory
once each; ``status`` and ``resume`` parse the playbook once and take the inventory, the
compatibility verdict and the plan from what the run's state dir recorded."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.run_support import ENV, LAB
from upgrade.cli.main import cli
from upgrade.shell.drive import CRASH_ENV
from upgrade.shell.status import run_status


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the playbook and the inventory file were parsed, and the gate run."""
    import upgrade.inputs.playbook as playbook
    import upgrade.prepare.planning as planning

    counts: Counter[str] = Counter()

    def counted(module: Any, name: str) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counted(playbook, "_read")
    counted(playbook, "load_inventory")
    counted(planning, "gate")
    return counts


def test_plan_reads_the_playbook_and_the_inventory_once(reads: Counter[str]) -> None:
    result = CliRunner().invoke(cli, ["plan", str(LAB), "--format", "json"], env=ENV)
    assert result.exit_code == 0, result.output
    assert reads == {"_read": 1, "load_inventory": 1, "gate": 1}


def test_run_reads_the_playbook_and_the_inventory_once(
        tmp_path: Path, reads: Counter[str]) -> None:
    result = CliRunner().invoke(
        cli, ["run", str(LAB), "--yes", "--state-dir", str(tmp_path / "state")], env=ENV)
    assert result.exit_code == 0, result.output
    assert reads == {"_read": 1, "load_inventory": 1, "gate": 1}


def test_status_and_resume_read_what_the_run_recorded(
        tmp_path: Path, reads: Counter[str]) -> None:
    state = tmp_path / "state"
    killed = subprocess.run([sys.executable, "-m", "upgrade", "run", str(LAB), "--yes",
                             "--state-dir", str(state)], env={**ENV, CRASH_ENV: "12"},
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    doc, _ = run_status(state)
    assert doc["state"] == "paused" and doc["interrupted"]
    assert reads == {"_read": 1}
    reads.clear()
    result = CliRunner().invoke(cli, ["resume", "--state-dir", str(state)], env=ENV)
    assert result.exit_code == 0, result.output
    assert reads == {"_read": 1}
