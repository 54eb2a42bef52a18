"""Keep a :class:`~upgrade.sim.world.World` in the state directory so it outlives the orchestrator.

The world is one row per unit, VM and operation (table ``world_rows``) plus its clock and
target (``world_meta``), and only the rows a call changed are written.  Where it lives:

* a run's state directory: in the journal's own database (``journal.sqlite``), so that a
  virtual-clock runner writes a batch's world changes and journals the batch's outcomes
  in ONE transaction (:meth:`WorldStore.writes`, handed to
  :meth:`upgrade.shell.journal.Journal.append`): one durable commit per batch, and after
  a crash the world is never behind (nor ahead of) the journal.  Between batches (a
  real-clock run) the store commits on its own connection with ``synchronous=NORMAL``:
  those frames go to the same WAL file ahead of the journal's next ``FULL`` commit, whose
  fsync makes them durable too, so the world is never behind the journal either;
* the emulator's and a fleet site's state directory, which have no ``journal.sqlite``,
  and runs of earlier versions: ``world.sqlite`` alone, with the tables ``meta`` and
  ``rows`` (the previous layout, still read and written where it is found).

:func:`world_in` is the one answer to "does this state directory hold a world, where,
and can it be read".
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upgrade.core.model import Inventory, Op, UnitKind
from upgrade.core.versions import Version
from upgrade.errors import InputError, JournalError
from upgrade.inputs.inventory import load_inventory
from upgrade.jsonenc import compact_encoder
from upgrade.readonly import connect_readonly
from upgrade.sim.records import OpRecord, UnitRecord, VmRecord
from upgrade.sim.world import World

#: the world alone (the emulator, a fleet site, runs of earlier versions)
FILENAME = "world.sqlite"
#: a run's journal (:data:`upgrade.shell.statedir.JOURNAL_FILE`), which holds its world
JOINT_FILE = "journal.sqlite"
SCHEMA = 2
#: rows as ``json.dumps(row, separators=(",", ":"))`` writes them
_compact = compact_encoder()


@dataclass(frozen=True)
class WorldPlace:
    """Where a state directory keeps its world."""

    #: the database file: ``journal.sqlite`` (joint) or ``world.sqlite`` (alone)
    path: Path
    #: True when the world's tables are in the run's journal database
    joint: bool
    #: why the world cannot be read (None: it can)
    problem: str | None = None

    @property
    def meta(self) -> str:
        """The table of the world's clock, target and schema."""
        return "world_meta" if self.joint else "meta"

    @property
    def rows(self) -> str:
        """The table of the world's units, VMs, operations and attempts."""
        return "world_rows" if self.joint else "rows"

    @classmethod
    def alone(cls, state_dir: Path) -> WorldPlace:
        """``world.sqlite`` in ``state_dir`` (the emulator's, a fleet site's, earlier runs')."""
        return cls(Path(state_dir) / FILENAME, joint=False)

    @classmethod
    def in_journal(cls, state_dir: Path) -> WorldPlace:
        """The tables in ``state_dir``'s ``journal.sqlite`` (a run's)."""
        return cls(Path(state_dir) / JOINT_FILE, joint=True)


def world_in(state_dir: Path) -> WorldPlace | None:
    """Where ``state_dir`` keeps a simulated world, None when it holds none (reads only).

    ``world.sqlite`` (the previous layout, the emulator's, a fleet site's) counts as a
    world whatever it holds, as before; its ``problem`` says when it cannot be read.
    Otherwise the world is the ``world_*`` tables of ``journal.sqlite`` once they hold
    a stored world; a journal that cannot be read holds none here (the journal's own
    readers report it).
    """
    alone = WorldPlace.alone(state_dir)
    if alone.path.is_file():
        try:
            _stored(alone)
        except sqlite3.Error as exc:
            return WorldPlace(alone.path, joint=False, problem=str(exc))
        return alone
    joint = WorldPlace.in_journal(state_dir)
    if not joint.path.is_file() or joint.path.stat().st_size == 0:
        return None
    try:
        return joint if _stored(joint) else None
    except sqlite3.Error:
        return None


