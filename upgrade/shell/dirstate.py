"""What a state directory holds, and what each command may do there: the one owner of
a state directory's life.

Every command that takes a state directory (``run``, ``resume``, ``status``, ``abort``,
``history``, ``report``, ``verify``, ``pause``) asks this module: :func:`read_now` reads
the directory once into a :class:`Reading`, and :func:`admit` looks the command up in
:data:`REFUSALS` (the moves a state does not allow, with their exit code and message) and
:data:`MOVES` (where an allowed command leaves the directory).  Before this module each
command read the directory its own way, and the readings disagreed: after ``abort`` a new
``run`` kept the world, then deleted it as the leftover of an interrupted start.

The states (first match wins):

==================  ==========================================================  =========
holds               what is there                                               world
==================  ==========================================================  =========
ABORTED             a journal with the abort record                             kept
RUN                 a journal with records; the run is running, paused, failed  kept
                    or done (its status is the replayed engine's: ``status``)
FLEET_SITE          no journal record; ``fleet-input.json`` or                  kept
                    ``fleet-journal.jsonl``: the site's run lives in Temporal
AFTER_ABORT         no journal record; an aborted run archived under ``runs/``  kept
ORPHAN              no journal record, but the world or ``run.log`` shows a     kept
                    run (the journal is gone, emptied or replaced)
INTERRUPTED_START   no journal record; files a start writes first (or an        cleared
                    empty journal with the start's meta); nothing was done
EMPTY               nothing of a run                                            -
==================  ==========================================================  =========

Only in INTERRUPTED_START is anything cleared by a new start, and never the world of
an earlier run: what a directory's world shows is the target system, not a leftover.
The exit codes are DESIGN section 3's: 1 aborted or a damaged journal, 2 nothing there
to act on (or a second run over one), 5 a live runner (the lock, before any reading).
"""

from __future__ import annotations

import enum
import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from upgrade.errors import AbortedError, InputError, JournalError, UpgradeError
from upgrade.shell.journal import JOURNAL_FILE, Journal
from upgrade.shell.statedir import RUN_LOG, STARTUP_FILES, WORLD, find_run
from upgrade.sim.store import world_in, world_rows

#: where an aborted run's record goes when a new run starts in its state directory
ARCHIVE = "runs"
#: what ``fleet run`` writes in a fleet site's state dir (:mod:`upgrade.fleet.sitelog`)
FLEET_FILES = ("fleet-input.json", "fleet-journal.jsonl")


class Holds(enum.Enum):
    """What a state directory holds (see the module's table)."""

    EMPTY = "empty"
    INTERRUPTED_START = "interrupted_start"
    AFTER_ABORT = "after_abort"
    ORPHAN = "orphan"
    FLEET_SITE = "fleet_site"
    RUN = "run"
    ABORTED = "aborted"


class Command(enum.Enum):
    """The commands that act on a state directory."""

    RUN = "run"
    RESUME = "resume"
    STATUS = "status"
    ABORT = "abort"
    HISTORY = "history"
    REPORT = "report"
    VERIFY = "verify"
    PAUSE = "pause"


#: commands that only read the directory (never refused for a journal they cannot read:
#: their own reader names the damage, as they always did)
READ_ONLY = (Command.STATUS, Command.HISTORY, Command.REPORT, Command.VERIFY, Command.PAUSE)


@dataclass(frozen=True)
class JournalFacts:
    """What a caller that has the journal open knows of it (read once, passed in)."""

    records: int
    start_recorded: bool
    aborted: bool
    #: the run's start time (journal meta ``started_at``), names its archive
    started_at: str | None = None
    #: the abort record's reason (ABORTED only)
    abort_reason: str | None = None


@dataclass(frozen=True)
class Reading:
    """One reading of a state directory."""

    holds: Holds
    #: files a start interrupted before its first record left (a new start removes them)
    leftovers: tuple[str, ...] = ()
    #: evidence of a run whose journal is missing (ORPHAN only)
    traces: tuple[str, ...] = ()
    #: the journal's facts; None when there is no journal file
    journal: JournalFacts | None = None

    @property
    def keeps_world(self) -> bool:
        """True when ``world.sqlite`` is the target system an earlier run left."""
        return self.holds is not Holds.INTERRUPTED_START

    @property
    def start_recorded(self) -> bool:
        """True when a start wrote its meta in the journal (before any record)."""
        return self.journal is not None and self.journal.start_recorded

    def archived(self) -> Reading:
        """The move ABORTED --run--> AFTER_ABORT: the aborted run's record (journal and
        copies) is under ``runs/`` now; the world stays."""
        assert self.holds is Holds.ABORTED
        return replace(self, holds=Holds.AFTER_ABORT, leftovers=(), journal=None)


