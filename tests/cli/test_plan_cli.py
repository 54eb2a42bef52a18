"""`nsxt-upgrade plan` as a user meets it: shipped playbooks, refusals, the three formats."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from upgrade.cli.main import cli
from upgrade.core.plan import PHASES, build_plan
from upgrade.inputs.inventory import load_inventory
from upgrade.inputs.playbook import load
from upgrade.render import hms
from upgrade.render.plan_mermaid import escape, plan_to_mermaid

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
SHIPPED = ["lab-2.1-to-2.3.yaml", "production-2.1-to-2.3.yaml"]
WARNING = "edge-connectivity-degraded"
#: what the Mermaid gantt lexer accepts as a task line (id, start and end in seconds)
TASK = re.compile(r"^    [^#:\n;%]+ :(milestone, )?t\d+, \d+, \d+$")


def plan(runner: CliRunner, playbook: Path, *args: str) -> Result:
    """Run `nsxt-upgrade plan PLAYBOOK ARGS` with an 80-column, colourless environment."""
    env = {"COLUMNS": "80", "NO_COLOR": None, "FORCE_COLOR": None, "TTY_COMPATIBLE": None}
    return runner.invoke(cli, ["plan", str(playbook), *args], env=env)


def plan_json(runner: CliRunner, playbook: Path, *args: str, code: int = 0) -> dict[str, Any]:
    """The JSON plan, after checking the exit code and that stdout holds one JSON document."""
    result = plan(runner, playbook, "--format", "json", *args)
    assert result.exit_code == code, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A copy of the shipped playbooks to edit; the lab playbook's path in it."""
    shutil.copytree(PLAYBOOKS, tmp_path / "playbooks")
    return tmp_path / "playbooks" / SHIPPED[0]


