"""Helpers for the run/resume behaviour tests: the real CLI in subprocesses, and the
safety invariants of DESIGN section 5 (:mod:`tests.invariants`) checked on the simulated
world's snapshot."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.invariants import check_invariants
from upgrade.core.model import Inventory
from upgrade.shell.journal import Journal
from upgrade.shell.start_record import RUN_INPUT
from upgrade.shell.statedir import OLD_PLAN, PLAN_FILE

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS = ROOT / "playbooks"
LAB = PLAYBOOKS / "lab-2.1-to-2.3.yaml"
PRODUCTION = PLAYBOOKS / "production-2.1-to-2.3.yaml"
BUNDLE = PLAYBOOKS / "bundles" / "VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub"
#: a wide, colourless terminal-less environment, so output lines are not wrapped
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
for _name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
    ENV.pop(_name, None)


def command(*args: str | Path) -> list[str]:
    """The argv of ``nsxt-upgrade ARGS`` (as ``python -m upgrade``, the same entry point)."""
    return [sys.executable, "-m", "upgrade", *(str(a) for a in args)]


def nsxt(*args: str | Path, cwd: Path | None = None, stdin: str | None = "",
         timeout: float = 60, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    """Run ``nsxt-upgrade ARGS`` to completion; stdin is an empty pipe unless given;
    ``env`` adds variables to the tests' environment."""
    return subprocess.run(command(*args), cwd=cwd, input=stdin, capture_output=True,
                          text=True, env={**ENV, **(env or {})}, timeout=timeout,
                          check=False)


def status_json(state_dir: Path) -> dict[str, Any]:
    """`status --format json` (must succeed)."""
    proc = nsxt("status", "--state-dir", state_dir, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def spawn(*args: str | Path, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``nsxt-upgrade ARGS`` in the background (stdin closed, output piped)."""
    return subprocess.Popen(command(*args), cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV)


def copy_playbooks(tmp_path: Path) -> Path:
    """A private copy of the shipped playbooks (to edit); the directory holding them."""
    target = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, target)
    return target


def edit(path: Path, old: str, new: str) -> Path:
    """Replace ``old`` (which must occur) by ``new`` in the file at ``path``."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def sim_show_available() -> bool:
    """True once `nsxt-upgrade sim show` exists."""
    return (ROOT / "upgrade" / "cli" / "sim_cmd.py").is_file()


def world(state_dir: Path) -> dict[str, Any]:
    """The simulated world of ``state_dir`` as `nsxt-upgrade sim show --format json` prints it."""
    if sim_show_available():
        proc = nsxt("sim", "show", "--state-dir", state_dir, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        doc: dict[str, Any] = json.loads(proc.stdout)
        return doc
    from upgrade.inputs.inventory import load_inventory
    from upgrade.sim.store import WorldStore

    store = WorldStore(state_dir / "world.sqlite")
    try:
        return store.load(load_inventory(state_dir / "inventory.yaml")).snapshot()
    finally:
        store.close()


def journal_records(state_dir: Path) -> list[tuple[str, float, dict[str, Any]]]:
    """Every journal record as (kind, at, payload), read with the project's journal API."""
    from upgrade.shell.journal import Journal

    with Journal.open(state_dir, create=False) as journal:
        return [(r.kind, r.at, r.payload) for r in journal.records()]


def peek_phase(state_dir: Path) -> str | None:
    """The last phase the journal says started, read-only (safe beside a live runner)."""
    path = state_dir / "journal.sqlite"
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(
            "SELECT payload FROM records WHERE kind = 'action' AND payload LIKE "
            "'%\"phase_started\"%' ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if row is None:
        return None
    message: str = json.loads(row[0])["message"]
    return message.split()[0]


# -- invariants ------------------------------------------------------------------------------


def check_world(snapshot: dict[str, Any], plan: dict[str, Any], inventory: Inventory) -> None:
    """Assert every safety invariant of a finished run on the world's snapshot
    (:func:`tests.invariants.check_invariants` with ``complete``).

    ``plan`` is the run's plan JSON (DESIGN's ``plan --format json``), ``inventory``
    the :class:`~upgrade.core.model.Inventory` the run started from.  A world that records
    no maintenance at all (the NSX-T emulator's: vCenter keeps it) is not held to the
    maintenance-mode rules.
    """
    kept = any(u["maintenance"] for u in snapshot["units"])
    check_invariants(plan, inventory, snapshot, complete=True, maintenance=kept)


def as_earlier_version(state: Path) -> None:
    """Rewrite ``state`` as the previous version left it: the plan JSON in the journal's
    meta too, and no recorded engine inputs."""
    with Journal.open(state, create=False) as journal:
        journal._conn.execute("DELETE FROM meta WHERE key = ?", (RUN_INPUT,))
        journal.set_meta(OLD_PLAN, (state / PLAN_FILE).read_text(encoding="utf-8"))


def world_apart(state: Path) -> None:
    """Rewrite ``state`` in the layout of versions before the world moved into the journal:
    ``world.sqlite`` alone (tables ``meta`` and ``rows``, WAL) beside a journal without
    the ``world_*`` tables.  Plain SQLite, not the store, so the layout is the old one."""
    journal = sqlite3.connect(state / "journal.sqlite", isolation_level=None)
    try:
        meta = journal.execute("SELECT key, value FROM world_meta").fetchall()
        rows = journal.execute("SELECT key, value FROM world_rows").fetchall()
        world = sqlite3.connect(state / "world.sqlite", isolation_level=None)
        try:
            world.execute("PRAGMA journal_mode=WAL")
            world.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            world.execute("CREATE TABLE rows(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            world.execute("BEGIN")
            world.executemany("INSERT INTO meta VALUES(?, ?)", meta)
            world.executemany("INSERT INTO rows VALUES(?, ?)", rows)
            world.execute("COMMIT")
        finally:
            world.close()
        journal.execute("DROP TABLE world_meta")
        journal.execute("DROP TABLE world_rows")
    finally:
        journal.close()


def answered_starts(state_dir: Path) -> Counter[tuple[str, str]]:
    """How many of the journal's starts of each ``(unit, op)`` have a journaled answer."""
    starts: dict[int, tuple[str, str]] = {}
    answered: Counter[tuple[str, str]] = Counter()
    with Journal.open_readonly(state_dir) as journal:
        for record in journal.records():
            payload = record.payload
            if record.kind == "action" and payload["type"] == "Start":
                starts[record.seq] = (payload["unit"], payload["op"])
            elif record.kind == "event" and payload.get("for") in starts:
                answered[starts[payload["for"]]] += 1
    return answered
