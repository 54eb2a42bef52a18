"""The Upgrade Coordinator's order per release, as a user meets it through the CLI.

`plan` lays the phases out in the flow of the hop (DESIGN section 9) and says which flow
and where it comes from; a 2.3.1 -> 2.4.1 plan has no controller phase and ends with the
management plane; `run` over a 2.4 target on the simulated adapter ends 0 without ever
touching a controller; a release the flow data holds no order for is refused (exit 4)
naming the known flows, never planned in another release's order.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import (
    PLAYBOOKS,
    command,
    edit,
    nsxt,
    peek_phase,
    spawn,
    status_json,
    world,
)

SHIPPED_24 = PLAYBOOKS / "lab-2.3.1-to-2.4.1.yaml"
KNOWN_FLOWS = ("2.1-to-2.2", "2.x-to-2.3", "2.3-patch", "2.3-to-2.4", "2.4-to-2.5")
SYSTEM = ["precheck", "bundle", "coordinator"]


def _copy(tmp_path: Path) -> Path:
    """A copy of the shipped 2.3.1 -> 2.4.1 playbook, its inventory and its bundle."""
    for name in ("lab-2.3.1-to-2.4.1.yaml", "lab-2.3.1-inventory.yaml"):
        shutil.copy(PLAYBOOKS / name, tmp_path / name)
    shutil.copytree(PLAYBOOKS / "bundles", tmp_path / "bundles")
    return tmp_path / "lab-2.3.1-to-2.4.1.yaml"


def _plan_json(playbook: Path, code: int = 0) -> dict[str, Any]:
    done = nsxt("plan", playbook, "--format", "json")
    assert done.returncode == code, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _site_at_2_4(tmp_path: Path, target: str) -> Path:
    """A lab already at NSX-T 2.4.1 (no controllers: 2.4 has none) going to ``target``,
    under PKS 1.5.0 / Ops Manager 2.6.16."""
    playbook = _copy(tmp_path)
    inventory = tmp_path / "lab-2.3.1-inventory.yaml"
    edit(inventory, 'version: "2.3.1.0"', 'version: "2.4.1.0"')
    edit(inventory, "  controllers: [ctrl-01, ctrl-02, ctrl-03]\n", "")
    edit(playbook, 'target_version: "2.4.1.0"', f'target_version: "{target}"')
    return edit(playbook, 'pks: "1.4.1", opsman: "2.4.2"', 'pks: "1.5.0", opsman: "2.6.16"')


def test_a_2_4_plan_has_no_controller_phase_ends_with_the_manager_and_cites_its_source(
) -> None:
    """The shipped 2.3.1 -> 2.4.1 lab: hosts, edges, then the management plane; the flow
    is named with its vendor sources; the controllers are named as merged, not planned."""
    doc = _plan_json(SHIPPED_24)
    names = [p["name"] for p in doc["phases"]]
    assert names == [*SYSTEM, "hosts", "edges", "manager", "postcheck"]
    assert "controllers" not in names
    assert names[-2] == "manager"  # the last unit phase: the management plane
    planned = {u for p in doc["phases"] for g in p["groups"] for u in g["units"]}
    assert not planned & {"ctrl-01", "ctrl-02", "ctrl-03"}
    flow = doc["flow"]
    assert flow["id"] == "2.3-to-2.4"
    assert flow["order"] == ["hosts", "edges", "manager"]
    assert "pivotal-cf/docs-pks 1.4@6042d4d3 upgrade-pks-nsxt.html.md.erb L101" in flow["source"]
    assert "NSX-T Data Center 2.5 Upgrade Guide, Upgrade Management Plane" in flow["source"]
    assert flow["merged"] == ["controller"]
    assert all(p["source"] and p["api"] for p in flow["phases"])
    assert any("ctrl-01, ctrl-02, ctrl-03: not upgraded" in n for n in doc["notes"])
    assert doc["runnable"] is True


def test_the_text_plan_names_the_flow_and_its_source() -> None:
    done = nsxt("plan", SHIPPED_24)
    assert done.returncode == 0, done.stderr
    assert "Flow: 2.3-to-2.4 (NSX-T 2.3.1 -> 2.4.x): hosts -> edges -> manager" in done.stdout
    assert "source: PKS v1.4 Upgrading PKS with NSX-T" in done.stdout
    assert "controllers" not in [line.split()[0] for line in done.stdout.splitlines()
                                 if line.strip()]


def test_the_mermaid_chart_has_no_controller_section() -> None:
    done = nsxt("plan", SHIPPED_24, "--format", "mermaid")
    assert done.returncode == 0, done.stderr
    assert "%% flow 2.3-to-2.4: hosts, edges, manager" in done.stdout
    assert "section controllers" not in done.stdout
    assert done.stdout.index("section edges") < done.stdout.index("section manager")


def test_the_2_1_to_2_3_plan_keeps_its_order_and_names_its_flow() -> None:
    doc = _plan_json(PLAYBOOKS / "lab-2.1-to-2.3.yaml")
    assert [p["name"] for p in doc["phases"]] == [
        *SYSTEM, "hosts", "edges", "controllers", "manager", "postcheck"]
    assert doc["flow"]["id"] == "2.x-to-2.3"
    assert "pivotal-cf/docs-pks 1.2@a190865f" in doc["flow"]["source"]


@pytest.mark.parametrize("target", ["2.6.0.0", "3.0.0.0"])
def test_a_release_without_a_flow_is_refused_naming_the_known_flows(
        target: str, tmp_path: Path) -> None:
    """Exit 4 on every format; stderr names every known flow; nothing is planned."""
    playbook = edit(_copy(tmp_path), 'target_version: "2.4.1.0"', f'target_version: "{target}"')
    for fmt in ("text", "json", "mermaid"):
        done = nsxt("plan", playbook, "--format", fmt)
        assert done.returncode == 4, (fmt, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert f"no upgrade flow for NSX-T 2.3.1.0 -> {target}" in done.stderr
        for flow in KNOWN_FLOWS:
            assert flow in done.stderr, (flow, done.stderr)
    doc = _plan_json(playbook, code=4)
    assert doc["phases"] == [] and doc["flow"] is None and doc["runnable"] is False
    assert doc["nothing_to_do"] is False


def test_a_hop_the_vendor_does_not_describe_is_refused(tmp_path: Path) -> None:
    """2.1 -> 2.4.1 skips the vendor's hops (2.4 is reached from 2.3.1): no flow, exit 4."""
    playbook = _copy(tmp_path)
    edit(tmp_path / "lab-2.3.1-inventory.yaml", 'version: "2.3.1.0"', 'version: "2.1.0.0"')
    done = nsxt("plan", playbook)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "no upgrade flow for NSX-T 2.1.0.0 -> 2.4.1.0" in done.stderr


