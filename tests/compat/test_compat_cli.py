"""`nsxt-upgrade compat` as a user meets it: exit codes, JSON shapes, messages."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner, Result

from upgrade.cli.main import cli
from upgrade.compat import load_matrix
from upgrade.core.versions import Version

#: every PKS release in the vendor's notes, 1.0.0 to the last 1.5.x patch (v1.0.1 never shipped)
ALL_RELEASES = (
    ["1.0.0", "1.0.2", "1.0.3", "1.0.4"]
    + [f"1.1.{n}" for n in range(7)]
    + [f"1.2.{n}" for n in range(13)]
    + [f"1.3.{n}" for n in range(9)]
    + [f"1.4.{n}" for n in range(4)]
    + [f"1.5.{n}" for n in range(4)]
)


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, ["compat", *args])


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- matrix ----------------------------------------------------------------------------------


def test_markdown_has_one_row_per_release_withdrawn_and_discrepancies(runner: CliRunner) -> None:
    """Per-release rows (1.2.0-1.2.1, 1.2.2-1.2.3, 1.2.4, 1.2.5+ differ), withdrawn releases
    marked and listed, and every recorded discrepancy with both citations."""
    result = run(runner, "matrix", "--format", "markdown")
    assert result.exit_code == 0
    out = result.output
    lines = out.splitlines()
    assert lines[0] == "| PKS | released | NSX-T | Ops Manager | upgrade from | data |"
    rows = [line for line in lines if line.startswith("| v")]
    assert [r.split(" | ")[0].lstrip("| ").split()[0].rstrip("\u2020\u2021") for r in rows] == [
        f"v{r}" for r in reversed(ALL_RELEASES)
    ]
    for row in [
        "| v1.2.1\u2021 | November 2, 2018 | v2.2, v2.3 | v2.2.2+, v2.3.1+ |",
        "| v1.2.2\u2021 | November 14, 2018 | v2.2, v2.3 | v2.2.3+, v2.3.1+ |",
        "| v1.2.4 | December 10, 2018 | v2.2, v2.3.0.2 | v2.2.3+, v2.3.1+, v2.4.x |",
        "| v1.2.5 | December 28, 2018 | v2.2, v2.3.0.2, v2.3.1 | v2.2.3+, v2.3.1+, v2.4.x |",
        "| v1.1.0 (withdrawn) | June 28, 2018 | 2.1 - Advanced Edition | 2.1.0-2.1.6 |",
        "| v1.3.0 (withdrawn)\u2021 | January 16, 2019 |",
        "| v1.0.2 | April 12, 2018 | 2.1 Advanced Edition | 2.0.X and 2.1.X |",
    ]:
        assert row in out
    withdrawn = out[out.index("Withdrawn releases (") : out.index("Discrepancies (")]
    assert "- v1.3.0:" in withdrawn and "- v1.1.0:" in withdrawn
    assert "docs-pks 1.1@52832c36 release-notes.html.md.erb L437" in withdrawn
    discrepancies = out[out.index("Discrepancies (") : out.index("Sources:")]
    line = next(x for x in discrepancies.splitlines() if x.startswith("- v1.1.1 opsman"))
    assert "'v2.1.x, v2.2.x'" in line and "'v2.1.0 - 2.1.6'" in line
    assert "1.1@52832c36 release-notes.html.md.erb" in line
    assert "1.2@a190865f upgrade-pks-nsxt.html.md.erb L55-57" in line
    sources = [x for x in out.splitlines() if x.startswith("- v") and "@" in x]
    assert len({x.split(":")[0] for x in sources}) >= len(load_matrix().rows)


def test_matrix_json_carries_sources_and_upgrades(runner: CliRunner) -> None:
    """JSON has every row with its sources, the known releases and the upgrade hops."""
    result = run(runner, "matrix", "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert [r["pks"] for r in doc["rows"]] == [f"v{r}" for r in reversed(ALL_RELEASES)]
    assert all(r["source"] and all(r["sources"].values()) for r in doc["rows"])
    assert all(r["note"] for r in doc["rows"] if not r["confirmable"])
    assert {r["pks"] for r in doc["rows"] if r["withdrawn"]} == {"v1.1.0", "v1.3.0"}
    hops = {(h["from"], h["to"]) for h in doc["upgrades"]["nsxt"]["hops"]}
    assert {("2.1", "2.2"), ("2.2", "2.3"), ("2.3.1+", "2.4.0.1+"), ("2.4", "2.5")} <= hops
    assert all(h["source"] for p in doc["upgrades"].values() for h in p["hops"])
    assert {"2.2.3", "2.4.13", "2.5.24"} <= set(doc["releases"]["opsman"]["versions"])
    assert {"2.4.3.0", "2.5.0.0"} <= set(doc["releases"]["nsxt"]["versions"])
    assert doc["origins"] == ["built-in"]


def test_matrix_text_is_a_table(runner: CliRunner) -> None:
    """The default format is a table for people."""
    result = run(runner, "matrix")
    assert result.exit_code == 0
    assert "v1.1.3" in result.output and "v2.1.x, v2.2.x" in result.output
    assert "v1.3.0 (withdrawn)" in result.output


# -- check -----------------------------------------------------------------------------------


def test_pks_12_on_nsxt_21_is_refused_with_the_reason(runner: CliRunner) -> None:
    """The issue's done-when: exit 4, and PKS 1.2 needs NSX-T 2.2 or 2.3."""
    result = run(runner, "check", "--pks", "1.2", "--nsxt", "2.1")
    assert result.exit_code == 4
    assert "PKS 1.2 needs NSX-T 2.2 or 2.3" in result.output
    assert "source:" in result.output
    no_traceback(result)


