"""`nsxt-upgrade plan` in a fresh process: what it imports, how it ends (issue 23 item 4).

A simulated plan contacts nothing, so it imports neither asyncio nor structlog (nor rich
for JSON), and it ends without freeing its objects one by one: its output and exit code
must be the very ones of an ordinary exit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "playbooks" / "lab-2.1-to-2.3.yaml"
WARNING = "edge-connectivity-degraded"


def run_plan(playbook: Path, *args: str, python: tuple[str, ...] = ()
             ) -> subprocess.CompletedProcess[str]:
    """`python -m upgrade plan PLAYBOOK ARGS` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *python, "-m", "upgrade", "plan", str(playbook), *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def imported(stderr: str) -> set[str]:
    """The modules ``-X importtime`` reports."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_simulated_json_plan_imports_no_network_or_display_stack() -> None:
    """No asyncio, structlog or rich for a JSON plan of an inventory file."""
    done = run_plan(LAB, "--format", "json", python=("-X", "importtime"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runnable"] is True
    modules = imported(done.stderr)
    assert "upgrade.render.plan_json" in modules  # the report is read correctly
    assert not {"asyncio", "structlog", "rich", "rich.console"} & modules


def test_text_plan_still_draws_its_table() -> None:
    """The text format imports rich when it needs it."""
    done = run_plan(LAB)
    assert done.returncode == 0, done.stderr
    assert "Phase" in done.stdout or "phase" in done.stdout
    assert done.stdout.endswith("\n")


def test_refused_plan_exits_4_with_all_its_output(tmp_path: Path) -> None:
    """The quick exit keeps the exit code and flushes both streams in full."""
    shutil.copytree(LAB.parent, tmp_path / "playbooks")
    lab = tmp_path / "playbooks" / LAB.name
    text = lab.read_text(encoding="utf-8")
    assert f"acknowledge: [{WARNING}]" in text
    lab.write_text(text.replace(f"acknowledge: [{WARNING}]", "acknowledge: []"),
                   encoding="utf-8")
    done = run_plan(lab, "--format", "json")
    assert done.returncode == 4
    assert json.loads(done.stdout)["runnable"] is False
    assert done.stdout.endswith("}\n")
    assert f"refused: {WARNING}: " in done.stderr
    assert done.stderr.endswith("\n")


def test_bad_input_still_exits_2_with_its_located_line(tmp_path: Path) -> None:
    """An invalid playbook: one FILE:LINE:COL line, exit 2, as before."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntarget_version: 2.3\n", encoding="utf-8")
    done = run_plan(bad, "--format", "json")
    assert done.returncode == 2
    assert done.stderr.startswith(f"{bad}:2:")
    assert done.stdout == ""
