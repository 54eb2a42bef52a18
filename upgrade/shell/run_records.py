"""Runs' records on disk: a journal read read-only, report and history, abort, archive.

* :func:`read_run` opens a state directory's journal read-only (a live runner is
  never disturbed) and returns its meta values and records.
* :func:`report_doc` and :func:`history_doc` turn them into the documents of
  ``report`` and ``history`` (through the pure :mod:`upgrade.core.chronicle`).
* :func:`abort_run` closes a paused or failed run for good; :func:`archive_aborted`
  moves an aborted run's journal and copies under ``runs/<id>/`` so a new run can
  start in the same state directory.  The simulated world (``world.sqlite``) is the
  target system, not the run's record: it stays where it is, as upgraded as the
  aborted run left it (:mod:`upgrade.shell.inherited_world`).

Whether a command may act on a directory at all is :mod:`upgrade.shell.dirstate`'s to say.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upgrade.core.chronicle import chronicle
from upgrade.errors import InputError, JournalError
from upgrade.readonly import connect_readonly
from upgrade.shell.dirstate import ARCHIVE, Command, Holds, Reading, admit
from upgrade.shell.journal import JOURNAL_FILE, SCHEMA_VERSION, Journal
from upgrade.shell.lock import RunnerLock
from upgrade.shell.statedir import RUN_LOG, STARTUP_FILES, rendered_plan

#: the files that make up one run's record (the simulated world is not one of them)
RUN_FILES = (JOURNAL_FILE, f"{JOURNAL_FILE}-wal", f"{JOURNAL_FILE}-shm", *STARTUP_FILES,
             RUN_LOG)
ABORTED = "aborted"


@dataclass(frozen=True)
class RunRecord:
    """A run's journal as read: meta values and records."""

    state_dir: Path
    meta: dict[str, str]
    records: list[tuple[str, float, dict[str, Any]]]
    live: bool

    @property
    def plan(self) -> dict[str, Any]:
        """The plan the run recorded (empty if it never got that far)."""
        return rendered_plan(self.state_dir, self.meta.get)

    @property
    def aborted(self) -> dict[str, Any] | None:
        """The abort record, if the run was aborted."""
        text = self.meta.get(ABORTED)
        return None if text is None else dict(json.loads(text))


@contextlib.contextmanager
def open_readonly(state_dir: Path) -> Iterator[Journal]:
    """The journal of ``state_dir``, opened read-only (no lock, no write, no WAL change)."""
    path = state_dir / JOURNAL_FILE
    if not path.is_file():
        raise InputError(f"{state_dir} holds no run (no {JOURNAL_FILE})")
    try:
        conn = connect_readonly(path)
        conn.isolation_level = None
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot read the journal: {exc}") from exc
    journal = Journal(conn, path)
    try:
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot read the journal: {exc}") from exc
        if version != SCHEMA_VERSION:
            raise JournalError(f"{path}: not an nsxt-upgrade journal this version reads "
                               f"(schema version {version})")
        yield journal
    finally:
        journal.close()


def read_run(state_dir: Path) -> RunRecord:
    """Everything :mod:`upgrade.core.chronicle` needs about the run in ``state_dir``.

    Meta and records are read in one read transaction, so a live runner's later
    writes are not half seen.
    """
    live = RunnerLock.holder(state_dir) is not None
    with open_readonly(state_dir) as journal:
        conn = journal._conn
        try:
            conn.execute("BEGIN")
            meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
            records = [(r.kind, r.at, r.payload) for r in journal.records()]
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise JournalError(f"{journal.path}: cannot read the journal: {exc}") from exc
    return RunRecord(state_dir, meta, records, live)


def report_doc(state_dir: Path) -> dict[str, Any]:
    """The ``report --format json`` document of the run in ``state_dir``."""
    run = read_run(state_dir)
    if not run.plan:
        raise InputError(f"the run in {state_dir} never got past its start (no plan "
                         "recorded): there is nothing to report")
    doc = chronicle(run.records, run.plan, live=run.live, aborted=run.aborted,
                    acks=json.loads(run.meta.get("acks") or "[]"),
                    drs_evacuated=_drs_hosts(state_dir, run.plan))
    doc["state_dir"] = str(state_dir)
    doc["started_at"] = run.meta.get("started_at")
    doc["clock"] = json.loads(run.meta.get("clock") or "{}").get("kind")
    window = json.loads(run.meta.get("window") or "null")
    if window is not None:
        from upgrade.core.window import Calendar

        calendar_of_run = Calendar.from_json(window)
        doc["window"] = {
            "window": calendar_of_run.spec.describe(),
            "on_close": "pause" if calendar_of_run.pause else "wait for the next window",
            "paused_by_window": sum(1 for p in doc["pauses"] if "window" in p["by"]),
        }
    return doc


def _drs_hosts(state_dir: Path, plan: dict[str, Any]) -> dict[str, list[str]]:
    """Hosts in fully automated DRS clusters and their powered-on VMs (DRS moves them)."""
    if plan.get("upgrade_mode") != "maintenance":
        return {}
    from upgrade.core.model import Drs
    from upgrade.inputs.inventory import load_inventory

    try:
        inventory = load_inventory(state_dir / "inventory.yaml")
    except (OSError, InputError):
        return {}
    return {h.id: [vm.id for vm in h.running_vms] for c in inventory.clusters
            if c.drs is Drs.FULLY_AUTOMATED for h in inventory.hosts if h.cluster == c.name}


