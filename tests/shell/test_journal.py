"""The journal: round trip, atomic batches, schema check, pragmas, lock, crash safety."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from upgrade.errors import JournalError, LockedError
from upgrade.shell.journal import JOURNAL_FILE, Journal, Record
from upgrade.shell.lock import RunnerLock

ROOT = Path(__file__).resolve().parents[2]


def spawn(code: str, state_dir: Path) -> subprocess.Popen[str]:
    """A Python child running ``code`` with ``sys.argv[1]`` = state_dir."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(state_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a child and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def test_round_trip(tmp_path: Path) -> None:
    state = tmp_path / "state" / "lab"
    with Journal.open(state) as journal:
        assert (journal.count(), journal.last_seq(), list(journal.records())) == (0, 0, [])
        assert journal.append([]) == []
        seqs = journal.append(
            [("intent", 1.5, {"unit": "esx-01", "action": "upgrade"}), ("note", 2, {})]
        )
        assert seqs == [1, 2]
        assert journal.append([("outcome", 3.0, {"unit": "esx-01", "ok": True})]) == [3]
        journal.set_meta("started_at", "2024-05-01T10:00:00+00:00")
        journal.set_meta_many({"plan": '{"phases":[]}', "state": "running"})
        journal.set_meta("state", "paused")
    with Journal.open(state, create=False) as journal:
        assert journal.count() == 3
        assert journal.last_seq() == 3
        assert list(journal.records()) == [
            Record(1, "intent", 1.5, {"action": "upgrade", "unit": "esx-01"}),
            Record(2, "note", 2.0, {}),
            Record(3, "outcome", 3.0, {"ok": True, "unit": "esx-01"}),
        ]
        assert [r.seq for r in journal.records(after=2)] == [3]
        assert journal.get_meta("state") == "paused"
        assert journal.get_meta("plan") == '{"phases":[]}'
        assert journal.get_meta("missing") is None
    raw = sqlite3.connect(state / JOURNAL_FILE)
    try:  # canonical payload bytes: sorted keys, no spaces
        payload = raw.execute("SELECT payload FROM records WHERE seq = 1").fetchone()[0]
    finally:
        raw.close()
    assert payload == '{"action":"upgrade","unit":"esx-01"}'


