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

from upgrade.shell.dirstate import Holds, JournalFacts, read_state_dir

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
