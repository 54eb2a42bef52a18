"""Operator features at their edges (issue 21 items 5, 8 and 15), through the real CLI.

An absurd `--start-at`; `--events` paths that are missing, dangling, a FIFO or under a
file; `status | head` with the reader gone; reading commands leaving `-wal`/`-shm`
files behind; Ctrl-C while planning; the simulated world locked under a running run.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.run_support import ENV, LAB, command, nsxt, spawn, status_json, world

# -- item 5: --start-at ------------------------------------------------------------------------

ABSURD = ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"]


@pytest.mark.parametrize("start_at", ABSURD)
def test_an_absurd_start_at_is_exit_2_and_writes_nothing(start_at: str,
                                                          tmp_path: Path) -> None:
    """`plan`/`run --start-at 9999-12-31T23:59:59+00:00` used to end in a "year 10000 is
    out of range" traceback, `run` leaving journal.sqlite, lock and run.log behind."""
    planned = nsxt("plan", LAB, "--start-at", start_at)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "out of range" in planned.stderr and "Traceback" not in planned.stderr
    state_dir = tmp_path / "state"
    run = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--start-at", start_at)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "out of range" in run.stderr and "Traceback" not in run.stderr
    assert not state_dir.exists()


def test_the_latest_start_at_accepted_still_runs(tmp_path: Path) -> None:
    """The range's far end is usable: a rehearsal starting in 8999 plans and runs."""
    start_at = "8999-12-31T23:59:59+00:00"
    assert nsxt("plan", LAB, "--start-at", start_at).returncode == 0
    run = nsxt("run", LAB, "--yes", "--state-dir", tmp_path / "s", "--start-at", start_at)
    assert run.returncode == 0, run.stdout + run.stderr


# -- item 8: --events paths --------------------------------------------------------------------


def _events_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (the --events path, part of the refusal)."""
    a_file = tmp_path / "lab.yaml"
    a_file.write_text("name: x\n", encoding="utf-8")
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "nowhere" / "ev.jsonl")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {
        "missing-directory": (tmp_path / "missing" / "dir" / "ev.jsonl", "does not exist"),
        "dangling-link": (dangling, "symbolic link"),
        "fifo-without-reader": (fifo, "FIFO that no process reads"),
        "under-a-file": (a_file / "x", "is a file, not a directory"),
    }


@pytest.mark.parametrize("name", ["missing-directory", "dangling-link", "fifo-without-reader",
                                  "under-a-file"])
def test_an_events_path_that_would_surprise_is_refused(name: str, tmp_path: Path) -> None:
    """`run`/`resume --events PATH`: exit 2, one line, before anything runs; no directory
    or file is created (they were, silently), a FIFO does not block ("File exists" for a
    file as the parent before)."""
    path, fragment = _events_cases(tmp_path)[name]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    state_dir = tmp_path / "state"
    run = nsxt("run", LAB, "--yes", "--state-dir", state_dir, "--events", path, timeout=30)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.count("\n") == 1 and fragment in run.stderr, run.stderr
    assert not state_dir.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    done = tmp_path / "done"
    assert nsxt("run", LAB, "--yes", "--state-dir", done).returncode == 0
    resumed = nsxt("resume", "--state-dir", done, "--events", path, timeout=30)
    assert resumed.returncode == 2 and fragment in resumed.stderr, resumed.stderr


def test_events_into_a_fifo_with_a_reader(tmp_path: Path) -> None:
    """A FIFO some process reads is a stream like a file: every line reaches the reader."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    time.sleep(0.2)
    run = nsxt("run", LAB, "--yes", "--state-dir", tmp_path / "s", "--events", fifo)
    reader.join(timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = got[0].decode().splitlines()
    assert sum('"unit_done"' in line for line in lines) == 8


# -- item 15: status | head, -wal/-shm left behind --------------------------------------------


@pytest.fixture(scope="module")
def done_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished lab run's state dir."""
    state_dir = tmp_path_factory.mktemp("done") / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state_dir).returncode == 0
    return state_dir


