"""The journey's journal: an append-only JSON-lines file, one fsynced record per line.

Every record is written with ``O_APPEND``, then ``fsync``; a kill -9 in the middle of a
write leaves at most one torn last line, which reading ignores and the next append cuts
off first.  Records (``type``):

* ``started``: the journey's path (its steps) and where it started from;
* ``step_started`` (an NSX-T hop is about to be run in its own state dir);
* ``step_ended`` with the hop's exit code (0 done, 1 failed, 3 paused, 4 refused);
* ``waiting`` (a gate: the operator was told what to do);
* ``confirmed``: a gate passed, with who confirmed it and the versions;
* ``refused``: what was observed at a gate is off the path or unsupported.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upgrade.errors import JournalError, LockedError
from upgrade.shell.lock import RunnerLock

JOURNAL = "journey.jsonl"


def now_iso() -> str:
    """The wall-clock time for a record, in UTC (ISO 8601, seconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class JourneyJournal:
    """The records of one journey's state directory."""

    state_dir: Path
    records: list[dict[str, Any]]

    @property
    def path(self) -> Path:
        """The journal file."""
        return self.state_dir / JOURNAL

    @classmethod
    def read(cls, state_dir: Path) -> JourneyJournal:
        """The journal in ``state_dir`` (empty when there is none); a torn last line is
        ignored, anything else unreadable is a JournalError naming the line."""
        path = state_dir / JOURNAL
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls(state_dir, [])
        lines = data.split(b"\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if number == len(lines):  # the last write was cut short: never completed
                    break
                raise JournalError(f"{path}:{number}: not a journal record") from None
            if not isinstance(record, dict) or "type" not in record:
                raise JournalError(f"{path}:{number}: not a journal record")
            records.append(record)
        return cls(state_dir, records)

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Write one record durably (the caller holds the journey's lock)."""
        record = {"type": kind, "at": now_iso(), **fields}
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            _cut_torn_tail(fd)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if len(self.records) == 0:
            _fsync_dir(self.state_dir)
        self.records.append(record)
        return record

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Every record of type ``kind``, in order."""
        return [r for r in self.records if r["type"] == kind]

    @property
    def started(self) -> dict[str, Any] | None:
        """The ``started`` record, or None before the journey began."""
        found = self.of_type("started")
        return found[0] if found else None


def _cut_torn_tail(fd: int) -> None:
    """Drop a last line without its newline (a write a kill cut short)."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return
    tail = os.pread(fd, min(size, 1 << 16), max(0, size - (1 << 16)))
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    keep = size - len(tail) + cut + 1 if cut >= 0 else 0
    os.ftruncate(fd, keep)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def journey_lock(state_dir: Path, owner: str) -> Iterator[None]:
    """The journey's single-runner lock (exit 5 naming the holder when taken)."""
    try:
        lock = RunnerLock.acquire(state_dir, owner)
    except LockedError:
        holder = RunnerLock.holder(state_dir)
        who = "pid unknown" if holder is None or holder.pid is None else f"pid {holder.pid}"
        raise LockedError(f"another nsxt-upgrade ({who}) is carrying out the journey in "
                          f"{state_dir}; wait for it (`nsxt-upgrade journey status` shows "
                          "where it stands)") from None
    try:
        yield
    finally:
        lock.release()


def lock_holder_pid(state_dir: Path) -> int | None:
    """The PID of a live journey runner in ``state_dir``, or None."""
    holder = RunnerLock.holder(state_dir)
    return None if holder is None else holder.pid
