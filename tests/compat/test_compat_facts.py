"""`compat check` against the vendor's notes, one case per fact of ../shared/compat-sources.md.

Each case is typed from the fact sheet, not from matrix.yaml: the verbatim cells, versions
they accept and refuse, and the releases the notes let upgrade to that release directly.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest
from click.testing import CliRunner

from upgrade.cli.main import cli
from upgrade.compat import check, load_matrix
from upgrade.core.versions import Version


def v(text: str) -> Version:
    return Version.parse(text)


class Fact(NamedTuple):
    pks: str
    nsxt: str  # the NSX-T cell, verbatim
    opsman: str  # the Ops Manager cell, verbatim (or the last explicit value)
    nsxt_yes: tuple[str, ...]
    nsxt_no: tuple[str, ...]
    om_yes: tuple[str, ...]
    om_no: tuple[str, ...]
    from_yes: tuple[str, ...]  # releases the notes let upgrade directly to this one
    from_no: tuple[str, ...]
    cite: str  # the sheet's citation of the release's section: branch@commit Lline


ADV = "2.1 Advanced Edition"
N12 = "v2.2, v2.3.0.2, v2.3.1"
OM12 = "v2.2.3+, v2.3.1+, v2.4.x"
OM13 = "v2.3.1+, v2.4.0+"
N15 = "v2.5.0, v2.4.2, v2.4.1, or v2.4.0.1"
OM15 = "v2.5.9 and later, v2.6.3 and later"
OM152 = "v2.7.3 and later, v2.6.6 and later, or v2.5.12 and later"
OM14 = "v2.4.2+, v2.5.24 and later, v2.6.16 and later"
N14 = ("2.3.1", "2.4.0.1", "2.4.1", "2.4.2")
FROM11 = ("1.0.2", "1.0.3", "1.0.4", "1.1.0")

FACTS = [
    # 1.0.x: 1.0-publish@039a32f1
    Fact("1.0.0", ADV, "2.0.0 - 2.0.5", ("2.1.0.0",), ("2.2",), ("2.0.0", "2.0.5"), ("2.1.0",),
         (), (), "1.0-publish@039a32f1 L552"),
    Fact("1.0.2", ADV, "2.0.X and 2.1.X", ("2.1",), ("2.2",), ("2.0.5", "2.1.6"), ("2.2.0",),
         ("1.0.0",), (), "1.0-publish@039a32f1 L336"),
    Fact("1.0.3", ADV, "2.0.X and 2.1.X", ("2.1",), ("2.2",), ("2.0.0", "2.1.0"), ("2.2.2",),
         ("1.0.2",), ("1.0.0",), "1.0-publish@039a32f1 L148"),
    Fact("1.0.4", ADV, "2.0.X and 2.1.X", ("2.1",), ("2.2",), ("2.1.6",), ("2.2.0",),
         ("1.0.2", "1.0.3"), ("1.0.0",), "1.0-publish@039a32f1 L10"),
    # 1.1.x: 1.1@52832c36 (1.1.1-1.1.3 have no NSX-T row: the 1.2 upgrade chart's value)
    Fact("1.1.0", "2.1 - Advanced Edition", "2.1.0-2.1.6", ("2.1",), ("2.2",), ("2.1.0", "2.1.6"),
         ("2.1.7", "2.2.0"), ("1.0.2", "1.0.4"), ("1.0.0",), "1.1@52832c36 L439"),
    Fact("1.1.1", "v2.1 - Advanced Edition", "v2.1.x, v2.2.x", ("2.1",), ("2.2",),
         ("2.1.7", "2.2.0"), ("2.0.5", "2.3.1"), FROM11, ("1.0.0",), "1.1@52832c36 L370"),
    Fact("1.1.2", "v2.1", "v2.1.x, v2.2.x", ("2.1",), ("2.2",), ("2.1.0", "2.2.3"), ("2.3.1",),
         (*FROM11, "1.1.1"), ("1.0.0",), "1.1@52832c36 L319"),
    Fact("1.1.3", "v2.1", "v2.1.x, v2.2.x", ("2.1",), ("2.2",), ("2.1.7", "2.2.0"), ("2.3.1",),
         (*FROM11, "1.1.2"), ("1.0.0",), "1.1@52832c36 L269"),
    Fact("1.1.4", "v2.1", "v2.1.x, v2.2.x", ("2.1",), ("2.2",), ("2.2.2",), ("2.0.5",),
         (*FROM11, "1.1.3"), ("1.0.0",), "1.1@52832c36 L210"),
    Fact("1.1.5", "v2.1, v2.2", "v2.1.x, v2.2.x", ("2.1", "2.2"), ("2.3",), ("2.2.3",),
         ("2.3.1",), (*FROM11, "1.1.4"), ("1.0.0",), "1.1@52832c36 L61"),
    Fact("1.1.6", "v2.1, v2.2", "v2.1.x, v2.2.x", ("2.1", "2.2"), ("2.3",), ("2.1.3",),
         ("2.3.1",), ("1.1.4", "1.1.5"), ("1.0.0",), "1.1@52832c36 L12"),
    # 1.2.x: 1.2@a190865f; the notes differ between 1.2.0-1.2.1, 1.2.2-1.2.3, 1.2.4, 1.2.5+
    Fact("1.2.0", "v2.2, v2.3", "v2.2.2+, v2.3.1+", ("2.2", "2.3.0.0"), ("2.1",),
         ("2.2.2", "2.3.1"), ("2.2.1", "2.3.0", "2.4.0"), ("1.1.5", "1.1.6"), ("1.1.4",),
         "1.2@a190865f L1663"),
    Fact("1.2.1", "v2.2, v2.3", "v2.2.2+, v2.3.1+", ("2.3.0.0",), ("2.1",), ("2.2.2",),
         ("2.4.0",), ("1.1.5", "1.2.0"), ("1.1.4",), "1.2@a190865f L1526"),
    Fact("1.2.2", "v2.2, v2.3", "v2.2.3+, v2.3.1+", ("2.3.0.0",), ("2.1",), ("2.2.3",),
         ("2.2.2", "2.4.0"), ("1.1.5", "1.2.1"), ("1.1.4",), "1.2@a190865f L1394"),
    Fact("1.2.3", "v2.2, v2.3", "v2.2.3+, v2.3.1+", ("2.3.0.0",), ("2.1",), ("2.3.1",),
         ("2.2.2", "2.4.0"), ("1.1.6", "1.2.2"), ("1.1.4",), "1.2@a190865f L1254"),
    Fact("1.2.4", "v2.2, v2.3.0.2", OM12, ("2.2", "2.3.0.2"), ("2.3.0.0", "2.3.1"),
         ("2.2.3", "2.4.0", "2.4.13"), ("2.2.2", "2.5.0"), ("1.1.5", "1.2.3"), ("1.1.4",),
         "1.2@a190865f L1105"),
    Fact("1.2.5", N12, OM12, ("2.3.0.2", "2.3.1"), ("2.3.0.0",), ("2.4.2",), ("2.2.2",),
         ("1.2.0", "1.2.4"), ("1.1.6",), "1.2@a190865f L968"),
    Fact("1.2.6", N12, OM12, ("2.3.1",), ("2.4.0.1",), ("2.3.1",), ("2.5.0",),
         ("1.2.0", "1.2.5"), ("1.1.6",), "1.2@a190865f L834"),
    Fact("1.2.7", N12, OM12, ("2.3.1",), ("2.1",), ("2.4.0",), ("2.2.2",),
         ("1.2.5", "1.2.6"), ("1.2.0", "1.2.4"), "1.2@a190865f L692"),
    Fact("1.2.8", N12, OM12, ("2.3.1",), ("2.1",), ("2.4.0",), ("2.2.2",),
         ("1.2.7",), ("1.2.6", "1.2.5"), "1.2@a190865f L551"),
    Fact("1.2.9", N12, OM12, ("2.3.1",), ("2.1",), ("2.4.0",), ("2.2.2",),
         ("1.2.8",), ("1.2.7",), "1.2@a190865f L414"),
    Fact("1.2.10", N12, OM12, ("2.3.1",), ("2.1",), ("2.4.0",), ("2.2.2",),
         ("1.2.8", "1.2.9"), ("1.2.7",), "1.2@a190865f L286"),
    Fact("1.2.11", N12, OM12, ("2.3.1",), ("2.1",), ("2.4.0",), ("2.2.2",),
         ("1.2.8", "1.2.10"), ("1.2.7",), "1.2@a190865f L152"),
    Fact("1.2.12", N12, OM12, ("2.3.1",), ("2.1",), ("2.4.0",), ("2.2.2",),
         ("1.2.8", "1.2.11"), ("1.2.7",), "1.2@a190865f L17"),
    # 1.3.x: 1.3@22292bfa; per-patch upgrade minimums; 1.3.6+ add NSX-T 2.4.0.1, drop 2.2
    Fact("1.3.0", N12, OM13, ("2.3.0.2",), ("2.3.0.0",), ("2.3.1", "2.4.0"), ("2.3.0", "2.2.3"),
         ("1.2.5", "1.2.12"), ("1.2.4",), "1.3@22292bfa L1742"),
    Fact("1.3.1", N12, OM13, ("2.2",), ("2.4.0.1",), ("2.4.3",), ("2.3.0",),
         ("1.3.0", "1.2.7", "1.2.8"), ("1.2.6", "1.2.9"), "1.3@22292bfa L1514"),
    Fact("1.3.2", N12, OM13, ("2.3.1",), ("2.4.0.1",), ("2.3.1",), ("2.2.3",),
         ("1.3.1", "1.2.8", "1.2.9"), ("1.3.0", "1.2.7", "1.2.10"), "1.3@22292bfa L1299"),
    Fact("1.3.3", N12, OM13, ("2.3.1",), ("2.4.0.1",), ("2.3.1",), ("2.2.3",),
         ("1.3.1", "1.3.2", "1.2.8", "1.2.11"), ("1.3.0", "1.2.7", "1.2.12"),
         "1.3@22292bfa L1086"),
    Fact("1.3.4", N12, OM13, ("2.3.1",), ("2.4.0.1",), ("2.4.2",), ("2.2.3",),
         ("1.3.1", "1.3.3", "1.2.8", "1.2.12"), ("1.3.0", "1.2.7"), "1.3@22292bfa L856"),
    Fact("1.3.5", N12, OM13, ("2.2",), ("2.4.0.1",), ("2.4.2",), ("2.2.3",),
         ("1.3.4",), ("1.3.3", "1.2.8", "1.2.12"), "1.3@22292bfa L633"),
    Fact("1.3.6", "v2.3.1, v2.4.0.1", OM13, ("2.3.1", "2.4.0.1"), ("2.2", "2.3.0.2", "2.4.1"),
         ("2.3.1",), ("2.2.3",), ("1.3.4", "1.3.5"), ("1.3.3", "1.2.12"), "1.3@22292bfa L390"),
    Fact("1.3.7", "v2.3.1, v2.4.0.1", OM13, ("2.4.0.1",), ("2.2",), ("2.3.1",), ("2.2.3",),
         ("1.3.4", "1.3.6"), ("1.3.3",), "1.3@22292bfa L199"),
    Fact("1.3.8", "v2.3.1, v2.4.0.1", OM13, ("2.4.0.1",), ("2.2",), ("2.3.1",), ("2.2.3",),
         ("1.3.4", "1.3.7"), ("1.3.3",), "1.3@22292bfa L12"),
    # 1.4.x: 1.4@6042d4d3; Ops Manager cells point to Pivotal Network: last explicit dfad58ac
    Fact("1.4.0", "v2.3.1, v2.4.0.1", "v2.4.2+, v2.5.24 and later", ("2.3.1", "2.4.0.1"),
         ("2.4.1", "2.4.2"), ("2.4.2", "2.5.24"), ("2.4.0", "2.6.16"), ("1.3.2", "1.3.8"),
         ("1.3.1",), "1.4@6042d4d3 L642"),
    Fact("1.4.1", "v2.3.1, v2.4.0.1, v2.4.1 (recommended), v2.4.2 "
         '(<a href="#1-4-1-nsxt-2-4-2">see below</a>)', OM14, N14, ("2.4.3", "2.5.0"),
         ("2.4.13", "2.6.16"), ("2.4.0", "2.7.6"), ("1.4.0", "1.3.2"), ("1.3.1",),
         "1.4@6042d4d3 L389"),
    Fact("1.4.2", 'v2.3.1, v2.4.0.1, v2.4.1, v2.4.2 (<a href="#1-4-2-nsxt-2-4-2">see below</a>)',
         OM14, N14, ("2.4.3",), ("2.6.16",), ("2.7.6",), ("1.4.0", "1.4.1", "1.3.4"),
         ("1.3.3", "1.3.2"), "1.4@6042d4d3 L208"),
    Fact("1.4.3", 'v2.3.1, v2.4.0.1, v2.4.1, v2.4.2 (<a href="#2-4-2">see below</a>)', OM14,
         N14, ("2.5.0",), ("2.5.24",), ("2.5.5",), ("1.4.0", "1.4.2", "1.3.4"), ("1.3.3",),
         "1.4@6042d4d3 L11"),
    # 1.5.x: 1.5@6178e657; NSX-T 2.5.0 added; 1.5.3 bumps 2.4 to 2.4.3
    Fact("1.5.0", N15, OM15, ("2.5.0", "2.4.0.1", "2.4.2"), ("2.3.1", "2.4.3"),
         ("2.5.9", "2.6.3"), ("2.4.2", "2.7.6"), ("1.4.0", "1.4.3"), ("1.3.8",),
         "1.5@6178e657 L381"),
    Fact("1.5.1", N15, OM15, ("2.5.0",), ("2.3.1",), ("2.6.16",), ("2.5.5",),
         ("1.4.0", "1.5.0"), ("1.3.8",), "1.5@6178e657 L264"),
    Fact("1.5.2", N15, OM152, ("2.4.1",), ("2.3.1",), ("2.7.3", "2.6.6", "2.5.12"),
         ("2.7.0", "2.5.9"), ("1.4.0", "1.5.1"), ("1.3.8",), "1.5@6178e657 L124"),
    Fact("1.5.3", "v2.5.0, v2.4.3", OM152, ("2.5.0", "2.4.3"), ("2.4.2", "2.4.0.1"),
         ("2.7.6",), ("2.6.3",), ("1.4.0", "1.5.2"), ("1.3.8",), "1.5@6178e657 L12"),
]


def test_every_release_from_1_0_0_to_1_5_3_is_a_fact_and_a_row() -> None:
    """The table covers the sheet's 41 releases, and the data has exactly those rows."""
    assert len(FACTS) == 41
    assert sorted(v(f.pks) for f in FACTS) == sorted(r.pks for r in load_matrix().rows)


