"""Group commit of a virtual run of the simulated adapter (issue 23): batches held, one
commit per group.

The simulated world lives in the journal's database, so its writes are no effect outside
the process: a virtual-clock run holds its batches in one open transaction and commits
them together (:attr:`upgrade.shell.runner.Runner.group_records` records, or at the next
turn of the event loop).  A kill -9 rolls the world back with the journal; nothing is told
(notices, ``run.log``, ``--events``) before it is committed.  Properties:

* the journal and the world a grouped run leaves are byte for byte those of a run that
  commits every batch, in far fewer commits;
* kill -9 at random moments of grouped runs and their resumes: after every kill the
  world on disk holds exactly the starts the journal answered, and the end is one
  upgrade per unit, also with the kill inside a group's commit or right after it.
"""

from __future__ import annotations

import importlib.util
import json
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import ENV, LAB, ROOT, answered_starts, check_world, command, nsxt, world
from upgrade.inputs.inventory import load_inventory
from upgrade.shell import runner
from upgrade.shell.drive import CRASH_ENV, CRASH_IN_COMMIT_ENV, GROUP_ENV
from upgrade.shell.journal import Journal
from upgrade.sim.store import read_world, world_in


def _site(directory: Path, clusters: int, hosts_per: int) -> Path:
    """A generated site (the benchmarks' own) with ``clusters`` x ``hosts_per`` hosts."""
    spec = importlib.util.spec_from_file_location("bench_common",
                                                  ROOT / "benchmarks" / "common.py")
    assert spec is not None and spec.loader is not None
    common = importlib.util.module_from_spec(spec)  # a script folder, not a package
    spec.loader.exec_module(common)
    directory.mkdir(parents=True, exist_ok=True)
    playbook: Path = common.write_site(directory, clusters, hosts_per, 3)
    return playbook


def _world_attempts(state_dir: Path) -> Counter[tuple[str, str]]:
    """How many times the world on disk says each ``(unit, op)`` was started (read only);
    empty while no world is stored yet."""
    place = world_in(state_dir)
    if place is None:
        return Counter()
    stored = read_world(place, load_inventory(state_dir / "inventory.yaml"))
    assert stored is not None
    return Counter({key: n for key, n in stored.attempts.items() if n})


def _committed(state_dir: Path) -> int:
    """The records another process sees committed in the journal (0 before there is one)."""
    try:
        with Journal.open_readonly(state_dir) as journal:
            return journal.count()
    except Exception:  # not created yet, or its schema not committed yet
        return 0


def _one_upgrade_each(state_dir: Path) -> None:
    snapshot = world(state_dir)
    counts = {u["id"]: u["upgrade_count"] for u in snapshot["units"]}
    assert counts and set(counts.values()) == {1}, {u: n for u, n in counts.items() if n != 1}
    check_world(snapshot, json.loads((state_dir / "plan.json").read_text(encoding="utf-8")),
                load_inventory(state_dir / "inventory.yaml"))
    assert _world_attempts(state_dir) == answered_starts(state_dir)


def _dump(state_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(state_dir / "journal.sqlite")
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("records", "snapshots", "world_rows")}
    finally:
        conn.close()


def _count_commits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every COMMIT the runner's journal connection makes (in this process)."""
    commits: list[str] = []
    configure = Journal._configure

    def traced(conn: sqlite3.Connection, path: Path) -> None:
        configure(conn, path)
        conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    monkeypatch.setattr(Journal, "_configure", staticmethod(traced))
    return commits


