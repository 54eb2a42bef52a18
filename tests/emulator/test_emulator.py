"""The NSX-T Manager upgrade-API emulator, as a real server in a subprocess.

Shapes and behaviour from DESIGN section 2: documented endpoints and list shapes,
basic auth (401/403), TLS with the generated certificate, the manager's 503 and
then refused connections during its own upgrade, the coordinator pausing at
component boundaries, persistence across a killed emulator, and ``sim show`` on
the emulator's state dir.
"""

from __future__ import annotations

import json
import signal
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.nsxt_emulator_support import (
    PASSWORD,
    USERNAME,
    Emulator,
    running_emulator,
    start_emulator,
    wait_for,
    write_inventory,
)
from upgrade.cli.main import cli

UP = "/api/v1/upgrade"
LIST_KEYS = {"results", "result_count"}  # and "cursor" while there are more pages
INVENTORY_IDS = {"esx-01", "esx-02", "esx-03", "edge-01", "edge-02", "ctrl-01", "nsx-mgr-01"}


def ok(response: httpx.Response) -> Any:
    """The JSON body of a successful answer, which never carries error_code."""
    assert response.status_code == 200, response.text
    if not response.content:
        return None
    body = response.json()
    assert "error_code" not in body
    return body


def units(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {u["display_name"]: u for u in ok(client.get(f"{UP}/upgrade-units"))["results"]}


def prepare_coordinator(client: httpx.Client) -> None:
    """Upload a bundle by URL, accept the EULA, upgrade the coordinator; wait for each."""
    bundle = ok(client.post(f"{UP}/bundles", json={
        "url": "http://repo.example/VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub"}))
    seen = set()

    def uploaded() -> bool:
        status = ok(client.get(f"{UP}/bundles/{bundle['bundle_id']}/upload-status"))
        seen.add(status["status"])
        return bool(status["status"] == "SUCCESS")

    wait_for(uploaded)
    assert {"UPLOADING", "SUCCESS"} <= seen
    ok(client.post(f"{UP}/eula/accept"))
    ok(client.post(UP, params={"action": "upgrade_uc"}))
    # 2.3: the coordinator's progress is the summary's (uc-upgrade-status is 2.5.1's)
    wait_for(lambda: ok(client.get(f"{UP}/summary"))["upgrade_coordinator_updated"])


def select(client: httpx.Client, *names: str) -> httpx.Response:
    """``POST /upgrade/plan?action=upgrade_selected_units`` of the units ``names``."""
    ids = units(client)
    return client.post(f"{UP}/plan", params={"action": "upgrade_selected_units"},
                       json={"list": [{"id": ids[n]["id"]} for n in names]})


def upgrade_components(client: httpx.Client, *components: str, target: str = "2.3.0.0"
                       ) -> None:
    """Select every unit of each of ``components`` in turn and wait until it reports
    ``target`` (the order of the hop is the caller's to keep)."""
    for component in components:
        names = [n for n, u in units(client).items() if u["type"] == component]
        ok(select(client, *names))
        wait_for(lambda names=names: all(  # type: ignore[misc]
            units(client)[n]["current_version"] == target for n in names), timeout=30)


def component_statuses(client: httpx.Client) -> dict[str, str]:
    body = ok(client.get(f"{UP}/status-summary"))
    return {c["component_type"]: c["status"] for c in body["component_status"]}


def snapshot(state_dir: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["sim", "show", "--state-dir", str(state_dir),
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


@pytest.fixture
def emulator(tmp_path: Path) -> Any:
    with running_emulator(tmp_path) as emu:
        yield emu


def test_documented_endpoints_and_shapes(emulator: Emulator) -> None:
    with emulator.client() as client:
        summary = ok(client.get(f"{UP}/summary"))
        assert summary["system_version"] == "2.1.0.0"
        assert summary["upgrade_status"] == "NOT_STARTED"
        body = ok(client.get(f"{UP}/status-summary"))
        assert body["overall_upgrade_status"] == "NOT_STARTED"
        assert [c["component_type"] for c in body["component_status"]] == [
            "HOST", "EDGE", "CCP", "MP"]
        assert {"status", "percent_complete", "details"} <= set(body["component_status"][0])
        one = ok(client.get(f"{UP}/status-summary", params={"component_type": "EDGE"}))
        assert [c["component_type"] for c in one["component_status"]] == ["EDGE"]

        for path in ("upgrade-unit-groups", "upgrade-units", "upgrade-unit-groups/aggregate-info",
                     "upgrade-unit-groups-status", "history", "upgrade-units/aggregate-info",
                     "nodes"):
            listing = ok(client.get(f"{UP}/{path}"))
            assert set(listing) == LIST_KEYS, path
            assert listing["result_count"] == len(listing["results"])

        groups = ok(client.get(f"{UP}/upgrade-unit-groups"))["results"]
        assert [(g["type"], g["display_name"]) for g in groups] == [
            ("HOST", "cluster-a"), ("HOST", "cluster-b"), ("EDGE", "edge-cluster-1"),
            ("CCP", "controllers"), ("MP", "manager")]
        assert {"parallel", "enabled", "upgrade_units", "extended_configuration",
                "_revision"} <= set(groups[0])
        assert set(units(client)) == INVENTORY_IDS
        unit = units(client)["esx-01"]
        assert {"id", "display_name", "type", "current_version", "group", "warnings",
                "metadata"} <= set(unit)
        assert unit["id"] != "esx-01" and unit["type"] == "HOST"
        assert unit["group"]["display_name"] == "cluster-a"
        assert ok(client.get(f"{UP}/upgrade-units/{unit['id']}"))["display_name"] == "esx-01"
        warned = ok(client.get(f"{UP}/upgrade-units", params={"has_warnings": "true"}))
        assert [u["display_name"] for u in warned["results"]] == ["edge-01"]
        edges = ok(client.get(f"{UP}/upgrade-units", params={"component_type": "EDGE"}))
        assert {u["display_name"] for u in edges["results"]} == {"edge-01", "edge-02"}
        paged = ok(client.get(f"{UP}/upgrade-units", params={"page_size": "4"}))
        assert len(paged["results"]) == 4 and paged["cursor"]
        rest = ok(client.get(f"{UP}/upgrade-units", params={"cursor": paged["cursor"]}))
        assert len(rest["results"]) == 3 and "cursor" not in rest

        info = ok(client.get(f"{UP}/upgrade-unit-groups/aggregate-info"))["results"]
        assert all({"type", "status", "upgrade_unit_count", "upgrade_units"} <= set(g)
                   for g in info)
        assert {(u["display_name"], u["current_version"]) for g in info
                for u in g["upgrade_units"]} == {(i, "2.1.0.0") for i in INVENTORY_IDS}
        status = ok(client.get(f"{UP}/upgrade-unit-groups-status"))["results"][0]
        assert {"group_id", "group_name", "status", "upgrade_unit_count", "failed_count",
                "percent_complete"} <= set(status)
        # VMware's per-unit status is the group's /status; the old path exists nowhere
        per_unit = ok(client.get(f"{UP}/upgrade-unit-groups/{groups[0]['id']}/status"))
        assert set(per_unit) == LIST_KEYS
        assert {u["status"] for u in per_unit["results"]} == {"NOT_STARTED"}
        assert client.get(f"{UP}/upgrade-unit-groups/{groups[0]['id']}"
                          "/upgrade-unit/status").status_code in (404, 405)
        # 2.3 has no pre-check failures list (3.1): health is the units' warnings and errors
        assert client.get(f"{UP}/pre-upgrade-checks/failures").status_code == 404
        warned = ok(client.get(f"{UP}/upgrade-units/aggregate-info"))["results"]
        assert [(u["display_name"], u["warnings"]) for u in warned if u["warnings"]] == [
            ("edge-01", ["uplink fp-eth1 is down"])]

        settings = ok(client.get(f"{UP}/plan/HOST/settings"))
        assert set(settings) == {"parallel", "pause_on_error", "pause_after_each_group"}
        changed = ok(client.put(f"{UP}/plan/HOST/settings", json={"parallel": False}))
        assert changed["parallel"] is False

        assert ok(client.get(f"{UP}/eula/acceptance")) == {"acceptance": False}
        ok(client.post(f"{UP}/eula/accept"))
        assert ok(client.get(f"{UP}/eula/acceptance")) == {"acceptance": True}
        assert client.get(f"{UP}/uc-upgrade-status").status_code == 404  # 2.5.1 only
        service = ok(client.get("/api/v1/node/services/install-upgrade"))
        # clients build https://{enabled_on}/api/v1 from it: the port comes along
        address = emulator.url.split("://")[1]
        assert service["service_properties"]["enabled_on"] == address
    with emulator.client(base_url=emulator.url.replace("127.0.0.1", "localhost")) as client:
        service = ok(client.get("/api/v1/node/services/install-upgrade"))
        assert service["service_properties"]["enabled_on"] == address.replace("127.0.0.1",
                                                                              "localhost")


def test_errors_are_nsx_error_bodies(emulator: Emulator) -> None:
    with emulator.client() as client:
        esx = units(client)["esx-01"]["id"]
        refused = client.post(f"{UP}/plan", params={"action": "upgrade_selected_units"},
                              json={"list": [{"id": esx}]})
        assert refused.status_code == 400
        body = refused.json()
        assert {"error_code", "error_message", "module_name"} <= set(body)
        assert "Upgrade Coordinator has not been upgraded" in body["error_message"]
        missing = client.get("/api/v1/upgrade/no/such-thing")
        assert missing.status_code == 404 and "error_message" in missing.json()
        uc = client.post(UP, params={"action": "upgrade_uc"})
        assert uc.status_code == 400 and "no upgrade bundle" in uc.json()["error_message"]


def test_bundle_id_latest_is_the_most_recent_upload(emulator: Emulator) -> None:
    """``latest`` goes wherever a bundle id goes (ansible-for-nsxt polls it after uploading)."""
    with emulator.client() as client:
        none = client.get(f"{UP}/bundles/latest/upload-status")
        assert none.status_code == 404
        assert "no upgrade bundle has been uploaded" in none.json()["error_message"]
        first = ok(client.post(f"{UP}/bundles", json={"url": "http://repo.example/a.mub"}))
        assert first["bundle_id"]
        latest = ok(client.get(f"{UP}/bundles/latest"))  # UpgradeBundleInfo
        assert latest == {"bundle_size": "0", "url": "http://repo.example/a.mub"}
        status = ok(client.get(f"{UP}/bundles/latest/upload-status"))
        assert status["url"] == "http://repo.example/a.mub"
        assert status["status"] in ("UPLOADING", "VERIFYING", "SUCCESS")


def test_basic_auth_401_and_403(emulator: Emulator) -> None:
    with httpx.Client(base_url=emulator.url) as anonymous:
        answer = anonymous.get(f"{UP}/summary")
        assert answer.status_code == 401
        assert answer.json()["error_code"] == 98
        assert answer.headers["www-authenticate"].startswith("Basic")
    with emulator.client(auth=(USERNAME, "wrong")) as wrong:
        answer = wrong.get(f"{UP}/summary")
        assert answer.status_code == 403
        assert "error_code" in answer.json()
        assert answer.json()["error_code"] == 403
    with emulator.client(auth=("root", PASSWORD)) as wrong_user:
        assert wrong_user.get(f"{UP}/summary").status_code == 403


def test_emulate_needs_credentials(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path)
    result = CliRunner(env={"NSXT_USERNAME": "", "NSXT_PASSWORD": ""}).invoke(
        cli, ["emulate", "nsxt", "--inventory", str(inventory), "--state-dir",
              str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "NSXT_USERNAME" in result.output


def test_tls_with_the_generated_certificate(tmp_path: Path) -> None:
    with running_emulator(tmp_path, tls=True) as emu:
        assert emu.url.startswith("https://127.0.0.1:")
        assert emu.cert is not None and emu.cert.is_file()
        with emu.client() as client:
            assert ok(client.get(f"{UP}/summary"))["system_version"] == "2.1.0.0"
        with httpx.Client(base_url=emu.url, auth=(USERNAME, PASSWORD)) as default_trust, \
                pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            default_trust.get(f"{UP}/summary")
        context = ssl.create_default_context(cafile=str(emu.cert))
        with httpx.Client(base_url=emu.url.replace("127.0.0.1", "localhost"),
                          auth=(USERNAME, PASSWORD), verify=context) as by_name:
            assert by_name.get(f"{UP}/summary").status_code == 200


@pytest.mark.slow
def test_coordinator_pauses_at_component_boundaries(emulator: Emulator) -> None:
    with emulator.client() as client:
        prepare_coordinator(client)
        assert ok(client.get(f"{UP}/summary"))["target_version"] == "2.3.0.0"
        ok(client.put(f"{UP}/plan/HOST/settings", json={"parallel": False}))
        ok(client.post(f"{UP}/plan", params={"action": "start"}))
        wait_for(lambda: component_statuses(client)["HOST"] == "SUCCESS")
        statuses = component_statuses(client)
        assert statuses["EDGE"] == "NOT_STARTED"
        assert ok(client.get(f"{UP}/status-summary"))["overall_upgrade_status"] == "PAUSED"
        hosts = snapshot(emulator.state_dir)["units"]
        spans = sorted((u["upgrades"][0]["start"], u["upgrades"][0]["end"]) for u in hosts
                       if u["kind"] == "host")
        # groups one after the other; cluster-a's two hosts together (its group is parallel)
        assert spans[0][0] == spans[1][0] and spans[2][0] == max(spans[0][1], spans[1][1])
        ok(client.post(f"{UP}/plan", params={"action": "continue"}))
        wait_for(lambda: component_statuses(client)["EDGE"] == "SUCCESS")
        edges = [u for u in snapshot(emulator.state_dir)["units"] if u["kind"] == "edge"]
        first, second = sorted((u["upgrades"][0]["start"], u["upgrades"][0]["end"])
                               for u in edges)
        assert second[0] >= first[1]  # the edges of one edge cluster one at a time
        assert component_statuses(client)["CCP"] == "NOT_STARTED"
        history = ok(client.get(f"{UP}/history"))["results"]
        assert history[0]["upgrade_status"] == "STARTED"
        assert history[0]["target_version"] == "2.3.0.0"
        assert history[0]["initial_version"] == "2.1.0.0"
    counts = {u["id"]: u["upgrade_count"] for u in snapshot(emulator.state_dir)["units"]}
    assert counts == {"esx-01": 1, "esx-02": 1, "esx-03": 1, "edge-01": 1, "edge-02": 1,
                      "ctrl-01": 0, "nsx-mgr-01": 0}


@pytest.mark.slow
def test_faults_apply_and_pause_on_error(tmp_path: Path) -> None:
    fault = "faults:\n  - {unit: esx-02, op: upgrade, kind: fail}\n"
    with running_emulator(tmp_path, inventory_extra=fault) as emu, emu.client() as client:
        prepare_coordinator(client)
        ok(client.put(f"{UP}/plan/HOST/settings", json={"parallel": False}))  # groups serially
        ok(client.post(f"{UP}/plan", params={"action": "start", "component_type": "HOST"}))
        wait_for(lambda: component_statuses(client)["HOST"] == "FAILED")
        group = ok(client.get(f"{UP}/upgrade-unit-groups"))["results"][0]
        per_unit = ok(client.get(f"{UP}/upgrade-unit-groups/{group['id']}/status",
                                 params={"has_errors": "true"}))["results"]
        assert [u["display_name"] for u in per_unit] == ["esx-02"]
        assert "failed" in per_unit[0]["errors"][0]
        # paused on the error: cluster-b's host was not started
        assert units(client)["esx-03"]["current_version"] == "2.1.0.0"
        ok(client.post(f"{UP}/plan", params={"action": "continue"}))  # retries esx-02
        wait_for(lambda: component_statuses(client)["HOST"] == "SUCCESS")
    counts = {u["id"]: u["upgrade_count"] for u in snapshot(emu.state_dir)["units"]}
    assert counts["esx-02"] == 2 and counts["esx-01"] == 1 and counts["esx-03"] == 1


@pytest.mark.slow
def test_manager_upgrade_503_then_refused_then_back(tmp_path: Path) -> None:
    with running_emulator(tmp_path, speed=200) as emu, emu.client(timeout=2.0) as client:
        prepare_coordinator(client)
        upgrade_components(client, "HOST", "EDGE", "CCP")  # the manager comes last
        ok(select(client, "nsx-mgr-01"))
        seen: list[str] = []

        def phase() -> bool:
            try:
                answer = client.get("/api/v1/cluster/status")
            except httpx.ConnectError:
                kind = "refused"
            except httpx.TransportError:
                return False  # a connection dropped as the gate closed
            else:
                if answer.status_code == 503:
                    assert answer.json()["error_code"] == 101
                    kind = "503"
                else:
                    kind = answer.json()["mgmt_cluster_status"]["status"]
            if not seen or seen[-1] != kind:
                seen.append(kind)
            return kind == "STABLE"

        wait_for(phase, timeout=30, interval=0.01)
        assert seen[0] == "503"
        assert "refused" in seen and seen.index("refused") > 0
        assert seen[-2:] == ["INITIALIZING", "STABLE"]
        assert units(client)["nsx-mgr-01"]["current_version"] == "2.3.0.0"


@pytest.mark.slow
def test_persistence_across_a_killed_emulator(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path)
    state = tmp_path / "state"
    emu = start_emulator(inventory, state, speed=600)
    try:
        with emu.client() as client:
            prepare_coordinator(client)
            ok(client.put(f"{UP}/plan/EDGE/settings", json={"pause_on_error": False}))
            esx = units(client)["esx-01"]["id"]
            ok(client.post(f"{UP}/plan", params={"action": "upgrade_selected_units"},
                           json={"list": [{"id": esx}]}))
            bundle = ok(client.get(f"{UP}/bundles/latest"))
    finally:
        assert emu.stop(signal.SIGKILL) == -signal.SIGKILL
    again = start_emulator(inventory, state, speed=600)
    try:
        with again.client() as client:
            assert ok(client.get(f"{UP}/bundles/latest")) == bundle
            assert ok(client.get(f"{UP}/eula/acceptance"))["acceptance"] is True
            assert ok(client.get(f"{UP}/summary"))["upgrade_coordinator_updated"] is True
            assert ok(client.get(f"{UP}/plan/EDGE/settings"))["pause_on_error"] is False
            wait_for(lambda: units(client)["esx-01"]["current_version"] == "2.3.0.0")
    finally:
        again.stop()
    world = snapshot(state)
    counts = {u["id"]: u["upgrade_count"] for u in world["units"]}
    assert counts["esx-01"] == 1 and sum(counts.values()) == 1
    uploads = [o for o in world["operations"] if o["op"] == "upload"]
    assert [o["attempt"] for o in uploads] == [1]


def test_emulator_refuses_another_inventory_for_its_state_dir(emulator: Emulator,
                                                              tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(write_inventory(tmp_path).read_text().replace("esx-03", "esx-09"))
    result = CliRunner(env={"NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD}).invoke(
        cli, ["emulate", "nsxt", "--inventory", str(other), "--state-dir",
              str(emulator.state_dir)])
    assert result.exit_code == 2
    assert "another inventory" in result.output


def test_sim_show_reads_the_emulators_state_dir(emulator: Emulator) -> None:
    assert (emulator.state_dir / "inventory.yaml").is_file()
    world = snapshot(emulator.state_dir)
    assert {u["id"] for u in world["units"]} == INVENTORY_IDS
    assert all(u["upgrade_count"] == 0 and u["version"] == "2.1.0.0" for u in world["units"])
    assert {"time", "units", "vms"} <= set(world)
    text = CliRunner().invoke(cli, ["sim", "show", "--state-dir", str(emulator.state_dir),
                                    "--format", "text"])
    assert text.exit_code == 0 and "esx-01" in text.output
    default = CliRunner().invoke(cli, ["sim", "show", "--state-dir", str(emulator.state_dir)])
    assert json.loads(default.output)["units"] == world["units"]


def test_sim_show_without_a_world(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sim", "show", "--state-dir", str(tmp_path),
                                      "--format", "json"])
    assert result.exit_code == 2
    assert "holds no simulated world" in result.output
    assert not (tmp_path / "world.sqlite").exists()


def test_cancel_upload_on_2_5(tmp_path: Path) -> None:
    """2.5.1's ``POST /upgrade/bundles/{id}?action=cancel_upload``: only while uploading;
    the cancelled bundle reads FAILED and another upload is accepted; 2.3 has no such
    action."""
    url = "http://repo.example/VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub"
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with running_emulator(tmp_path / "a", speed=1, api="2.5") as emu, emu.client() as client:
        first = ok(client.post(f"{UP}/bundles", json={"url": url}))["bundle_id"]
        assert ok(client.post(f"{UP}/bundles/{first}", params={"action": "cancel_upload"})) \
            is None
        status = ok(client.get(f"{UP}/bundles/{first}/upload-status"))
        assert status["status"] == "FAILED" and "cancelled" in status["detailed_status"]
        again = client.post(f"{UP}/bundles/{first}", params={"action": "cancel_upload"})
        assert again.status_code == 400
        second = ok(client.post(f"{UP}/bundles", json={"url": url}))["bundle_id"]
        assert second != first
        assert ok(client.get(f"{UP}/bundles/latest/upload-status"))["status"] == "UPLOADING"
    with running_emulator(tmp_path / "b", speed=1) as emu, emu.client() as client:
        bundle = ok(client.post(f"{UP}/bundles", json={"url": url}))["bundle_id"]
        refused = client.post(f"{UP}/bundles/{bundle}", params={"action": "cancel_upload"})
        assert refused.status_code == 405  # 2.3: no POST on a bundle