def journal_facts(journal: Journal) -> JournalFacts:
    """The facts of an open journal :func:`read_state_dir` needs."""
    aborted = journal.get_meta("aborted")
    return JournalFacts(records=journal.count(),
                        start_recorded=journal.get_meta("playbook_path") is not None,
                        aborted=aborted is not None,
                        started_at=journal.get_meta("started_at"),
                        abort_reason=None if aborted is None
                        else str(json.loads(aborted).get("reason", "")))


def facts_on_disk(state_dir: Path) -> JournalFacts | None:
    """The journal's facts read without writing (None: no journal file); a file with no
    schema yet (zero bytes, or a run between creating the file and committing its schema)
    reads as an empty journal, since it holds no record.  A file that is not a journal
    raises :class:`~upgrade.errors.JournalError`."""
    path = state_dir / JOURNAL_FILE
    if not path.is_file():
        return None
    blank = JournalFacts(records=0, start_recorded=False, aborted=False)
    if path.stat().st_size == 0:
        return blank
    try:
        with Journal.open_readonly(state_dir) as journal:
            return journal_facts(journal)
    except JournalError:
        if Journal.unwritten(state_dir):
            return blank
        raise


def read_now(state_dir: Path) -> Reading:
    """:func:`read_state_dir` over the journal as it is on disk (reads only)."""
    return read_state_dir(state_dir, facts_on_disk(state_dir))


def archived_runs(state_dir: Path) -> list[Path]:
    """The aborted runs kept under ``state_dir/runs/``."""
    archive = state_dir / ARCHIVE
    return sorted(p for p in archive.glob("*") if p.is_dir()) if archive.is_dir() else []


def is_fleet_site(state_dir: Path) -> bool:
    """True when ``fleet run`` keeps one of its sites in ``state_dir``."""
    return any((state_dir / name).is_file() for name in FLEET_FILES)


def read_state_dir(state_dir: Path, journal: JournalFacts | None) -> Reading:
    """Classify ``state_dir`` (reads only). ``journal``: None when there is no journal file
    (or it holds no schema yet); otherwise what its meta and records say."""
    if journal is not None and journal.aborted:
        return Reading(Holds.ABORTED, journal=journal)
    if journal is not None and journal.records > 0:
        return Reading(Holds.RUN, journal=journal)
    if is_fleet_site(state_dir):
        return Reading(Holds.FLEET_SITE, journal=journal)
    startup = tuple(name for name in STARTUP_FILES if (state_dir / name).exists())
    if archived_runs(state_dir):
        return Reading(Holds.AFTER_ABORT, leftovers=startup, journal=journal)
    traces = tuple(run_traces(state_dir))
    if traces:
        return Reading(Holds.ORPHAN, traces=traces, journal=journal)
    world = (WORLD,) if _world_kept(state_dir) else ()
    if startup or world or (journal is not None and journal.start_recorded):
        return Reading(Holds.INTERRUPTED_START, leftovers=startup + world, journal=journal)
    return Reading(Holds.EMPTY, journal=journal)


# --- the moves -------------------------------------------------------------------------

#: a refusal: what a command says in a state that does not allow it (None: allowed after
#: all, e.g. a journal file is there for the command's own reader)
Refusal = Callable[[Path, Reading], UpgradeError | None]


def _no_run(state_dir: Path, reading: Reading) -> UpgradeError | None:
    if (state_dir / JOURNAL_FILE).is_file():
        return None  # the command's reader says what the journal holds
    return InputError(f"{state_dir} holds no run (no {JOURNAL_FILE}); start one with "
                      f"`nsxt-upgrade run PLAYBOOK --state-dir {state_dir}`")


def _orphan(state_dir: Path, reading: Reading) -> UpgradeError:
    """A missing journal: exit 2; one there but holding no record (emptied or replaced):
    the journal is damaged, exit 1."""
    if (state_dir / JOURNAL_FILE).is_file():
        return JournalError(orphan_message(state_dir, reading))
    return InputError(orphan_message(state_dir, reading))


def _fleet_site(state_dir: Path, reading: Reading) -> UpgradeError:
    return InputError(fleet_site_message(state_dir))


def _already_a_run(state_dir: Path, reading: Reading) -> UpgradeError:
    return InputError(f"{state_dir} already holds a run; continue it with `nsxt-upgrade resume "
                      f"--state-dir {state_dir}`, or start afresh with another --state-dir")