@pytest.mark.parametrize("fact", FACTS, ids=[f.pks for f in FACTS])
def test_check_agrees_with_the_release_notes(fact: Fact) -> None:
    """Cells verbatim, cited; compat check accepts and refuses what the notes say."""
    matrix = load_matrix()
    row = matrix.row_for(v(fact.pks))
    assert row is not None
    assert (row.nsxt.text, row.opsman.text) == (fact.nsxt, fact.opsman)
    branch, line = fact.cite.split(" ")
    assert f"docs-pks {branch}" in row.source.render() and f"{line} " in row.source.render()
    om = fact.om_yes[0]
    for nsxt in fact.nsxt_yes:
        assert check(v(fact.pks), v(nsxt), v(om), matrix).compatible, nsxt
    for nsxt in fact.nsxt_no:
        assert not check(v(fact.pks), v(nsxt), v(om), matrix).compatible, nsxt
    for opsman in fact.om_yes:
        assert check(v(fact.pks), v(fact.nsxt_yes[0]), v(opsman), matrix).compatible, opsman
    for opsman in fact.om_no:
        assert not check(v(fact.pks), v(fact.nsxt_yes[0]), v(opsman), matrix).compatible, opsman
    for old in fact.from_yes:
        assert matrix.pks_upgrade_allowed(v(old), v(fact.pks)), old
    for old in fact.from_no:
        assert not matrix.pks_upgrade_allowed(v(old), v(fact.pks)), old


