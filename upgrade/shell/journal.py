"""The durable journal of a run.

The journal is ``journal.sqlite`` in the state directory: SQLite in WAL mode with
``synchronous=FULL``, so a committed batch survives a crash of the process and of the
machine. It holds a ``meta`` key/value table (playbook copy, plan JSON, run state,
``started_at``) and the append-only ``records`` table of intents, outcomes and notes;
a simulated run keeps its world in the same database (:mod:`upgrade.sim.store`), written in
the transaction of the batch that changed it (:meth:`Journal.append`'s ``also``).
The journal never reads a clock: every time stamp is supplied by the caller.
The single-runner lock that guards it is :mod:`upgrade.shell.lock`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from math import isfinite
from pathlib import Path
from typing import Any, Self

from upgrade.errors import JournalError
from upgrade.jsonenc import compact_encoder
from upgrade.readonly import connect_readonly
from upgrade.shell.statedir import JOURNAL_FILE

__all__ = ["JOURNAL_FILE", "SCHEMA_VERSION", "Journal", "Record", "dump_payload"]

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE records (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at REAL NOT NULL,"
    " payload TEXT NOT NULL)",
)
#: snapshots of the engine's state (:mod:`upgrade.shell.replay`), each taken after record ``seq``;
#: added to older journals on open (readers that do not know it ignore it)
_SNAPSHOTS = ("CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY,"
              " payload TEXT NOT NULL)")


#: what to do about a journal that cannot be read
_UNREADABLE = ("this run cannot be read or resumed from it: restore the file from a backup, "
               "or start afresh with another --state-dir")


def _db_error(path: Path, exc: sqlite3.Error, doing: str) -> JournalError:
    """One line naming the file: corruption (``DatabaseError`` proper) or another fault."""
    if type(exc) is sqlite3.DatabaseError:  # SQLITE_CORRUPT / SQLITE_NOTADB: the bytes are bad
        return JournalError(f"{path}: not a journal ({exc}); {_UNREADABLE}")
    return JournalError(f"{path}: cannot {doing} the journal: {exc}")


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise _db_error(path, exc, "read") from exc


#: the journal's canonical text: sorted keys, no spaces, no NaN
_CANONICAL = compact_encoder(sort_keys=True, allow_nan=False)


def dump_payload(payload: Mapping[str, Any]) -> str:
    """Serialize a payload to its canonical JSON text (sorted keys, no spaces, no NaN)."""
    return _CANONICAL(payload)


@dataclass(frozen=True, slots=True)
class Record:
    """One journal record: an ``intent``, an ``outcome`` or a ``note``."""

    seq: int
    kind: str
    at: float
    payload: dict[str, Any]


class Journal:
    """An open journal. Use from one thread at a time; open one per process."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Wrap an already configured connection; use :meth:`Journal.open` instead."""
        self._conn = conn
        self.path = path
        #: True while a held transaction is open (:meth:`append` with ``hold``): what it
        #: wrote is visible to this connection only, and durable at :meth:`sync`
        self.holding = False
        #: the last seq written while holding (read once when the transaction opened)
        self._held_seq = 0

    @classmethod
    def open(cls, state_dir: Path, *, create: bool = True) -> Journal:
        """Open ``state_dir/journal.sqlite``, creating the directory and file if absent.

        With ``create=False`` a missing journal raises :class:`JournalError` instead.
        A file that is not a journal, or one written by a newer nsxt-upgrade, raises
        :class:`JournalError` naming the file.
        """
        path = Path(state_dir) / JOURNAL_FILE
        if not path.exists():
            if not create:
                raise JournalError(f"{path}: no journal here (nothing was run in this state dir)")
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _db_error(path, exc, "open") from exc
        try:
            cls._configure(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    @classmethod
    def open_readonly(cls, state_dir: Path) -> Journal:
        """Open ``state_dir/journal.sqlite`` for reading only, writing nothing in ``state_dir``.

        Works beside a live runner and on read-only storage (see :mod:`upgrade.readonly`).
        A missing file, or one that is not a journal, raises :class:`JournalError`.
        """
        path = Path(state_dir) / JOURNAL_FILE
        if not path.is_file():
            raise JournalError(f"{path}: no journal here (nothing was run in this state dir)")
        try:
            conn = connect_readonly(path)
        except sqlite3.Error as exc:
            raise _db_error(path, exc, "open") from exc
        try:
            with _reading(path):
                conn.execute("PRAGMA busy_timeout=10000")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = {row[0] for row in
                          conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"{path}: journal schema version {version} is newer than this "
                    f"nsxt-upgrade understands ({SCHEMA_VERSION}); use a newer nsxt-upgrade")
            if version != SCHEMA_VERSION or not {"meta", "records"} <= tables:
                raise JournalError(f"{path}: not an nsxt-upgrade journal "
                                   f"(schema version {version}, tables {sorted(tables)})")
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    @staticmethod
    def unwritten(state_dir: Path) -> bool:
        """True when ``state_dir``'s journal file has no schema yet: zero bytes, or a
        SQLite file with no table and ``user_version`` 0.  A run creating its journal
        leaves it so between ``PRAGMA journal_mode=WAL`` (which writes the file's header)
        and the schema's COMMIT, and a crash there leaves it so for good; :meth:`open`
        writes the schema into such a file.  Reads only."""
        path = Path(state_dir) / JOURNAL_FILE
        try:
            if path.stat().st_size == 0:
                return True
            conn = connect_readonly(path)
        except (OSError, sqlite3.Error):
            return False
        try:
            with _reading(path):
                conn.execute("PRAGMA busy_timeout=10000")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            return bool(version == 0 and tables == 0)
        except (sqlite3.Error, JournalError):
            return False
        finally:
            conn.close()

    @staticmethod
    def _configure(conn: sqlite3.Connection, path: Path) -> None:
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"{path}: SQLite refused WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = {
                    row[0]
                    for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                created = False
                if version == 0 and not tables:
                    for statement in _SCHEMA:  # not executescript: it would COMMIT
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    created = True
                elif version > SCHEMA_VERSION:
                    raise JournalError(
                        f"{path}: journal schema version {version} is newer than this "
                        f"nsxt-upgrade understands ({SCHEMA_VERSION}); use a newer nsxt-upgrade"
                    )
                elif version != SCHEMA_VERSION or not {"meta", "records"} <= tables:
                    raise JournalError(
                        f"{path}: not an nsxt-upgrade journal "
                        f"(schema version {version}, tables {sorted(tables)})"
                    )
                conn.execute(_SNAPSHOTS)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _db_error(path, exc, "open") from exc
        if created:  # make the new file's directory entry durable too
            _fsync_dir(path.parent)

    def close(self) -> None:
        """Close the journal; further use raises. Closing twice is harmless.

        A held transaction still open is dropped, as a crash would drop it: its holder
        commits it (with what else belongs in it, the simulated world's rows) or it was
        abandoned part-way."""
        self.holding = False
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self, hold: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed (one fsync) on success, rolled back otherwise.

        A held transaction (:meth:`append`'s ``hold``) open already is joined: this write
        and everything held before it commit together.  With ``hold`` the transaction
        stays open (see :meth:`append`).  An error rolls back everything the transaction
        held, as a crash would: a batch is never stored in part.
        """
        if not self.holding:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise JournalError(f"{self.path}: cannot write the journal: {exc}") from exc
            if hold:
                self.holding = True
                self._held_seq = -1
        try:
            yield self._conn
            if not hold:
                self.holding = False
                self._conn.execute("COMMIT")
        except BaseException as exc:  # part of a batch may be written: none of it stays
            self.holding = False
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _db_error(self.path, exc, "write") from exc
            raise

    def sync(self) -> bool:
        """Commit the held transaction, if any (one fsync); True if there was one."""
        if not self.holding:
            return False
        self.holding = False
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise _db_error(self.path, exc, "write") from exc
        return True

    def append(self, records: Sequence[tuple[str, float, Mapping[str, Any]]],
               also: Callable[[sqlite3.Connection], None] | None = None, *,
               hold: bool = False) -> list[int]:
        """Append ``(kind, at, payload)`` records in one transaction; return their seqs.

        Either every record of the batch is stored or none is: a payload that cannot be
        serialized (``TypeError``/``ValueError``) leaves the journal as it was.  ``also``
        writes more in the same transaction, first (the simulated world's changes of the
        batch, whose tables live in this database): one commit, one fsync, covers both.

        ``hold`` keeps the transaction open instead of committing it (group commit): the
        batch is durable only once :meth:`sync` (or any write without ``hold``) commits
        it with every batch held before it; a crash before that loses them all together.
        Only for writes whose effects stay inside this database (the simulated world):
        an intent whose action leaves the process must be committed before it runs.
        """
        if not records and also is None:
            return []
        dump = _CANONICAL  # may raise: nothing is written
        rows = [(kind, float(at), dump(payload)) for kind, at, payload in records]
        with self._write(hold) as conn:
            if also is not None:
                also(conn)
            held = hold and self._held_seq >= 0
            first = (self._held_seq if held else self._last_seq(conn)) + 1
            # seq is the rowid: SQLite gives a new row the largest one + 1, and the records
            # of an append-only journal are never deleted, so these rows get first, first+1...
            conn.executemany("INSERT INTO records (kind, at, payload) VALUES (?,?,?)", rows)
            if hold:
                self._held_seq = first + len(records) - 1
        return list(range(first, first + len(records)))

    def add_snapshot(self, seq: int, payload: Mapping[str, Any] | str, *,
                     hold: bool = False) -> None:
        """Store ``payload`` (or its JSON text), the engine's state after record ``seq``:
        durably, or in the held transaction with ``hold`` (see :meth:`append`)."""
        text = payload if isinstance(payload, str) else dump_payload(payload)
        with self._write(hold) as conn:
            conn.execute("INSERT OR REPLACE INTO snapshots (seq, payload) VALUES (?, ?)",
                         (seq, text))

    def snapshots(self, last: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
        """The stored snapshots as ``(seq, payload)`` in seq order (only the latest: ``last``)."""
        with _reading(self.path):
            if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                      "name='snapshots'").fetchone():
                return
            order = "DESC LIMIT 1" if last else "ASC"
            rows = self._conn.execute(
                f"SELECT seq, payload FROM snapshots ORDER BY seq {order}").fetchall()
        for seq, payload in rows:
            try:
                data = json.loads(payload)
            except (TypeError, ValueError, RecursionError) as exc:
                raise JournalError(f"{self.path}: not a journal (snapshot {seq} is not "
                                   f"JSON: {exc}); {_UNREADABLE}") from exc
            if not isinstance(data, dict):
                raise JournalError(f"{self.path}: the snapshot after journal record {seq} is "
                                   f"damaged (not a JSON object); {_UNREADABLE}")
            yield int(seq), data

    def records(self, after: int = 0) -> Iterator[Record]:
        """Stream the records with ``seq > after`` in seq order."""
        with _reading(self.path):
            cursor = self._conn.execute(
                "SELECT seq, kind, at, payload FROM records WHERE seq > ? ORDER BY seq", (after,)
            )
        cursor.arraysize = 1000
        loads = json.loads
        try:
            while True:
                with _reading(self.path):
                    rows = cursor.fetchmany()
                if not rows:
                    break
                for seq, kind, at, payload in rows:
                    try:
                        data = loads(payload)
                    except (TypeError, ValueError, RecursionError) as exc:
                        raise JournalError(f"{self.path}: not a journal (record {seq} is not "
                                           f"JSON: {exc}); {_UNREADABLE}") from exc
                    if type(data) is not dict or not _finite(at):
                        raise JournalError(f"{self.path}: journal record {seq} is damaged "
                                           f"({_damage(data, at)}); {_UNREADABLE}")
                    yield Record(seq, kind, at, data)
        finally:  # the journal may be closed already if the caller stopped early
            with contextlib.suppress(sqlite3.ProgrammingError):
                cursor.close()

    def set_meta(self, key: str, value: str) -> None:
        """Set one meta value (durably)."""
        self.set_meta_many({key: value})

    def set_meta_many(self, items: Mapping[str, str]) -> None:
        """Set several meta values in one transaction."""
        for key, value in items.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"meta keys and values are strings, not {key!r}: {value!r}")
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                items.items(),
            )

    def get_meta(self, key: str) -> str | None:
        """The meta value for ``key``, or None."""
        with _reading(self.path):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def count(self) -> int:
        """How many records the journal holds."""
        with _reading(self.path):
            return int(self._conn.execute("SELECT count(*) FROM records").fetchone()[0])

    def last_seq(self) -> int:
        """The seq of the last record, 0 for an empty journal."""
        with _reading(self.path):
            return self._last_seq(self._conn)

    @staticmethod
    def _last_seq(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0])


def _finite(at: object) -> bool:
    return isinstance(at, int | float) and isfinite(at)


def _damage(payload: object, at: object) -> str:
    """What is wrong with a record: its payload is not an object, or its time is not a
    finite number."""
    if type(payload) is not dict:
        return f"its payload is {type(payload).__name__}, not a JSON object"
    return f"its time is {at!r}, not a finite number of seconds"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
