"""The journey file's mistakes (FILE:LINE:COL, exit 2) and the journal's torn last line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.journey.support import journey, make_lab
from upgrade.errors import FileError, JournalError
from upgrade.journey.journal import JOURNAL, JourneyJournal
from upgrade.journey.spec import load_journey


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("site: site.yaml", "site: nowhere.yaml", 2, "site playbook"),
    ('to: {pks: "1.3.5"', "to: {pks: 1.35", 4, "version"),
    ("name: lab-journey", "name: lab-journey\nfrom_: 1", 2, "unknown key"),
    ("path: nsx-2.2.mub", "path: missing.mub", 6, "does not exist"),
    ('sha256: "', 'sha256: "12', 6, "64 hexadecimal"),
    ('"2.3.1.0": {path: nsx-2.3.1.mub', '"2.2": {path: nsx-2.3.1.mub', 7, "named twice"),
])
def test_mistakes_name_their_line(tmp_path: Path, old: str, new: str, line: int,
                                  words: str) -> None:
    """Each mistake is a FileError at its line (and `journey plan` exits 2 with it)."""
    journey_file = make_lab(tmp_path / "lab")
    text = journey_file.read_text()
    assert old in text
    journey_file.write_text(text.replace(old, new, 1))
    with pytest.raises(FileError) as error:
        load_journey(journey_file)
    assert error.value.line == line and words in error.value.reason
    proc = journey("plan", journey_file)
    assert proc.returncode == 2 and proc.stderr.startswith(f"{journey_file}:{line}:")


def test_a_torn_last_line_is_ignored_then_cut(tmp_path: Path) -> None:
    """A record cut short by a kill (no newline) is not read, and the next append replaces
    it; a damaged line in the middle is an error naming it."""
    journal = JourneyJournal.read(tmp_path)
    journal.append("started", steps=[])
    with (tmp_path / JOURNAL).open("a") as out:
        out.write('{"type": "confirmed", "n": 1, "vers')
    again = JourneyJournal.read(tmp_path)
    assert [r["type"] for r in again.records] == ["started"]
    again.append("waiting", n=1)
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["started", "waiting"]
    (tmp_path / JOURNAL).write_text(lines[0] + "\ngarbage\n" + lines[1] + "\n")
    with pytest.raises(JournalError, match=":2: not a journal record"):
        JourneyJournal.read(tmp_path)