def test_check_json_shape_exactly(runner: CliRunner) -> None:
    """One JSON document on stdout with exactly the contract's keys."""
    result = run(runner, "check", "--pks", "1.2", "--nsxt", "2.1", "--format", "json")
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    contract = {"supported", "pks", "nsxt", "opsman", "reason", "source", "discrepancies"}
    assert set(doc) == contract | {"withdrawn", "compatible", "confirmable", "origin", "note",
                                   "notes"}
    assert doc["discrepancies"] == [] and doc["withdrawn"] is False
    assert doc["supported"] is False
    assert doc["pks"] == "1.2" and doc["nsxt"] == "2.1" and doc["opsman"] is None
    assert "2.2 or 2.3" in doc["reason"] and doc["source"]


def test_supported_combination_exits_0(runner: CliRunner) -> None:
    """The lab's target combination is supported."""
    result = run(
        runner,
        "check",
        "--pks",
        "1.2.0",
        "--nsxt",
        "2.3.0.0",
        "--opsman",
        "2.3.1",
        "--format",
        "json",
    )
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["supported"] is True and doc["opsman"] == "2.3.1"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--pks", "1.2", "--nsxt", "2.3", "--opsman", "2.3.0"], "Ops Manager 2.2.2+ or 2.3.1+"),
        (["--pks", "1.1.0", "--nsxt", "2.1", "--opsman", "2.1.7"], "2.1.0-2.1.6"),
        (["--pks", "1.3.1", "--nsxt", "2.3.0.0"], "2.3.0.2"),
        (["--pks", "1.1.6", "--nsxt", "2.3"], "NSX-T 2.1 or 2.2"),
    ],
)
def test_unsupported_combinations_exit_4(runner: CliRunner, args: list[str], needle: str) -> None:
    """Ops Manager ranges, series-bounded '+', and exact releases all refuse correctly."""
    result = run(runner, "check", *args)
    assert result.exit_code == 4
    assert needle in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--pks", "9.9", "--nsxt", "2.1"], "unknown PKS version 9.9; nearest known: "),
        (["--pks", "1.1.7", "--nsxt", "2.1"], "1.1.6"),
        (["--pks", "1.2", "--nsxt", "7.0"], "unknown NSX-T version 7.0"),
        (["--pks", "1.2", "--nsxt", "2.3", "--opsman", "8.1"], "unknown Ops Manager version"),
    ],
)
def test_unknown_versions_exit_2_with_nearest(
    runner: CliRunner, args: list[str], needle: str
) -> None:
    """Unknown versions are bad input: exit 2, the nearest known ones, no traceback."""
    result = run(runner, "check", *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "nearest known" in result.stderr
    assert result.stdout == ""
    no_traceback(result)


@pytest.mark.parametrize("bad", ["1.x", "one", "1..2", "", "1.2-beta"])
def test_malformed_versions_exit_2(runner: CliRunner, bad: str) -> None:
    """A version that is not dotted numbers is exit 2 with a message, never a traceback."""
    result = run(runner, "check", "--pks", bad, "--nsxt", "2.1")
    assert result.exit_code == 2
    assert "not a version" in result.stderr
    no_traceback(result)


def test_missing_option_is_exit_2(runner: CliRunner) -> None:
    """click's own usage errors keep exit 2."""
    result = run(runner, "check", "--pks", "1.2")
    assert result.exit_code == 2


# -- path ------------------------------------------------------------------------------------

DONE_WHEN = ["--from", "pks=1.1.4,nsxt=2.1,opsman=2.1", "--to", "pks=1.2,nsxt=2.3"]


def test_path_goes_through_nsxt_22_with_a_pks_that_supports_it(runner: CliRunner) -> None:
    """The issue's done-when, checked with `compat check` after every step."""
    result = run(runner, "path", *DONE_WHEN, "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["found"] is True
    steps = doc["steps"]
    assert steps
    through_22 = False
    for step in steps:
        assert set(step) >= {"product", "from", "to", "state_after", "reason"}
        assert step["product"] in {"pks", "nsxt", "opsman"}
        after = step["state_after"]
        assert set(after) == {"pks", "nsxt", "opsman"}
        for value in (step["to"], *after.values()):
            Version.parse(value)  # concrete: no 2.2.x anywhere
        checked = run(
            runner,
            "check",
            "--pks",
            after["pks"],
            "--nsxt",
            after["nsxt"],
            "--opsman",
            after["opsman"],
        )
        assert checked.exit_code == 0, checked.output
        through_22 |= Version.parse(after["nsxt"]).within(Version.parse("2.2"))
    assert through_22
    final = steps[-1]["state_after"]
    assert Version.parse(final["pks"]).within(Version.parse("1.2"))
    assert Version.parse(final["nsxt"]).within(Version.parse("2.3"))


def test_path_text_shows_the_state_after_each_step(runner: CliRunner) -> None:
    """Text output numbers the steps and shows the state after each."""
    result = run(runner, "path", *DONE_WHEN)
    assert result.exit_code == 0
    numbered = re.findall(r"^ *\d+\. upgrade ", result.output, flags=re.M)
    assert len(numbered) == 5
    assert result.output.count("state after:") == len(numbered)
    assert "NSX-T 2.2.0.0" in result.output
    assert "why:" in result.output


def test_no_path_exits_4_and_names_the_blocking_constraint(runner: CliRunner) -> None:
    """PKS 1.1.4 never runs on NSX-T 2.3: exit 4, found false, blocked_by says why."""
    args = ["--from", "pks=1.1.4,nsxt=2.1,opsman=2.1", "--to", "pks=1.1.4,nsxt=2.3"]
    result = run(runner, "path", *args, "--format", "json")
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    assert doc["found"] is False and doc["steps"] == []
    assert doc["blocked_by"]["kind"] == "target"
    assert "PKS 1.1.4 needs NSX-T 2.1" in doc["blocked_by"]["reason"]
    text = run(runner, "path", *args)
    assert text.exit_code == 4 and "blocked by" in text.output


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "pks=1.1.4,nsxt=2.1", "--to", "pks=1.2,nsxt=2.3"],
        ["--from", "pks=1.1.4,nsxt=2.1,opsman=2.1", "--to", "nsxt=2.3"],
        ["--from", "pks=1.1.4;nsxt=2.1;opsman=2.1", "--to", "pks=1.2,nsxt=2.3"],
        ["--from", "pks=1.1.4,nsxt=2.1,opsman=2.1,vc=6.5", "--to", "pks=1.2,nsxt=2.3"],
        ["--from", "pks=1.1.4,nsxt=two,opsman=2.1", "--to", "pks=1.2,nsxt=2.3"],
        ["--from", "pks=1.1.4,nsxt=2.1,opsman=2.1", "--to", "pks=9.9,nsxt=2.3"],
    ],
)
def test_path_bad_input_exits_2(runner: CliRunner, args: list[str]) -> None:
    """Missing products, bad syntax, malformed or unknown versions: exit 2, no traceback."""
    result = run(runner, "path", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    no_traceback(result)


def test_help_on_every_command(runner: CliRunner) -> None:
    """--help works on the group and each subcommand."""
    for args in ([], ["check"], ["path"], ["matrix"]):
        result = run(runner, *args, "--help")
        assert result.exit_code == 0
        assert "Usage" in result.output


def test_python_m_upgrade_compat_check() -> None:
    """The real entry point, in a subprocess: JSON on stdout, exit 4, nothing on stderr."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "upgrade",
            "compat",
            "check",
            "--pks",
            "1.2",
            "--nsxt",
            "2.1",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 4
    assert json.loads(proc.stdout)["supported"] is False
    assert proc.stderr == ""


def test_deadlock_between_releases_names_the_refused_moves(runner: CliRunner) -> None:
    """PKS 1.0.0 on Ops Manager 2.2 (unsupported): every PKS 1.0.x needs Ops Manager 2.0 or
    2.1, which cannot be downgraded to, and PKS 1.0.0 supports no Ops Manager 2.2."""
    args = ["--from", "pks=1.0.0,nsxt=2.1,opsman=2.2.0", "--to", "pks=1.2,nsxt=2.3"]
    result = run(runner, "path", *args, "--format", "json")
    assert result.exit_code == 4
    blocked = json.loads(result.stdout)["blocked_by"]
    assert blocked["kind"] == "intermediate"
    assert "PKS \u2192 1.0.2 is refused (PKS 1.0.2 needs Ops Manager 2.0.X or 2.1.X)" in (
        blocked["reason"]
    )
    assert "Ops Manager \u2192 2.2.2 is refused" in blocked["reason"]