def _aborted(state_dir: Path, reading: Reading) -> UpgradeError:
    reason = reading.journal.abort_reason if reading.journal is not None else ""
    return AbortedError(
        f"the run in {state_dir} was aborted ({reason}); it cannot be resumed. Start "
        f"afresh with `nsxt-upgrade run PLAYBOOK --state-dir {state_dir}` (the aborted "
        f"run's journal is kept under {state_dir}/{ARCHIVE}/)")


_ON_A_RUN = (Command.RESUME, Command.ABORT, Command.REPORT, Command.VERIFY, Command.PAUSE)

#: what a state refuses, command by command (a command not named is allowed: see MOVES)
REFUSALS: dict[Holds, dict[Command, Refusal]] = {
    Holds.EMPTY: dict.fromkeys(_ON_A_RUN, _no_run),
    Holds.INTERRUPTED_START: dict.fromkeys(_ON_A_RUN, _no_run),
    Holds.AFTER_ABORT: dict.fromkeys(_ON_A_RUN, _no_run),
    Holds.ORPHAN: dict.fromkeys((Command.RUN, *_ON_A_RUN), _orphan),
    Holds.FLEET_SITE: dict.fromkeys((Command.RUN, *_ON_A_RUN), _fleet_site),
    Holds.RUN: {Command.RUN: _already_a_run},
    Holds.ABORTED: {Command.RESUME: _aborted},
}

#: where an allowed command that changes the directory leaves it (the others read only).
#: ``resume`` and ``abort`` of a RUN go on by its status: resume of a done run says so
#: (exit 0), abort refuses a done run (exit 2), abort of a paused or failed one -> ABORTED
MOVES: dict[tuple[Holds, Command], Holds] = {
    (Holds.EMPTY, Command.RUN): Holds.RUN,
    (Holds.INTERRUPTED_START, Command.RUN): Holds.RUN,  # its leftovers cleared first
    (Holds.AFTER_ABORT, Command.RUN): Holds.RUN,  # over the world the aborted run left
    (Holds.ABORTED, Command.RUN): Holds.RUN,  # archived under runs/ first (AFTER_ABORT)
    (Holds.RUN, Command.RESUME): Holds.RUN,
    (Holds.RUN, Command.ABORT): Holds.ABORTED,
    (Holds.ABORTED, Command.ABORT): Holds.ABORTED,  # "aborted already", the first record kept
}


def refusal(state_dir: Path, reading: Reading, command: Command) -> UpgradeError | None:
    """What ``command`` says in ``state_dir`` as read, if it may not act there."""
    refuse = REFUSALS[reading.holds].get(command)
    return None if refuse is None else refuse(state_dir, reading)


def admit(state_dir: Path, command: Command, reading: Reading | None = None) -> Reading:
    """Read ``state_dir`` (unless ``reading`` is given) and raise what ``command`` says
    there if the state does not allow it; returns the reading."""
    if reading is None:
        try:
            reading = read_now(state_dir)
        except JournalError:
            if command in READ_ONLY:  # the command's own reader names the damage
                return Reading(Holds.RUN)
            raise
    error = refusal(state_dir, reading, command)
    if error is not None:
        raise error
    return reading


def locate(state_dir: Path | None, command: Command) -> Path:
    """The state directory ``command`` acts on (``--state-dir``, or the only run under
    ``./.nsxt-upgrade``), once :func:`admit` allowed the command there."""
    found = find_run(state_dir)
    admit(found, command)
    return found


# --- messages and warnings -------------------------------------------------------------

def fleet_site_message(state_dir: Path) -> str:
    """What every command says over a fleet site's state directory."""
    return (f"{state_dir} is a fleet site's state dir: its run lives in Temporal (and in "
            "fleet-journal.jsonl), not in a journal.sqlite; see `nsxt-upgrade fleet status "
            "FLEET.yaml` (`fleet pause` and `fleet run` act on it)")


def orphan_message(state_dir: Path, reading: Reading) -> str:
    """What ``run`` and ``resume`` say over a world whose run's journal is gone (ORPHAN)."""
    path = state_dir / JOURNAL_FILE
    if not path.is_file():
        journal = f"{state_dir} has no journal of a run"
    elif path.stat().st_size == 0:
        journal = f"{path} is empty (0 bytes)"
    else:
        journal = f"{path} holds no record of a run"
    return (f"{journal}, but {'; '.join(reading.traces)}. The journal of that run is gone, "
            "emptied or replaced, so it cannot be resumed, and a new run here would start a "
            "second upgrade over a half-upgraded world: restore journal.sqlite from a backup, "
            "or start afresh with another --state-dir")


