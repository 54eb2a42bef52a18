"""The one reading of a state directory (:mod:`upgrade.shell.dirstate`), state by state.

Issue 21 item 1 came from two readings that disagreed: `fresh` kept an aborted run's
world, the start-up check then deleted it as a leftover.  Each row here builds a
directory and checks what it holds, what a new start may clear, and that the world is
cleared only where no earlier run left it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from upgrade.errors import AbortedError, InputError, JournalError
from upgrade.shell.dirstate import (
    MOVES,
    REFUSALS,
    Command,
    Holds,
    JournalFacts,
    Reading,
    admit,
    read_state_dir,
)

NO_RECORD = JournalFacts(records=0, start_recorded=False, aborted=False)
STARTED = JournalFacts(records=0, start_recorded=True, aborted=False)
RUNNING = JournalFacts(records=12, start_recorded=True, aborted=False)
ABORTED = JournalFacts(records=12, start_recorded=True, aborted=True)


def _files(*names: str) -> Callable[[Path], None]:
    def make(state_dir: Path) -> None:
        for name in names:
            (state_dir / name).write_text("{}", encoding="utf-8")
    return make


def _archived(state_dir: Path) -> None:
    (state_dir / "runs" / "20261201T065248Z").mkdir(parents=True)


def _logged_unit_done(state_dir: Path) -> None:
    (state_dir / "run.log").write_text(json.dumps({"event": "unit_done", "unit": "esx-01"})
                                       + "\n", encoding="utf-8")


#: (name, how the directory is made, journal facts, holds, leftovers, world kept)
ROWS: list[tuple[str, Callable[[Path], None], JournalFacts | None, Holds, tuple[str, ...],
                 bool]] = [
    ("empty", _files(), None, Holds.EMPTY, (), True),
    ("an empty journal", _files(), NO_RECORD, Holds.EMPTY, (), True),
    ("start copies, no journal", _files("playbook.yaml", "plan.json"), None,
     Holds.INTERRUPTED_START, ("playbook.yaml", "plan.json"), False),
    ("start meta only", _files(), STARTED, Holds.INTERRUPTED_START, (), False),
    ("a run", _files("playbook.yaml", "plan.json"), RUNNING, Holds.RUN, (), True),
    ("an aborted run", _files("playbook.yaml"), ABORTED, Holds.ABORTED, (), True),
    ("after abort", _archived, NO_RECORD, Holds.AFTER_ABORT, (), True),
    ("a start interrupted after abort",
     lambda d: (_archived(d), _files("plan.json")(d)), STARTED, Holds.AFTER_ABORT,
     ("plan.json",), True),
    ("run.log of a run, no journal", _logged_unit_done, None, Holds.ORPHAN, (), True),
    ("a fleet site", lambda d: (_files("fleet-input.json")(d), _logged_unit_done(d)), None,
     Holds.FLEET_SITE, (), True),
    ("a fleet site's journal only", _files("fleet-journal.jsonl"), NO_RECORD,
     Holds.FLEET_SITE, (), True),
]


@pytest.mark.parametrize(("name", "make", "facts", "holds", "leftovers", "keeps"), ROWS,
                         ids=[row[0] for row in ROWS])
def test_what_a_directory_holds(name: str, make: Callable[[Path], None],
                                facts: JournalFacts | None, holds: Holds,
                                leftovers: tuple[str, ...], keeps: bool,
                                tmp_path: Path) -> None:
    """Each state, its leftovers, and whether a new start keeps the world."""
    make(tmp_path)
    reading = read_state_dir(tmp_path, facts)
    assert reading.holds is holds, name
    assert reading.leftovers == leftovers, name
    assert reading.keeps_world is keeps, name
    assert bool(reading.traces) is (holds is Holds.ORPHAN), name


def test_every_state_has_a_row_of_refusals_and_moves_lead_to_states() -> None:
    """The tables name every state; a move never leads out of the states."""
    assert set(REFUSALS) == set(Holds)
    for (holds, command), after in MOVES.items():
        assert command not in REFUSALS[holds], (holds, command)
        assert after in Holds


def test_what_each_refusal_raises(tmp_path: Path) -> None:
    """The exit codes of DESIGN section 3: an aborted run 1; nothing to act on 2; the
    traces of a run beside a journal that holds none: the journal is damaged, 1."""
    aborted = Reading(Holds.ABORTED, journal=JournalFacts(3, True, True, abort_reason="why"))
    with pytest.raises(AbortedError, match=r"was aborted \(why\)"):
        admit(tmp_path, Command.RESUME, aborted)
    assert admit(tmp_path, Command.RUN, aborted) is aborted
    with pytest.raises(InputError, match="already holds a run"):
        admit(tmp_path, Command.RUN, Reading(Holds.RUN))
    with pytest.raises(InputError, match=r"no journal\.sqlite"):
        admit(tmp_path, Command.REPORT, Reading(Holds.EMPTY))
    with pytest.raises(InputError, match=r"fleet status FLEET\.yaml"):
        admit(tmp_path, Command.REPORT, Reading(Holds.FLEET_SITE))
    assert admit(tmp_path, Command.STATUS, Reading(Holds.FLEET_SITE)).holds is Holds.FLEET_SITE
    orphan = Reading(Holds.ORPHAN, traces=("run.log records a run",))
    with pytest.raises(InputError, match=r"run\.log records a run"):
        admit(tmp_path, Command.ABORT, orphan)
    (tmp_path / "journal.sqlite").write_bytes(b"")
    with pytest.raises(JournalError, match="is empty"):
        admit(tmp_path, Command.RESUME, orphan)
    assert admit(tmp_path, Command.REPORT, Reading(Holds.EMPTY)).holds is Holds.EMPTY


def _journal_without_schema(state_dir: Path) -> None:
    """A journal file as a run leaves it between ``PRAGMA journal_mode=WAL`` (which writes
    the file's header) and its schema's COMMIT."""
    import sqlite3

    state_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(state_dir / "journal.sqlite")
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.close()
    assert (state_dir / "journal.sqlite").stat().st_size > 0


def test_a_journal_whose_schema_is_not_written_yet_reads_as_empty(tmp_path: Path) -> None:
    """A reader beside a run creating its journal (or after a crash right there) finds no
    record, as in a zero-length file, instead of "not an nsxt-upgrade journal"; a SQLite
    file that holds someone else's tables is still refused."""
    from upgrade.shell.dirstate import facts_on_disk
    from upgrade.shell.journal import Journal

    _journal_without_schema(tmp_path / "creating")
    assert Journal.unwritten(tmp_path / "creating")
    assert facts_on_disk(tmp_path / "creating") == NO_RECORD
    with Journal.open(tmp_path / "creating") as journal:  # a run writes the schema into it
        assert journal.count() == 0
    assert not Journal.unwritten(tmp_path / "creating")

    import sqlite3

    other = tmp_path / "other"
    other.mkdir()
    conn = sqlite3.connect(other / "journal.sqlite")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    assert not Journal.unwritten(other)
    with pytest.raises(JournalError, match="not an nsxt-upgrade journal"):
        facts_on_disk(other)


def test_status_beside_a_journal_being_created_answers_as_for_an_empty_one(
        tmp_path: Path) -> None:
    """`status` on a state dir whose journal has no schema yet says what it says of a
    zero-length journal (the CLI, a real file)."""
    from tests.run_support import nsxt

    _journal_without_schema(tmp_path / "creating")
    (tmp_path / "zero").mkdir()
    (tmp_path / "zero" / "journal.sqlite").write_bytes(b"")
    creating = nsxt("status", "--state-dir", tmp_path / "creating")
    zero = nsxt("status", "--state-dir", tmp_path / "zero")
    assert "not an nsxt-upgrade journal" not in creating.stdout + creating.stderr
    assert creating.returncode == zero.returncode
    assert (creating.stdout + creating.stderr).replace("creating", "D") == \
        (zero.stdout + zero.stderr).replace("zero", "D")