def test_many_records_stream_in_order(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        for start in range(0, 5000, 100):
            journal.append([("intent", float(i), {"i": i}) for i in range(start, start + 100)])
        assert [r.payload["i"] for r in journal.records()] == list(range(5000))
        assert next(journal.records(after=4999)).seq == 5000
        unfinished = journal.records()
        assert next(unfinished).seq == 1
    del unfinished  # an iterator outliving its journal is dropped quietly


@pytest.mark.parametrize("bad", [object(), math.nan])
def test_failed_batch_stores_nothing(tmp_path: Path, bad: object) -> None:
    with Journal.open(tmp_path) as journal:
        journal.append([("intent", 0.0, {"n": 0})])
        batch: list[tuple[str, float, dict[str, object]]] = [
            ("intent", 1.0, {"n": 1}),
            ("intent", 2.0, {"n": 2}),
            ("intent", 3.0, {"x": bad}),
        ]
        with pytest.raises((TypeError, ValueError)):
            journal.append(batch)
        assert journal.count() == 1
        assert journal.append([("outcome", 4.0, {"n": 4})]) == [2]
    with Journal.open(tmp_path) as journal:
        assert [r.payload for r in journal.records()] == [{"n": 0}, {"n": 4}]


def test_meta_values_must_be_strings(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        with pytest.raises(TypeError):
            journal.set_meta_many({"a": "1", "b": 2})  # type: ignore[dict-item]
        assert journal.get_meta("a") is None


def test_pragmas_are_set(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        conn = journal._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Journal.open(tmp_path).close()
    raw = sqlite3.connect(tmp_path / JOURNAL_FILE)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(JournalError, match="schema version 99 is newer") as info:
        Journal.open(tmp_path)
    assert str(tmp_path / JOURNAL_FILE) in str(info.value)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    raw = sqlite3.connect(other / JOURNAL_FILE)
    raw.execute("CREATE TABLE t (x)")
    raw.close()
    with pytest.raises(JournalError, match="not an nsxt-upgrade journal"):
        Journal.open(other)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / JOURNAL_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match=str(garbage / JOURNAL_FILE)):
        Journal.open(garbage)
    with pytest.raises(JournalError, match="no journal here"):
        Journal.open(tmp_path / "empty", create=False)
    assert not (tmp_path / "empty").exists()


HOLD_LOCK = """
    import sys
    from pathlib import Path
    from upgrade.shell.lock import RunnerLock
    lock = RunnerLock.acquire(Path(sys.argv[1]), "nsxt-upgrade run lab.yaml")
    print("locked", flush=True)
    sys.stdin.read()
    lock.release()
"""


def test_lock_contention_names_the_holder(tmp_path: Path) -> None:
    proc = spawn(HOLD_LOCK, tmp_path)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "locked\n"
        with pytest.raises(LockedError) as info:
            RunnerLock.acquire(tmp_path, "nsxt-upgrade resume")
        message = str(info.value)
        assert f"pid {proc.pid}: nsxt-upgrade run lab.yaml" in message
        assert f"nsxt-upgrade pause --state-dir {tmp_path}" in message
        assert info.value.exit_code == 5
        holder = RunnerLock.holder(tmp_path)
        assert holder is not None
        assert (holder.pid, holder.owner) == (proc.pid, "nsxt-upgrade run lab.yaml")
        proc.communicate("", timeout=10)  # the child releases and exits
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            kill(proc)
    assert RunnerLock.holder(tmp_path) is None
    with RunnerLock.acquire(tmp_path, "nsxt-upgrade resume"):
        assert RunnerLock.holder(tmp_path) is not None


def test_lock_is_freed_when_holder_is_killed(tmp_path: Path) -> None:
    proc = spawn(HOLD_LOCK, tmp_path)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    kill(proc)
    lock = RunnerLock.acquire(tmp_path, "nsxt-upgrade resume")
    holder = RunnerLock.holder(tmp_path)
    assert holder is not None
    assert (holder.pid, holder.owner) == (os.getpid(), "nsxt-upgrade resume")
    lock.release()
    lock.release()
    assert RunnerLock.holder(tmp_path) is None


def test_lock_in_one_process(tmp_path: Path) -> None:
    with (
        RunnerLock.acquire(tmp_path, "first"),
        pytest.raises(LockedError, match=f"pid {os.getpid()}: first"),
    ):
        RunnerLock.acquire(tmp_path, "second")
    with RunnerLock.acquire(tmp_path, "third"):
        pass


def test_committed_batch_survives_sigkill(tmp_path: Path) -> None:
    proc = spawn(
        """
        import sys, time
        from pathlib import Path
        from upgrade.shell.journal import Journal
        journal = Journal.open(Path(sys.argv[1]))
        journal.set_meta("state", "running")
        journal.append([("intent", 1.0, {"unit": "esx-01"}), ("intent", 1.0, {"unit": "esx-02"})])
        print("ok", flush=True)
        time.sleep(60)
        """,
        tmp_path,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ok\n"
    kill(proc)
    with Journal.open(tmp_path) as journal:
        assert [r.payload["unit"] for r in journal.records()] == ["esx-01", "esx-02"]
        assert journal.get_meta("state") == "running"


def test_no_partial_batch_after_sigkill_mid_stream(tmp_path: Path) -> None:
    proc = spawn(
        """
        import sys
        from pathlib import Path
        from upgrade.shell.journal import Journal
        journal = Journal.open(Path(sys.argv[1]))
        while True:
            seqs = journal.append([("intent", 0.0, {"pad": "x" * 500, "i": i}) for i in range(7)])
            print(seqs[-1], flush=True)
        """,
        tmp_path,
    )
    assert proc.stdout is not None
    acknowledged = [int(proc.stdout.readline()) for _ in range(30)]
    kill(proc)
    with Journal.open(tmp_path) as journal:
        count = journal.count()
        assert count % 7 == 0
        assert count >= acknowledged[-1]
        assert [r.seq for r in journal.records()] == list(range(1, count + 1))


def _seen_elsewhere(state_dir: Path) -> int:
    with Journal.open_readonly(state_dir) as other:
        return other.count()


def test_held_appends_are_durable_together_at_sync(tmp_path: Path) -> None:
    """Group commit: held appends get their seqs at once but another process sees them only
    once `sync` (or any write without hold) commits them, all together."""
    journal = Journal.open(tmp_path)
    assert journal.append([("event", 1.0, {"n": 1})]) == [1]
    assert journal.append([("event", 2.0, {"n": 2})], hold=True) == [2]
    assert journal.append([("action", 2.0, {"n": 3}), ("event", 3.0, {"n": 4})],
                          hold=True) == [3, 4]
    journal.add_snapshot(4, {"engine": {}}, hold=True)
    assert journal.holding and _seen_elsewhere(tmp_path) == 1
    assert journal.sync() and not journal.holding and not journal.sync()
    assert _seen_elsewhere(tmp_path) == 4
    assert journal.append([("event", 4.0, {"n": 5})], hold=True) == [5]
    journal.set_meta("k", "v")  # a write without hold commits what is held with it
    assert not journal.holding and _seen_elsewhere(tmp_path) == 5
    assert [r.payload["n"] for r in journal.records()] == [1, 2, 3, 4, 5]
    assert [seq for seq, _ in journal.snapshots()] == [4]
    journal.close()


def test_a_failed_or_abandoned_held_group_leaves_nothing(tmp_path: Path) -> None:
    """A write that fails in a held group rolls back the whole group (a batch is never
    stored in part); a group still held at close is dropped, as a crash would drop it."""
    journal = Journal.open(tmp_path)
    journal.append([("event", 1.0, {"n": 1})], hold=True)

    def world(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS w (k TEXT)")
        conn.execute("INSERT INTO w VALUES ('x')")
        raise RuntimeError("the world's writes failed")

    with pytest.raises(RuntimeError):
        journal.append([("event", 2.0, {"n": 2})], also=world, hold=True)
    assert not journal.holding and journal.count() == 0
    journal.append([("event", 3.0, {"n": 3})], hold=True)
    journal.close()
    with Journal.open(tmp_path) as again:
        assert again.count() == 0
        assert again.append([("event", 4.0, {"n": 4})]) == [1]
