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
from upgrade.versions import Version

WALKTHROUGH_ROWS = [
    "| v1.2 | 2.2, 2.3 | 2.2.2+, 2.3.1+ |",
    "| v1.1.6 | 2.1, 2.2 | 2.1.x, 2.2.x |",
    "| v1.1.5 | 2.1, 2.2 | 2.1.x, 2.2.x |",
    "| v1.1.4 | 2.1 | 2.1.x, 2.2.x |",
    "| v1.1.3 | 2.1 | 2.1.0 \u2013 2.1.6 |",
    "| v1.1.2 | 2.1 | 2.1.x, 2.2.x |",
    "| v1.1.1 | 2.1 Advanced Edition | 2.1.0 \u2013 2.1.6 |",
]


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, ["compat", *args])


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- matrix ----------------------------------------------------------------------------------


def test_markdown_reproduces_the_walkthrough_table_exactly(runner: CliRunner) -> None:
    """The walkthrough's rows appear verbatim, in order, under the same header."""
    result = run(runner, "matrix", "--format", "markdown")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "| PKS | NSX-T | Ops Manager |"
    assert lines[1] == "|---|---|---|"
    start = lines.index(WALKTHROUGH_ROWS[0])
    assert lines[start : start + len(WALKTHROUGH_ROWS)] == WALKTHROUGH_ROWS


def test_markdown_has_extended_rows_and_a_source_for_every_row(runner: CliRunner) -> None:
    """1.0.x, 1.1.0, 1.3.x and later rows are there, and every row has a source line."""
    out = run(runner, "matrix", "--format", "markdown").output
    for row in [
        "| v1.3.0 | v2.2, v2.3.0.2, v2.3.1 | v2.3.1+, v2.4.0+ |",
        "| v1.0.0 |",
        "| v1.1.0* |",
    ]:
        assert row in out
    assert "| v1.4* | 2.3.1, 2.4.0.1 \u2013 2.4.2 |" in out
    sources = [line for line in out.splitlines() if line.startswith("- v")]
    assert len(sources) == len(load_matrix().rows)
    assert all(len(line.split(": ", 1)[1]) > 10 for line in sources)


def test_matrix_json_carries_sources_and_upgrades(runner: CliRunner) -> None:
    """JSON has every row with its source, the known releases and the upgrade hops."""
    result = run(runner, "matrix", "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert {r["pks"] for r in doc["rows"]} >= {"v1.2", "v1.1.1", "v1.0.0", "v1.3.0"}
    assert all(r["source"] for r in doc["rows"])
    assert all(r["note"] for r in doc["rows"] if r["uncertain"])
    hops = {(h["from"], h["to"]) for h in doc["upgrades"]["nsxt"]["hops"]}
    assert {("2.1", "2.2"), ("2.1", "2.3"), ("2.2", "2.3"), ("2.3", "2.4")} <= hops
    assert all(h["source"] for p in doc["upgrades"].values() for h in p["hops"])
    assert "2.2.2" in doc["releases"]["opsman"]["versions"]


def test_matrix_text_is_a_table(runner: CliRunner) -> None:
    """The default format is a table for people, sources included."""
    result = run(runner, "matrix")
    assert result.exit_code == 0
    assert "v1.1.3" in result.output and "2.1.0 \u2013 2.1.6" in result.output
    assert "docs.pivotal.io" in result.output


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
    assert set(doc) == {"supported", "pks", "nsxt", "opsman", "reason", "source"}
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
        (["--pks", "1.1.3", "--nsxt", "2.1", "--opsman", "2.1.7"], "2.1.0 \u2013 2.1.6"),
        (["--pks", "1.3.0", "--nsxt", "2.3.0.0"], "v2.3.0.2"),
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
    """PKS 1.0.x needs Ops Manager 2.0, every PKS 1.1.x needs 2.1+: no order of steps works."""
    args = ["--from", "pks=1.0.0,nsxt=2.1,opsman=2.0.0", "--to", "pks=1.2,nsxt=2.3"]
    result = run(runner, "path", *args, "--format", "json")
    assert result.exit_code == 4
    blocked = json.loads(result.stdout)["blocked_by"]
    assert blocked["kind"] == "intermediate"
    assert (
        "Ops Manager \u2192 2.1.0 is refused (PKS 1.0.2 needs Ops Manager 2.0.X)"
        in (blocked["reason"])
    )
    assert "PKS \u2192 1.1.2 is refused" in blocked["reason"]
