"""``window.tz`` takes IANA zone names only (DESIGN section 4, issue 21 item 13).

A system's zoneinfo directory answers to more names than the IANA database has zones:
``localtime`` (whatever this machine is set to, so the same playbook would open its
window at other hours on another machine), ``posixrules`` and the ``posix/`` and
``right/`` trees; and the database's own ``Factory`` is the placeholder for "not
configured".  Each is one ``FILE:LINE:COL`` line and exit 2 through the CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.run_support import copy_playbooks, edit, nsxt
from upgrade.inputs.maintenance import iana_zone_names


def _book(tmp_path: Path, tz: str) -> Path:
    book = copy_playbooks(tmp_path) / "lab-2.1-to-2.3.yaml"
    return edit(book, "retries: 2\n", f'retries: 2\nwindow: {{days: [sat], start: "01:00", '
                f'end: "05:00", tz: "{tz}"}}\n')


@pytest.mark.parametrize(("tz", "why"), [
    ("localtime", "the machine's own setting"),
    ("Factory", "placeholder for an unset zone"),
    ("posixrules", "template for POSIX TZ strings"),
    ("posix/Europe/Berlin", ""),
    ("right/UTC", ""),
])
def test_a_name_that_is_no_iana_zone_is_refused_naming_the_line(
        tmp_path: Path, tz: str, why: str) -> None:
    book = _book(tmp_path, tz)
    proc = nsxt("plan", book)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = next(n for n, text in enumerate(book.read_text().splitlines(), 1)
                if text.startswith("window:"))
    column = book.read_text().splitlines()[line - 1].index(f'"{tz}"') + 1
    assert proc.stderr.startswith(f"{book}:{line}:{column}: unknown time zone {tz!r}")
    assert why in proc.stderr and proc.stderr.count("\n") == 1 and not proc.stdout


@pytest.mark.parametrize("tz", ["Europe/Berlin", "UTC", "America/New_York", "Etc/GMT+5"])
def test_iana_names_plan(tmp_path: Path, tz: str) -> None:
    proc = nsxt("plan", _book(tmp_path, tz))
    assert proc.returncode == 0, proc.stderr


def test_the_name_list_is_the_iana_one() -> None:
    names = iana_zone_names()
    assert {"Europe/Berlin", "UTC", "Asia/Kolkata"} <= names
    assert not names & {"localtime", "posixrules", "Factory"}
    assert not any(n.startswith(("posix/", "right/")) for n in names)