def test_run_refuses_a_release_without_a_flow_and_starts_nothing(tmp_path: Path) -> None:
    playbook = edit(_copy(tmp_path), 'target_version: "2.4.1.0"', 'target_version: "2.6.0.0"')
    state = tmp_path / "state"
    done = nsxt("run", playbook, "--yes", "--state-dir", state)
    assert done.returncode == 4, done.stderr
    assert "no upgrade flow" in done.stderr
    assert not (state / "world.sqlite").exists()
    assert not (state / "journal.sqlite").exists()


def test_run_over_a_2_4_target_ends_0_without_a_controller_phase(tmp_path: Path) -> None:
    """The simulated adapter: every host, edge and the manager upgraded exactly once, the
    controllers never touched (merged into the manager), no controller phase started."""
    playbook = _copy(tmp_path)
    state, events = tmp_path / "state", tmp_path / "events.jsonl"
    done = nsxt("run", playbook, "--yes", "--state-dir", state, "--events", events,
                timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "flow 2.3-to-2.4 (NSX-T 2.3.1 -> 2.4.x): hosts -> edges -> manager" in done.stdout
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    started = [e["phase"] for e in lines if e["type"] == "phase_started"]
    assert started == [*SYSTEM, "hosts", "edges", "manager", "postcheck"]
    assert not [e for e in lines if e.get("unit", "").startswith("ctrl-")]
    units = {u["id"]: u for u in world(state)["units"]}
    for unit in units.values():
        expected = 0 if unit["kind"] == "controller" else 1
        assert unit["upgrade_count"] == expected, unit
        if unit["kind"] != "controller":
            assert unit["version"] == "2.4.1.0", unit
    verified = nsxt("verify", "--state-dir", state)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = nsxt("report", "--state-dir", state, "--format", "json")
    assert report.returncode == 0, report.stderr
    assert "controllers" not in [p["name"] for p in json.loads(report.stdout)["phases"]]


def test_the_2_5_flow_puts_the_edge_clusters_first_and_runs(tmp_path: Path) -> None:
    """2.4.1 -> 2.5.0: edges, hosts, management plane (the later guides' order), and a
    simulated run follows it."""
    playbook = _site_at_2_4(tmp_path, "2.5.0.0")
    doc = _plan_json(playbook)
    assert doc["flow"]["id"] == "2.4-to-2.5"
    assert [p["name"] for p in doc["phases"]] == [
        *SYSTEM, "edges", "hosts", "manager", "postcheck"]
    state, events = tmp_path / "state", tmp_path / "events.jsonl"
    done = nsxt("run", playbook, "--yes", "--state-dir", state, "--events", events,
                timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    started = [json.loads(line)["phase"] for line in events.read_text().splitlines()
               if json.loads(line)["type"] == "phase_started"]
    assert started == [*SYSTEM, "edges", "hosts", "manager", "postcheck"]
    last_edge = max(u["upgrades"][0]["end"] for u in world(state)["units"]
                    if u["kind"] == "edge")
    first_host = min(u["upgrades"][0]["start"] for u in world(state)["units"]
                     if u["kind"] == "host")
    assert last_edge <= first_host


def test_a_site_already_at_its_2_4_target_has_nothing_to_do(tmp_path: Path) -> None:
    """2.4.1 -> 2.4.1 (a hop within the target's series) uses the 2.4 flow: nothing to do."""
    playbook = _site_at_2_4(tmp_path, "2.4.1.0")
    doc = _plan_json(playbook)
    assert doc["flow"]["id"] == "2.3-to-2.4"
    assert doc["nothing_to_do"] is True


def test_a_2_3_inventory_still_needs_its_controllers(tmp_path: Path) -> None:
    """Only a 2.4+ site may list no controllers; a 2.3 one without them is exit 2."""
    playbook = _copy(tmp_path)
    inventory = edit(tmp_path / "lab-2.3.1-inventory.yaml",
                     "  controllers: [ctrl-01, ctrl-02, ctrl-03]\n", "")
    done = nsxt("plan", playbook)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"{inventory}:")
    assert "the inventory has no controllers" in done.stderr


def _wait_for(proc: Any, state: Path, phase: str, order: list[str]) -> None:
    """Return once the journal shows ``phase`` (or a later one of ``order``) started, or
    the process ended."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        seen = peek_phase(state)
        if seen is not None and order.index(seen) >= order.index(phase):
            return
        time.sleep(0.005)


@pytest.mark.slow
def test_a_2_4_run_killed_in_each_unit_phase_resumes_to_the_end_each_unit_once(
        tmp_path: Path) -> None:
    """SIGKILL the 2.4 run (sped-up real clock) at a random moment of each unit phase in the
    flow's order, resume each time (a resume rebuilds the engine from the journal's recorded
    plan, flow and all): it ends done, every host, edge and the manager upgraded exactly
    once, no controller touched, and the journal replays to the same decisions."""
    playbook = _copy(tmp_path)
    state = tmp_path / "state"
    order = [*SYSTEM, "hosts", "edges", "manager", "postcheck"]
    rng = random.Random(20261204)
    argv: list[str | Path] = ["run", playbook, "--yes", "--state-dir", state,
                              "--clock", "real", "--speed", "2000"]
    killed_in = []
    for target in ("hosts", "hosts", "edges", "manager"):
        proc = spawn(*argv)
        _wait_for(proc, state, target, order)
        time.sleep(rng.uniform(0, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_in.append(peek_phase(state))
        proc.communicate(timeout=30)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.returncode
        argv = ["resume", "--state-dir", state, "--clock", "real", "--speed", "2000"]
    else:
        done = nsxt(*argv, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    assert {"hosts", "edges"} <= set(killed_in), killed_in
    assert status_json(state)["state"] == "done"
    for unit in world(state)["units"]:
        assert unit["upgrade_count"] == (0 if unit["kind"] == "controller" else 1), unit
    verified = nsxt("verify", "--state-dir", state)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.slow
def test_a_2_4_hop_through_the_nsxt_adapter_against_the_emulator_ends_0(tmp_path: Path) -> None:
    """The nsxt adapter against the emulator serving a 2.3.1 site going to 2.4.1: the run
    follows the 2.4 flow and its post-check does not ask the merged controllers for 2.4.1.
    (The emulator serves the 2.4 flow too: no CCP component; tests/emulator/
    test_emulator_flows.py.)"""
    shutil.copy(PLAYBOOKS / "lab-2.3.1-inventory.yaml", tmp_path / "inventory.yaml")
    env = {**os.environ, "NSXT_USERNAME": "admin", "NSXT_PASSWORD": "rehearsal-only"}
    emulator = subprocess.Popen(
        command("emulate", "nsxt", "--inventory", tmp_path / "inventory.yaml", "--state-dir",
                tmp_path / "emulator", "--port", "0", "--speed", "3000", "--target-version",
                "2.4.1.0"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert emulator.stdout is not None
        line = emulator.stdout.readline()
        assert line.startswith("listening on "), line
        playbook = tmp_path / "emulated.yaml"
        playbook.write_text(
            'name: emulated-2.4\ntarget_version: "2.4.1.0"\n'
            'bundle: {url: "https://depot.example/nsx/VMware-NSX-upgrade-bundle-2.4.1.0.0.mub"}\n'
            f'inventory: {{adapter: nsxt, manager: "{line.split()[-1]}"}}\n'
            'compatibility: {pks: "1.4.1", opsman: "2.4.2"}\n'
            "hosts: {mode: serial, upgrade_mode: in_place}\n", encoding="utf-8")
        state = tmp_path / "state"
        done = nsxt("run", playbook, "--yes", "--state-dir", state, "--clock", "real",
                    "--speed", "3000", env={"NSXT_USERNAME": "admin",
                                            "NSXT_PASSWORD": "rehearsal-only"}, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "flow 2.3-to-2.4" in done.stdout
        units = {u["id"]: u for u in world(tmp_path / "emulator")["units"]}
        assert all(u["upgrade_count"] == (0 if u["kind"] == "controller" else 1)
                   for u in units.values()), units
    finally:
        emulator.terminate()
        emulator.wait(10)
        if emulator.stdout is not None:
            emulator.stdout.close()
