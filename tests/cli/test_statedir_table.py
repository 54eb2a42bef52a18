"""Every state a state directory can be in, walked through every command (issue 24).

Each state is a real directory made by the real CLI (a run done, paused by a failed edge,
failed under ``on_error: abort``, aborted; an aborted run archived under ``runs/``; the
copies an interrupted start leaves; a world whose journal is gone; a fleet site's
directory).  Each cell runs one command as a subprocess on a fresh copy and checks the
exit code (DESIGN section 3: 0 done, 1 failed or aborted, 2 nothing to act on, 3 paused),
what it says, and where :mod:`upgrade.shell.dirstate` says the directory is afterwards:
the move its table names, or the same state for a refused or read-only command.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import LAB, copy_playbooks, nsxt, world_apart
from upgrade.shell.dirstate import MOVES, REFUSALS, Command, Holds, read_now, refusal

FAULT = "faults:\n  - {unit: edge-01, op: upgrade, kind: fail, times: 1}\n"
COMMANDS = (Command.RUN, Command.RESUME, Command.STATUS, Command.ABORT, Command.HISTORY,
            Command.REPORT, Command.VERIFY, Command.PAUSE)
NO_RUN = "holds no run (no journal.sqlite); start one with `nsxt-upgrade run PLAYBOOK"
ORPHAN = "has no journal of a run, but the simulated world"
FLEET = "fleet site's state dir"
FLEET_HINT = "`nsxt-upgrade fleet status FLEET.yaml`"

#: state -> (what read_now says, {command: (exit code, what it says)})
TABLE: dict[str, tuple[Holds, dict[Command, tuple[int, str]]]] = {
    "empty": (Holds.EMPTY, {
        Command.RUN: (0, "upgrade complete"),
        Command.RESUME: (2, NO_RUN),
        Command.STATUS: (0, "nothing has started there"),
        Command.ABORT: (2, NO_RUN),
        Command.HISTORY: (0, "no runs under"),
        Command.REPORT: (2, NO_RUN),
        Command.VERIFY: (2, NO_RUN),
        Command.PAUSE: (2, NO_RUN),
    }),
    "interrupted_start": (Holds.INTERRUPTED_START, {
        Command.RUN: (0, "an earlier start was interrupted before its first step (nothing "
                         "was done; left: playbook.yaml, inventory.yaml, plan.json)"),
        Command.RESUME: (2, NO_RUN),
        Command.STATUS: (0, "nothing has started there"),
        Command.ABORT: (2, NO_RUN),
        Command.HISTORY: (0, "no runs under"),
        Command.REPORT: (2, NO_RUN),
        Command.VERIFY: (2, NO_RUN),
        Command.PAUSE: (2, NO_RUN),
    }),
    "done": (Holds.RUN, {
        Command.RUN: (2, "already holds a run; continue it with `nsxt-upgrade resume"),
        Command.RESUME: (0, "is already done; nothing to resume"),
        Command.STATUS: (0, ": done, phase postcheck"),
        Command.ABORT: (2, "is done: there is nothing to abort"),
        Command.HISTORY: (0, "  done "),
        Command.REPORT: (0, '"state": "done"'),
        Command.VERIFY: (0, "verified 132 records"),
        Command.PAUSE: (0, "no runner is active"),
    }),
    "paused": (Holds.RUN, {
        Command.RUN: (2, "already holds a run; continue it with `nsxt-upgrade resume"),
        Command.RESUME: (3, "failed units wait for an operator: edge-01"),
        Command.STATUS: (0, ": paused, phase edges"),
        Command.ABORT: (0, "aborted the paused run"),
        Command.HISTORY: (0, "  paused "),
        Command.REPORT: (0, '"state": "paused"'),
        Command.VERIFY: (0, "verified"),
        Command.PAUSE: (0, "no runner is active"),
    }),
    "failed": (Holds.RUN, {
        Command.RUN: (2, "already holds a run; continue it with `nsxt-upgrade resume"),
        Command.RESUME: (3, "failed units wait for an operator: edge-01"),
        Command.STATUS: (0, ": failed, phase edges"),
        Command.ABORT: (0, "aborted the failed run"),
        Command.HISTORY: (0, "  failed "),
        Command.REPORT: (0, '"state": "failed"'),
        Command.VERIFY: (0, "verified"),
        Command.PAUSE: (0, "no runner is active"),
    }),
    "aborted": (Holds.ABORTED, {
        Command.RUN: (0, "(the target system stays as the aborted run left it)"),
        Command.RESUME: (1, "was aborted (aborted by an operator); it cannot be resumed"),
        Command.STATUS: (0, ": aborted, phase edges"),
        Command.ABORT: (0, "was aborted already"),
        Command.HISTORY: (0, "  aborted "),
        Command.REPORT: (0, '"state": "aborted"'),
        Command.VERIFY: (0, "verified"),
        Command.PAUSE: (0, "no runner is active"),
    }),
    "after_abort": (Holds.AFTER_ABORT, {
        Command.RUN: (0, "upgrade complete"),
        Command.RESUME: (2, NO_RUN),
        Command.STATUS: (0, "nothing has started there"),
        Command.ABORT: (2, NO_RUN),
        Command.HISTORY: (0, "runs/"),  # the archived run is listed
        Command.REPORT: (2, NO_RUN),
        Command.VERIFY: (2, NO_RUN),
        Command.PAUSE: (2, NO_RUN),
    }),
    "orphan": (Holds.ORPHAN, {
        Command.RUN: (2, ORPHAN),
        Command.RESUME: (2, ORPHAN),
        Command.STATUS: (0, "holds traces of a run but no journal of it"),
        Command.ABORT: (2, ORPHAN),
        Command.HISTORY: (0, "no runs under"),
        Command.REPORT: (2, ORPHAN),
        Command.VERIFY: (2, ORPHAN),
        Command.PAUSE: (2, ORPHAN),
    }),
    "fleet_site": (Holds.FLEET_SITE, {
        Command.RUN: (2, FLEET_HINT),
        Command.RESUME: (2, FLEET_HINT),
        Command.STATUS: (0, FLEET_HINT),
        Command.ABORT: (2, FLEET_HINT),
        Command.HISTORY: (0, FLEET_HINT),
        Command.REPORT: (2, FLEET_HINT),
        Command.VERIFY: (2, FLEET_HINT),
        Command.PAUSE: (2, FLEET_HINT),
    }),
}


def _book(root: Path, fault: bool = False, on_error: str = "pause") -> Path:
    books = copy_playbooks(root)
    if fault:
        inventory = books / "lab-inventory.yaml"
        inventory.write_text(inventory.read_text(encoding="utf-8") + FAULT, encoding="utf-8")
    playbook = books / LAB.name
    playbook.write_text(playbook.read_text(encoding="utf-8")
                        .replace("on_error: pause", f"on_error: {on_error}"), encoding="utf-8")
    return playbook


def _run(playbook: Path, state_dir: Path, code: int) -> None:
    result = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert result.returncode == code, result.stdout + result.stderr


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One directory per state, made once by the real CLI (cells work on copies)."""
    root = tmp_path_factory.mktemp("states")
    lab = _book(root / "lab")
    made = root / "made"
    (made / "empty").mkdir(parents=True)
    _run(lab, made / "done", 0)
    _run(_book(root / "fault", fault=True), made / "paused", 3)
    _run(_book(root / "abort", fault=True, on_error="abort"), made / "failed", 1)
    shutil.copytree(made / "paused", made / "aborted")
    assert nsxt("abort", "--state-dir", made / "aborted").returncode == 0
    shutil.copytree(made / "aborted", made / "after_abort")
    from upgrade.shell.run_records import archive_aborted

    archive_aborted(made / "after_abort", read_now(made / "after_abort"))
    (made / "interrupted_start").mkdir()
    for name in ("playbook.yaml", "inventory.yaml", "plan.json"):
        shutil.copy(made / "done" / name, made / "interrupted_start" / name)
    shutil.copytree(made / "done", made / "orphan")
    # a run's world lives in its journal now, and goes with it: the orphan keeps the
    # previous layout's world.sqlite, the trace a lost journal leaves behind
    world_apart(made / "orphan")
    (made / "orphan" / "journal.sqlite").unlink()
    site = made / "fleet_site"  # what `fleet run` leaves: its record, the inventory, a world
    site.mkdir()
    shutil.copy(made / "done" / "inventory.yaml", site / "inventory.yaml")
    with sqlite3.connect(made / "orphan" / "world.sqlite") as source, \
            sqlite3.connect(site / "world.sqlite") as target:
        source.backup(target)
    (site / "fleet-input.json").write_text("{}", encoding="utf-8")
    (site / "fleet-journal.jsonl").write_text('{"round":1,"origin":0.0,"fed":[]}\n',
                                              encoding="utf-8")
    return {"made": made, "lab": lab}


