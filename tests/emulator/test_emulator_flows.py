"""The emulator follows the flow of the hop it emulates (DESIGN section 9; flows.yaml).

`emulate nsxt --target-version` picks the flow of the hop from the inventory's version to
the target: up to 2.3 the coordinator upgrades HOST, EDGE, CCP, MP; a 2.4 target has no
CCP component (the NSX Controller is merged into the NSX Manager during the
management-plane upgrade) and a 2.5 target upgrades the edges first.  A hop the flow data
holds no order for is refused at start.  Every answer stays within VMware's contract, on
both API versions, and the nsxt adapter runs both hops against the emulator to the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.contract import traffic_problems
from tests.nsxt_emulator_support import (
    PASSWORD,
    ROOT,
    USERNAME,
    Emulator,
    start_emulator,
    wait_for,
)
from tests.run_support import PLAYBOOKS, edit, nsxt, world

UP = "/api/v1/upgrade"
LAB_HOSTS = {"esx-01", "esx-02", "esx-03", "esx-04"}
LAB_EDGES = {"edge-01", "edge-02"}
CONTROLLERS = {"ctrl-01", "ctrl-02", "ctrl-03"}


def _lab(tmp_path: Path, at: str = "2.3.1.0") -> Path:
    """The shipped 2.3.1 lab inventory (three controllers); ``at`` another version, which
    from 2.4 on has no controllers."""
    inventory = tmp_path / "inventory.yaml"
    shutil.copy(PLAYBOOKS / "lab-2.3.1-inventory.yaml", inventory)
    if at != "2.3.1.0":
        edit(inventory, 'version: "2.3.1.0"', f'version: "{at}"')
        edit(inventory, "  controllers: [ctrl-01, ctrl-02, ctrl-03]\n", "")
    return inventory


def _ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def _ready_coordinator(client: httpx.Client, target: str) -> None:
    """Upload the target's bundle, accept the EULA, upgrade the coordinator; wait."""
    bundle = _ok(client.post(f"{UP}/bundles", json={
        "url": f"https://depot.example/VMware-NSX-upgrade-bundle-{target}.0.mub"}))
    wait_for(lambda: _ok(client.get(f"{UP}/bundles/{bundle['bundle_id']}/upload-status"))
             ["status"] == "SUCCESS")
    _ok(client.post(f"{UP}/eula/accept"))
    _ok(client.post(UP, params={"action": "upgrade_uc"}))
    wait_for(lambda: _ok(client.get(f"{UP}/summary"))["upgrade_coordinator_updated"])


def _statuses(client: httpx.Client) -> list[tuple[str, str]]:
    body = _ok(client.get(f"{UP}/status-summary"))
    return [(c["component_type"], c["status"]) for c in body["component_status"]]


def _no_contract_problems(emu: Emulator) -> None:
    problems = traffic_problems(emu.traffic, emu.api)
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("api", ["2.3", "2.5"])
def test_a_2_4_target_has_no_controller_component(tmp_path: Path, api: str) -> None:
    """2.3.1 -> 2.4.1: groups, units, status-summary, summary and whitelist know HOST, EDGE
    and MP only; the plan starts with the hosts; a CCP group cannot be made."""
    emu = start_emulator(_lab(tmp_path), tmp_path / "state", speed=3000, api=api,
                         target="2.4.1.0")
    try:
        with emu.client() as client:
            groups = _ok(client.get(f"{UP}/upgrade-unit-groups"))["results"]
            assert [g["type"] for g in groups] == ["HOST", "HOST", "EDGE", "MP"]
            names = {u["display_name"] for u in _ok(client.get(f"{UP}/upgrade-units"))
                     ["results"]}
            assert names == LAB_HOSTS | LAB_EDGES | {"nsx-mgr-01"}
            summary = _ok(client.get(f"{UP}/status-summary"))
            assert "ccp_status" not in summary
            assert {"host_status", "edge_status"} <= set(summary)
            assert [c for c, _ in _statuses(client)] == ["HOST", "EDGE", "MP"]
            whitelist = _ok(client.get(f"{UP}/version-whitelist"))["results"]
            assert [w["component_type"] for w in whitelist] == ["HOST", "EDGE", "MP"]
            made = client.post(f"{UP}/upgrade-unit-groups",
                               json={"type": "CCP", "display_name": "controllers"})
            assert made.status_code == 400 and "no CCP component" in made.json()[
                "error_message"]
            _ready_coordinator(client, "2.4.1.0")
            summary = _ok(client.get(f"{UP}/summary"))
            assert [c["component_type"] for c in summary["component_target_versions"]] == [
                "HOST", "EDGE", "MP"]
            refused = client.post(f"{UP}/plan", params={"action": "start",
                                                        "component_type": "CCP"})
            assert refused.status_code == 400, refused.text
            _ok(client.post(f"{UP}/plan", params={"action": "start"}))
            assert _statuses(client)[:2] == [("HOST", "IN_PROGRESS"), ("EDGE", "NOT_STARTED")]
    finally:
        emu.stop()
    _no_contract_problems(emu)