def edit(path: Path, old: str, new: str) -> Path:
    """Replace ``old`` (which must occur) by ``new`` in the file at ``path``."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def inventory_of(playbook: Path) -> Path:
    """The inventory file beside a shipped playbook."""
    return playbook.with_name(playbook.name.split("-")[0] + "-inventory.yaml")


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("fmt", ["text", "json", "mermaid"])
def test_shipped_playbooks_plan_cleanly(runner: CliRunner, name: str, fmt: str) -> None:
    """Both shipped playbooks plan in every format, exit 0, with nothing on stderr."""
    result = plan(runner, PLAYBOOKS / name, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    assert result.stderr == ""


@pytest.mark.parametrize("name", SHIPPED)
def test_json_matches_the_contract(runner: CliRunner, name: str) -> None:
    """Every contract key is there with its type; phases in order; every unit exactly once."""
    doc = plan_json(runner, PLAYBOOKS / name)
    assert isinstance(doc["name"], str)
    assert isinstance(doc["source_version"], str)
    assert doc["target_version"] == "2.3.0.0"
    assert [p["name"] for p in doc["phases"]] == [p.value for p in PHASES]
    for phase in doc["phases"]:
        assert set(phase) >= {"name", "groups", "max_parallel_groups", "estimated_duration_s"}
        assert type(phase["max_parallel_groups"]) is int and phase["max_parallel_groups"] >= 1
        assert type(phase["estimated_duration_s"]) is int and phase["estimated_duration_s"] >= 0
        for group in phase["groups"]:
            assert set(group) >= {"name", "units", "max_parallel"}
            assert isinstance(group["name"], str)
            assert all(isinstance(u, str) for u in group["units"]) and group["units"]
            assert type(group["max_parallel"]) is int
            assert 1 <= group["max_parallel"] <= min(5, len(group["units"]))
    assert type(doc["estimated_duration_s"]) is int and doc["estimated_duration_s"] > 0
    ends = [p["estimated_start_s"] + p["estimated_duration_s"] for p in doc["phases"]]
    assert doc["estimated_duration_s"] == max(ends)
    assert isinstance(doc["findings"], list)
    for finding in doc["findings"]:
        assert finding["severity"] in ("warning", "error")
        assert isinstance(finding["id"], str) and isinstance(finding["message"], str)
        assert isinstance(finding["acknowledged"], bool) and isinstance(finding["blocking"], bool)
    assert isinstance(doc["compatibility"], dict) and doc["compatibility"]["ok"] is True
    assert doc["runnable"] is True and doc["refusals"] == []

    inventory = load_inventory(inventory_of(PLAYBOOKS / name))
    units = [u for p in doc["phases"] for g in p["groups"] for u in g["units"]]
    assert sorted(units) == sorted(inventory.units())


def test_lab_plan_is_the_reference_lab(runner: CliRunner, lab_playbook: Path) -> None:
    """The lab: two clusters one host at a time, one edge cluster, one controller, the manager."""
    doc = plan_json(runner, lab_playbook)
    phases = {p["name"]: p for p in doc["phases"]}
    hosts = [(g["name"], g["units"], g["max_parallel"]) for g in phases["hosts"]["groups"]]
    assert hosts == [
        ("compute-cluster-a", ["esx-01", "esx-02"], 1),
        ("compute-cluster-b", ["esx-03", "esx-04"], 1),
    ]
    assert phases["hosts"]["max_parallel_groups"] == 1
    assert phases["edges"]["groups"] == [
        {"name": "edge-cluster-1", "units": ["edge-01", "edge-02"], "max_parallel": 1,
         "note": None, "already_at_target": []},
    ]
    assert not doc["nothing_to_do"] and doc["already_at_target"] == []
    assert phases["controllers"]["groups"][0]["units"] == ["ctrl-01"]
    assert phases["manager"]["groups"][0]["units"] == ["nsx-mgr-01"]
    [finding] = doc["findings"]
    assert (finding["id"], finding["acknowledged"], finding["blocking"]) == (WARNING, True, False)


def test_production_plan_runs_groups_in_parallel(runner: CliRunner) -> None:
    """Production: four clusters, three hosts at a time, two clusters at once; edges in parallel."""
    doc = plan_json(runner, PLAYBOOKS / SHIPPED[1])
    phases = {p["name"]: p for p in doc["phases"]}
    assert [len(g["units"]) for g in phases["hosts"]["groups"]] == [8, 8, 8, 8]
    assert {g["max_parallel"] for g in phases["hosts"]["groups"]} == {3}
    assert phases["hosts"]["max_parallel_groups"] == 2
    assert [len(g["units"]) for g in phases["edges"]["groups"]] == [2, 4]
    assert phases["edges"]["max_parallel_groups"] == 2
    assert phases["controllers"]["groups"][0]["max_parallel"] == 3


def test_unacknowledged_warning_is_refused(runner: CliRunner, lab: Path) -> None:
    """Without its acknowledgement the lab's warning refuses the plan, saying how to acknowledge."""
    edit(lab, f"acknowledge: [{WARNING}]", "acknowledge: []")
    result = plan(runner, lab)
    assert result.exit_code == 4
    assert f"refused: {WARNING}: " in result.stderr
    assert f"--ack {WARNING}" in result.stderr
    assert "[BLOCKING]" in result.stdout and "REFUSED" in result.stdout

    doc = plan_json(runner, lab, code=4)  # the JSON is still printed, marked not runnable
    assert doc["runnable"] is False and doc["refusals"]
    assert doc["findings"][0]["blocking"] is True


def test_ack_on_the_command_line(runner: CliRunner, lab: Path) -> None:
    """`--ack ID` acknowledges a warning as the playbook would."""
    edit(lab, f"acknowledge: [{WARNING}]", "acknowledge: []")
    doc = plan_json(runner, lab, "--ack", WARNING)
    assert doc["runnable"] is True
    assert doc["findings"][0]["acknowledged"] is True


def test_unknown_ack_is_invalid_input(runner: CliRunner, lab_playbook: Path) -> None:
    """An `--ack` naming no warning is exit 2, listing the warning ids there are."""
    result = plan(runner, lab_playbook, "--ack", "edge-connectivity-degrade")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --ack edge-connectivity-degrade: no pre-check warning has that id; "
        f"known warning ids: {WARNING}"
    ]