def _stored(place: WorldPlace) -> bool:
    """True when ``place`` holds a stored world; raises ``sqlite3.Error`` when unreadable."""
    conn = connect_readonly(place.path)
    try:
        tables = {row[0] for row in
                  conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if place.meta not in tables or place.rows not in tables:
            if not place.joint and not tables:
                return False  # an empty world.sqlite: created, never written
            if not place.joint:
                raise sqlite3.DatabaseError(f"no tables {place.meta!r} and {place.rows!r}")
            return False
        return conn.execute(f"SELECT 1 FROM {place.meta} WHERE key='state'").fetchone() \
            is not None
    finally:
        conn.close()


def world_rows(place: WorldPlace) -> list[tuple[str, str]]:
    """Every stored row of the world at ``place`` as ``(key, JSON)``, read only (for what
    a state directory shows was done to its target); raises ``sqlite3.Error``."""
    return _read_all(place, place.rows)


def drop_world(state_dir: Path) -> None:
    """Remove the world an interrupted start left (a start clears it only when no run ever
    touched it): ``world.sqlite`` and its WAL files, and the journal's ``world_*`` tables."""
    for name in (FILENAME, f"{FILENAME}-wal", f"{FILENAME}-shm"):
        (Path(state_dir) / name).unlink(missing_ok=True)
    joint = WorldPlace.in_journal(state_dir)
    if not joint.path.is_file() or joint.path.stat().st_size == 0:
        return
    conn = sqlite3.connect(joint.path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"DROP TABLE IF EXISTS {joint.meta}")
        conn.execute(f"DROP TABLE IF EXISTS {joint.rows}")
        conn.execute("COMMIT")
    finally:
        conn.close()


def carry_world(journal_file: Path, state_dir: Path) -> bool:
    """Copy the world kept in the (archived) ``journal_file`` to ``state_dir`` as
    ``world.sqlite``; False when it holds none.  An aborted run's journal goes under
    ``runs/``, but its world is the target system the next run goes on from."""
    source = WorldPlace(Path(journal_file), joint=True)
    if not source.path.is_file() or not _stored(source):
        return False
    target = WorldPlace.alone(state_dir)
    target.path.unlink(missing_ok=True)
    store = WorldStore(target.path)
    try:
        rows, meta = world_rows(source), _read_all(source, source.meta)
        store.db.execute("PRAGMA synchronous=FULL")  # the only copy in the state dir now
        with store.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES(?, ?)", meta)
            db.executemany("INSERT OR REPLACE INTO rows VALUES(?, ?)", rows)
    finally:
        store.close()
    return True


def adopt_world(state_dir: Path, db: sqlite3.Connection) -> bool:
    """Move a ``world.sqlite`` in ``state_dir`` (the previous layout, or the world an
    aborted run left) into the journal's ``world_*`` tables through ``db`` (a connection
    to ``journal.sqlite``, not in a transaction), then remove the file; False when there
    is none.

    The copy is one durable (``synchronous=FULL``) transaction; a crash before the file
    is removed leaves both, and the next open copies again (:func:`world_in` reads the
    file first).
    """
    alone = WorldPlace.alone(state_dir)
    if not alone.path.is_file():
        return False
    if not _stored(alone):  # an empty file: nothing to keep
        _unlink_alone(state_dir)
        return False
    meta_rows, rows = _read_all(alone, alone.meta), world_rows(alone)
    joint = WorldPlace.in_journal(state_dir)
    sync = db.execute("PRAGMA synchronous").fetchone()[0]
    db.execute("PRAGMA synchronous=FULL")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            _create_tables(db, joint)
            db.execute(f"DELETE FROM {joint.meta}")
            db.execute(f"DELETE FROM {joint.rows}")
            db.executemany(f"INSERT INTO {joint.meta} VALUES(?, ?)", meta_rows)
            db.executemany(f"INSERT INTO {joint.rows} VALUES(?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        db.execute(f"PRAGMA synchronous={int(sync)}")
    _unlink_alone(state_dir)
    return True


def _unlink_alone(state_dir: Path) -> None:
    for name in (FILENAME, f"{FILENAME}-wal", f"{FILENAME}-shm"):
        (Path(state_dir) / name).unlink(missing_ok=True)


def _read_all(place: WorldPlace, table: str) -> list[tuple[str, str]]:
    conn = connect_readonly(place.path)
    try:
        return [(str(k), str(v)) for k, v in
                conn.execute(f"SELECT key, value FROM {table}").fetchall()]
    finally:
        conn.close()


def _create_tables(db: sqlite3.Connection, place: WorldPlace) -> None:
    for table in (place.meta, place.rows):
        db.execute(f"CREATE TABLE IF NOT EXISTS {table}(key TEXT PRIMARY KEY, "
                   "value TEXT NOT NULL)")


#: a batch's world writes, run inside the journal's transaction (see :meth:`WorldStore.writes`)
WorldWrites = Callable[[sqlite3.Connection], None]


class WorldStore:
    """Load, create and flush the simulated world of one state directory."""

    def __init__(self, where: Path | WorldPlace, *, readonly: bool = False) -> None:
        """Open the world at ``where``: a :class:`WorldPlace`, or the path of a
        ``world.sqlite`` (created if need be).  A joint place's journal must exist already
        (the journal creates its file and schema).  ``readonly`` only reads, writing
        nothing beside it (for ``sim show``, also on read-only storage)."""
        self.place = where if isinstance(where, WorldPlace) else WorldPlace(Path(where),
                                                                             joint=False)
        self.path = self.place.path
        self._meta, self._rows = self.place.meta, self.place.rows
        if readonly:
            self.db = connect_readonly(self.path)
            return
        if self.place.joint and not self.path.is_file():
            raise JournalError(f"{self.path}: no journal to keep the simulated world in")
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.execute("PRAGMA journal_mode=WAL")
        # a flush between batches: no fsync of its own (see the module's docstring)
        self.db.execute("PRAGMA synchronous=NORMAL")
        with self.transaction() as db:
            _create_tables(db, self.place)

    @classmethod
    def exists(cls, state_dir: Path) -> bool:
        """True when ``state_dir`` holds a world (see :func:`world_in`)."""
        return world_in(state_dir) is not None

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the store's own connection."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise

    def has_world(self) -> bool:
        """True once a world was stored here."""
        return self.db.execute(f"SELECT 1 FROM {self._meta} WHERE key='state'").fetchone() \
            is not None

    def get_meta(self, key: str) -> str | None:
        """A value of the world's meta table (the emulator keeps its own state there)."""
        row = self.db.execute(f"SELECT value FROM {self._meta} WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the world's meta table (committed with nothing else)."""
        with self.transaction() as db:
            db.execute(f"INSERT OR REPLACE INTO {self._meta} VALUES(?, ?)", (key, value))

    def create(self, world: World) -> None:
        """Write a whole new world (replacing nothing: refuses if one exists)."""
        if self.db.execute(f"SELECT 1 FROM {self._meta} WHERE key='schema'").fetchone():
            raise JournalError(f"{self.path} already holds a simulated world")
        world.dirty = {"meta"} | {f"u:{u}" for u in world.units} | {f"v:{v}" for v in world.vms}
        with self.transaction() as db:
            db.execute(f"INSERT INTO {self._meta} VALUES('schema', ?)", (str(SCHEMA),))
        self.flush(world, force=True)

    def load(self, inventory: Inventory) -> World:
        """The stored world, over ``inventory`` (which gives durations, topology and faults)."""
        meta = dict(self.db.execute(f"SELECT key, value FROM {self._meta}").fetchall())
        if meta.get("schema") != str(SCHEMA):
            raise JournalError(f"{self.path}: not a simulated world of schema {SCHEMA}")
        state = json.loads(meta["state"])
        world = World(inventory, Version.parse(state["target"]))
        world.time = state["time"]
        for key, value in self.db.execute(f"SELECT key, value FROM {self._rows}"):
            data = json.loads(value)
            kind, _, ident = key.partition(":")
            if kind == "a":
                unit, _, op = ident.partition("|")
                world.attempts[(unit, op)] = int(data)
            elif kind == "u":
                world.units[ident] = UnitRecord(
                    data["id"], UnitKind(data["kind"]), data["group"], data["version"],
                    data["in_maintenance"], data["upgrades"], data["maintenance"],
                )
            elif kind == "v":
                world.vms[ident] = VmRecord(data["id"], data["host"], data["powered_on"],
                                           [tuple(m) for m in data["moves"]])
            else:
                rec = OpRecord(Op(data["op"]), data["unit"], data["attempt"], data["start"],
                               data["end"], data["ok"], data["detail"],
                               [tuple(m) for m in data["moves"]], data["awaits"],
                               data["applied"], data.get("slow", False))
                world.ops[(rec.unit, rec.op.value)] = rec
                if not rec.applied:
                    world.requeue(rec)  # the store rebuilds the world's queue
        world.reindex()
        world.dirty.clear()
        return world

    def writes(self, world: World, *, force: bool = False) -> WorldWrites | None:
        """What changed since the last write, as a function that writes it through a
        connection to the same database inside the caller's transaction (the journal's:
        one commit per batch); None when nothing is to be written.  Call
        :meth:`written` once that transaction committed.

        A change of the world's clock alone waits for the next real change (or ``force``):
        the time is also recorded with every operation, and a reloaded world catches up on
        its first call, so this saves a write on every poll that finds nothing new.
        """
        if not world.dirty or (world.dirty == {"meta"} and not force):
            return None
        rows: list[tuple[str, str]] = []
        for key in world.dirty:
            if key == "meta":
                continue
            kind, _, ident = key.partition(":")
            rows.append((key, _compact(_row(world, kind, ident))))
        state = json.dumps({"target": world.target, "time": world.time})
        upsert_rows = f"INSERT OR REPLACE INTO {self._rows} VALUES(?, ?)"
        upsert_meta = f"INSERT OR REPLACE INTO {self._meta} VALUES('state', ?)"

        def write(db: sqlite3.Connection) -> None:
            db.executemany(upsert_rows, rows)
            db.execute(upsert_meta, (state,))

        return write

    @staticmethod
    def written(world: World) -> None:
        """The writes :meth:`writes` gave were committed: nothing is pending."""
        world.dirty.clear()

    def flush(self, world: World, *, force: bool = False) -> None:
        """Write what changed since the last flush, in one transaction of its own."""
        write = self.writes(world, force=force)
        if write is None:
            return
        try:
            with self.transaction() as db:
                write(db)
        except sqlite3.Error as exc:  # damaged, locked or removed under the run: one line
            raise JournalError(f"{self.path}: cannot write the simulated world ({exc}); the "
                               f"run stops here. Restore {self.path.name} (or end what holds "
                               "it), then `nsxt-upgrade resume` reconciles what was in flight") \
                from None
        world.dirty.clear()


def read_world(where: Path | WorldPlace, inventory: Inventory) -> World | None:
    """The world stored at ``where`` over ``inventory``, read only (writing nothing beside
    it); None when nothing was stored there yet.  Raises ``sqlite3.Error`` for a file that
    is not a world, and ``KeyError``/``TypeError``/``ValueError`` for damaged rows."""
    store = WorldStore(where, readonly=True)
    try:
        if not store.has_world():
            return None
        return store.load(inventory)
    finally:
        store.close()


def _row(world: World, kind: str, ident: str) -> Any:
    if kind == "a":
        unit, _, op = ident.partition("|")
        return world.attempts[(unit, op)]
    if kind == "u":
        u = world.units[ident]
        return {"id": u.id, "kind": u.kind.value, "group": u.group, "version": u.version,
                "in_maintenance": u.in_maintenance, "upgrades": u.upgrades,
                "maintenance": u.maintenance}
    if kind == "v":
        v = world.vms[ident]
        return {"id": v.id, "host": v.host, "powered_on": v.powered_on, "moves": v.moves}
    unit, _, op = ident.partition("|")
    r = world.ops[(unit, op)]
    return {"op": r.op.value, "unit": r.unit, "attempt": r.attempt, "start": r.start,
            "end": r.end, "ok": r.ok, "detail": r.detail, "moves": r.moves,
            "awaits": r.awaits_evacuation, "applied": r.applied, "slow": r.slow}


def load_snapshot(state_dir: Path) -> dict[str, Any]:
    """``World.snapshot()`` of the world kept in ``state_dir``; InputError when there is none."""
    place = world_in(state_dir)
    if place is None:
        raise InputError(f"{state_dir} holds no simulated world (none in {JOINT_FILE}, no "
                         f"{FILENAME}): give the state dir of a simulated run or of "
                         "`nsxt-upgrade emulate nsxt`")
    inventory_file = state_dir / "inventory.yaml"
    if not inventory_file.is_file():
        raise InputError(f"{state_dir} has a world but no inventory.yaml to read it with")
    path = place.path
    if place.problem is not None:
        raise JournalError(f"{path}: not a simulated world ({place.problem})")
    inventory = load_inventory(inventory_file)
    try:
        world = read_world(place, inventory)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: not a simulated world ({exc})") from exc
    except (KeyError, TypeError, ValueError) as exc:  # rows that are not what the store wrote
        raise JournalError(f"{path}: not a simulated world (damaged row: {exc!r})") from exc
    if world is None:
        raise InputError(f"{path} holds no simulated world yet")
    return world.snapshot()