def test_the_2_1_lab_keeps_its_controllers(tmp_path: Path) -> None:
    """2.1 -> 2.3 (the default target) keeps the 2.3 coordinator's order with CCP."""
    inventory = tmp_path / "inventory.yaml"
    shutil.copy(PLAYBOOKS / "lab-2.3.1-inventory.yaml", inventory)
    edit(inventory, 'version: "2.3.1.0"', 'version: "2.1.0.0"')
    emu = start_emulator(inventory, tmp_path / "state", speed=600)
    try:
        with emu.client() as client:
            assert [c for c, _ in _statuses(client)] == ["HOST", "EDGE", "CCP", "MP"]
            assert "ccp_status" in _ok(client.get(f"{UP}/status-summary"))
    finally:
        emu.stop()
    _no_contract_problems(emu)


def test_a_2_5_target_upgrades_the_edges_first(tmp_path: Path) -> None:
    """2.4.1 -> 2.5.0 on --api-version 2.5: EDGE, HOST, MP, and the plan starts with the
    edges; a post-upgrade check of CCP is refused (2.5 has no such component)."""
    emu = start_emulator(_lab(tmp_path, "2.4.1.0"), tmp_path / "state", speed=3000, api="2.5",
                         target="2.5.0.0")
    try:
        with emu.client() as client:
            groups = _ok(client.get(f"{UP}/upgrade-unit-groups"))["results"]
            assert [g["type"] for g in groups] == ["EDGE", "HOST", "HOST", "MP"]
            _ready_coordinator(client, "2.5.0.0")
            _ok(client.post(f"{UP}/plan", params={"action": "start"}))
            assert _statuses(client)[:2] == [("EDGE", "IN_PROGRESS"), ("HOST", "NOT_STARTED")]
            checks = _ok(client.get(f"{UP}/upgrade-checks-info"))["results"]
            assert [c["component_type"] for c in checks] == ["EDGE", "HOST", "MP"]
            refused = client.post(f"{UP}/CCP", params={"action": "execute_post_upgrade_checks"})
            assert refused.status_code == 400, refused.text
            _ok(client.post(f"{UP}/EDGE", params={"action": "execute_post_upgrade_checks"}),
                202)
    finally:
        emu.stop()
    _no_contract_problems(emu)


def test_a_target_without_a_flow_is_refused_at_start(tmp_path: Path) -> None:
    """2.1 -> 2.4.1 skips the vendor's hops: exit 2, one line naming the known flows,
    nothing written."""
    inventory = tmp_path / "inventory.yaml"
    shutil.copy(PLAYBOOKS / "lab-2.3.1-inventory.yaml", inventory)
    edit(inventory, 'version: "2.3.1.0"', 'version: "2.1.0.0"')
    state = tmp_path / "state"
    done = subprocess.run(
        [sys.executable, "-m", "upgrade", "emulate", "nsxt", "--inventory", str(inventory),
         "--state-dir", str(state), "--target-version", "2.4.1.0"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD})
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: --target-version 2.4.1.0: no upgrade flow for NSX-T "
                               "2.1.0.0 -> 2.4.1.0")
    for flow in ("2.1-to-2.2", "2.x-to-2.3", "2.3-patch", "2.3-to-2.4", "2.4-to-2.5"):
        assert flow in lines[0]
    assert not state.exists()