WITHDRAWN = {
    "1.1.0": ("PKS v1.1.0 is no longer available for download", "1.1@52832c36", "L437"),
    "1.3.0": ("This release has been removed from Pivotal Network", "1.3@22292bfa", "L1740"),
}


@pytest.mark.parametrize("pks", sorted(WITHDRAWN))
def test_withdrawn_release_is_refused_with_that_reason(runner: CliRunner, pks: str) -> None:
    """compat check: exit 4, "withdrawn": true, the vendor's sentence and where it is."""
    fact = next(f for f in FACTS if f.pks == pks)
    args = ["compat", "check", "--pks", pks, "--nsxt", fact.nsxt_yes[0], "--format", "json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    text, branch, line = WITHDRAWN[pks]
    assert doc["withdrawn"] is True and doc["supported"] is False and doc["compatible"] is True
    assert text in doc["reason"] and branch in doc["reason"] and line in doc["reason"]
    others = [r.pks for r in load_matrix().rows if r.withdrawn is not None]
    assert sorted(str(p) for p in others) == sorted(WITHDRAWN)


DISCREPANCIES = [
    # (pks, nsxt, opsman, field, the other reading, its source)
    ("1.1.1", "2.1", "2.2.0", "opsman", "v2.1.0 - 2.1.6", "upgrade-pks-nsxt.html.md.erb L55-57"),
    ("1.1.3", "2.1", "2.1.7", "opsman", "v2.1.0 - 2.1.6", "upgrade-pks-nsxt.html.md.erb L45-47"),
    ("1.2.0", "2.3", "2.2.2", "opsman", "v2.2.3+, v2.3.1+", "upgrade-pks-nsxt.html.md.erb L19-59"),
    ("1.2.3", "2.3", "2.2.3", "opsman", "v2.3.1+", "upgrade-pks.html.md.erb L128"),
]


@pytest.mark.parametrize(("pks", "nsxt", "opsman", "name", "reading", "where"), DISCREPANCIES)
def test_discrepancy_warns_and_strict_refuses(
    runner: CliRunner, pks: str, nsxt: str, opsman: str, name: str, reading: str, where: str
) -> None:
    """Supported with a warning naming both sources; --strict refuses with exit 4."""
    args = ["compat", "check", "--pks", pks, "--nsxt", nsxt, "--opsman", opsman]
    loose = runner.invoke(cli, [*args, "--format", "json"])
    assert loose.exit_code == 0
    doc = json.loads(loose.stdout)
    assert doc["supported"] is True
    found = [d for d in doc["discrepancies"] if d["reading"] == reading]
    assert len(found) == 1 and found[0]["field"] == name
    assert where in found[0]["source"] and "release-notes.html.md.erb" in found[0]["own_source"]
    text = runner.invoke(cli, args)
    assert text.exit_code == 0 and "warning: vendor documents disagree" in text.output
    assert where in text.output
    strict = runner.invoke(cli, [*args, "--strict", "--format", "json"])
    assert strict.exit_code == 4
    assert json.loads(strict.stdout)["supported"] is False


def test_agreeing_readings_give_no_warning() -> None:
    """PKS 1.1.1 on Ops Manager 2.1.3: both readings accept it, so nothing to warn about."""
    result = check(v("1.1.1"), v("2.1"), v("2.1.3"))
    assert result.supported and result.discrepancies == ()


def test_upgrade_discrepancies_are_recorded() -> None:
    """1.3.0 (notes 1.2.5+, upgrade page 1.2.7+) and 1.5.0 (notes 1.4.0+, NSX-T page 1.4.1+)."""
    matrix = load_matrix()
    for pks, old, page in [("1.3.0", "1.2.5", "upgrade-pks.html.md.erb L11-12"),
                           ("1.5.0", "1.4.0", "upgrade-pks-nsxt.html.md.erb L13")]:
        assert matrix.pks_upgrade_allowed(v(old), v(pks))
        assert not matrix.pks_upgrade_allowed(v(old), v(pks), strict=True)
        row = matrix.row_for(v(pks))
        assert row is not None
        found = row.disagreements("upgrade_from", v(old))
        assert len(found) == 1 and page in found[0].source.render()


def test_not_confirmable_rows_are_the_pivotal_network_ones() -> None:
    """1.4.x and 1.5.x Ops Manager cells only point to Pivotal Network at the tip."""
    rows = load_matrix().rows
    assert {str(r.pks) for r in rows if not r.confirmable} == {
        "1.4.0", "1.4.1", "1.4.2", "1.4.3", "1.5.0", "1.5.1", "1.5.2", "1.5.3",
    }
    for row in rows:
        if not row.confirmable:
            assert row.note and "Pivotal Network" in row.note
            assert "@" in row.field_source("opsman").text  # names the commit of the value