READERS = [("status",), ("status", "--format", "json"), ("report", "--format", "markdown"),
           ("verify",)]


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_a_reader_that_goes_away_is_not_a_failure(args: tuple[str, ...],
                                                   done_run: Path) -> None:
    """`status | head` with the pipe closed before status writes: click made it exit 1
    ("failed"); it exits 0 with nothing on stderr."""
    proc = subprocess.Popen(command(*args, "--state-dir", done_run), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    code = proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert code == 0, err
    assert err == ""


def test_history_whose_reader_goes_away(done_run: Path) -> None:
    """`history | head`, likewise."""
    proc = subprocess.Popen(command("history", "--root", done_run.parent),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_reading_commands_leave_no_wal_or_shm(done_run: Path, tmp_path: Path) -> None:
    """In a writable state dir, status, report, history, verify and sim show used to leave
    empty journal.sqlite-wal/-shm (and world.sqlite-wal/-shm) files behind."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    for path in done_run.iterdir():
        if not path.name.endswith(("-wal", "-shm")):
            (state_dir / path.name).write_bytes(path.read_bytes())
    before = {p.name: p.read_bytes() for p in state_dir.iterdir()}
    for args in (("status", "--state-dir", state_dir),
                 ("status", "--state-dir", state_dir, "--format", "json"),
                 ("report", "--state-dir", state_dir, "--format", "json"),
                 ("history", "--root", state_dir), ("verify", "--state-dir", state_dir),
                 ("sim", "show", "--state-dir", state_dir, "--format", "json")):
        assert nsxt(*args).returncode == 0, args
        after = {p.name: p.read_bytes() for p in state_dir.iterdir()}
        assert after == before, (args, sorted(set(after) ^ set(before)))


def test_a_live_runners_wal_stays(tmp_path: Path) -> None:
    """Beside a live runner (its -wal there), status reads without touching the files."""
    state_dir = tmp_path / "state"
    runner = spawn("run", LAB, "--yes", "--state-dir", state_dir, "--speed", "600")
    try:
        deadline = time.monotonic() + 30
        while not (state_dir / "journal.sqlite-wal").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status_json(state_dir)["state"] in ("running", "not_started")
        assert (state_dir / "journal.sqlite-wal").exists()
    finally:
        runner.send_signal(signal.SIGINT)
        runner.communicate(timeout=60)


# -- item 15: Ctrl-C while planning ------------------------------------------------------------


def test_ctrl_c_while_planning_is_one_line(tmp_path: Path) -> None:
    """Ctrl-C while `plan` or `run` is still reading the inventory from a manager (here
    one that accepts the connection and never answers): one line saying nothing was
    changed, exit 1, instead of click's bare "Aborted!"; run writes no state dir."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    silent.settimeout(30)
    port = silent.getsockname()[1]
    (tmp_path / "x.mub").write_bytes(b"bundle")
    playbook = tmp_path / "silent.yaml"
    playbook.write_text(
        'name: silent\ntarget_version: "2.3.0.0"\nbundle: {path: x.mub}\n'
        f'inventory: {{adapter: nsxt, manager: "https://127.0.0.1:{port}", insecure: true}}\n'
        'compatibility: {pks: "1.2.0", opsman: "2.3.1"}\n', encoding="utf-8")
    env = {**ENV, "NSXT_USERNAME": "admin", "NSXT_PASSWORD": "not-printed"}
    state_dir = tmp_path / "state"
    try:
        for args in (("plan", playbook), ("run", playbook, "--yes", "--state-dir", state_dir)):
            proc = subprocess.Popen(command(*args), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env)
            connection, _ = silent.accept()  # it is discovering the inventory now
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            connection.close()
            assert proc.returncode == 1, (args[0], out, err)
            assert "Aborted!" not in err and "Traceback" not in err
            assert err.splitlines()[-1] == ("interrupted while planning (Ctrl-C): nothing was "
                                            "written or changed")
            assert "not-printed" not in out + err
        assert not state_dir.exists()
    finally:
        silent.close()


# -- item 15: the world locked or damaged under a running run -----------------------------------


def test_a_world_locked_under_a_running_run(tmp_path: Path) -> None:
    """Another process holds the write lock of the database that keeps the world (the
    journal's, since the world moved into it) while a real-clock run goes on: the store's
    flush used to end in "Task exception was never retrieved" with an OperationalError
    traceback, then "the runner ran out of work". One line naming journal.sqlite, exit 1;
    once the lock is gone, resume finishes with one upgrade each."""
    from upgrade.sim.store import world_in

    state_dir = tmp_path / "state"
    runner = subprocess.Popen(command("run", LAB, "--yes", "--state-dir", state_dir,
                                      "--clock", "real", "--speed", "300"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=ENV, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while world_in(state_dir) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    holder = sqlite3.connect(state_dir / "journal.sqlite", isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN IMMEDIATE")
        out, err = runner.communicate(timeout=120)
    finally:
        holder.close()
    assert runner.returncode == 1, out + err
    assert "Traceback" not in err and "never retrieved" not in err, err
    assert len(err.splitlines()) == 1, err
    assert f"{state_dir / 'journal.sqlite'}: cannot write the " in err
    assert "database is locked" in err
    resumed = nsxt("resume", "--state-dir", state_dir, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert all(u["upgrade_count"] == 1 for u in world(state_dir)["units"])

