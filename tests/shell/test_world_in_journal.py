"""The simulated world in the journal's database (issue 23 item 1): one commit per batch.

A run's world is the ``world_*`` tables of ``journal.sqlite``; a virtual-clock runner
writes a batch's world changes and journals its outcomes in one transaction.  A kill -9
inside that transaction, between the world's part and the journal's (the
``NSXT_UPGRADE_KILL_IN_COMMIT`` crash hook), leaves neither: after any such kill the
world on disk holds exactly the starts the journal answered, and resumes finish with one
upgrade per unit.  State dirs of the previous layout (``world.sqlite`` apart) are read by
``status`` and ``sim show`` as they are, and ``resume`` moves their world into the
journal and finishes.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import (
    LAB,
    answered_starts,
    check_world,
    copy_playbooks,
    edit,
    nsxt,
    world,
    world_apart,
)
from upgrade.inputs.inventory import load_inventory
from upgrade.shell.drive import CRASH_ENV, CRASH_IN_COMMIT_ENV, GROUP_ENV
from upgrade.shell.journal import Journal
from upgrade.sim.store import FILENAME, WorldPlace, read_world, world_in

UNITS = {"esx-01", "esx-02", "esx-03", "esx-04", "edge-01", "edge-02", "ctrl-01", "nsx-mgr-01"}


def _world_attempts(state_dir: Path) -> Counter[tuple[str, str]]:
    """How many times the world on disk says each ``(unit, op)`` was started (read only)."""
    place = world_in(state_dir)
    assert place is not None and place.joint
    stored = read_world(place, load_inventory(state_dir / "inventory.yaml"))
    assert stored is not None
    return Counter({key: n for key, n in stored.attempts.items() if n})


def _one_upgrade_each(state_dir: Path) -> dict[str, Any]:
    snapshot = world(state_dir)
    assert {u["id"]: u["upgrade_count"] for u in snapshot["units"]} == dict.fromkeys(UNITS, 1)
    check_world(snapshot, json.loads((state_dir / "plan.json").read_text(encoding="utf-8")),
                load_inventory(state_dir / "inventory.yaml"))
    return snapshot


def test_a_new_run_keeps_its_world_in_the_journal(tmp_path: Path) -> None:
    """`run` writes no world.sqlite: the world is in journal.sqlite, where `sim show` and
    `status` read it, and a finished run's world agrees with its journal."""
    state_dir = tmp_path / "state"
    done = nsxt("run", LAB, "--yes", "--state-dir", state_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (state_dir / FILENAME).exists()
    assert world_in(state_dir) == WorldPlace.in_journal(state_dir)
    _one_upgrade_each(state_dir)
    assert _world_attempts(state_dir) == answered_starts(state_dir)
    assert nsxt("status", "--state-dir", state_dir).returncode == 0


@pytest.mark.parametrize("kill_at", [1, 2, 5, 9, 14])
def test_a_kill_inside_a_batch_commit_leaves_world_and_journal_together(
        tmp_path: Path, kill_at: int) -> None:
    """kill -9 inside the kill_at-th batch commit, after the world's part and before the
    journal's: the world on disk holds exactly the starts the journal answered (neither
    is ahead), and the resume finishes with one upgrade per unit."""
    state_dir = tmp_path / "state"
    killed = nsxt("run", LAB, "--yes", "--state-dir", state_dir,
                  env={CRASH_IN_COMMIT_ENV: str(kill_at)})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert _world_attempts(state_dir) == answered_starts(state_dir)
    resumed = nsxt("resume", "--state-dir", state_dir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _one_upgrade_each(state_dir)
    assert _world_attempts(state_dir) == answered_starts(state_dir)


def test_kills_inside_commits_again_and_again(tmp_path: Path) -> None:
    """A run and its resumes each killed inside their third batch commit, until done:
    after every kill world and journal agree; the end is one upgrade per unit."""
    state_dir = tmp_path / "state"
    proc = nsxt("run", LAB, "--yes", "--state-dir", state_dir, env={CRASH_IN_COMMIT_ENV: "3"})
    kills = 0
    while proc.returncode == -9 and kills < 60:
        kills += 1
        assert _world_attempts(state_dir) == answered_starts(state_dir)
        proc = nsxt("resume", "--state-dir", state_dir, env={CRASH_IN_COMMIT_ENV: "3"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert kills >= 3
    _one_upgrade_each(state_dir)


def _paused(tmp_path: Path) -> Path:
    """A lab run paused after its first group (hosts of one cluster upgraded)."""
    books = copy_playbooks(tmp_path / "books")
    playbook = edit(books / LAB.name, "pause_after_each_group: false",
                    "pause_after_each_group: true")
    state_dir = tmp_path / "state"
    paused = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert paused.returncode == 3, paused.stdout + paused.stderr
    return state_dir


def test_a_state_dir_of_the_previous_layout_reads_and_resumes(tmp_path: Path) -> None:
    """A paused run rewritten as earlier versions kept it (world.sqlite apart): `sim show`
    and `status` print what they printed before, reading only; `resume` moves the world
    into the journal (world.sqlite is gone) and finishes with one upgrade per unit."""
    state_dir = _paused(tmp_path)
    shown = nsxt("sim", "show", "--state-dir", state_dir, "--format", "json")
    status = nsxt("status", "--state-dir", state_dir, "--format", "json")
    world_apart(state_dir)
    assert world_in(state_dir) == WorldPlace.alone(state_dir)
    before = {p.name: p.read_bytes() for p in state_dir.iterdir() if p.is_file()}
    again = nsxt("sim", "show", "--state-dir", state_dir, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(shown.stdout)
    old_status = nsxt("status", "--state-dir", state_dir, "--format", "json")
    assert old_status.returncode == 0, old_status.stderr
    assert json.loads(old_status.stdout) == json.loads(status.stdout)
    assert {p.name: p.read_bytes() for p in state_dir.iterdir() if p.is_file()} == before
    resumed = nsxt("resume", "--state-dir", state_dir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert not (state_dir / FILENAME).exists()
    assert world_in(state_dir) == WorldPlace.in_journal(state_dir)
    _one_upgrade_each(state_dir)


def test_a_killed_run_of_the_previous_layout_resumes(tmp_path: Path) -> None:
    """Killed mid-run (after its 6th commit), rewritten in the previous layout: resume
    reconciles what was in flight and finishes with one upgrade per unit."""
    state_dir = tmp_path / "state"
    killed = nsxt("run", LAB, "--yes", "--state-dir", state_dir, env={CRASH_ENV: "6"})
    assert killed.returncode == -9
    world_apart(state_dir)
    resumed = nsxt("resume", "--state-dir", state_dir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _one_upgrade_each(state_dir)


def test_world_in_says_where_and_whether_it_can_be_read(tmp_path: Path) -> None:
    """No world; a journal without one; a damaged world.sqlite (a world, with its problem);
    world.sqlite first when both are there (a move into the journal cut short)."""
    assert world_in(tmp_path) is None
    with Journal.open(tmp_path):
        pass
    assert world_in(tmp_path) is None
    (tmp_path / FILENAME).write_bytes(b"not a database" * 100)
    place = world_in(tmp_path)
    assert place is not None and not place.joint and place.problem
    (tmp_path / FILENAME).unlink()
    empty = sqlite3.connect(tmp_path / "journal.sqlite")
    empty.execute("CREATE TABLE world_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    empty.execute("CREATE TABLE world_rows(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    empty.commit()
    assert world_in(tmp_path) is None  # tables, but no world stored in them yet
    empty.execute("INSERT INTO world_meta VALUES('state', '{}')")
    empty.commit()
    empty.close()
    assert world_in(tmp_path) == WorldPlace.in_journal(tmp_path)


@pytest.mark.parametrize("group", ["0", ""])
def test_a_virtual_run_writes_its_world_only_in_the_batch_commits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: str) -> None:
    """A virtual-clock `run`: the world's own transactions are its creation and the close
    (the clock); every batch's world changes go in the journal's transaction of that
    batch (GROUP_ENV 0) or of its group (by default: once per group)."""
    from click.testing import CliRunner

    from upgrade.cli.main import cli
    from upgrade.sim.store import WorldStore

    own: list[bool] = []
    joint: list[bool] = []
    flush, append = WorldStore.flush, Journal.append

    def counted_flush(self: WorldStore, *args: Any, **kwargs: Any) -> None:
        own.append(bool(self.writes(*args, **kwargs)))
        flush(self, *args, **kwargs)

    def counted_append(self: Journal, records: Any, also: Any = None,
                       **kwargs: Any) -> list[int]:
        joint.append(also is not None)
        return append(self, records, also=also, **kwargs)

    monkeypatch.setattr(WorldStore, "flush", counted_flush)
    monkeypatch.setattr(Journal, "append", counted_append)
    monkeypatch.setenv(GROUP_ENV, group)
    done = CliRunner().invoke(cli, ["run", str(LAB), "--yes", "--state-dir",
                                    str(tmp_path / "state")])
    assert done.exit_code == 0, done.output
    assert sum(own) <= 2  # the new world, and the clock at the close
    # the batches that changed the world, each in the journal's, or the groups
    assert sum(joint) >= 20 if group == "0" else 1 <= sum(joint) <= 3