def test_a_grouped_run_journals_what_a_run_committing_each_batch_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same site run with every batch committed alone and with groups: the journal
    (records and snapshots) and the world are the same bytes, the output the same lines;
    the grouped run commits a small fraction as often."""
    from click.testing import CliRunner

    from upgrade.cli.main import cli

    playbook = _site(tmp_path / "site", 2, 40)
    monkeypatch.setattr(runner, "TURN_S", 3600.0)  # no commit at a turn: counts by records
    outputs, commits, dumps = [], [], []
    for group in ("0", "500"):
        monkeypatch.setenv(GROUP_ENV, group)
        counted = _count_commits(monkeypatch)
        state_dir = tmp_path / f"state-{group}"
        done = CliRunner().invoke(cli, ["run", str(playbook), "--yes", "--state-dir",
                                        str(state_dir)])
        assert done.exit_code == 0, done.output
        outputs.append(done.output)
        commits.append(len(counted))
        dumps.append(_dump(state_dir))
        log = (state_dir / "run.log").read_text(encoding="utf-8").splitlines()
        outputs.append("\n".join(json.dumps({k: v for k, v in json.loads(line).items()
                                             if k != "timestamp"}) for line in log))
    assert dumps[0] == dumps[1]
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3]
    records = len(dumps[0]["records"])
    # each batch alone: more than a commit per ten records; grouped: one per 500 records,
    # and the few writes that are no batch (the start, the first event, the end)
    assert commits[0] > records // 10 and commits[1] <= records // 500 + 8, (commits, records)


@pytest.mark.parametrize("kill_at", [1, 3, 6])
@pytest.mark.parametrize("crash_env", [CRASH_ENV, CRASH_IN_COMMIT_ENV])
def test_a_kill_at_a_group_commit_leaves_world_and_journal_together(
        tmp_path: Path, kill_at: int, crash_env: str) -> None:
    """Groups of 8 records: kill -9 inside the kill_at-th group's commit (after every
    batch of it, before its COMMIT) or right after it; world and journal agree, and the
    resume finishes with one upgrade per unit."""
    state_dir = tmp_path / "state"
    killed = nsxt("run", LAB, "--yes", "--state-dir", state_dir,
                  env={crash_env: str(kill_at), GROUP_ENV: "8"})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert _world_attempts(state_dir) == answered_starts(state_dir)
    resumed = nsxt("resume", "--state-dir", state_dir, env={GROUP_ENV: "8"})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _one_upgrade_each(state_dir)


def _kill_when(proc: subprocess.Popen[str], state_dir: Path, records: int,
               extra: float) -> bool:
    """SIGKILL ``proc`` ``extra`` s after the journal shows ``records`` committed records;
    False when it ended first."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and _committed(state_dir) < records \
            and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(extra)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_kills_of_grouped_runs_upgrade_every_unit_once(tmp_path: Path,
                                                             seed: int) -> None:
    """A 500-host site run and resumed with groups (the default size and small ones),
    each process SIGKILLed at a random moment of its run (after a random number of
    committed records, plus up to 10 ms): after every kill the world on disk holds exactly
    the starts the journal answered; in the end every unit is upgraded exactly once, and
    the ``--events`` file every process appended to has one unit_done per unit (no line
    was written for a batch a kill rolled back)."""
    rng = random.Random(seed)
    playbook = _site(tmp_path / "site", 5, 100)
    state_dir, events = tmp_path / "state", tmp_path / "events.jsonl"
    argv: list[str | Path] = ["run", playbook, "--yes", "--state-dir", state_dir,
                              "--events", events]
    kills = 0
    for _ in range(5):
        group = rng.choice(["", "50", "300"])
        env = {**ENV, GROUP_ENV: group} if group else ENV
        proc = subprocess.Popen(command(*argv), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, env=env)
        try:
            killed = _kill_when(proc, state_dir, _committed(state_dir) + rng.randint(1, 2500),
                                rng.uniform(0, 0.01))
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate(timeout=30)
        if not killed:
            assert proc.returncode == 0, err
            break
        kills += 1
        assert _world_attempts(state_dir) == answered_starts(state_dir)
        argv = ["resume", "--state-dir", state_dir, "--events", events]
    else:
        done = nsxt(*argv, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    assert kills >= 1
    _one_upgrade_each(state_dir)
    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    done = Counter(line["unit"] for line in lines if line["type"] == "unit_done")
    units = {u["id"] for u in world(state_dir)["units"]}
    assert done == dict.fromkeys(units, 1)
    assert [line["type"] for line in lines].count("run_done") == 1
    status = nsxt("status", "--state-dir", state_dir, "--format", "json")
    assert json.loads(status.stdout)["state"] == "done"


def test_a_resume_of_a_done_run_writes_the_lines_a_kill_after_its_last_commit_lost(
        tmp_path: Path) -> None:
    """A group's steps are told after its commit: a kill after the run's last commit loses
    their lines (here: cut from the file).  `resume --events` into the same file of the
    run, which is done, writes them and says there is nothing to resume."""
    state_dir, events = tmp_path / "state", tmp_path / "events.jsonl"
    done = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--events", events)
    assert done.returncode == 0, done.stdout + done.stderr
    whole = events.read_text(encoding="utf-8").splitlines()
    assert any('"unit_done"' in line for line in whole[-8:])
    events.write_text("\n".join(whole[:-8]) + "\n", encoding="utf-8")
    again = nsxt("resume", "--state-dir", state_dir, "--events", events)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already done" in again.stdout
    assert events.read_text(encoding="utf-8").splitlines() == whole
