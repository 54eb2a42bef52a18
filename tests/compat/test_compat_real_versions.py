"""Real versions are answered by the ranges (issue 21 item 6).

Ops Manager 2.5.1 and 2.6.1 are real releases (the vendor's Ops Manager release notes
list them: ``upgrade/compat/catalogue.yaml``) in series the data states ranges for
("v2.5.24 and later", "v2.6.16 and later"): `compat check` answers them, supported or
not (exit 0 / 4).  A version of a known series that the catalogue does not list
(Ops Manager 2.6.99, 2.5.18) is answered too, with a note that it is not in the
catalogue of known releases.  Only a version of no known series (Ops Manager 3.0,
NSX-T 7.0) is unknown, exit 2.  A PKS version needs its own row (its release notes are
the data): 1.4.9 stays unknown.  Through the CLI as a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.run_support import copy_playbooks, edit, nsxt
from upgrade.compat.catalogue import catalogued, load_catalogue
from upgrade.compat.load import load_matrix
from upgrade.compat.matrix import Product
from upgrade.core.versions import Version

NOTE = "is not in the catalogue of known releases"


@pytest.mark.parametrize(("pks", "nsx", "opsman", "code", "noted"), [
    ("1.4.1", "2.4.1", "2.5.1", 4, None),                   # the command
    ("1.4.1", "2.4.1", "2.6.1", 4, None),
    ("1.5.2", "2.5.0", "2.6.7", 0, None),                   # inside v2.6.6 and later
    ("1.2.0", "2.3", "2.3.5", 0, None),                     # inside v2.3.1+
    ("1.5.2", "2.5.0", "2.6.99", 0, "Ops Manager 2.6.99"),  # in range, never released
    ("1.4.1", "2.4.1", "2.5.18", 4, "Ops Manager 2.5.18"),  # the 2.5 notes skip it
    ("1.2.0", "2.3.0.5", "2.3.1", 0, "NSX-T 2.3.0.5"),      # inside the v2.3 series
])
def test_a_version_of_a_known_series_is_answered_by_the_ranges(
        pks: str, nsx: str, opsman: str, code: int, noted: str | None) -> None:
    args = ("compat", "check", "--pks", pks, "--nsxt", nsx, "--opsman", opsman)
    text = nsxt(*args)
    assert text.returncode == code, text.stdout + text.stderr
    assert not text.stderr
    doc = json.loads(nsxt(*args, "--format", "json").stdout)
    assert doc["supported"] is (code == 0)
    if noted is None:
        assert "note:" not in text.stdout and doc["notes"] == []
    else:
        assert f"note: {noted} {NOTE}" in text.stdout
        assert "it is answered by the version ranges" in text.stdout
        assert [n for n in doc["notes"] if n.startswith(f"{noted} {NOTE}")]


def test_the_catalogue_lists_the_vendor_releases_and_every_release_the_matrix_names() -> None:
    catalogue, matrix = load_catalogue(), load_matrix()
    listed = catalogue.releases[Product.OPSMAN]
    for version in ("2.0.0", "2.5.1", "2.5.30", "2.6.1", "2.6.26", "2.7.20"):
        assert Version.parse(version) in listed, version
    for version in ("2.5.18", "2.7.21", "2.8.0"):  # no heading / a draft / no such line
        assert Version.parse(version) not in listed, version
    assert "pivotal-cf/pcf-release-notes 2.5@7f1d90f3 opsmanager-rn.html.md.erb" in \
        str(catalogue.source(Product.OPSMAN, Version.parse("2.5.1")))
    for version in matrix.releases[Product.OPSMAN]:
        assert catalogued(matrix, Product.OPSMAN, version), version


def test_a_catalogued_release_has_no_note() -> None:
    proc = nsxt("compat", "check", "--pks", "1.4.1", "--nsxt", "2.4.1", "--opsman", "2.5.24",
                "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["notes"] == []


@pytest.mark.parametrize(("args", "message"), [
    (("--pks", "1.4.1", "--nsxt", "2.4.1", "--opsman", "3.0"), "unknown Ops Manager version 3.0"),
    (("--pks", "1.4.1", "--nsxt", "2.4.1", "--opsman", "2.8.1"),
     "unknown Ops Manager version 2.8.1"),
    (("--pks", "1.4.1", "--nsxt", "7.0"), "unknown NSX-T version 7.0"),
    (("--pks", "1.4.9", "--nsxt", "2.4.1"), "unknown PKS version 1.4.9"),
])
def test_a_version_of_no_known_series_is_unknown(args: tuple[str, ...], message: str) -> None:
    proc = nsxt("compat", "check", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"error: {message}; nearest known: ")
    assert proc.stderr.count("\n") == 1


def test_path_and_plan_take_a_real_patch_release(tmp_path: Path) -> None:
    path = nsxt("compat", "path", "--from", "pks=1.4.1,nsxt=2.4.1,opsman=2.5.1",
                "--to", "pks=1.5.2,nsxt=2.5.0")
    assert path.returncode == 0, path.stdout + path.stderr
    assert "upgrade Ops Manager 2.5.1 \u2192 2.5.24" in path.stdout
    book = edit(copy_playbooks(tmp_path) / "lab-2.1-to-2.3.yaml",
                'opsman: "2.3.1"', 'opsman: "2.3.5"')
    plan = nsxt("plan", book, "--format", "json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["compatibility"]["ok"] is True