def warnings(state_dir: Path, reading: Reading) -> list[str]:
    """What ``status`` warns about a directory whose journal holds no run."""
    if reading.holds is Holds.FLEET_SITE:
        return [fleet_site_message(state_dir)]
    if reading.holds is not Holds.ORPHAN:
        return []
    return [f"{state_dir} holds traces of a run but no journal of it: "
            f"{'; '.join(reading.traces)}; its journal.sqlite is gone, emptied or replaced, so "
            "that run cannot be resumed, and `nsxt-upgrade run` refuses to start another over "
            "it here"]


def fleet_sites(root: Path) -> list[Path]:
    """The fleet sites' state directories under ``root`` (and root itself)."""
    if not root.is_dir():
        return []
    return [d for d in (root, *sorted(p for p in root.iterdir() if p.is_dir()))
            if is_fleet_site(d)]


# --- traces of a run -------------------------------------------------------------------

def run_traces(state_dir: Path) -> list[str]:
    """Evidence in ``state_dir`` that a run did something (empty: none): the simulated
    world's operations, and the units and phases ``run.log`` records. Reads only."""
    return [*world_traces(state_dir), *_log_traces(state_dir / RUN_LOG)]


def _world_kept(state_dir: Path) -> bool:
    """Is a ``world.sqlite`` of its own kept in ``state_dir``?  (A world in the journal's
    tables is no leftover of a start: it goes with the journal.)  With
    :func:`upgrade.sim.store.world_in`, the only place this module looks at the world."""
    place = world_in(state_dir)
    return place is not None and not place.joint


def world_traces(state_dir: Path) -> list[str]:
    """What the simulated world in ``state_dir`` says has been done to it (empty: nothing).

    Reads the world where :func:`upgrade.sim.store.world_in` finds it, writing nothing;
    a world that cannot be read counts as a trace, since nothing then says it is untouched.
    """
    place = world_in(state_dir)
    if place is None:
        return []
    path = place.path
    try:
        if place.problem is not None:
            raise sqlite3.DatabaseError(place.problem)
        rows = world_rows(place)
    except sqlite3.Error as exc:
        return [f"{path} cannot be read ({exc})"]
    ops = sum(1 for key, _ in rows if key.startswith("o:"))
    # units in the order they were first upgraded (the rows' order is the order of their
    # last writes, which group commits and set iteration decide), held ones by name
    firsts: list[tuple[float, str]] = []
    held: list[str] = []
    for key, value in rows:
        if not key.startswith("u:"):
            continue
        try:
            unit = json.loads(value)
            if unit["upgrades"]:
                firsts.append((_first_start(unit["upgrades"]), str(unit["id"])))
            if unit["in_maintenance"]:
                held.append(str(unit["id"]))
        except (ValueError, KeyError, TypeError):
            return [f"{path} cannot be read (unit row {key} is damaged)"]
    upgraded = [ident for _, ident in sorted(firsts)]
    held.sort()
    if not ops and not upgraded and not held:
        return []
    parts = [f"{ops} operation{'s' if ops != 1 else ''} ran"]
    if upgraded:
        parts.append(f"upgraded: {_some(upgraded)}")
    if held:
        parts.append(f"in maintenance: {_some(held)}")
    return [f"the simulated world ({path}) shows a run: " + "; ".join(parts)]


def _first_start(upgrades: Any) -> float:
    """When a unit's first recorded upgrade began (infinity when the row does not say)."""
    try:
        return float(upgrades[0][0])
    except (TypeError, ValueError, IndexError, KeyError):
        return math.inf


def _log_traces(path: Path) -> list[str]:
    if not path.is_file():
        return []
    done: list[str] = []
    phases: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if '"unit_done"' not in line and '"phase_started"' not in line:
                continue  # cheap filter before parsing
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            if entry.get("event") == "unit_done" and entry.get("unit"):
                done.append(str(entry["unit"]))
            elif entry.get("event") == "phase_started":
                phase = str(entry.get("message", "")).split(" ")[0]
                if phase and phase != "precheck":  # a pre-check changes nothing
                    phases.append(phase)
    if not done and not phases:
        return []
    parts = []
    if phases:
        parts.append(f"phases started: {_some(list(dict.fromkeys(phases)))}")
    if done:
        parts.append(f"units done: {_some(list(dict.fromkeys(done)))}")
    return [f"{path} records a run: " + "; ".join(parts)]


def _some(ids: list[str], most: int = 5) -> str:
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")
