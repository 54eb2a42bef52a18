"""`--events`, `report` and `history` with the nsxt adapter: the lab rehearsed against the
NSX-T emulator and vcsim (the `rehearsal` fixture of tests/e2e/test_e2e_real.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_operate_cli import check_lab_sequence, read_events
from tests.e2e.test_e2e_real import Lab, rehearsal  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.slow


def test_events_and_report_of_a_rehearsal_against_the_emulator(
        rehearsal: Callable[..., Lab], tmp_path: Path) -> None:  # noqa: F811
    """A real-clock run through the nsxt adapter streams the same events as a simulated
    one; its report lists the vMotions the tool made in the DRS-off cluster, and history
    lists the run as done."""
    lab = rehearsal()
    events = tmp_path / "events.jsonl"
    done = lab.nsxt(*lab.run_args(), "--events", events)
    assert done.returncode == 0, done.stdout + done.stderr
    check_lab_sequence(read_events(events))

    proc = lab.nsxt("report", "--state-dir", lab.state_dir, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["state"] == "done" and doc["units_done"] == 8 and doc["clock"] == "real"
    moved = {(m["vm"], m["from"]) for m in doc["vmotions"]}
    assert {("pks-worker-3", "esx-03"), ("ops-manager", "esx-04")} <= moved
    assert all(m["outcome"] == "done" for m in doc["vmotions"])
    history = lab.nsxt("history", "--root", lab.state_dir, "--format", "json")
    runs = json.loads(history.stdout)["runs"]
    assert [(r["state"], r["units_done"]) for r in runs] == [("done", 8)]