def _argv(command: Command, state_dir: Path, lab: Path) -> tuple[str | Path, ...]:
    if command is Command.RUN:
        return ("run", lab, "--yes", "--state-dir", state_dir)
    if command is Command.HISTORY:
        return ("history", "--root", state_dir)
    if command is Command.REPORT:
        return ("report", "--state-dir", state_dir, "--format", "json")
    return (command.value, "--state-dir", state_dir)


CELLS = [(state, command) for state in TABLE for command in COMMANDS]


@pytest.mark.parametrize(("state", "command"), CELLS,
                         ids=[f"{s}-{c.value}" for s, c in CELLS])
def test_each_state_through_each_command(state: str, command: Command, states: dict[str, Any],
                                         tmp_path: Path) -> None:
    """The exit code and message of DESIGN section 3, and the directory's next state."""
    holds, row = TABLE[state]
    code, says = row[command]
    state_dir = tmp_path / state
    shutil.copytree(states["made"] / state, state_dir)
    reading = read_now(state_dir)
    assert reading.holds is holds
    refused = refusal(state_dir, reading, command)
    result = nsxt(*_argv(command, state_dir, states["lab"]))
    out = result.stdout + result.stderr
    assert result.returncode == code, out
    assert says in out, out
    assert "Traceback" not in out
    if refused is not None:  # the table's refusal is what the command said
        assert result.returncode == refused.exit_code and str(refused) in out, out
    moved = code in (0, 3) and (holds, command) in MOVES
    assert read_now(state_dir).holds is (MOVES[(holds, command)] if moved else holds)