def calendar(started_at: str | None, clock_s: float) -> str | None:
    """The calendar time ``clock_s`` seconds into a run that started at ``started_at``."""
    if not started_at:
        return None
    origin = dt.datetime.fromisoformat(started_at)
    return iso(origin + dt.timedelta(seconds=clock_s))


def iso(moment: dt.datetime) -> str:
    """ISO-8601 with the offset; milliseconds only when there are any."""
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec)


def find_runs(root: Path) -> list[Path]:
    """Every state directory under ``root`` (and its ``runs/`` archives); root itself too."""
    if not root.is_dir():
        return []
    found = [root] if (root / JOURNAL_FILE).is_file() else []
    for pattern in (f"*/{JOURNAL_FILE}", f"*/{ARCHIVE}/*/{JOURNAL_FILE}",
                    f"{ARCHIVE}/*/{JOURNAL_FILE}"):
        found += [p.parent for p in sorted(root.glob(pattern))]
    return list(dict.fromkeys(found))


def history_entry(state_dir: Path) -> dict[str, Any]:
    """One ``history`` entry (DESIGN section 3 keys, plus ``archived`` and ``reason``)."""
    run = read_run(state_dir)
    plan = run.plan
    started_at = run.meta.get("started_at")
    entry: dict[str, Any] = {
        "state_dir": str(state_dir), "name": plan.get("name"),
        "source_version": plan.get("source_version"),
        "target_version": plan.get("target_version"),
        "state": "not_started", "started_at": started_at, "ended_at": None,
        "duration_s": 0.0, "units_total": 0, "units_done": 0,
        "archived": state_dir.parent.name == ARCHIVE, "reason": None,
    }
    if not plan:
        return entry
    doc = chronicle(run.records, plan, live=run.live, aborted=run.aborted)
    entry.update(state=doc["state"], duration_s=doc["clock_s"], units_total=doc["units_total"],
                 units_done=doc["units_done"])
    if doc["state"] in ("done", "failed", "aborted"):
        entry["ended_at"] = calendar(started_at, doc["clock_s"])
    if run.aborted:
        entry["reason"] = run.aborted.get("reason")
    elif doc["state"] in ("paused", "failed") and doc["pauses"]:
        entry["reason"] = doc["pauses"][-1]["why"]
    return entry


def history_doc(root: Path) -> dict[str, Any]:
    """``history --format json``: every run under ``root``, newest first."""
    entries = []
    for state_dir in find_runs(root):
        try:
            entries.append(history_entry(state_dir))
        except (JournalError, InputError) as exc:
            entries.append({"state_dir": str(state_dir), "name": None, "source_version": None,
                            "target_version": None, "state": "unreadable",
                            "started_at": None, "ended_at": None, "duration_s": 0.0,
                            "units_total": 0, "units_done": 0, "archived": False,
                            "reason": str(exc)})
    entries.sort(key=lambda e: (e["started_at"] or "", e["state_dir"]), reverse=True)
    return {"root": str(root), "runs": entries}


def abort_run(state_dir: Path, reason: str, owner: str) -> dict[str, Any]:
    """Close the paused or failed run in ``state_dir`` for good; returns the abort record.

    Takes the runner lock (a live runner: :class:`~upgrade.errors.LockedError`, exit 5);
    refuses a run that is done or never started (exit 2).  Aborting twice keeps the
    first record.
    """
    with RunnerLock.acquire(state_dir, owner):
        admit(state_dir, Command.ABORT)  # before opening: a zero-length journal stays as it is
        return _abort(state_dir, reason)


def _abort(state_dir: Path, reason: str) -> dict[str, Any]:
    with Journal.open(state_dir, create=False) as journal:
        existing = journal.get_meta(ABORTED)
        if existing is not None:
            return dict(json.loads(existing)) | {"already": True}
        plan = rendered_plan(state_dir, journal.get_meta)
        records = [(r.kind, r.at, r.payload) for r in journal.records()]
        if not plan or not records:
            raise InputError(f"the run in {state_dir} never started (nothing journaled): there "
                             "is nothing to abort; start afresh with `nsxt-upgrade run "
                             f"PLAYBOOK --state-dir {state_dir}`")
        doc = chronicle(records, plan, live=False)
        if doc["state"] == "done":
            raise InputError(f"the run in {state_dir} is done: there is nothing to abort")
        record = {"reason": reason, "at": iso(dt.datetime.now(dt.UTC).replace(microsecond=0)),
                  "clock_s": doc["clock_s"], "state_before": doc["state"],
                  "phase": next((p["name"] for p in reversed(doc["phases"])
                                 if p["actual_start_s"] is not None), None)}
        journal.set_meta(ABORTED, json.dumps(record))
        return record


def archive_aborted(state_dir: Path, reading: Reading) -> Path:
    """Move the aborted run's record under ``state_dir/runs/<id>/``; returns where.

    The caller holds the state directory's lock and ``reading`` (ABORTED) is the
    directory as read under it.  ``<id>`` is the run's start time (``20261201T065248Z``),
    with ``-2``, ``-3``... if that exists already.
    """
    assert reading.holds is Holds.ABORTED and reading.journal is not None
    started = reading.journal.started_at or ""
    stamp = started.replace("-", "").replace(":", "").replace("+0000", "Z") or "run"
    base = state_dir / ARCHIVE / stamp
    target, n = base, 1
    while target.exists():
        n += 1
        target = base.with_name(f"{stamp}-{n}")
    target.mkdir(parents=True)
    for name in RUN_FILES:
        source = state_dir / name
        if source.exists():
            source.rename(target / name)
    from upgrade.sim.store import carry_world

    carry_world(target / JOURNAL_FILE, state_dir)  # the target system stays as it is
    return target