def test_error_finding_always_blocks(runner: CliRunner, lab: Path) -> None:
    """An error blocks even when the playbook lists it as acknowledged; `--ack` refuses it."""
    edit(inventory_of(lab), "  errors: []",
         "  errors: [{id: manager-disk-full, unit: nsx-mgr-01, message: /var is 97% full}]")
    edit(lab, f"acknowledge: [{WARNING}]", f"acknowledge: [{WARNING}, manager-disk-full]")
    result = plan(runner, lab)
    assert result.exit_code == 4
    assert "refused: manager-disk-full: /var is 97% full" in result.stderr
    result = plan(runner, lab, "--ack", "manager-disk-full")
    assert result.exit_code == 2
    assert "errors cannot be acknowledged" in result.stderr


def test_one_host_cluster_with_running_vms_is_refused(runner: CliRunner, lab: Path) -> None:
    """A lone host with powered-on VMs cannot be evacuated: refused, naming host and fix."""
    edit(inventory_of(lab), "        - {id: esx-04, vms: [ops-manager]}\n", "")
    edit(inventory_of(lab), "compute-cluster-b", "lonely-cluster")
    result = plan(runner, lab)
    assert result.exit_code == 4
    [refusal] = [line for line in result.stderr.splitlines() if "esx-03" in line]
    assert refusal.startswith("refused: evacuation-impossible-esx-03: ")
    assert "pks-worker-3" in refusal and "upgrade_mode: in_place" in refusal
    assert "add a host" in refusal

    edit(lab, "upgrade_mode: maintenance", "upgrade_mode: in_place")
    assert plan(runner, lab).exit_code == 0


def test_max_parallel_cap_is_shown(runner: CliRunner, lab: Path) -> None:
    """Asking 5 at once in a 2-host cluster with VMs is capped at 1, and the plan says why."""
    edit(lab, "  mode: serial", "  mode: parallel\n  max_parallel: 5")
    doc = plan_json(runner, lab)
    [group, _] = doc["phases"][3]["groups"]
    assert group["max_parallel"] == 1
    assert "capped at 1" in group["note"]
    assert any("capped" in note for note in doc["notes"])
    text = plan(runner, lab).stdout
    assert "1*" in text and "capped" in text


def test_text_is_readable_when_piped(runner: CliRunner, lab_playbook: Path) -> None:
    """Text output: every phase in order, no colour codes, 80 columns, the total in h:mm:ss."""
    result = plan(runner, lab_playbook)
    doc = plan_json(runner, lab_playbook)
    text = result.stdout
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    positions = [text.index(f"\n{phase.value} ") for phase in PHASES]
    assert positions == sorted(positions)
    assert f"Estimated total: {hms(doc['estimated_duration_s'])}" in text
    assert f"[acknowledged] warning {WARNING} on edge-01" in text
    assert "Compatibility: OK" in text and "Verdict: runnable" in text


def test_mermaid_is_a_valid_gantt_chart(runner: CliRunner) -> None:
    """One section per phase in order; every task line fits the gantt grammar; unique ids."""
    doc = plan_json(runner, PLAYBOOKS / SHIPPED[1])
    text = plan(runner, PLAYBOOKS / SHIPPED[1], "--format", "mermaid").stdout
    lines = text.splitlines()
    assert lines[:5] == [
        "gantt", lines[1], "    dateFormat X", "    axisFormat %H:%M", "    todayMarker off",
    ]
    assert lines[1].startswith("    title production-2.1-to-2.3: NSX-T 2.1.0.5 to 2.3.0.0")
    sections = [line.split(" ", 5)[-1] for line in lines if line.startswith("    section ")]
    assert sections == [p.value for p in PHASES]
    tasks = [line for line in lines[5:] if not line.startswith(("    section ", "    %%"))]
    assert all(TASK.match(line) for line in tasks), tasks
    ids = [line.split(":")[1].split(",")[-3].strip() for line in tasks]
    assert len(ids) == len(set(ids))
    ends = [int(line.rsplit(",", 1)[1]) for line in tasks]
    assert max(ends) == doc["estimated_duration_s"]
    hosts = [u for g in doc["phases"][3]["groups"] for u in g["units"]]
    assert [line.split(" :")[0].strip() for line in tasks if "esx-" in line] == hosts


