"""Keep a :class:`~upgrade.sim.world.World` in the state directory so it outlives the orchestrator.

The world is stored in SQLite (``world.sqlite``), one row per unit, VM and
operation, and only the rows a call changed are written, in one transaction
per call.  WAL with ``synchronous=NORMAL`` survives the orchestrator being
killed (the simulated world's durability need); the journal, which must also
survive power loss, uses ``FULL``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
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

FILENAME = "world.sqlite"
SCHEMA = 2
#: rows as ``json.dumps(row, separators=(",", ":"))`` writes them
_compact = compact_encoder()


class WorldStore:
    """Load, create and flush the simulated world of one state directory."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (creating it if need be) the world at ``path``; ``readonly`` only reads it,
        writing nothing beside it (for ``sim show``, also on read-only storage)."""
        self.path = path
        if readonly:
            self.db = connect_readonly(path)
            return
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS rows(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        )

    @classmethod
    def exists(cls, state_dir: Path) -> bool:
        """True when ``state_dir`` holds a world."""
        return (state_dir / FILENAME).is_file()

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def create(self, world: World) -> None:
        """Write a whole new world (replacing nothing: refuses if one exists)."""
        if self.db.execute("SELECT 1 FROM meta WHERE key='schema'").fetchone():
            raise JournalError(f"{self.path} already holds a simulated world")
        world.dirty = {"meta"} | {f"u:{u}" for u in world.units} | {f"v:{v}" for v in world.vms}
        self.db.execute("INSERT INTO meta VALUES('schema', ?)", (str(SCHEMA),))
        self.flush(world)

    def load(self, inventory: Inventory) -> World:
        """The stored world, over ``inventory`` (which gives durations, topology and faults)."""
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != str(SCHEMA):
            raise JournalError(f"{self.path}: not a simulated world of schema {SCHEMA}")
        state = json.loads(meta["state"])
        world = World(inventory, Version.parse(state["target"]))
        world.time = state["time"]
        for key, value in self.db.execute("SELECT key, value FROM rows"):
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

    def flush(self, world: World, *, force: bool = False) -> None:
        """Write what changed since the last flush, in one transaction.

        A change of the world's clock alone waits for the next real change (or ``force``):
        the time is also recorded with every operation, and a reloaded world catches up on
        its first call, so this saves a transaction on every poll that finds nothing new.
        """
        if not world.dirty or (world.dirty == {"meta"} and not force):
            return
        rows: list[tuple[str, str]] = []
        for key in world.dirty:
            if key == "meta":
                continue
            kind, _, ident = key.partition(":")
            rows.append((key, _compact(_row(world, kind, ident))))
        state = {"target": world.target, "time": world.time}
        try:
            self.db.execute("BEGIN")
            try:
                self.db.executemany("INSERT OR REPLACE INTO rows VALUES(?, ?)", rows)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES('state', ?)",
                                (json.dumps(state),))
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:  # damaged, locked or removed under the run: one line
            raise JournalError(f"{self.path}: cannot write the simulated world ({exc}); the "
                               "run stops here. Restore world.sqlite (or end what holds it), "
                               "then `nsxt-upgrade resume` reconciles what was in flight") \
                from None
        world.dirty.clear()


def read_world(path: Path, inventory: Inventory) -> World | None:
    """The world stored at ``path`` over ``inventory``, read only (writing nothing beside it);
    None when nothing was stored there yet.  Raises ``sqlite3.Error`` for a file that is
    not a world, and ``KeyError``/``TypeError``/``ValueError`` for damaged rows."""
    store = WorldStore(path, readonly=True)
    try:
        if store.db.execute("SELECT 1 FROM meta WHERE key='state'").fetchone() is None:
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
    if not WorldStore.exists(state_dir):
        raise InputError(f"{state_dir} holds no simulated world (no {FILENAME}): give the "
                         "state dir of a simulated run or of `nsxt-upgrade emulate nsxt`")
    inventory_file = state_dir / "inventory.yaml"
    if not inventory_file.is_file():
        raise InputError(f"{state_dir} has a world but no inventory.yaml to read it with")
    path = state_dir / FILENAME
    inventory = load_inventory(inventory_file)
    try:
        world = read_world(path, inventory)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: not a simulated world ({exc})") from exc
    except (KeyError, TypeError, ValueError) as exc:  # rows that are not what the store wrote
        raise JournalError(f"{path}: not a simulated world (damaged row: {exc!r})") from exc
    if world is None:
        raise InputError(f"{path} holds no simulated world yet")
    return world.snapshot()
