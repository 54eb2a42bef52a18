"""A site overlay that says something impossible is refused, never taken in silently
(issue 21 item 12): a hop that goes down (``2.3 -> 2.1``), a ``schema:`` this version
does not read, a ``released:`` that is no date.  Each is one ``FILE:LINE:COL`` line and
exit 2, on ``compat`` and on ``plan`` (the playbook's ``compatibility: {matrix: FILE}``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.run_support import copy_playbooks, edit, nsxt
from upgrade.compat.load import load_matrix, release_date

DOWNGRADE = """\
upgrades:
  nsxt:
    hops:
      - {from: "2.3", to: "2.1", source: "https://wiki.example/rollback"}
"""
SAME_SERIES = """\
upgrades:
  opsman:
    hops:
      - {from: "2.4", to: "2.4", source: "https://wiki.example/x"}
"""
SCHEMA = """\
schema: 3
pks_matrix: []
"""
YESTERDAY = """\
pks_matrix:
  - pks: "1.6.0"
    released: "yesterday"
    nsxt: "v2.5.0"
    opsman: "v2.6.x"
    source: "https://wiki.example/pks-1.6"
"""

CASES = [
    (DOWNGRADE, 4, 27, "NSX-T hop 2.3 \u2192 2.1 does not go up"),
    (SAME_SERIES, 4, 27, "Ops Manager hop 2.4 \u2192 2.4 does not go up"),
    (SCHEMA, 1, 9, "schema: 3 is not a layout this nsxt-upgrade reads: write schema: 2"),
    (YESTERDAY, 3, 15, "released: 'yesterday' is not a date"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), CASES)
def test_compat_refuses_the_file_naming_line_and_column(
        tmp_path: Path, text: str, line: int, column: int, message: str) -> None:
    site = tmp_path / "site-compat.yaml"
    site.write_text(text, encoding="utf-8")
    proc = nsxt("compat", "matrix", "--matrix", site)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"{site}:{line}:{column}: {message}"), proc.stderr
    assert proc.stderr.count("\n") == 1 and not proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("text", "line", "column", "message"), CASES[:1] + CASES[3:])
def test_plan_refuses_a_playbook_whose_site_data_is_impossible(
        tmp_path: Path, text: str, line: int, column: int, message: str) -> None:
    books = copy_playbooks(tmp_path)
    site = books / "site-compat.yaml"
    site.write_text(text, encoding="utf-8")
    book = edit(books / "lab-2.1-to-2.3.yaml", 'compatibility: {pks: "1.2.0", opsman: "2.3.1"}',
                'compatibility: {pks: "1.2.0", opsman: "2.3.1", matrix: site-compat.yaml}')
    proc = nsxt("plan", book)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"{site}:{line}:{column}: {message}"), proc.stderr


def test_a_site_file_may_say_schema_2_or_nothing(tmp_path: Path) -> None:
    for text in ("schema: 2\n" + YESTERDAY.replace("yesterday", "2019-11-14"),
                 YESTERDAY.replace("yesterday", "November 14, 2019")):
        site = tmp_path / "site.yaml"
        site.write_text(text, encoding="utf-8")
        proc = nsxt("compat", "matrix", "--matrix", site, "--format", "json")
        assert proc.returncode == 0, proc.stderr


def test_every_built_in_row_has_a_date_and_every_hop_goes_up() -> None:
    matrix = load_matrix()
    assert all(row.released and release_date(row.released) for row in matrix.rows)
    for rules in matrix.upgrades.values():
        for hop in rules.hops:
            assert min(i.low for i in hop.target_spec.items) > max(
                i.low for i in hop.source_spec.items), hop.describe()