def _rehearse(tmp_path: Path, emu: Emulator, target: str, compat: str) -> dict[str, Any]:
    """``run`` through the nsxt adapter against ``emu`` (exit 0); the emulator's units."""
    playbook = tmp_path / "rehearsal.yaml"
    playbook.write_text(
        f'name: rehearsal\ntarget_version: "{target}"\n'
        f'bundle: {{url: "https://depot.example/nsx/VMware-NSX-upgrade-bundle-{target}.0.mub"}}\n'
        f'inventory: {{adapter: nsxt, manager: "{emu.url}"}}\n'
        f"compatibility: {compat}\n"
        "hosts: {mode: serial, upgrade_mode: in_place}\n", encoding="utf-8")
    done = nsxt("run", playbook, "--yes", "--state-dir", tmp_path / "run", "--clock", "real",
                "--speed", "3000", env={"NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD},
                timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return {u["id"]: u for u in world(emu.state_dir)["units"]}


@pytest.mark.slow
def test_the_adapter_runs_a_2_4_hop_without_touching_a_controller(tmp_path: Path) -> None:
    """2.3.1 -> 2.4.1 through the nsxt adapter: ends 0, each unit once, no controller
    upgraded (the emulator offers none), every exchange within the 2.3 contract."""
    emu = start_emulator(_lab(tmp_path), tmp_path / "state", speed=3000, target="2.4.1.0")
    try:
        units = _rehearse(tmp_path, emu, "2.4.1.0", '{pks: "1.4.1", opsman: "2.4.2"}')
        with emu.client() as client:
            history = _ok(client.get(f"{UP}/history"))["results"]
    finally:
        emu.stop()
    assert {u: units[u]["upgrade_count"] for u in units} == {
        **dict.fromkeys(LAB_HOSTS | LAB_EDGES | {"nsx-mgr-01"}, 1),
        **dict.fromkeys(CONTROLLERS, 0)}
    assert [h["upgrade_status"] for h in history] == ["STARTED", "SUCCESS"]
    _no_contract_problems(emu)


@pytest.mark.slow
def test_the_adapter_runs_a_2_5_hop_edges_first(tmp_path: Path) -> None:
    """2.4.1 -> 2.5.0 on --api-version 2.5 through the nsxt adapter: ends 0, every edge
    upgraded before any host, the manager last, every exchange within the 2.5.1 contract."""
    emu = start_emulator(_lab(tmp_path, "2.4.1.0"), tmp_path / "state", speed=3000, api="2.5",
                         target="2.5.0.0")
    try:
        units = _rehearse(tmp_path, emu, "2.5.0.0", '{pks: "1.5.0", opsman: "2.6.16"}')
    finally:
        emu.stop()
    assert all(u["upgrade_count"] == 1 for u in units.values()), units
    first = {name: u["upgrades"][0] for name, u in units.items()}
    assert max(first[e]["end"] for e in LAB_EDGES) <= min(first[h]["start"] for h in LAB_HOSTS)
    assert max(first[h]["end"] for h in LAB_HOSTS) <= first["nsx-mgr-01"]["start"]
    _no_contract_problems(emu)


def _select(client: httpx.Client, *names: str) -> httpx.Response:
    """``upgrade_selected_units`` of the units ``names`` (display names)."""
    ids = {u["display_name"]: u["id"] for u in _ok(client.get(f"{UP}/upgrade-units"))["results"]}
    return client.post(f"{UP}/plan", params={"action": "upgrade_selected_units"},
                       json={"list": [{"id": ids[n]} for n in names]})


def _upgraded(client: httpx.Client, names: set[str], target: str) -> bool:
    found = {u["display_name"]: u["current_version"]
             for u in _ok(client.get(f"{UP}/upgrade-units"))["results"]}
    return all(found[n] == target for n in names)


def _out_of_order(answer: httpx.Response, waiting: str) -> None:
    """An NSX error body (400, invalid_request) refusing a selection before ``waiting``'s
    component is upgraded."""
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"error_code", "error_message", "module_name"}, body
    assert body["error_code"] == 30022 and body["module_name"] == "upgrade"
    assert f"before the {waiting} upgrade is complete" in body["error_message"], body


def _lab_at_2_1(tmp_path: Path) -> Path:
    """The lab at NSX-T 2.1 (controllers kept): its hop to 2.3 is HOST, EDGE, CCP, MP."""
    inventory = _lab(tmp_path)
    edit(inventory, 'version: "2.3.1.0"', 'version: "2.1.0.0"')
    return inventory


def test_selected_units_follow_the_2_3_order(tmp_path: Path) -> None:
    """2.1 -> 2.3 (HOST, EDGE, CCP, MP): edges, controllers or the manager
    selected while a host is not upgraded are refused, and so on down the order; each
    component in turn is accepted; every exchange within the contract."""
    emu = start_emulator(_lab_at_2_1(tmp_path), tmp_path / "state", speed=3000)
    try:
        with emu.client() as client:
            _ready_coordinator(client, "2.3.0.0")
            for name in ("edge-01", "ctrl-01", "nsx-mgr-01"):
                _out_of_order(_select(client, name), "HOST")
            for component in ("EDGE", "MP"):  # the plan started at a later component too
                _out_of_order(client.post(f"{UP}/plan", params={
                    "action": "start", "component_type": component}), "HOST")
            _ok(_select(client, *sorted(LAB_HOSTS)))
            wait_for(lambda: _upgraded(client, LAB_HOSTS, "2.3.0.0"), timeout=60)
            _out_of_order(_select(client, "nsx-mgr-01"), "EDGE")
            _ok(_select(client, *sorted(LAB_EDGES)))
            wait_for(lambda: _upgraded(client, LAB_EDGES, "2.3.0.0"), timeout=60)
            _out_of_order(_select(client, "nsx-mgr-01"), "CCP")
            _ok(_select(client, *sorted(CONTROLLERS)))
            wait_for(lambda: _upgraded(client, CONTROLLERS, "2.3.0.0"), timeout=60)
            _ok(_select(client, "nsx-mgr-01"))
    finally:
        emu.stop()
    _no_contract_problems(emu)


def test_selected_units_follow_the_2_5_order(tmp_path: Path) -> None:
    """2.4.1 -> 2.5.0 (EDGE, HOST, MP): a host selected before the edges are upgraded is
    refused; the edges are accepted first."""
    emu = start_emulator(_lab(tmp_path, "2.4.1.0"), tmp_path / "state", speed=3000, api="2.5",
                         target="2.5.0.0")
    try:
        with emu.client() as client:
            _ready_coordinator(client, "2.5.0.0")
            _out_of_order(_select(client, "esx-01"), "EDGE")
            _out_of_order(_select(client, "nsx-mgr-01"), "EDGE")
            _ok(_select(client, *sorted(LAB_EDGES)))
            wait_for(lambda: _upgraded(client, LAB_EDGES, "2.5.0.0"), timeout=60)
            _ok(_select(client, "esx-01"))
            wait_for(lambda: _upgraded(client, {"esx-01"}, "2.5.0.0"), timeout=60)
            _out_of_order(_select(client, "nsx-mgr-01"), "HOST")  # esx-02..04 are not
    finally:
        emu.stop()
    _no_contract_problems(emu)


def test_a_skipped_or_disabled_component_does_not_hold_the_next_back(tmp_path: Path) -> None:
    """A host that failed holds the edges back until the plan skips the hosts
    (``continue&skip=true``); the manager waits for every other unit, skipped hosts and
    disabled controller groups included (VMware's terraform-provider-nsxt,
    ``nsxt_upgrade_run``: MP "requires EDGE and HOST to be fully upgraded")."""
    inventory = _lab_at_2_1(tmp_path)
    with inventory.open("a", encoding="utf-8") as out:
        out.write("faults:\n  - {unit: esx-01, op: upgrade, kind: fail}\n")
    emu = start_emulator(inventory, tmp_path / "state", speed=3000)
    try:
        with emu.client() as client:
            _ready_coordinator(client, "2.3.0.0")
            _ok(client.post(f"{UP}/plan", params={"action": "start", "component_type": "HOST"}))
            wait_for(lambda: ("HOST", "FAILED") in _statuses(client), timeout=60)
            # once no host upgrades any more (30021 until then), the failed one holds the
            # edges back
            held = wait_for(lambda: (a := _select(client, "edge-01")).json()["error_code"]
                            == 30022 and a, timeout=60)
            _out_of_order(held, "HOST")
            assert "esx-01" in held.json()["error_message"]
            # VMware's "skip to upgrade of next component": the plan goes on with the edges
            _ok(client.post(f"{UP}/plan", params={"action": "continue", "skip": "true"}))
            wait_for(lambda: ("EDGE", "SUCCESS") in _statuses(client), timeout=60)
            _out_of_order(_select(client, "nsx-mgr-01"), "HOST")
            for group in _ok(client.get(f"{UP}/upgrade-unit-groups",
                                        params={"component_type": "CCP"}))["results"]:
                _ok(client.put(f"{UP}/upgrade-unit-groups/{group['id']}",
                               json={**group, "enabled": False}))
            refused = _select(client, "nsx-mgr-01")
            _out_of_order(refused, "HOST")
            assert "esx-01" in refused.json()["error_message"]
    finally:
        emu.stop()
    _no_contract_problems(emu)