def test_mermaid_escapes_names() -> None:
    """Colons, semicolons and hashes become entities; keyword-like names cannot be read as such."""
    assert escape("esx:01;b#2") == "esx#58;01#59;b#35;2"
    assert escape("section a") == "#115;ection a"
    assert escape("2018-01-01 host").startswith("#50;")
    assert escape("esx-01") == "esx-01"


def test_mermaid_without_a_schedule(tmp_path: Path) -> None:
    """Before estimating, the chart still has every phase, as milestones at its start."""
    loaded = load(PLAYBOOKS / SHIPPED[0])
    assert loaded.inventory is not None
    text = plan_to_mermaid(build_plan(loaded.playbook, loaded.inventory))
    tasks = [line for line in text.splitlines() if TASK.match(line)]
    assert [t.split(" :")[0].strip() for t in tasks] == [p.value for p in PHASES]
    assert all(":milestone, " in t for t in tasks)


def test_compatibility_refusal(runner: CliRunner, lab: Path) -> None:
    """PKS 1.1.4 does not support NSX-T 2.3: refused with the gate's reason, JSON still printed."""
    edit(lab, 'compatibility: {pks: "1.2.0", opsman: "2.3.1"}',
         'compatibility: {pks: "1.1.4", opsman: "2.1.6"}')
    doc = plan_json(runner, lab, code=4)
    assert doc["compatibility"]["ok"] is False
    assert any(r.startswith("compatibility: ") for r in doc["refusals"])
    result = plan(runner, lab)
    assert "refused: compatibility: " in result.stderr
    assert "Compatibility: REFUSED" in result.stdout


def test_unknown_compatibility_version_is_located(runner: CliRunner, lab: Path) -> None:
    """A PKS version the matrix does not know is invalid input at its place in the playbook."""
    edit(lab, 'pks: "1.2.0"', 'pks: "9.9.9"')
    result = plan(runner, lab)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{lab}:8:22: unknown PKS version 9.9.9")
    assert len(result.stderr.splitlines()) == 1


def snapshot(*roots: Path) -> set[tuple[str, int, int]]:
    """Every file and directory under ``roots`` with its size and modification time."""
    return {
        (str(p), p.stat().st_size, p.stat().st_mtime_ns)
        for root in roots for p in [root, *root.rglob("*")]
    }


def test_plan_writes_nothing(
    runner: CliRunner, lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plan` in every format leaves the playbook's directory and the cwd exactly as they were."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = snapshot(lab.parent, cwd)
    for fmt in ("text", "json", "mermaid"):
        assert plan(runner, lab, "--format", fmt).exit_code == 0
    assert snapshot(lab.parent, cwd) == before
    edit(lab, f"acknowledge: [{WARNING}]", "acknowledge: []")
    before = snapshot(lab.parent, cwd)
    assert plan(runner, lab).exit_code == 4
    assert snapshot(lab.parent, cwd) == before
    assert not list(cwd.iterdir())


def test_python_dash_m(lab_playbook: Path, tmp_path: Path) -> None:
    """`python -m upgrade plan` works in a fresh process, JSON alone on stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "upgrade", "plan", str(lab_playbook), "--format", "json"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "lab-2.1-to-2.3"
    assert done.stderr == ""


def test_plan_help(runner: CliRunner) -> None:
    """`plan --help` says what it does, that it changes nothing, and its exit codes."""
    result = runner.invoke(cli, ["plan", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Dry run" in text and "changes nothing anywhere" in text
    for fragment in ("--format [text|json|mermaid]", "--ack ID", "0 the plan is runnable",
                     "2 invalid input", "4 refused"):
        assert fragment in text
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0 and "plan" in top.stdout
