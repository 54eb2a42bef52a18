"""The single-runner lock of a state directory.

The lock is ``flock`` on ``state_dir/lock``; the kernel drops it when its holder dies,
so a crashed runner never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from upgrade.errors import LockedError

LOCK_FILE = "lock"


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds a state directory's lock, as the holder wrote it."""

    pid: int | None
    owner: str


class RunnerLock:
    """The single-runner lock of a state directory (``flock`` on ``state_dir/lock``).

    The kernel releases it when the holding process exits or is killed. The file
    descriptor is not inherited by child processes (``O_CLOEXEC``).
    """

    def __init__(self, fd: int, path: Path) -> None:
        """Wrap a locked descriptor; use :meth:`RunnerLock.acquire` instead."""
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, state_dir: Path, owner: str) -> RunnerLock:
        """Take the lock without waiting and record this process's PID and ``owner``.

        Raises :class:`LockedError` naming the holder when another process holds it.
        """
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            for attempt in range(5):  # a few tries: holder() probes with a brief shared lock
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == 4:
                        raise
                    time.sleep(0.01)
        except BlockingIOError:
            os.close(fd)
            holder = cls.holder(state_dir) or LockHolder(None, "unknown")
            who = "pid unknown" if holder.pid is None else f"pid {holder.pid}"
            raise LockedError(
                f"another nsxt-upgrade ({who}: {holder.owner}) holds the lock on {state_dir}; "
                f"wait for it, or stop it with `nsxt-upgrade pause --state-dir {state_dir}`"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        text = json.dumps({"pid": os.getpid(), "owner": owner}) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
        return cls(fd, path)

    @staticmethod
    def holder(state_dir: Path) -> LockHolder | None:
        """Who holds the lock of ``state_dir`` now, or None if nobody does."""
        path = Path(state_dir) / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                return None  # nobody holds it (our shared lock goes with the fd)
            for _ in range(50):  # the holder writes its name just after locking
                try:
                    data = json.loads(os.pread(fd, 4096, 0))
                    return LockHolder(int(data["pid"]), str(data["owner"]))
                except (ValueError, KeyError, TypeError):
                    time.sleep(0.01)
            return LockHolder(None, "unknown")
        finally:
            os.close(fd)

    def release(self) -> None:
        """Release the lock; releasing twice is harmless."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
