"""A site's own compatibility data: `--matrix FILE` on compat, plan and run, and
`compatibility: {matrix: FILE}` in the playbook, validated like every input file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from upgrade.cli.main import cli

REPO = Path(__file__).resolve().parents[2]

SITE = """\
documents:
  acme-policy: {title: "ACME platform policy 2020.1", url: "https://wiki.example/pks-policy"}
pks_matrix:
  - pks: "1.5.0"
    opsman: "v2.5.9 and later, v2.6.3 and later, v2.7.6 and later"
    source: "acme-policy section 3 (Pivotal Network release 441910, checked 2020-06-01)"
  - pks: "1.6.0"
    released: "November 14, 2019"
    nsxt: "v2.5.0, v2.4.2"
    opsman: "v2.6.x, v2.7.x"
    upgrade_from: "1.5.0+"
    source: "acme-policy section 4"
releases:
  opsman: {versions: ["2.7.9"], source: "acme-policy section 5"}
upgrades:
  opsman:
    hops:
      - {from: "2.5", to: "2.7", source: "acme-policy section 6 (jump upgrade, tested here)"}
"""


def write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_site_rows_overlay_the_built_in_data(runner: CliRunner, tmp_path: Path) -> None:
    """A site row widens 1.5.0's Ops Manager list and adds a release; the answer says so."""
    site = write(tmp_path, SITE)
    args = ["compat", "check", "--pks", "1.5.0", "--nsxt", "2.5", "--opsman", "2.7.6",
            "--format", "json"]
    assert runner.invoke(cli, args).exit_code == 4
    result = runner.invoke(cli, [*args, "--matrix", str(site)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["supported"] is True and doc["origin"] == str(site)
    assert "ACME platform policy 2020.1 section 3" in doc["source"]
    new = runner.invoke(cli, ["compat", "check", "--pks", "1.6.0", "--nsxt", "2.4.2",
                              "--opsman", "2.7.9", "--matrix", str(site)])
    assert new.exit_code == 0, new.output


def test_site_row_keeps_the_citations_of_fields_it_leaves_alone(tmp_path: Path) -> None:
    """Overriding Ops Manager keeps the vendor's NSX-T cell and its citation."""
    from upgrade.compat import load_with_overlay
    from upgrade.core.versions import Version

    matrix = load_with_overlay(write(tmp_path, SITE))
    row = matrix.row_for(Version.parse("1.5.0"))
    assert row is not None
    assert row.nsxt.text == "v2.5.0, v2.4.2, v2.4.1, or v2.4.0.1"
    assert "docs-pks 1.5@6178e657" in row.field_source("nsxt").render()
    assert "ACME" in row.field_source("opsman").render()


def test_site_hops_and_rows_are_used_by_path(runner: CliRunner, tmp_path: Path) -> None:
    """The site's 1.6.0 and its Ops Manager 2.5 -> 2.7 hop appear in a path, cited."""
    site = write(tmp_path, SITE)
    args = ["compat", "path", "--from", "pks=1.5.0,nsxt=2.4.2,opsman=2.5.24",
            "--to", "pks=1.6,nsxt=2.4.2,opsman=2.7", "--format", "json", "--matrix", str(site)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["steps"]
    assert ("pks", "1.6.0") in [(s["product"], s["to"]) for s in steps]
    assert any("ACME" in s["source"] for s in steps)


def test_matrix_marks_where_each_row_came_from(runner: CliRunner, tmp_path: Path) -> None:
    """compat matrix: the data column names the site file for its rows, built-in for others."""
    site = write(tmp_path, SITE)
    out = runner.invoke(cli, ["compat", "matrix", "--format", "markdown", "--matrix",
                              str(site)]).output
    assert re.search(rf"^\| v1\.6\.0 \|.*\| {re.escape(str(site))} \|$", out, flags=re.M)
    assert re.search(rf"^\| v1\.5\.0.*\| {re.escape(str(site))} \|$", out, flags=re.M)
    assert re.search(r"^\| v1\.4\.3.*\| built-in \|$", out, flags=re.M)
    doc = json.loads(runner.invoke(cli, ["compat", "matrix", "--format", "json", "--matrix",
                                         str(site)]).stdout)
    assert doc["origins"] == ["built-in", str(site)]
    assert {r["pks"]: r["origin"] for r in doc["rows"]}["v1.6.0"] == str(site)


BAD = [
    ("pks_matrx: []\n", 1, 1, "unknown key 'pks_matrx'"),
    ('pks_matrix:\n  - pks: "1.5.0"\n    nsxt: "2.x.5"\n    source: "x"\n', 3, 11,
     "not a version notation"),
    ('pks_matrix:\n  - pks: "1.5.0"\n    nsxt: "v2.5.0"\n', 2, 5, "missing required key 'source'"),
    ('pks_matrix:\n  - pks: 1.6\n    nsxt: "2.5"\n    opsman: "2.7.x"\n    source: "s"\n', 2, 10,
     "unquoted number"),
    ('pks_matrix:\n  - pks: "1.7.0"\n    nsxt: "2.5"\n    source: "s"\n', 2, 5,
     "needs opsman"),
    ('upgrades:\n  nsxt:\n    hops:\n      - {from: "2.4", to: "2.5", source: "s", when: x}\n',
     4, 47, "unknown key 'when'"),
    ("pks_matrix: [\n", 2, 1, "YAML syntax error"),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), BAD)
def test_invalid_site_file_is_exit_2_at_the_position(
    runner: CliRunner, tmp_path: Path, text: str, line: int, col: int, message: str
) -> None:
    """FILE:LINE:COL: what is wrong, exit 2, no traceback; the same for every command."""
    site = write(tmp_path, text)
    for args in (["compat", "matrix"], ["compat", "check", "--pks", "1.2.0", "--nsxt", "2.3"]):
        result = runner.invoke(cli, [*args, "--matrix", str(site)])
        assert result.exit_code == 2, result.output
        first = result.stderr.splitlines()[0]
        assert first.startswith(f"{site}:{line}:{col}: "), first
        assert message in first
        assert "Traceback" not in result.stderr


def test_missing_site_file_is_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    """A --matrix file that does not exist names itself."""
    result = runner.invoke(cli, ["compat", "matrix", "--matrix", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml:1:1: file not found" in result.stderr


# -- plan and run --------------------------------------------------------------------------


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A copy of the shipped playbooks directory (playbook, inventory, bundle)."""
    shutil.copytree(REPO / "playbooks", tmp_path / "pb")
    return tmp_path / "pb"


def playbook(lab: Path, compatibility: str) -> Path:
    text = (lab / "lab-2.1-to-2.3.yaml").read_text(encoding="utf-8")
    text = text.replace('compatibility: {pks: "1.2.0", opsman: "2.3.1"}', compatibility)
    path = lab / "site-lab.yaml"
    path.write_text(text, encoding="utf-8")
    return path


NO_23 = """\
pks_matrix:
  - pks: "1.2.0"
    nsxt: "v2.2"
    source: "site policy: PKS 1.2.0 is not run on NSX-T 2.3 here (ticket OPS-42)"
"""


def test_playbook_matrix_overlays_for_plan(runner: CliRunner, lab: Path) -> None:
    """compatibility: {matrix: FILE} (relative to the playbook) changes the plan's verdict."""
    (lab / "policy").mkdir()
    write(lab / "policy", NO_23, "site.yaml")
    pb = playbook(lab, 'compatibility: {pks: "1.2.0", opsman: "2.3.1", matrix: policy/site.yaml}')
    result = runner.invoke(cli, ["plan", str(pb), "--format", "json"])
    assert result.exit_code == 4, result.output
    doc = json.loads(result.stdout)["compatibility"]
    assert doc["ok"] is False and "ticket OPS-42" not in doc["reason"]
    assert doc["matrix"] == ["built-in", str(lab / "policy" / "site.yaml")]
    assert "needs NSX-T 2.2" in doc["reason"]


def test_plan_matrix_option_overlays(runner: CliRunner, lab: Path) -> None:
    """plan --matrix FILE does the same from the command line."""
    site = write(lab, NO_23, "no23.yaml")
    pb = playbook(lab, 'compatibility: {pks: "1.2.0", opsman: "2.3.1"}')
    assert runner.invoke(cli, ["plan", str(pb)]).exit_code == 0
    result = runner.invoke(cli, ["plan", str(pb), "--matrix", str(site)])
    assert result.exit_code == 4
    assert "refused: compatibility:" in result.stderr


def test_playbook_matrix_missing_is_exit_2_at_the_key(runner: CliRunner, lab: Path) -> None:
    """A playbook naming a missing matrix file is bad input at that key."""
    pb = playbook(lab, 'compatibility: {pks: "1.2.0", matrix: nowhere.yaml}')
    result = runner.invoke(cli, ["plan", str(pb)])
    assert result.exit_code == 2
    assert re.match(rf"{re.escape(str(pb))}:\d+:\d+: compatibility matrix file", result.stderr)


def test_discrepancy_is_a_plan_warning_and_strict_refuses(runner: CliRunner, lab: Path) -> None:
    """PKS 1.2.0 with Ops Manager 2.2.2: supported by its notes, not by two upgrade pages."""
    pb = playbook(lab, 'compatibility: {pks: "1.2.0", opsman: "2.2.2"}')
    result = runner.invoke(cli, ["plan", str(pb), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)["compatibility"]
    assert doc["ok"] is True and len(doc["discrepancies"]) == 2 and doc["warnings"]
    assert "Warning: vendor documents disagree" in doc["reason"]
    assert "vendor documents disagree" in runner.invoke(cli, ["plan", str(pb)]).output
    strict = runner.invoke(cli, ["plan", str(pb), "--strict"])
    assert strict.exit_code == 4 and "(--strict)" in strict.stderr
    in_playbook = playbook(lab, 'compatibility: {pks: "1.2.0", opsman: "2.2.2", strict: true}')
    assert runner.invoke(cli, ["plan", str(in_playbook)]).exit_code == 4


def test_run_matrix_refuses_before_anything_runs(lab: Path, tmp_path: Path) -> None:
    """run --matrix FILE: the overlaid gate refuses with exit 4 and no state is written."""
    site = write(lab, NO_23, "no23.yaml")
    pb = playbook(lab, 'compatibility: {pks: "1.2.0", opsman: "2.3.1"}')
    state = tmp_path / "state"
    proc = subprocess.run(
        [sys.executable, "-m", "upgrade", "run", str(pb), "--yes", "--state-dir", str(state),
         "--matrix", str(site)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 4, proc.stderr
    assert "needs NSX-T 2.2" in proc.stderr
    assert not (state / "plan.json").exists()


NO_25 = """\
pks_matrix:
  - pks: "1.4.1"
    opsman: "v2.4.2+, v2.6.16 and later"
    source: "site policy: no Ops Manager 2.5 here (ticket OPS-7)"
"""


def test_skipping_a_minor_is_a_warning_not_a_refusal(runner: CliRunner, tmp_path: Path) -> None:
    """With no Ops Manager 2.5 allowed, 2.4 -> 2.6 skips a minor: found, with the vendor's
    advice quoted and cited; without the site policy, the path keeps to one minor at a time."""
    site = write(tmp_path, NO_25)
    args = ["compat", "path", "--from", "pks=1.4.1,nsxt=2.4.1,opsman=2.4.2",
            "--to", "pks=1.4.1,nsxt=2.4.1,opsman=2.6", "--format", "json"]
    plain = json.loads(runner.invoke(cli, args).stdout)
    assert [s["to"] for s in plain["steps"]] == ["2.5.24", "2.6.16"]
    assert not [w for s in plain["steps"] for w in s["warnings"] if "skips" in w]
    result = runner.invoke(cli, [*args, "--matrix", str(site)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["to"] for s in doc["steps"]] == ["2.6.16"]
    (warning,) = [w for w in doc["steps"][0]["warnings"] if "skips a minor" in w]
    assert "Pivotal does not recommend that you skip minor versions" in warning
    assert "docs-pcf-install 2.2@1ac36fee upgrading-pcf.html.md.erb L12" in warning
    assert warning in doc["warnings"]
