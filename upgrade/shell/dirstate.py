"""What a state directory holds: one reading that ``run``, ``resume`` and ``status`` share.

Before this module, a new ``run`` read a directory twice: :mod:`upgrade.shell.fresh`
saw an aborted run's world and kept it, then the start-up check saw the same
``world.sqlite`` as the leftover of an interrupted start and deleted it, so the next
run rebuilt the world and upgraded every unit again.  Here the directory is read once
into a :class:`Reading`; every caller acts on the same answer.

The states (first match wins):

==================  ==========================================================  =========
holds               what is there                                               world
==================  ==========================================================  =========
ABORTED             a journal with the abort record                             kept
RUN                 a journal with records (running, paused, failed or done)    kept
AFTER_ABORT         no journal record; an aborted run archived under ``runs/``  kept
ORPHAN              no journal record, but the world or ``run.log`` shows a     kept
                    run (the journal is gone, emptied or replaced)
INTERRUPTED_START   no journal record; files a start writes first (or an        cleared
                    empty journal with the start's meta); nothing was done
EMPTY               nothing of a run                                            -
==================  ==========================================================  =========

Only in INTERRUPTED_START is anything cleared by a new start, and never the world of
an earlier run: what a directory's world shows is the target system, not a leftover.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from upgrade.shell.journal import JOURNAL_FILE, Journal
from upgrade.shell.statedir import STARTUP_FILES, WORLD, run_traces
from upgrade.sim.store import world_in

#: where an aborted run's record goes when a new run starts in its state directory
ARCHIVE = "runs"


class Holds(enum.Enum):
    """What a state directory holds (see the module's table)."""

    EMPTY = "empty"
    INTERRUPTED_START = "interrupted_start"
    AFTER_ABORT = "after_abort"
    ORPHAN = "orphan"
    RUN = "run"
    ABORTED = "aborted"


@dataclass(frozen=True)
class Reading:
    """One reading of a state directory."""

    holds: Holds
    #: files a start interrupted before its first record left (a new start removes them)
    leftovers: tuple[str, ...] = ()
    #: evidence of a run whose journal is missing (ORPHAN only)
    traces: tuple[str, ...] = ()

    @property
    def keeps_world(self) -> bool:
        """True when ``world.sqlite`` is the target system an earlier run left."""
        return self.holds is not Holds.INTERRUPTED_START


@dataclass(frozen=True)
class JournalFacts:
    """What a caller that has the journal open knows of it (read once, passed in)."""

    records: int
    start_recorded: bool
    aborted: bool


def journal_facts(journal: Journal) -> JournalFacts:
    """The facts of an open journal :func:`read_state_dir` needs."""
    return JournalFacts(records=journal.count(),
                        start_recorded=journal.get_meta("playbook_path") is not None,
                        aborted=journal.get_meta("aborted") is not None)


def facts_on_disk(state_dir: Path) -> JournalFacts | None:
    """The journal's facts read without writing (None: no journal file); a zero-length
    file (no schema, so no record) reads as an empty journal.  A file that is not a
    journal raises :class:`~upgrade.errors.JournalError`."""
    path = state_dir / JOURNAL_FILE
    if not path.is_file():
        return None
    if path.stat().st_size == 0:
        return JournalFacts(records=0, start_recorded=False, aborted=False)
    with Journal.open_readonly(state_dir) as journal:
        return journal_facts(journal)


def read_now(state_dir: Path) -> Reading:
    """:func:`read_state_dir` over the journal as it is on disk (reads only)."""
    return read_state_dir(state_dir, facts_on_disk(state_dir))


def archived_runs(state_dir: Path) -> list[Path]:
    """The aborted runs kept under ``state_dir/runs/``."""
    archive = state_dir / ARCHIVE
    return sorted(p for p in archive.glob("*") if p.is_dir()) if archive.is_dir() else []


def read_state_dir(state_dir: Path, journal: JournalFacts | None) -> Reading:
    """Classify ``state_dir`` (reads only). ``journal``: None when there is no journal file
    (or it holds no schema yet); otherwise what its meta and records say."""
    if journal is not None and journal.aborted:
        return Reading(Holds.ABORTED)
    if journal is not None and journal.records > 0:
        return Reading(Holds.RUN)
    startup = tuple(name for name in STARTUP_FILES if (state_dir / name).exists())
    started = journal is not None and journal.start_recorded
    if archived_runs(state_dir):
        return Reading(Holds.AFTER_ABORT, leftovers=startup)
    traces = tuple(run_traces(state_dir))
    if traces:
        return Reading(Holds.ORPHAN, traces=traces)
    place = world_in(state_dir)  # a world in the journal is no leftover of its own
    world = (WORLD,) if place is not None and not place.joint else ()
    if startup or world or started:
        return Reading(Holds.INTERRUPTED_START, leftovers=startup + world)
    return Reading(Holds.EMPTY)


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
