"""After `abort`, the next `run` goes on over the same target system (issue 21 item 1).

Measured by the simulated world's own record (`sim show --format json`: its clock, each
unit's upgrades with their start times, its maintenance intervals), not by "one upgrade
per unit" alone: a world rebuilt from scratch also shows one upgrade per unit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.run_support import LAB, nsxt, world
from upgrade.shell.dirstate import Holds, read_now

HOSTS = ("esx-01", "esx-02", "esx-03", "esx-04")
FAULT = "faults:\n  - {unit: edge-01, op: upgrade, kind: fail, times: 1}\n"


def _units(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["id"]: u for u in doc["units"]}


def test_run_after_abort_goes_on_over_the_same_world(books: Path, tmp_path: Path) -> None:
    """The issue's lab copy: edge-01 fails once; run (exit 3 after the 4 hosts), abort,
    run again. The world keeps its clock and operations: the hosts keep their one upgrade
    at the first run's start times and are not put in maintenance again, the clock never
    goes back, the fault does not fire again, and nothing says a start was interrupted."""
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text(encoding="utf-8") + FAULT, encoding="utf-8")
    playbook = books / LAB.name
    state_dir = tmp_path / "state"
    first = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert first.returncode == 3, first.stdout + first.stderr
    before = world(state_dir)
    assert all(_units(before)[h]["upgrade_count"] == 1 for h in HOSTS)
    assert nsxt("abort", "--state-dir", state_dir).returncode == 0
    assert read_now(state_dir).holds is Holds.ABORTED

    again = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "interrupted" not in again.stdout
    assert "(the target system stays as the aborted run left it)" in again.stdout
    after = world(state_dir)
    assert after["time"] > before["time"]  # the clock went on; a rebuilt world starts at 0
    was, now = _units(before), _units(after)
    for host in HOSTS:  # left alone: same upgrade, same maintenance, no new ones
        assert now[host]["upgrades"] == was[host]["upgrades"], host
        assert now[host]["maintenance"] == was[host]["maintenance"], host
    # edge-01: the failed attempt of the first run, then one that succeeds (fault used up)
    edge = now["edge-01"]["upgrades"]
    assert edge[0] == was["edge-01"]["upgrades"][0] and len(edge) == 2
    assert edge[1]["start"] >= before["time"]
    for unit in ("edge-02", "ctrl-01", "nsx-mgr-01"):
        assert now[unit]["upgrade_count"] == 1
        assert now[unit]["upgrades"][0]["start"] >= before["time"]
    assert {u["version"] for u in now.values()} == {"2.3.0.0"}
    assert "already at target" in again.stdout


def test_a_start_interrupted_after_abort_keeps_the_world(books: Path, tmp_path: Path) -> None:
    """A new run after abort killed before its first record (its start-up copies left
    beside an empty journal): the next run clears those copies but not the world."""
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text(encoding="utf-8") + FAULT, encoding="utf-8")
    playbook = books / LAB.name
    state_dir = tmp_path / "state"
    assert nsxt("run", playbook, "--yes", "--state-dir", state_dir).returncode == 3
    assert nsxt("abort", "--state-dir", state_dir).returncode == 0
    before = world(state_dir)
    # what an interrupted start leaves: the aborted run archived, copies, an empty journal
    from upgrade.shell.run_records import archive_aborted

    assert archive_aborted(state_dir, read_now(state_dir)).is_dir()
    (state_dir / "plan.json").write_text("{}", encoding="utf-8")
    assert read_now(state_dir).holds is Holds.AFTER_ABORT
    again = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "left: plan.json" in again.stdout and "world.sqlite" not in again.stdout
    after = world(state_dir)
    assert after["time"] > before["time"]
    for host in HOSTS:
        assert _units(after)[host]["upgrades"] == _units(before)[host]["upgrades"]