def test_the_table_covers_every_state_and_every_refusal() -> None:
    """Every state is walked above, and every refusal the module names is met in a cell."""
    assert {holds for holds, _ in TABLE.values()} == set(Holds)
    for holds, refused in REFUSALS.items():
        rows = [row for h, row in TABLE.values() if h is holds]
        for command in refused:
            assert all(row[command][0] != 0 for row in rows), (holds, command)


def _started(state_dir: Path) -> bool:
    return (state_dir / "journal.sqlite").is_file() and read_now(state_dir).holds is Holds.RUN


#: a run in progress (a live runner holds the lock): command -> (exit code, what it says);
#: pause last, since it ends the run
RUNNING: dict[Command, tuple[int, str]] = {
    Command.RUN: (5, "error: another nsxt-upgrade (pid"),
    Command.RESUME: (5, "error: another nsxt-upgrade (pid"),
    Command.ABORT: (5, "error: another nsxt-upgrade (pid"),
    Command.STATUS: (0, ": running (runner pid"),
    Command.HISTORY: (0, "  running "),
    Command.REPORT: (0, '"state": "running"'),
    Command.VERIFY: (0, "verified"),
    Command.PAUSE: (0, "pause requested; the runner (pid"),
}


def test_a_running_run_through_each_command(
        states: dict[str, Any], tmp_path: Path,
        live: Callable[..., subprocess.Popen[str]]) -> None:
    """RUN while its runner is live: what would write is refused with exit 5 (the lock,
    before any reading); what reads answers beside the runner; pause asks it to stop."""
    assert set(RUNNING) == set(COMMANDS)
    state_dir = tmp_path / "running"
    runner = live("run", states["lab"], "--yes", "--state-dir", state_dir, "--clock", "real",
                  "--speed", "60")
    deadline = time.monotonic() + 30
    while not _started(state_dir):
        assert runner.poll() is None and time.monotonic() < deadline, "the run did not start"
        time.sleep(0.05)
    for command, (code, says) in RUNNING.items():
        result = nsxt(*_argv(command, state_dir, states["lab"]))
        out = result.stdout + result.stderr
        assert result.returncode == code, (command, out)
        assert says in out, (command, out)
        assert "Traceback" not in out
        if command is not Command.PAUSE:
            assert runner.poll() is None, command
    runner.communicate(timeout=60)
    assert runner.returncode == 3
    assert read_now(state_dir).holds is Holds.RUN
