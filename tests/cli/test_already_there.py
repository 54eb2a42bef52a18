"""Already at the target (DESIGN section 7) as an operator meets it: `plan`, `run`, `status` and
`sim show` on real files.

Units that already report the target version are planned as such and never touched (no
maintenance, no vMotion, no upgrade); a system entirely at the target plans as "nothing to
do" (exit 0) and `run` changes nothing (no bundle upload, no coordinator upgrade either).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.nsxt_emulator_support import PASSWORD, USERNAME, start_emulator, write_inventory
from tests.run_support import ENV, LAB, command, edit, nsxt, status_json, world
from upgrade.inputs.inventory import dump_inventory, load_inventory

TARGET = "2.3.0.0"
ESX01 = "{id: esx-01, vms: [pks-master-1, pks-worker-1]}"
ESX03 = "{id: esx-03, vms: [pks-worker-3, {id: harbor-1, powered_on: false}]}"
UNITS = ["esx-01", "esx-02", "esx-03", "esx-04", "edge-01", "edge-02", "ctrl-01", "nsx-mgr-01"]


def plan_json(playbook: Path) -> dict[str, Any]:
    """`plan --format json` (exit 0)."""
    proc = nsxt("plan", playbook, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc



def mixed(books: Path) -> Path:
    """The lab with esx-01 and esx-03 (one per cluster) already at the target."""
    inventory = books / "lab-inventory.yaml"
    edit(inventory, ESX01, ESX01[:-1] + ', version: "2.3.0.0"}')
    edit(inventory, ESX03, ESX03.replace("{id: esx-03,", '{id: esx-03, version: "2.3",'))
    return books / LAB.name


def test_a_system_entirely_at_the_target_has_nothing_to_do(books: Path, tmp_path: Path) -> None:
    """nsx.version at the target: `plan` says nothing to do (exit 0, every unit listed as
    already there, no unit in any group, no time); `run` (no --yes needed: it changes
    nothing) exits 0 saying so; the world shows no operation at all (no upload, no
    coordinator, no maintenance, no vMotion, no upgrade); `status` is done and lists them."""
    edit(books / "lab-inventory.yaml", 'version: "2.1.0.0"', f'version: "{TARGET}"')
    playbook = books / LAB.name
    text = nsxt("plan", playbook)
    assert text.returncode == 0, text.stderr
    assert f"Verdict: nothing to do: every unit already reports {TARGET}" in text.stdout
    doc = plan_json(playbook)
    assert doc["nothing_to_do"] and doc["runnable"] and doc["already_at_target"] == UNITS
    assert doc["estimated_duration_s"] == 0 and doc["schedule"] == []
    assert [p["name"] for p in doc["phases"]] == ["precheck", "bundle", "coordinator", "hosts",
                                                 "edges", "controllers", "manager", "postcheck"]
    assert all(g["units"] == [] for p in doc["phases"] for g in p["groups"])
    assert all(p["skipped"] for p in doc["phases"] if not p["groups"])

    state_dir = tmp_path / "state"
    run = nsxt("run", playbook, "--state-dir", state_dir)  # on a pipe, without --yes
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"nothing to do: all 8 units already report {TARGET}; nothing was changed" \
        in run.stdout
    assert "upgrade complete" not in run.stdout and " started" not in run.stdout
    snapshot = world(state_dir)
    assert snapshot["time"] == 0 and snapshot["operations"] == []
    assert all(u["upgrade_count"] == 0 and u["maintenance"] == [] and u["version"] == TARGET
               for u in snapshot["units"])
    assert all(vm["moves"] == [] for vm in snapshot["vms"])
    doc = status_json(state_dir)
    assert doc["state"] == "done" and doc["units"]["already_at_target"] == UNITS
    assert doc["units"]["total"] == 0
    text = nsxt("status", "--state-dir", state_dir).stdout
    assert "units: none to upgrade" in text
    assert "already at the target when planned (not touched): esx-01" in text
    log = [json.loads(line) for line in (state_dir / "run.log").read_text().splitlines()]
    assert any(e["event"] == "already_at_target" and e["units"] == UNITS for e in log)


def test_units_already_at_the_target_are_skipped_and_the_rest_upgraded(books: Path,
                                                                       tmp_path: Path) -> None:
    """esx-01 and esx-03 already at the target: the plan lists them per group as already
    there and upgrades the others; the run never puts them in maintenance nor upgrades them,
    moves VMs only off the hosts it upgrades, takes exactly the estimated time, and says
    which units it left alone."""
    playbook = mixed(books)
    doc = plan_json(playbook)
    assert not doc["nothing_to_do"] and doc["already_at_target"] == ["esx-01", "esx-03"]
    hosts = next(p for p in doc["phases"] if p["name"] == "hosts")
    assert [(g["units"], g["already_at_target"]) for g in hosts["groups"]] == [
        (["esx-02"], ["esx-01"]), (["esx-04"], ["esx-03"])]
    assert not any(p["skipped"] for p in doc["phases"])
    text = nsxt("plan", playbook).stdout
    assert re.search(r"esx-02; already at 2\.3\.0\.0:\s+esx-01", text), text

    state_dir = tmp_path / "state"
    run = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"upgrade complete: 6 units at {TARGET}, 2 already there" in run.stdout
    assert "(not touched): esx-01, esx-03" in run.stdout
    snapshot = world(state_dir)
    units = {u["id"]: u for u in snapshot["units"]}
    for ident in ("esx-01", "esx-03"):
        assert units[ident]["upgrade_count"] == 0 and units[ident]["maintenance"] == []
    assert all(units[u]["upgrade_count"] == 1 for u in UNITS if u not in ("esx-01", "esx-03"))
    moved_from = {m["from"] for vm in snapshot["vms"] for m in vm["moves"]}
    assert moved_from == {"esx-02", "esx-04"}
    assert snapshot["time"] == doc["estimated_duration_s"]
    assert status_json(state_dir)["units"]["already_at_target"] == ["esx-01", "esx-03"]


def test_a_paused_mixed_run_resumes_with_the_same_units_left_alone(books: Path,
                                                                   tmp_path: Path) -> None:
    """The run's copy of the inventory keeps the per-unit versions: a mixed run paused by a
    failure resumes, leaving the same units alone, and finishes with every invariant."""
    playbook = mixed(books)
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text()
                         + "faults:\n  - {unit: esx-04, op: upgrade, kind: fail}\n")
    state_dir = tmp_path / "state"
    first = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert first.returncode == 3, first.stdout + first.stderr
    assert load_inventory(state_dir / "inventory.yaml") == load_inventory(inventory)
    done = nsxt("resume", "--state-dir", state_dir, "--retry-failed")
    assert done.returncode == 0, done.stdout + done.stderr
    snapshot = world(state_dir)
    units = {u["id"]: u for u in snapshot["units"]}
    assert units["esx-01"]["upgrade_count"] == units["esx-03"]["upgrade_count"] == 0
    assert units["esx-04"]["upgrade_count"] == 2  # the failed attempt, then the retry
    assert all(u["version"] == TARGET and not u["in_maintenance"] for u in units.values())


def test_per_unit_versions_in_the_inventory_format(books: Path, tmp_path: Path) -> None:
    """Edges and controllers take {id, version} too; versions are validated like any other
    (quoted, dotted numbers, FILE:LINE:COL); a unit newer than the target refuses the plan;
    dump_inventory writes them back."""
    inventory = books / "lab-inventory.yaml"
    playbook = books / LAB.name
    edit(inventory, "edges: [edge-01, edge-02]", 'edges: [{id: edge-01, version: "2.3.0.0"}, '
         "edge-02]")
    edit(inventory, "controllers: [ctrl-01]", 'controllers: [{id: ctrl-01, version: "2.2"}]')
    doc = plan_json(playbook)
    assert doc["already_at_target"] == ["edge-01"]
    assert next(p for p in doc["phases"] if p["name"] == "controllers")["groups"][0][
        "units"] == ["ctrl-01"]
    loaded = load_inventory(inventory)
    copy = tmp_path / "copy.yaml"
    copy.write_text(dump_inventory(loaded))
    assert load_inventory(copy) == loaded
    assert [(u, str(v)) for u, v in loaded.unit_versions] == [("ctrl-01", "2.2"),
                                                              ("edge-01", "2.3.0.0")]

    edit(inventory, ESX01, ESX01[:-1] + ", version: 2.30}")
    bad = nsxt("plan", playbook)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert re.match(rf"{re.escape(str(inventory))}:\d+:\d+: version is an unquoted number",
                    bad.stderr), bad.stderr
    edit(inventory, "version: 2.30}", 'version: "2.4.0.0"}')
    ahead = nsxt("plan", playbook)
    assert ahead.returncode == 4
    assert "unit-ahead-of-target-esx-01" in ahead.stderr and "cannot downgrade" in ahead.stderr
    edit(inventory, 'version: "2.4.0.0"}', 'version: "2.3.0.0", color: red}')
    unknown = nsxt("plan", playbook)
    assert unknown.returncode == 2 and "color" in unknown.stderr


@pytest.mark.slow
def test_the_nsxt_adapter_reads_each_units_version(tmp_path: Path) -> None:
    """Against the NSX-T emulator, a host that already reports the target is planned as
    already there from the manager's upgrade units."""
    emu_dir = tmp_path / "emulator"
    emu_dir.mkdir()
    source = write_inventory(emu_dir)
    text = source.read_text().replace("{id: esx-02, vms: []}",
                                      '{id: esx-02, vms: [], version: "2.3.0.0"}')
    assert "esx-02, vms: [], version" in text
    source.write_text(text)
    emu = start_emulator(source, emu_dir / "state", speed=6000)
    try:
        playbook = tmp_path / "real.yaml"
        playbook.write_text(
            f'name: real\ntarget_version: "{TARGET}"\n'
            "bundle: {url: \"https://depot.example/nsx.mub\"}\n"
            f"inventory: {{adapter: nsxt, manager: \"{emu.url}\"}}\n"
            "prechecks: {acknowledge: [edge-01-uplink-fp-eth1-is-down]}\n")
        env = {**ENV, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD}
        proc = subprocess.run(command("plan", playbook, "--format", "json"),
                              capture_output=True, text=True, env=env, timeout=120,
                              check=False, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["already_at_target"] == ["esx-02"]
        assert ["esx-02" in g["units"] for p in doc["phases"] for g in p["groups"]].count(
            True) == 0
    finally:
        emu.stop()

